"""Dataset copies whose pixels are chosen, for the benchmark command's tests.

:func:`write_scored_nih` writes an NIH ChestX-ray14 copy (``Data_Entry_2017.csv`` with its
published header, ``images/*.png``, the split lists) of small 8-bit images: the share of bright
pixels is above one half exactly for the ``Pneumothorax`` positives, so the ``mean`` model of
:func:`tests.builders.onnx.build_onnx` ranks them perfectly, and the top-left pixel is drawn
independently of every label, so the ``corner`` model ranks them at random. Every image holds a
0 and a 255, so the min-max scaling of the preprocessing keeps those values at 0 and 1.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from models.phantoms.layouts.nih import NIH_COLUMNS

__all__ = ["ScoredSet", "write_scored_nih"]


@dataclass(frozen=True)
class ScoredSet:
    """What :func:`write_scored_nih` drew: per image, its name and truths."""

    root: Path
    images: list[str]
    pneumothorax: list[int]
    effusion: list[int]


def write_scored_nih(root: Path, n: int = 120, seed: int = 0, size: int = 32) -> ScoredSet:
    """Write an NIH-layout copy of ``n`` images whose pixels encode their labels.

    Parameters
    ----------
    root : pathlib.Path
        The dataset folder (made).
    n, seed, size : int, optional
        Images, the seed of the draw, and their height and width.

    Returns
    -------
    ScoredSet
        The images and their truths.
    """
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    names, ptx, eff = [], [], []
    rows = []
    for i in range(n):
        name = f"{i + 1:08d}_000.png"
        positive = int(rng.random() < 0.4)
        effusion = int(rng.random() < 0.3)
        share = rng.uniform(0.55, 0.9) if positive else rng.uniform(0.1, 0.45)
        flat = np.zeros(size * size, dtype=np.uint8)
        flat[: round(share * size * size)] = 255
        pixels = flat[rng.permutation(size * size)].reshape(size, size)
        pixels[0, 0] = rng.integers(1, 255)
        pixels[0, 1], pixels[0, 2] = 0, 255
        Image.fromarray(pixels).save(root / "images" / name)
        findings = [f for f, on in (("Effusion", effusion), ("Pneumothorax", positive)) if on]
        rows.append(
            [
                name,
                "|".join(findings) or "No Finding",
                0,
                i + 1,
                40 + i % 50,
                "MF"[i % 2],
                ("PA", "AP")[i % 3 == 0],
                size,
                size,
                "0.143",
                "0.143",
            ]
        )
        names.append(name)
        ptx.append(positive)
        eff.append(effusion)
    with (root / "Data_Entry_2017.csv").open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(NIH_COLUMNS)
        out.writerows(rows)
    (root / "train_val_list.txt").write_text("".join(f"{m}\n" for m in names[: n // 2]))
    (root / "test_list.txt").write_text("".join(f"{m}\n" for m in names[n // 2 :]))
    return ScoredSet(root, names, ptx, eff)
