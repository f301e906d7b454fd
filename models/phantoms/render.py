"""Anatomy and findings of synthetic chest radiographs, rendered with numpy only.

The renderer works in normalised coordinates: ``x`` runs left to right across the image and
``y`` top to bottom, both in units of half the longer image side, so a phantom looks the same at
every matrix size. It returns an *attenuation* image (a line integral in arbitrary units: air 0,
soft tissue about 1, bone adds about 0.3 to 0.5) and the masks of what it drew;
:mod:`models.phantoms.core` turns that into detector pixel values.

Patient right is on the image left (the usual display of PA and AP chest radiographs).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from models.phantoms.names import FINDINGS

__all__ = ["FINDINGS", "Rendering", "render_chest"]

logger = logging.getLogger(__name__)

Array = NDArray[np.float32]
Mask = NDArray[np.bool_]

_TEXTURE_MAX = 256  # smooth noise fields are drawn at most at this size, then resampled


@dataclass(frozen=True)
class Rendering:
    """What :func:`render_chest` drew.

    Attributes
    ----------
    attenuation
        Float32 ``(rows, cols)`` line integral; higher means more X-ray absorption.
    masks
        Boolean ``(rows, cols)`` masks: ``body``, ``lung_right``, ``lung_left``, ``heart`` and one
        per finding present (``pneumothorax``, ``pleural_effusion``, ``nodule_mass``,
        ``consolidation``; ``cardiomegaly`` is told by ``details["ctr"]``).
    details
        Geometry of the findings in pixels: ``ctr`` (cardiothoracic ratio), ``heart_width_px``,
        ``thorax_width_px``, ``pneumothorax_side`` / ``effusion_side`` (``"right"`` or ``"left"``,
        the patient's side), ``nodules`` (``[row, col, radius]``), ``consolidation_boxes``
        (``[x, y, width, height]``).
    """

    attenuation: Array
    masks: dict[str, Mask]
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Lung:
    """One lung: a tapered super-ellipse cut by its hemidiaphragm."""

    xc: float
    yc: float
    hw: float
    hh: float
    dome_y: float  # lateral (lowest) height of the hemidiaphragm
    dome_h: float  # how far the dome rises in its middle
    side: int  # -1: image left (patient right), +1: image right (patient left)

    @property
    def lateral_x(self) -> float:
        return self.xc + self.side * self.hw

    @property
    def hilum(self) -> tuple[float, float]:
        return self.xc - self.side * 0.55 * self.hw, self.yc + 0.05 * self.hh


def _sigmoid(z: Array) -> Array:
    out: Array = (0.5 * (1.0 + np.tanh(0.5 * z))).astype(np.float32)
    return out


def _zoom(a: Array, rows: int, cols: int) -> Array:
    """Resample a 2-D array to ``(rows, cols)`` by separable linear interpolation."""
    if a.shape == (rows, cols):
        return a

    def axis_weights(n_in: int, n_out: int) -> tuple[NDArray[np.intp], NDArray[np.intp], Array]:
        pos = (np.arange(n_out, dtype=np.float32) + 0.5) * (n_in / n_out) - 0.5
        pos = np.clip(pos, 0, n_in - 1)
        i0 = np.floor(pos).astype(np.intp)
        i1 = np.minimum(i0 + 1, n_in - 1)
        return i0, i1, (pos - i0).astype(np.float32)

    r0, r1, rw = axis_weights(a.shape[0], rows)
    tmp = a[r0] * (1 - rw)[:, None] + a[r1] * rw[:, None]
    c0, c1, cw = axis_weights(a.shape[1], cols)
    return (tmp[:, c0] * (1 - cw) + tmp[:, c1] * cw).astype(np.float32)


def _smooth_noise(rng: np.random.Generator, rows: int, cols: int, cutoff: float) -> Array:
    """Gaussian noise low-passed to ``cutoff`` cycles per normalised unit, unit variance."""
    scale = min(1.0, _TEXTURE_MAX / max(rows, cols))
    r, c = max(8, round(rows * scale)), max(8, round(cols * scale))
    half = max(r, c) / 2.0
    white = rng.standard_normal((r, c)).astype(np.float32)
    fy = np.fft.fftfreq(r)[:, None] * half
    fx = np.fft.rfftfreq(c)[None, :] * half
    spectrum = np.fft.rfft2(white) * np.exp(-(fx**2 + fy**2) / cutoff**2)
    field_ = np.fft.irfft2(spectrum, s=(r, c)).astype(np.float32)
    field_ /= float(field_.std()) + 1e-6
    return _zoom(field_, rows, cols)


def _lung_depth(x: Array, y: Array, lung: _Lung, *, cut_dome: bool = True) -> Array:
    """Air depth of a lung in ``[0, 1]`` at the given coordinates (0 outside)."""
    u = (x - lung.xc) / lung.hw
    v = (y - lung.yc) / lung.hh
    taper = 0.42 + 0.58 * np.sqrt(np.clip((v + 1.0) / 0.9, 0.0, 1.0))
    r = (u / taper) ** 2 + np.where(v < 0, v**2, v**4)
    depth = np.sqrt(np.clip(1.0 - r, 0.0, 1.0))
    if cut_dome:
        depth = depth * _sigmoid((_dome(x, lung) - y) / 0.006)
    out: Array = depth.astype(np.float32)
    return out


def _dome(x: Array, lung: _Lung) -> Array:
    """Height of the hemidiaphragm under a lung (highest in its middle)."""
    t = np.clip(1.0 - ((x - lung.xc + 0.15 * lung.side * lung.hw) / lung.hw) ** 2, 0.0, 1.0)
    out: Array = (lung.dome_y - lung.dome_h * t).astype(np.float32)
    return out


def _band(y: Array, centre: Array, half: float) -> Array:
    z = (y - centre) * (1.0 / half)
    z *= z
    np.minimum(z, 10.0, out=z)
    return np.exp(-(z * z)).astype(np.float32)


def _bones(x: Array, y: Array, cx: float, lungs: list[_Lung], rng: np.random.Generator) -> Array:
    """Ribs, clavicles and spine."""
    s = np.abs(x - cx)
    width = max(abs(lung.lateral_x - cx) for lung in lungs) + 0.06
    inside = _sigmoid((width - s) / 0.01) * _sigmoid((s - 0.04) / 0.01)
    top = min(lung.yc - lung.hh for lung in lungs)
    spacing = rng.uniform(0.095, 0.115)
    bones = np.zeros(np.broadcast_shapes(x.shape, y.shape), dtype=np.float32)
    for k in range(10):
        y0 = top + 0.03 + k * spacing
        posterior = y0 - 0.12 * s + 0.45 * s**2
        bones += 0.17 * _band(y, posterior, 0.018 + 0.0015 * k) * inside
        anterior = y0 + 0.22 + 0.30 * np.clip(width - s, 0.0, None) ** 1.5
        bones += 0.06 * _band(y, anterior, 0.018) * inside * (s > 0.1)
    clav_y = top + 0.06 + 0.12 * (s - 0.05) - 0.15 * s**2
    clav = _band(y, clav_y, 0.026) * _sigmoid((0.55 - s) / 0.02) * _sigmoid((s - 0.07) / 0.01)
    bones += 0.35 * clav
    vert = 0.8 + 0.2 * np.cos(2 * np.pi * (y - top) / spacing * 0.9)
    bones += 0.45 * _sigmoid((0.055 - s) / 0.008) * vert
    return bones


@dataclass(frozen=True)
class _Chest:
    """The pixel grid and anatomy the finding steps draw on, and the masks and details they fill."""

    x: Array  # (1, cols) normalised abscissae
    y: Array  # (rows, 1) normalised ordinates
    px: float  # one pixel in normalised units
    lungs: list[_Lung]
    depths: list[Array]  # air depth of each lung
    masks: dict[str, Mask]
    details: dict[str, Any]

    @property
    def shape(self) -> tuple[int, int]:
        return self.y.shape[0], self.x.shape[1]


def render_chest(
    rng: np.random.Generator,
    rows: int,
    cols: int,
    findings: frozenset[str],
    *,
    view: str = "PA",
) -> Rendering:
    """Draw one chest radiograph phantom.

    Parameters
    ----------
    rng
        Source of every random choice (anatomy, findings, textures).
    rows, cols
        Matrix size.
    findings
        Names from :data:`FINDINGS` to draw; the rest are absent.
    view
        ``"PA"`` or ``"AP"`` (AP: a slightly larger heart shadow, higher clavicles).

    Returns
    -------
    Rendering
        The attenuation image, masks and geometry.
    """
    # Every step draws from ``rng`` in a fixed order: reordering them changes every phantom.
    half = max(rows, cols) / 2.0
    x = ((np.arange(cols, dtype=np.float32) + 0.5 - cols / 2) / half)[None, :]
    y = ((np.arange(rows, dtype=np.float32) + 0.5 - rows / 2) / half)[:, None]
    cx = float(rng.normal(0.0, 0.02))
    masks: dict[str, Mask] = {}
    body = _body(rng, x, y, cx)
    masks["body"] = body > 0.05
    lungs, dome_y = _lungs(rng, cx)
    depths = [_lung_depth(x, y, lung) for lung in lungs]
    chest = _Chest(x, y, 1.0 / half, lungs, depths, masks, {})
    heart = _heart(rng, chest, cx, dome_y, "cardiomegaly" in findings, view)
    markings = _markings(rng, chest)

    below_dome = _sigmoid((y - dome_y + 0.05) / 0.02)
    atten = 1.0 * body + _bones(x, y, cx, lungs, rng)
    atten = atten + 0.12 * heart * (1.0 - below_dome)
    extra = np.zeros_like(atten)  # what the findings add, in place
    heart_shadow = 1.0 - 0.75 * _sigmoid((heart - 0.02) / 0.02)
    if "pneumothorax" in findings:
        _pneumothorax(rng, chest, markings, extra)
    for depth, mark in zip(depths, markings, strict=True):
        atten = atten - 0.78 * depth * heart_shadow + 0.14 * mark * (depth > 0)
    if "pleural_effusion" in findings:
        _pleural_effusion(rng, chest, heart_shadow, extra)

    lung_core = np.logical_or(depths[0] > 0.45, depths[1] > 0.45) & ~masks["heart"]
    masks["lung_right"], masks["lung_left"] = depths[0] > 0.05, depths[1] > 0.05
    if "nodule_mass" in findings:
        _nodule_mass(rng, chest, lung_core, extra)
    if "consolidation" in findings:
        _consolidation(rng, chest, lung_core, extra)

    atten = atten + extra + 0.03 * _smooth_noise(rng, rows, cols, 1.0)
    return Rendering(np.clip(atten, 0.0, None).astype(np.float32), masks, chest.details)


def _body(rng: np.random.Generator, x: Array, y: Array, cx: float) -> Array:
    """Body: a super-ellipse torso with a neck (tissue thickness in ``[0, 1]``)."""
    bw, bh, by = rng.uniform(0.8, 0.95), rng.uniform(1.15, 1.3), rng.uniform(0.22, 0.3)
    r_body = np.abs((x - cx) / bw) ** 2.6 + np.abs((y - by) / bh) ** 2.6
    body = np.sqrt(np.clip(1.0 - r_body, 0.0, 1.0)) ** 0.6
    neck = _sigmoid((0.17 - np.abs(x - cx)) / 0.01) * _sigmoid((by - bh + 0.15 - y) / 0.02)
    out: Array = np.maximum(body, 0.7 * neck)
    return out


def _lungs(rng: np.random.Generator, cx: float) -> tuple[list[_Lung], float]:
    """Both lungs (image left first) and the lateral height of the image-right hemidiaphragm."""
    lung_hw, lung_hh = rng.uniform(0.25, 0.3), rng.uniform(0.58, 0.66)
    lung_yc, gap = rng.uniform(-0.12, -0.04), rng.uniform(0.1, 0.14)
    dome_y = lung_yc + lung_hh * rng.uniform(0.72, 0.8)
    lungs = [
        _Lung(cx - gap - lung_hw, lung_yc, lung_hw, lung_hh, dome_y - 0.03, 0.1, -1),
        _Lung(cx + gap + lung_hw * 0.95, lung_yc, lung_hw * 0.95, lung_hh, dome_y, 0.09, +1),
    ]
    return lungs, dome_y


def _heart(
    rng: np.random.Generator,
    chest: _Chest,
    cx: float,
    dome_y: float,
    enlarged: bool,
    view: str,
) -> Array:
    """Heart: width set by the cardiothoracic ratio (cardiomegaly when ``enlarged``)."""
    x, y, lungs = chest.x, chest.y, chest.lungs
    thorax = lungs[1].lateral_x - lungs[0].lateral_x
    ctr = rng.uniform(0.56, 0.68) if enlarged else rng.uniform(0.36, 0.47)
    if view == "AP":
        ctr += 0.01
    hwx = ctr * thorax / 2.0
    hcx = cx + 0.22 * hwx
    hhy = rng.uniform(0.2, 0.25) + 0.2 * hwx
    hcy = dome_y - 0.6 * hhy
    heart = np.sqrt(np.clip(1 - ((x - hcx) / hwx) ** 2 - ((y - hcy) / hhy) ** 2, 0.0, 1.0))
    chest.masks["heart"] = heart > 0
    chest.details.update(
        ctr=float(ctr), heart_width_px=2 * hwx / chest.px, thorax_width_px=thorax / chest.px
    )
    out: Array = heart
    return out


def _markings(rng: np.random.Generator, chest: _Chest) -> list[Array]:
    """Lung markings: vessels radiating from the hila, fading to the periphery."""
    rows, cols = chest.shape
    ridges = _smooth_noise(rng, rows, cols, 7.0)
    vessels = np.exp(-((ridges / 0.25) ** 2))
    markings = []
    for lung in chest.lungs:
        hx, hy = lung.hilum
        dist = np.sqrt((chest.x - hx) ** 2 + (chest.y - hy) ** 2)
        markings.append(vessels * (np.exp(-dist / 0.3) + 0.15))
    return markings


def _pneumothorax(
    rng: np.random.Generator, chest: _Chest, markings: list[Array], extra: Array
) -> None:
    """Pneumothorax: a collapsed lung, a rim of air without markings, a visceral pleural line."""
    x, y, depths = chest.x, chest.y, chest.depths
    i = int(rng.integers(2))
    lung = chest.lungs[i]
    k = rng.uniform(0.55, 0.78)
    hx, hy = lung.hilum
    collapsed = _lung_depth(hx + (x - hx) / k, hy + (y - hy) / (0.5 + 0.5 * k), lung)
    rim = (depths[i] > 0.02) & (collapsed <= 0)
    markings[i] = markings[i] * np.where(collapsed > 0, 1.4, 0.0)
    extra -= 0.3 * depths[i] * rim
    extra += 0.08 * collapsed + 0.16 * np.exp(-((collapsed / 0.12) ** 2)) * (collapsed > 0)
    chest.masks["pneumothorax"] = rim
    chest.details["pneumothorax_side"] = "right" if lung.side < 0 else "left"


def _pleural_effusion(
    rng: np.random.Generator, chest: _Chest, heart_shadow: Array, extra: Array
) -> None:
    """Pleural effusion: fluid in the lower pleural space with a meniscus, blunting the angle."""
    x, y, depths = chest.x, chest.y, chest.depths
    i = int(rng.integers(2))
    lung = chest.lungs[i]
    level = lung.dome_y - rng.uniform(0.14, 0.4) * lung.hh
    t = np.clip((lung.side * (x - lung.xc) / lung.hw + 1.0) / 2.0, 0.0, 1.0)
    meniscus = level - rng.uniform(0.08, 0.18) * t**2
    fluid = _sigmoid((y - meniscus) / 0.025) * (depths[i] > 0)
    extra += (0.78 * depths[i] * heart_shadow + 0.1) * fluid
    chest.masks["pleural_effusion"] = (fluid > 0.5) & (depths[i] > 0)
    chest.details["effusion_side"] = "right" if lung.side < 0 else "left"


def _nodule_mass(rng: np.random.Generator, chest: _Chest, lung_core: Mask, extra: Array) -> None:
    """Nodule or mass: one or two round opacities inside a lung."""
    x, y, masks = chest.x, chest.y, chest.masks
    nodule_mask = np.zeros(chest.shape, dtype=bool)
    nodules = []
    for _ in range(1 if rng.random() < 0.8 else 2):
        r_c = _pick_point(rng, lung_core & ~masks.get("pleural_effusion", lung_core & False))
        if r_c is None:
            break
        radius = rng.uniform(0.05, 0.12)
        theta = np.arctan2(y - y[r_c[0], 0], x - x[0, r_c[1]])
        lobul = 1.0 + 0.12 * np.sin(5 * theta + rng.uniform(0, 6.3)) * (radius > 0.08)
        d2 = ((x - x[0, r_c[1]]) ** 2 + (y - y[r_c[0], 0]) ** 2) / (radius * lobul) ** 2
        profile = np.sqrt(np.clip(1.0 - d2, 0.0, 1.0))
        extra += (0.45 + 1.5 * radius) * profile
        nodule_mask |= profile > 0
        nodules.append([r_c[0], r_c[1], radius / chest.px])
    masks["nodule_mass"] = nodule_mask
    chest.details["nodules"] = nodules


def _consolidation(rng: np.random.Generator, chest: _Chest, lung_core: Mask, extra: Array) -> None:
    """Consolidation: patchy airspace opacity within a lung, in one or two patches."""
    x, y, depths = chest.x, chest.y, chest.depths
    rows, cols = chest.shape
    patchy = _smooth_noise(rng, rows, cols, 9.0)
    cons = np.zeros((rows, cols), dtype=np.float32)
    boxes = []
    for _ in range(1 if rng.random() < 0.7 else 2):
        r_c = _pick_point(rng, lung_core)
        if r_c is None:
            break
        ax, ay = rng.uniform(0.1, 0.2), rng.uniform(0.1, 0.22)
        blob = _sigmoid(
            (1.0 - ((x - x[0, r_c[1]]) / ax) ** 2 - ((y - y[r_c[0], 0]) / ay) ** 2) / 0.15
        )
        patch = blob * _sigmoid((patchy + 0.9) / 0.25) * (depths[0] + depths[1] > 0.02)
        cons = np.maximum(cons, patch)
        rr, cc = np.nonzero(patch > 0.5)
        if rr.size:
            boxes.append([int(cc.min()), int(rr.min()), int(np.ptp(cc)) + 1, int(np.ptp(rr)) + 1])
    extra += cons * (0.6 * (depths[0] + depths[1]) + 0.08)
    chest.masks["consolidation"] = cons > 0.5
    chest.details["consolidation_boxes"] = boxes


def _pick_point(rng: np.random.Generator, mask: Mask) -> tuple[int, int] | None:
    """Pick a random ``(row, col)`` inside ``mask``."""
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        return None
    i = int(rng.integers(rows.size))
    return int(rows[i]), int(cols[i])
