"""Phantom pixels pinned before ``models/`` was reorganised (2026-12-02).

The hashes were computed on main at 32a96d2, before the phantom generator moved into
``models/phantoms/`` and ``render_chest`` was split into one function per finding. Any change
to the generator that alters a single pixel for a fixed seed fails here: the datasets built on
the phantoms (demo model training, the benchmark layouts) depend on that.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from models.phantoms import generate_phantom

PINNED: list[tuple[int, list[str] | None, dict[str, Any], str]] = [
    (1, [], {}, "dfdf3bc4e658af58c3c7c23c0eae63c8905e124f877fbe51654ede2b5e7ca99b"),
    (2, ["pneumothorax"], {}, "dde508bd5886d074f8c75576ae18bc83f7b26adfb3cc883f5b7d3b3988d9ed9d"),
    (
        3,
        ["pleural_effusion"],
        {"view": "AP"},
        "205608fb4a06a1d7f0e0582075d05591c191c60805ecad9410139c3ef23246bd",
    ),
    (
        4,
        ["nodule_mass"],
        {"photometric": "MONOCHROME1"},
        "f09e5740dcf76b915beac45099fddd9afaaf7f10f331765b312004c373f64435",
    ),
    (
        5,
        ["cardiomegaly"],
        {"modality": "CR"},
        "f5dbf875b10fefba61971115218fa620ec0cedcdc5ade1e1b250685812de410f",
    ),
    (6, ["consolidation"], {}, "7179b46f72b0869e52a9a764a2d7a3463deb66839814adc5c65fc3509a266c4c"),
    (
        7,
        ["pneumothorax", "pleural_effusion", "nodule_mass", "cardiomegaly", "consolidation"],
        {"view": "AP"},
        "5e49a05a3c0d5b75f67346d39fe551d1e7ee86f70be5556b23161d0704efb5e5",
    ),
    (8, None, {}, "7391874e51ee4e1c939fb02f22f29b64dc665281a9601ee690d9b65404d3fc9a"),
]


@pytest.mark.parametrize(("seed", "findings", "options", "sha256"), PINNED)
def test_pixels_match_the_pins_taken_before_the_move(
    seed: int, findings: list[str] | None, options: dict[str, Any], sha256: str
) -> None:
    phantom = generate_phantom(seed, findings, size=192, **options)
    assert hashlib.sha256(phantom.dataset.PixelData).hexdigest() == sha256
