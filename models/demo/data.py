"""Tensors of phantoms for the demo model: generation, preprocessing, labels (numpy only).

Every phantom goes the way a study goes at inference: a DICOM dataset from
:func:`models.phantoms.generate_phantom`, turned into the input tensor by the preprocessing the
model card declares, so training and inference see the same tensors.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from models.card import InputSpec, Preprocessing
from models.phantoms import FINDINGS, Phantom, generate_phantom, phantom_seed
from models.preprocess import preprocess_dataset

__all__ = ["PhantomSet", "finding_maps", "make_phantom_set"]

logger = logging.getLogger(__name__)

TRAIN_SIZES = tuple(range(160, 449, 32))
"""Matrix sizes drawn for training phantoms (small, so that thousands generate quickly)."""


@dataclass(frozen=True)
class PhantomSet:
    """Preprocessed phantoms and their labels.

    Attributes
    ----------
    images
        ``[N, 1, H, W]`` float32, exactly the model's input tensors.
    labels
        ``[N, L]`` float32 0/1 in :data:`models.phantoms.FINDINGS` order.
    maps
        ``[N, L, h, w]`` float32 0/1: where each finding was drawn, at the heatmap's size.
    seeds
        The phantom seed of each row.
    """

    images: NDArray[np.float32]
    labels: NDArray[np.float32]
    maps: NDArray[np.float32]
    seeds: tuple[int, ...]


def finding_maps(ph: Phantom, map_size: int) -> NDArray[np.float32]:
    """Return where each finding was drawn, as ``[L, map_size, map_size]`` 0/1 maps.

    The masks of the phantom are resized like the image (the whole frame, no crop), so a cell
    is 1 where at least 5 % of it is covered by the finding. Cardiomegaly is the heart's mask.

    Parameters
    ----------
    ph
        A generated phantom.
    map_size
        Height and width of the model's heatmap.

    Returns
    -------
    numpy.ndarray
        float32 ``[L, map_size, map_size]`` in :data:`models.phantoms.FINDINGS` order.
    """
    maps = np.zeros((len(FINDINGS), map_size, map_size), dtype=np.float32)
    for i, name in enumerate(FINDINGS):
        if not ph.labels[name]:
            continue
        mask = ph.masks["heart" if name == "cardiomegaly" else name].astype(np.float32)
        box = Image.fromarray(mask, mode="F").resize((map_size, map_size), Image.Resampling.BOX)
        maps[i] = np.asarray(box) > 0.05
    return maps


def _one(
    args: tuple[int, int | None, Preprocessing, InputSpec, int],
) -> tuple[NDArray[np.float32], list[int], NDArray[np.float32]]:
    seed, size, preprocessing, input_spec, map_size = args
    ph = generate_phantom(seed, size=size)
    x = preprocess_dataset(ph.dataset, preprocessing, input_spec)
    return x, [ph.labels[name] for name in FINDINGS], finding_maps(ph, map_size)


def make_phantom_set(
    set_seed: int,
    start: int,
    n: int,
    preprocessing: Preprocessing,
    input_spec: InputSpec,
    *,
    sizes: Sequence[int] | None = TRAIN_SIZES,
    map_size: int = 16,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
) -> PhantomSet:
    """Generate and preprocess phantoms ``start .. start + n - 1`` of a set.

    Parameters
    ----------
    set_seed
        Seed of the set; image ``i`` uses :func:`models.phantoms.phantom_seed` ``(set_seed, i)``.
    start, n
        Which images.
    preprocessing, input_spec
        The card's preprocessing and input blocks (:func:`models.preprocess.preprocess_dataset`
        turns each dataset into its tensor, as at inference).
    sizes
        Matrix sizes to draw from (per image, from ``set_seed``); ``None`` lets the generator draw
        its full range (384..1024).
    map_size
        Height and width of the finding maps (the model's heatmap).
    workers
        Processes to generate with (1: in this process).
    progress
        Called with the number of images done so far.

    Returns
    -------
    PhantomSet
        Images and labels.
    """
    seeds = [phantom_seed(set_seed, i) for i in range(start, start + n)]
    rng = np.random.default_rng([set_seed, start])
    chosen = (
        [None] * n if sizes is None else [int(s) for s in rng.choice(np.asarray(sizes), size=n)]
    )
    jobs = [(s, z, preprocessing, input_spec, map_size) for s, z in zip(seeds, chosen, strict=True)]
    results: list[tuple[NDArray[np.float32], list[int], NDArray[np.float32]]] = []
    if workers > 1 and n > 32:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for item in pool.map(_one, jobs, chunksize=16):
                results.append(item)
                if progress is not None and len(results) % 64 == 0:
                    progress(len(results))
    else:
        for job in jobs:
            results.append(_one(job))
            if progress is not None and len(results) % 64 == 0:
                progress(len(results))
    if progress is not None:
        progress(len(results))
    images = np.stack([x for x, _, _ in results]).astype(np.float32)
    labels = np.asarray([y for _, y, _ in results], dtype=np.float32).reshape(n, len(FINDINGS))
    maps = np.stack([m for _, _, m in results]).astype(np.float32)
    return PhantomSet(images, labels, maps, tuple(seeds))
