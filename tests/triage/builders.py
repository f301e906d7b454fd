"""Tiny real ONNX models, model directories and synthetic DICOM studies for the worker tests."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import yaml
from onnx import TensorProto, helper, numpy_helper
from pydicom.uid import generate_uid

from tests.dicom_factory import CR_STORAGE, dicom_dataset, write_dicom_file
from tests.triage.cards import card_dict
from worklist.db.engine import Database
from worklist.db.schema import Instance, Series, Study
from worklist.db.types import utcnow
from worklist.domain import JobKind, StudyState
from worklist.jobs import enqueue

OPSET = [helper.make_opsetid("", 17)]


def _mean_head(nodes: list[Any], x: str, n_labels: int) -> None:
    """probs[:, 0] = mean(x); probs[:, i>0] = 1 - mean(x)."""
    nodes.append(helper.make_node("ReduceMean", [x], ["m"], axes=[1, 2, 3], keepdims=0))
    nodes.append(helper.make_node("Unsqueeze", ["m", "ax1"], ["m1"]))
    cols = ["m1"]
    if n_labels > 1:
        nodes.append(helper.make_node("Sub", ["one", "m1"], ["inv"]))
        cols += ["inv"] * (n_labels - 1)
    nodes.append(helper.make_node("Concat", cols, ["probs"], axis=1))


def build_onnx(
    kind: str,
    *,
    size: int = 16,
    n_labels: int = 1,
    heatmap: bool = True,
    slow_layers: int = 12,
    channels: int = 16,
    declared_size: int | None = None,
) -> bytes:
    """Build a model: ``mean`` (probability = mean intensity), ``nan``, ``slow``, ``raise``.

    ``raise`` fails at run time (a Reshape that does not fit); ``declared_size`` declares an
    input size different from ``size`` (refused when the model is loaded).
    """
    d: int | str = declared_size or size
    if kind == "raise":  # symbolic size: loads fine, then a Reshape fails at run time
        d = "S"
    inputs = [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, d, d])]
    inits = [numpy_helper.from_array(np.array([1], dtype=np.int64), "ax1")]
    if n_labels > 1:
        inits.append(numpy_helper.from_array(np.array(1.0, dtype=np.float32), "one"))
    nodes: list[Any] = []
    x = "image"
    if kind == "raise":
        inits.append(numpy_helper.from_array(np.array([0, 1, 8, 8], dtype=np.int64), "shape"))
        nodes.append(helper.make_node("Reshape", [x, "shape"], ["reshaped"]))
        x = "reshaped"
    if kind == "slow":
        rng = np.random.default_rng(0)
        c_in = 1
        for i in range(slow_layers):
            w = rng.normal(0, 0.05, size=(channels, c_in, 5, 5)).astype(np.float32)
            inits.append(numpy_helper.from_array(w, f"w{i}"))
            nodes.append(helper.make_node("Conv", [x, f"w{i}"], [f"c{i}"], pads=[2, 2, 2, 2]))
            x, c_in = f"c{i}", channels
        nodes.append(helper.make_node("ReduceMean", [x], ["cm"], axes=[1], keepdims=1))
        nodes.append(helper.make_node("Sigmoid", ["cm"], ["xs"]))
        x = "xs"
    _mean_head(nodes, x, n_labels)
    probs_out = "probs"
    if kind == "nan":
        nodes.append(helper.make_node("Sub", ["probs", "probs"], ["z"]))
        nodes.append(helper.make_node("Div", ["z", "z"], ["probs_nan"]))
        probs_out = "probs_nan"
    nodes.append(helper.make_node("Identity", [probs_out], ["p"]))
    outputs = [helper.make_tensor_value_info("p", TensorProto.FLOAT, ["N", n_labels])]
    if heatmap:
        nodes.append(helper.make_node("Concat", ["image"] * n_labels, ["heat"], axis=1))
        outputs.append(
            helper.make_tensor_value_info("heat", TensorProto.FLOAT, ["N", n_labels, d, d])
        )
    graph = helper.make_graph(nodes, f"test_{kind}", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=OPSET, producer_name="tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


LABELS = (("pneumothorax", 0.5, "P1"), ("nodule", 0.5, "P2"))


def write_model(
    models_dir: Path,
    name: str,
    kind: str = "mean",
    *,
    version: str = "1.0",
    status: str = "enabled",
    n_labels: int = 1,
    size: int = 16,
    heatmap: bool = True,
    modalities: tuple[str, ...] = ("CR", "DX"),
    **onnx_kw: Any,
) -> Path:
    """Write ``models_dir/NAME/VERSION/{model.onnx,card.yaml}``; return the directory."""
    data = build_onnx(kind, size=size, n_labels=n_labels, heatmap=heatmap, **onnx_kw)
    target = models_dir / name / version
    target.mkdir(parents=True, exist_ok=True)
    (target / "model.onnx").write_bytes(data)
    card = card_dict(
        name,
        version,
        labels=LABELS[:n_labels],
        size=size,
        heatmap=heatmap,
        sha256=hashlib.sha256(data).hexdigest(),
        status=status,
        modalities=modalities,
    )
    card["outputs"]["probabilities"]["name"] = "p"
    (target / "card.yaml").write_text(yaml.safe_dump(card, sort_keys=False), encoding="utf-8")
    return target


def write_dicom(
    path: Path,
    *,
    study_uid: str,
    series_uid: str,
    sop_uid: str,
    bright: float,
    modality: str = "CR",
    size: int = 16,
    referral: str = "",
) -> None:
    """A CR image whose top ``bright`` fraction of rows is white (mean intensity = bright)."""
    pixels = np.zeros((size, size), dtype=np.uint16)
    pixels[: round(bright * size), :] = 4095
    pixels[-1, -1] = 0  # keep a dark pixel so min-max scaling has a range
    pixels[0, 0] = 4095
    ds = dicom_dataset(
        pixels,
        modality=modality,
        sop_class_uid=CR_STORAGE,  # CR storage whatever the modality
        sop_uid=sop_uid,
        study_uid=study_uid,
        series_uid=series_uid,
        patient_id="P1",
        patient_name="Test^Phantom",
        body_part="CHEST",
        view_position="PA",
        RequestedProcedurePriority=referral or None,
    )
    write_dicom_file(ds, path)


def add_study(
    db: Database,
    archive: Path,
    *,
    brights: tuple[float, ...] = (0.9,),
    referral: str = "",
    site: str = "CDC_A",
    modality: str = "CR",
    corrupt: bool = False,
    enqueue_job: bool = True,
    max_attempts: int = 3,
) -> tuple[int, str]:
    """Insert a complete study (rows + files) and enqueue its triage job."""
    study_uid, series_uid = generate_uid(), generate_uid()
    now = utcnow()
    with db.write() as s:
        study = Study(
            study_instance_uid=study_uid,
            site=site,
            referral_priority=referral,
            modalities=modality,
            state=StudyState.QUEUED,
            first_received_at=now,
            last_received_at=now,
            completed_at=now,
            instance_count=len(brights),
        )
        s.add(study)
        s.flush()
        series = Series(
            study_id=study.id, series_instance_uid=series_uid, modality=modality, body_part="CHEST"
        )
        s.add(series)
        s.flush()
        for i, bright in enumerate(brights, start=1):
            sop_uid = generate_uid()
            rel = f"{study_uid}/{series_uid}/{sop_uid}.dcm"
            if corrupt:
                (archive / rel).parent.mkdir(parents=True, exist_ok=True)
                (archive / rel).write_bytes(b"not dicom at all")
            else:
                write_dicom(
                    archive / rel,
                    study_uid=study_uid,
                    series_uid=series_uid,
                    sop_uid=sop_uid,
                    bright=bright,
                    modality=modality,
                    referral=referral,
                )
            s.add(
                Instance(
                    study_id=study.id,
                    series_id=series.id,
                    sop_instance_uid=sop_uid,
                    sop_class_uid=CR_STORAGE,
                    instance_number=str(i),
                    view_position="PA",
                    path=rel,
                    size_bytes=1,
                    sha256="0" * 64,
                    calling_aet=site,
                )
            )
        if enqueue_job:
            enqueue(s, JobKind.TRIAGE, study_id=study.id, max_attempts=max_attempts)
        return study.id, study_uid
