"""Run the models over the images of the studies a worker holds, batching across studies.

For each model: read each routed image once (pydicom), preprocess it, stack the tensors of all
studies into batches of the model's batch size, predict, postprocess, and turn each label into a
:class:`FindingRecord`. A failure is confined to the studies it concerns: a batch that fails with
an error other than a timeout is re-run one study at a time so one bad image does not take the
other studies' results with it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom import Dataset

from models.errors import InferenceTimeout, InvalidOutput
from triage.routing import ImageRef, RoutingRules, select_images
from triage.settings import HeatmapPolicy
from triage.worker.heatmaps import heatmap_relpath, write_heatmap
from triage.worker.pool import ActiveModel, ModelPool

__all__ = ["FindingRecord", "StudyWork", "run_models"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FindingRecord:
    """One label's result on one image, ready to become a ``Finding`` row."""

    sop_instance_uid: str
    model_name: str
    model_version: str
    model_uid: str
    model_creator: str
    model_sha256: str
    label: str
    concept_scheme: str
    concept_code: str
    concept_meaning: str
    probability: float
    threshold: float
    crossed: bool
    category: str
    shadow: bool
    preprocess_ms: float
    inference_ms: float
    heatmap_path: str = ""


@dataclass
class StudyWork:
    """One claimed study and what the models made of it."""

    study_id: int
    study_uid: str
    images: list[ImageRef]
    findings: list[FindingRecord] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    """Model ref -> why it could not score this study (enabled models)."""
    shadow_failures: dict[str, str] = field(default_factory=dict)
    applicable: list[str] = field(default_factory=list)
    """Enabled (non-shadow) models that apply to the study."""

    def fail(self, model: ActiveModel | str, reason: str, *, shadow: bool = False) -> None:
        """Record why a model could not score this study (first reason per model kept)."""
        ref = model if isinstance(model, str) else model.ref
        target = self.shadow_failures if shadow else self.failures
        target.setdefault(ref, reason)


@dataclass
class _Item:
    work: StudyWork
    image: ImageRef
    tensor: np.ndarray[Any, Any]
    preprocess_ms: float


def _read(archive_dir: Path, image: ImageRef) -> Dataset:
    return pydicom.dcmread(archive_dir / image.path)


def _label_results(result: Any) -> Sequence[Any]:
    labels = getattr(result, "labels", result)
    return list(labels)


def _heatmap(prediction: Any, row: int, index: int) -> np.ndarray[Any, Any] | None:
    maps = getattr(prediction, "heatmaps", None)
    if maps is None:
        return None
    return np.asarray(maps[row, index], dtype=np.float32)


def _records(
    model: ActiveModel,
    chunk: list[_Item],
    prediction: Any,
    inference_ms: float,
    archive_dir: Path,
    heatmaps: HeatmapPolicy,
) -> list[tuple[StudyWork, FindingRecord]]:
    results = list(model.model.postprocess(prediction))
    if len(results) != len(chunk):
        raise InvalidOutput(f"postprocess returned {len(results)} results for {len(chunk)} images")
    ident = model.card.identity
    index = {label.name: label.index for label in model.card.outputs.labels}
    per_image_ms = inference_ms / len(chunk)
    out: list[tuple[StudyWork, FindingRecord]] = []
    for row, (item, result) in enumerate(zip(chunk, results, strict=True)):
        for lab in _label_results(result):
            path = ""
            save = heatmaps is HeatmapPolicy.ALL or (
                heatmaps is HeatmapPolicy.CROSSED and bool(lab.crossed)
            )
            hm = _heatmap(prediction, row, index[lab.label]) if save else None
            if hm is not None:
                path = heatmap_relpath(
                    item.work.study_uid, item.image.sop_instance_uid, model.ref, lab.label
                )
                write_heatmap(archive_dir, path, hm)
            concept = lab.concept
            out.append(
                (
                    item.work,
                    FindingRecord(
                        sop_instance_uid=item.image.sop_instance_uid,
                        model_name=ident.name,
                        model_version=ident.version,
                        model_uid=ident.uid,
                        model_creator=ident.creator,
                        model_sha256=ident.sha256,
                        label=lab.label,
                        concept_scheme=concept.scheme,
                        concept_code=concept.code,
                        concept_meaning=concept.meaning,
                        probability=float(lab.probability),
                        threshold=float(lab.threshold),
                        crossed=bool(lab.crossed),
                        category=str(lab.category),
                        shadow=model.shadow,
                        preprocess_ms=round(item.preprocess_ms, 3),
                        inference_ms=round(per_image_ms, 3),
                        heatmap_path=path,
                    ),
                )
            )
    return out


