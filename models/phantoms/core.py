"""One synthetic chest radiograph phantom: draw it, expose it, wrap it in DICOM."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset

from models.errors import Invalid, ModelError
from models.phantoms.dicom import PRIORITIES, SYNTHETIC_NOTICE, DicomIdentity, build_dataset
from models.phantoms.render import FINDINGS, render_chest

__all__ = ["FINDINGS", "Phantom", "PhantomError", "generate_phantom"]

logger = logging.getLogger(__name__)

PHOTOMETRICS = ("MONOCHROME1", "MONOCHROME2")
MODALITIES = ("DX", "CR")
VIEWS = ("PA", "AP")
SIZE_RANGE = (384, 1024)
FIELD_OF_VIEW_MM = 430.0


class PhantomError(ModelError, Invalid, ValueError):
    """A phantom was asked for with arguments it cannot honour (unknown finding, bad size...)."""


@dataclass(frozen=True)
class Phantom:
    """A generated phantom.

    Attributes
    ----------
    dataset
        The DICOM dataset (with file meta), ready for ``save_as(..., enforce_file_format=True)``.
    labels
        ``{finding: 0 or 1}`` for every name of :data:`FINDINGS`.
    masks
        Boolean pixel masks of the anatomy and of the findings drawn (see
        :class:`models.phantoms.render.Rendering`).
    details
        Geometry of what was drawn (cardiothoracic ratio, sides, nodules, consolidation boxes).
    """

    dataset: Dataset
    labels: dict[str, int]
    masks: dict[str, NDArray[np.bool_]] = field(repr=False)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def findings(self) -> tuple[str, ...]:
        """The findings present, in :data:`FINDINGS` order."""
        return tuple(name for name in FINDINGS if self.labels[name])


def _choose(value: str | None, drawn: str, allowed: tuple[str, ...], what: str) -> str:
    if value is None:
        return drawn
    if value.upper() not in allowed:
        raise PhantomError(f"{what} must be one of {', '.join(allowed)}, not {value!r}")
    return value.upper()


def _matrix(size: int | tuple[int, int] | None, drawn: tuple[int, int]) -> tuple[int, int]:
    if size is None:
        return drawn
    rows, cols = (size, size) if isinstance(size, int) else size
    if not (32 <= rows <= 4096 and 32 <= cols <= 4096):
        raise PhantomError(f"size must be 32 to 4096 pixels per side, not {size!r}")
    return int(rows), int(cols)


def generate_phantom(
    seed: int,
    findings: Iterable[str] | None = None,
    *,
    priority: str = "ROUTINE",
    photometric: str | None = None,
    size: int | tuple[int, int] | None = None,
    modality: str | None = None,
    view: str | None = None,
    bits_stored: int | None = None,
    patient_id: str | None = None,
    finding_probability: float = 0.3,
) -> Phantom:
    """Generate one synthetic chest radiograph as a DICOM dataset.

    Everything not given is drawn from ``seed``; the same arguments give the same bytes.

    Parameters
    ----------
    seed
        A non-negative integer.
    findings
        Names from :data:`FINDINGS` to draw; ``None`` draws each independently with
        ``finding_probability``; an empty iterable gives a normal radiograph.
    priority
        Requested Procedure Priority: STAT, HIGH, ROUTINE, MEDIUM or LOW.
    photometric
        ``"MONOCHROME1"`` or ``"MONOCHROME2"`` (drawn when ``None``).
    size
        Matrix ``rows`` (square) or ``(rows, cols)``; drawn in 384..1024 when ``None``.
    modality
        ``"DX"`` (Digital X-Ray, For Presentation) or ``"CR"``.
    view
        ``"PA"`` or ``"AP"``.
    bits_stored
        12 to 16.
    patient_id
        Overrides the synthetic Patient ID (the dataset layouts use this).
    finding_probability
        Probability of each finding when ``findings`` is ``None``.

    Returns
    -------
    Phantom
        The dataset, its labels, the masks and the geometry of what was drawn.

    Raises
    ------
    PhantomError
        For a negative seed, an unknown finding or an invalid option.
    """
    if seed < 0:
        raise PhantomError(f"seed must be non-negative, not {seed}")
    rng = np.random.default_rng(seed)
    # Draw every choice first, always in the same order, so overriding one keeps the others.
    drawn_findings = frozenset(name for name in FINDINGS if rng.random() < finding_probability)
    drawn_photometric = PHOTOMETRICS[int(rng.integers(2))]
    drawn_modality = MODALITIES[int(rng.random() < 0.3)]
    drawn_view = VIEWS[int(rng.random() < 0.25)]
    drawn_bits = int(rng.integers(12, 17))
    side = int(rng.integers(SIZE_RANGE[0] // 32, SIZE_RANGE[1] // 32 + 1)) * 32
    drawn_size = (side, max(SIZE_RANGE[0], side - 32 * int(rng.integers(0, 5))))
    age, sex = int(rng.integers(18, 91)), ("F", "M")[int(rng.integers(2))]
    acquired = dt.datetime(2024, 1, 1, 7) + dt.timedelta(
        days=int(rng.integers(0, 730)), seconds=int(rng.integers(0, 12 * 3600))
    )
    exposure, gain_frac, offset_frac = (
        rng.uniform(0.7, 1.3),
        rng.uniform(0.25, 0.33),
        rng.uniform(0.02, 0.08),
    )

    if findings is None:
        chosen = drawn_findings
    else:
        chosen = frozenset(findings)
        unknown = sorted(chosen - set(FINDINGS))
        if unknown:
            raise PhantomError(f"unknown findings {unknown}; known: {', '.join(FINDINGS)}")
    prio = _choose(priority, "ROUTINE", PRIORITIES, "priority")
    photo = _choose(photometric, drawn_photometric, PHOTOMETRICS, "photometric")
    mod = _choose(modality, drawn_modality, MODALITIES, "modality")
    vw = _choose(view, drawn_view, VIEWS, "view")
    bits = drawn_bits if bits_stored is None else int(bits_stored)
    if not 12 <= bits <= 16:
        raise PhantomError(f"bits_stored must be 12 to 16, not {bits}")
    rows, cols = _matrix(size, drawn_size)

    rendering = render_chest(rng, rows, cols, chosen, view=vw)
    pixels, window = _expose(rng, rendering.attenuation, bits, exposure, gain_frac, offset_frac)
    if photo == "MONOCHROME1":
        top = 2**bits - 1
        pixels = (top - pixels).astype(np.uint16)
        window = (top - window[0], window[1])

    labels = {name: int(name in chosen) for name in FINDINGS}
    present = ", ".join(name for name in FINDINGS if labels[name]) or "none"
    identity = DicomIdentity(
        seed=seed,
        modality=mod,
        view=vw,
        priority=prio,
        patient_id=patient_id or f"PHANTOM-{seed}",
        patient_name=f"PHANTOM^{seed:04d}",
        patient_sex=sex,
        patient_age=age,
        acquired=acquired,
    )
    dataset = build_dataset(
        pixels,
        identity=identity,
        photometric=photo,
        bits_stored=bits,
        window=window,
        pixel_spacing=FIELD_OF_VIEW_MM / max(rows, cols),
        comments=f"{SYNTHETIC_NOTICE}; findings drawn: {present}",
    )
    return Phantom(dataset, labels, rendering.masks, dict(rendering.details))


def _expose(
    rng: np.random.Generator,
    attenuation: NDArray[np.float32],
    bits: int,
    exposure: float,
    gain_frac: float,
    offset_frac: float,
) -> tuple[NDArray[np.uint16], tuple[float, float]]:
    """Turn attenuation into MONOCHROME2 detector values with quantum noise, and a window."""
    top = float(2**bits - 1)
    signal = top * (offset_frac + gain_frac * attenuation)
    sd = top * 0.006 / np.sqrt(exposure) * (1.0 + 0.6 * attenuation)
    noisy = signal + sd * rng.standard_normal(attenuation.shape, dtype=np.float32)
    pixels = np.clip(np.rint(noisy), 0, top).astype(np.uint16)
    body = pixels[attenuation > 0.3]
    lo, hi = np.percentile(body if body.size else pixels, [1.0, 99.5])
    return pixels, (float(lo + hi) / 2.0, float(hi - lo) * 1.1)
