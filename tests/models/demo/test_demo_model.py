from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

import models
from models.card import load_card
from models.demo.card import DEMO_NAME, DEMO_VERSION, demo_card
from models.errors import CardError
from models.phantoms import FINDINGS, generate_phantom, phantom_seed
from models.registry import ModelRegistry
from models.settings import ModelsSettings
from triage.cli import main

BUNDLED = Path(models.__file__).resolve().parent / "bundled"
MODEL_DIR = BUNDLED / DEMO_NAME / DEMO_VERSION

EXPECTED_LABELS = [
    ("pneumothorax", "36118008", "P1"),
    ("pleural_effusion", "60046008", "P2"),
    ("nodule_mass", "416940007", "P2"),
    ("cardiomegaly", "8186001", "P3"),
    ("consolidation", "95436008", "P2"),
]


def _registry(models_dir: Path, tmp_path: Path) -> ModelRegistry:
    settings = ModelsSettings(
        models_dir=models_dir,
        state_file=tmp_path / "state.json",
        providers=["CPUExecutionProvider"],
        intra_op_threads=2,
    )
    return ModelRegistry(settings)


def test_committed_card_describes_the_committed_file(tmp_path: Path) -> None:
    card = load_card(MODEL_DIR)
    onnx = MODEL_DIR / card.identity.onnx_file
    assert hashlib.sha256(onnx.read_bytes()).hexdigest() == card.identity.sha256
    assert onnx.stat().st_size < 5_000_000
    assert (card.identity.name, card.identity.version) == (DEMO_NAME, DEMO_VERSION)
    got = [(lb.name, lb.concept.code, lb.category) for lb in card.outputs.labels]
    assert got == EXPECTED_LABELS
    assert all(lb.concept.scheme == "SCT" for lb in card.outputs.labels)
    assert [lb.name for lb in card.outputs.labels] == list(FINDINGS)
    assert card.outputs.heatmap is not None and card.outputs.heatmap.name == "heatmap"
    assert card.input.fixed_batch is None
    assert "not for clinical use" in card.regulatory_status.lower()
    assert "NOT FOR CLINICAL USE" in card.intended_use
    assert "synthetic" in card.training_data.lower()
    assert set(card.evaluation.auroc) == set(FINDINGS)
    assert min(card.evaluation.auroc.values()) > 0.9
    assert card.evaluation.parity_max_abs_diff is not None
    assert card.evaluation.parity_max_abs_diff < 1e-3
    registry = _registry(BUNDLED, tmp_path)
    assert registry.verify(DEMO_NAME).card == card


def test_demo_card_rejects_a_bad_digest() -> None:
    card = demo_card(sha256="ab" * 32)
    assert card.identity.uid.startswith("1.2.826.0.1.3680043.8.498.")
    with pytest.raises(CardError, match="sha256"):
        demo_card(sha256="not-a-digest")


@pytest.mark.slow
def test_demo_model_separates_fresh_phantoms(tmp_path: Path) -> None:
    """AUROC > 0.9 per label on phantoms the model never saw (a new set seed), via the runtime."""
    model = _registry(BUNDLED, tmp_path).load(DEMO_NAME)
    phantoms = [generate_phantom(phantom_seed(20261123, i)) for i in range(160)]
    batch = np.stack([model.preprocess(ph.dataset) for ph in phantoms])
    prediction = model.predict(batch, timeout_s=60)
    truth = np.array([[ph.labels[name] for name in FINDINGS] for ph in phantoms])
    assert truth.sum(axis=0).min() >= 20  # enough positives per label to measure
    auroc = {
        name: roc_auc_score(truth[:, i], prediction.probabilities[:, i])
        for i, name in enumerate(FINDINGS)
    }
    assert min(auroc.values()) > 0.9, auroc

    # the heatmap is genuine evidence: for nodules, its peak lies on or next to a drawn nodule
    assert prediction.heatmaps is not None
    maps = prediction.heatmaps
    assert maps.shape[:2] == (160, len(FINDINGS))
    k = FINDINGS.index("nodule_mass")
    hits, total = 0, 0
    for ph, heat in zip(phantoms, maps[:, k], strict=True):
        if not ph.labels["nodule_mass"]:
            continue
        total += 1
        cell = np.unravel_index(int(np.argmax(heat)), heat.shape)
        rows, cols = ph.dataset.Rows, ph.dataset.Columns
        for r, c, _ in ph.details["nodules"]:
            near = abs(r / rows * heat.shape[0] - (cell[0] + 0.5)) <= 2
            if near and abs(c / cols * heat.shape[1] - (cell[1] + 0.5)) <= 2:
                hits += 1
                break
    assert hits >= 0.7 * total, (hits, total)


@pytest.mark.slow
def test_train_demo_command_writes_a_loadable_model(tmp_path: Path) -> None:
    out = tmp_path / "models"
    args = ["models", "train-demo", "--out", str(out), "--n-train", "64", "--n-val", "32"]
    assert main([*args, "--n-test", "32", "--epochs", "1", "--workers", "1"]) == 0
    card = load_card(out / DEMO_NAME / DEMO_VERSION)
    assert set(card.evaluation.auroc) == set(FINDINGS)
    model = _registry(out, tmp_path).load(DEMO_NAME)
    ph = generate_phantom(5, size=200)
    prediction = model.predict(model.preprocess(ph.dataset)[None])
    assert prediction.probabilities.shape == (1, len(FINDINGS))
    assert prediction.heatmaps is not None and prediction.heatmaps.shape == (1, 5, 16, 16)