def _run_chunk(
    model: ActiveModel, chunk: list[_Item], archive_dir: Path, heatmaps: HeatmapPolicy
) -> None:
    """Predict one batch; on failure blame every study in it, or split by study and retry."""
    studies = {id(i.work): i.work for i in chunk}
    try:
        t0 = time.perf_counter()
        prediction = model.model.predict(np.stack([i.tensor for i in chunk]))
        elapsed_ms = (time.perf_counter() - t0) * 1000.0
        records = _records(model, chunk, prediction, elapsed_ms, archive_dir, heatmaps)
    except Exception as exc:
        if len(studies) > 1 and not isinstance(exc, InferenceTimeout):
            logger.warning(
                "model %s failed on a batch of %d studies (%s); retrying each",
                model.ref,
                len(studies),
                exc,
            )
            for work in studies.values():
                _run_chunk(model, [i for i in chunk if i.work is work], archive_dir, heatmaps)
            return
        reason = _describe(model, exc)
        logger.warning("%s (studies %s)", reason, [w.study_uid for w in studies.values()])
        for work in studies.values():
            work.fail(model, reason, shadow=model.shadow)
        return
    for work, record in records:
        work.findings.append(record)


def _describe(model: ActiveModel, exc: BaseException) -> str:
    if isinstance(exc, InferenceTimeout):
        what = "timed out"
    elif isinstance(exc, InvalidOutput):
        what = "returned invalid output"
    else:
        what = "failed"
    return f"model {model.ref} {what}: {exc}"


def run_models(
    works: Sequence[StudyWork],
    pool: ModelPool,
    routing: RoutingRules,
    archive_dir: Path,
    *,
    batch_size: int = 8,
    heatmaps: HeatmapPolicy = HeatmapPolicy.CROSSED,
) -> None:
    """Route, read, preprocess, batch and run every active model over ``works`` (in place).

    Parameters
    ----------
    works
        The claimed studies with their images; findings and failures are added to them.
    pool
        The active models (enabled and shadow) and those that failed to load.
    routing
        The routing rules.
    archive_dir
        The archive root (``ImageRef.path`` is relative to it; heatmaps go under ``derived/``).
    batch_size
        Images per inference call unless the card fixes the batch size.
    heatmaps
        Which labels' heatmaps to save.
    """
    active = {m.ref: m for m in pool.active}
    broken = pool.broken
    cards = [m.card for m in active.values()] + [card for card, _, _ in broken.values()]
    datasets: dict[tuple[int, str], Dataset | str] = {}
    queues: dict[str, list[_Item]] = {ref: [] for ref in active}
    for work in works:
        for ref, images in select_images(work.images, routing, cards).items():
            if ref in broken:
                _card, status, reason = broken[ref]
                shadow = status.value == "shadow"
                if not shadow:
                    work.applicable.append(ref)
                work.fail(ref, reason, shadow=shadow)
                continue
            model = active[ref]
            if not model.shadow:
                work.applicable.append(ref)
            for image in images:
                item = _prepare(model, work, image, archive_dir, datasets)
                if item is not None:
                    queues[ref].append(item)
    for ref, items in queues.items():
        model = active[ref]
        size = model.card.input.fixed_batch or batch_size
        for start in range(0, len(items), size):
            _run_chunk(model, items[start : start + size], archive_dir, heatmaps)


def _prepare(
    model: ActiveModel,
    work: StudyWork,
    image: ImageRef,
    archive_dir: Path,
    datasets: dict[tuple[int, str], Dataset | str],
) -> _Item | None:
    """Read ``image`` (once per study, cached in ``datasets``) and preprocess it for ``model``.

    A failure to read or preprocess is recorded on ``work`` and gives None.
    """
    key = (id(work), image.sop_instance_uid)
    if key not in datasets:
        try:
            datasets[key] = _read(archive_dir, image)
        except Exception as exc:
            datasets[key] = f"image {image.sop_instance_uid} cannot be read: {exc}"
    ds = datasets[key]
    if isinstance(ds, str):
        work.fail(model, f"model {model.ref}: {ds}", shadow=model.shadow)
        return None
    t0 = time.perf_counter()
    try:
        tensor = model.model.preprocess(ds)
    except Exception as exc:
        work.fail(
            model,
            f"model {model.ref}: pixels of image {image.sop_instance_uid} cannot be used: {exc}",
            shadow=model.shadow,
        )
        return None
    ms = (time.perf_counter() - t0) * 1000.0
    return _Item(work, image, tensor, ms)
