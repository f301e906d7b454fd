"""Score every image of a dataset copy with a model: parallel decoding, batched inference, cache.

The images are read and preprocessed in worker processes (:class:`ProcessPoolExecutor`, spawn
context, a bounded window of chunks in flight, results in the dataset's order); the parent
stacks the tensors into batches and runs the model (:meth:`LoadedModel.predict` and
:meth:`LoadedModel.postprocess`, as the worker does). Scores are cached by image sha256 (see
:mod:`models.benchmarking.cache`), so a rerun scores only what is missing.

Throughput is the images scored in this run over the wall time from the first decode to the
last batch's scores (the start of the decoding processes and the model's first, warm-up call
excluded: one-off costs, not a rate). The bare ONNX Runtime figure times the same session's
``run()`` alone on the same batches (those of the first ``bare_images`` images), each right after
the pipeline's call on it, so that a shared machine's load weighs on both alike; that time is
left out of the pipeline's. The decoding processes may go on working during a bare call (at most
a window of ``4 x workers`` chunks ahead), which can only favour the pipeline, by at most the
decoding's share of the work.
"""

from __future__ import annotations

import logging
import multiprocessing
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from models.benchmarking.cache import PredictionCache
from models.benchmarking.images import Decoded, DecodeSpec, decode_chunk, decode_file, init_process
from models.datasets import READERS, LeftOut, Record
from models.errors import BenchmarkError, PreprocessError
from models.runtime import LoadedModel

__all__ = ["BenchmarkOptions", "Scored", "score_dataset"]

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
"""Called with (images done, images in all) as images are scored or found in the cache."""


@dataclass(frozen=True)
class BenchmarkOptions:
    """How a dataset copy is read and scored.

    Attributes
    ----------
    layout
        A key of :data:`models.datasets.READERS`.
    split
        ``official``, ``all`` or one of the dataset's splits.
    uncertainty
        ``ignore``, ``negative`` or ``positive``.
    label_map
        A YAML label map of the form of ``models/datasets/labels.yaml``; ``None`` for that one.
    workers
        Decoding processes; 0 decodes in the calling process.
    batch_size
        Images per inference call; ``None`` uses the models settings' batch size.
    chunk
        Images per decoding task.
    bare_images
        Most images timed through the bare session.
    skip_bad_images
        ``False``: an image named by the labels but absent, or one that cannot be read or
        preprocessed, stops the run with an error naming it. ``True``: it is left out of the
        evaluation and listed (:attr:`Scored.left_out`).
    """

    layout: str
    split: str = "official"
    uncertainty: str = "ignore"
    label_map: Path | None = None
    workers: int = 2
    batch_size: int | None = None
    chunk: int = 4
    bare_images: int = 256
    skip_bad_images: bool = False


@dataclass(frozen=True)
class Scored:
    """The records of a dataset copy and the model's scores for them.

    Attributes
    ----------
    records
        The records, in the reader's order.
    digests
        The sha256 of each record's image.
    labels
        The card's labels the dataset's label map covers, in output order.
    scores
        Label to the score of each record.
    computed, cached
        Images scored in this run, and found in the cache.
    timing
        The throughput: ``images_per_s``, ``bare_images_per_s``, ``provider``, ``batch_size``,
        ``images`` (of this run, or of the last run that scored images when all were cached).
    left_out
        The images left out (absent, or unreadable) with ``skip_bad_images``, in the reader's
        order; their records are not in ``records``.
    """

    records: tuple[Record, ...]
    digests: tuple[str, ...]
    labels: tuple[str, ...]
    scores: dict[str, npt.NDArray[np.float64]] = field(hash=False)
    computed: int
    cached: int
    timing: dict[str, Any] | None = field(default=None, hash=False)
    left_out: tuple[LeftOut, ...] = ()


def read_records(
    dataset_dir: Path, options: BenchmarkOptions, left_out: list[LeftOut] | None = None
) -> list[Record]:
    """Read the records of a dataset copy as ``options`` asks.

    Parameters
    ----------
    dataset_dir
        The dataset's folder as released.
    options
        Layout, split, uncertainty policy, label map, and whether absent images are skipped.
    left_out
        Where the images skipped are listed.

    Returns
    -------
    list of Record
        The records (at least one).

    Raises
    ------
    DatasetError
        For a missing file or column, or a bad option.
    BenchmarkError
        For an unknown layout or an empty split.
    """
    reader = READERS.get(options.layout)
    if reader is None:
        known = ", ".join(sorted(READERS))
        raise BenchmarkError(f"unknown layout {options.layout!r}; known: {known}")
    label_map = reader.label_map(options.label_map)
    records = list(
        reader.read(
            dataset_dir,
            split=options.split,
            uncertainty=options.uncertainty,
            label_map=label_map,
            missing="skip" if options.skip_bad_images else "error",
            left_out=left_out,
        )
    )
    if not records and left_out:
        raise BenchmarkError(
            f"{dataset_dir}: every image of split {options.split!r} was left out "
            f"({len(left_out)} absent or unreadable; the first: {left_out[0].detail})"
        )
    if not records:
        raise BenchmarkError(f"{dataset_dir}: no images in split {options.split!r}")
    return records


class _Decoder:
    """Decodes files in order: in worker processes (started and warmed on entry) or inline."""

    def __init__(self, spec: DecodeSpec, workers: int, chunk: int) -> None:
        self.spec, self.workers, self.chunk = spec, workers, chunk
        self.pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> _Decoder:
        if self.workers > 0:
            self.pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=init_process,
                initargs=(self.spec,),
            )
            # start every process now (imports included), outside the timed part
            list(self.pool.map(decode_chunk, [[] for _ in range(self.workers)]))
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def __call__(self, paths: Sequence[Path]) -> Iterator[Decoded]:
        if self.pool is None:
            for path in paths:
                yield decode_file(path, self.spec)
            return
        chunks = [list(paths[i : i + self.chunk]) for i in range(0, len(paths), self.chunk)]
        todo = iter(chunks)
        pending: deque[Future[list[Decoded]]] = deque()
        for part in todo:
            pending.append(self.pool.submit(decode_chunk, part))
            if len(pending) >= 4 * self.workers:
                break
        while pending:
            done = pending.popleft().result()
            following = next(todo, None)
            if following is not None:
                pending.append(self.pool.submit(decode_chunk, following))
            yield from done


class _Batcher:
    """Batches tensors, runs the model, records scores, and times the bare session alongside.

    The first ``bare_images`` images' batches are also run through the session's bare
    ``run()`` right after the pipeline's call on them, so that both are timed under the same
    load of a shared machine; that time is kept apart (:attr:`bare_s`) and left out of the
    pipeline's.
    """

    def __init__(
        self, model: LoadedModel, cache: PredictionCache, size: int, bare_images: int
    ) -> None:
        self.model, self.cache, self.size = model, cache, size
        self.bare_left = bare_images
        self.bare_s = 0.0
        self.bare_n = 0
        self.digests: list[str] = []
        self.tensors: list[npt.NDArray[np.float32]] = []
        self.computed = 0
        card = model.card
        self.outputs = [card.outputs.probabilities.name]
        if card.outputs.heatmap is not None:
            self.outputs.append(card.outputs.heatmap.name)

    def add(self, digest: str, tensor: npt.NDArray[np.float32]) -> None:
        if digest in self.digests:
            return
        self.digests.append(digest)
        self.tensors.append(tensor)
        if len(self.tensors) >= self.size:
            self.flush()

    def flush(self) -> None:
        if not self.tensors:
            return
        batch = np.stack(self.tensors)
        results = self.model.postprocess(self.model.predict(batch))
        self.cache.add({d: r.probabilities for d, r in zip(self.digests, results, strict=True)})
        fixed = self.model.card.input.fixed_batch
        if self.bare_left > 0 and (fixed is None or fixed == len(batch)):
            started = time.perf_counter()
            self.model.session.run(self.outputs, {self.model.card.input.name: batch})
            self.bare_s += time.perf_counter() - started
            self.bare_n += len(batch)
            self.bare_left -= len(batch)
        self.computed += len(batch)
        self.digests, self.tensors = [], []


def score_dataset(
    model: LoadedModel,
    dataset_dir: Path,
    options: BenchmarkOptions,
    cache_dir: Path,
    progress: Progress | None = None,
) -> Scored:
    """Score every image of a dataset copy with ``model``, reusing cached scores.

    Parameters
    ----------
    model
        The loaded model.
    dataset_dir
        The dataset's folder as released.
    options
        Layout, split, uncertainty, label map, workers, batch size.
    cache_dir
        The predictions cache folder (``OUT/cache``).
    progress
        Called as images are done.

    Returns
    -------
    Scored
        The records and their scores.

    Raises
    ------
    DatasetError
        For a missing file or column of the dataset.
    BenchmarkError
        When none of the card's labels is covered by the dataset's label map.
    PreprocessError
        When an image cannot be read or preprocessed (the message names it) and
        ``options.skip_bad_images`` is off.
    """
    card = model.card
    left_out: list[LeftOut] = []
    records = read_records(dataset_dir, options, left_out)
    labels = tuple(n for n in card.label_names if any(n in r.labels for r in records))
    if not labels:
        raise BenchmarkError(
            f"the {options.layout} label map covers none of {card.ref}'s labels "
            f"({', '.join(card.label_names)}); pass a label map naming them (--label-map)"
        )
    cache = PredictionCache(cache_dir, card)
    paths = list(dict.fromkeys(r.image for r in records))
    spec = DecodeSpec(card.preprocessing, card.input, frozenset(cache.scores))
    batcher = _Batcher(
        model, cache, options.batch_size or model.settings.batch_size, options.bare_images
    )
    model.predict(np.zeros((1, *card.input.shape[1:]), dtype=np.float32))  # warm-up
    digest_of: dict[Path, str] = {}
    try:
        with _Decoder(spec, options.workers, options.chunk) as decoder:
            started = time.perf_counter()
            for done, item in enumerate(decoder(paths), 1):
                if item.error is not None:
                    if not options.skip_bad_images:
                        raise PreprocessError(
                            f"{item.error} (--skip-bad-images leaves such images out)"
                        )
                    logger.warning("left out: %s", item.error)
                    left_out.append(LeftOut(item.path, "unreadable", item.error))
                    continue
                digest_of[item.path] = item.sha256
                if item.tensor is not None:
                    batcher.add(item.sha256, item.tensor)
                if progress is not None:
                    progress(done, len(paths))
            batcher.flush()
            elapsed = time.perf_counter() - started - batcher.bare_s
    finally:
        cache.close()
    timing = cache.read_timing()
    if batcher.computed:
        timing = {
            "images_per_s": batcher.computed / elapsed,
            "bare_images_per_s": batcher.bare_n / batcher.bare_s if batcher.bare_s > 0 else None,
            "provider": model.provider,
            "batch_size": batcher.size,
            "images": batcher.computed,
        }
        cache.write_timing(timing)
    records = [r for r in records if r.image in digest_of]
    if not records:
        raise BenchmarkError(
            f"{dataset_dir}: none of the {len(paths)} images could be read "
            f"(the last: {left_out[-1].detail})"
        )
    digests = tuple(digest_of[r.image] for r in records)
    scores = {
        label: np.array([cache.scores[d][label] for d in digests], dtype=np.float64)
        for label in labels
    }
    logger.info(
        "%s on %s: %d images scored, %d from the cache",
        card.ref,
        dataset_dir,
        batcher.computed,
        len(digest_of) - batcher.computed,
    )
    if left_out:
        logger.warning("%s: %d images left out (absent or unreadable)", dataset_dir, len(left_out))
    return Scored(
        records=tuple(records),
        digests=digests,
        labels=labels,
        scores=scores,
        computed=batcher.computed,
        cached=len(digest_of) - batcher.computed,
        timing=timing,
        left_out=tuple(left_out),
    )
