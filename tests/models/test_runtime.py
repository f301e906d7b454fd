from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest

from models.card import Activation, card_from_dict
from models.errors import CardError, InferenceTimeout, InvalidOutput, ModelError
from models.registry import ModelRegistry
from models.results import activate, make_prediction
from models.runtime import LoadedModel, choose_providers
from models.settings import ModelsSettings
from tests.builders.cards import card_dict
from tests.builders.dicom import chest_dataset
from tests.builders.onnx import classifier_onnx, slow_onnx, write_model


def _batch(n: int, size: int = 32, seed: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 1, size, size), dtype=np.float32)


def test_predict_shapes_and_activation(registry: ModelRegistry) -> None:
    model = registry.load("tiny")
    prediction = model.predict(_batch(4))
    assert prediction.probabilities.shape == (4, 5)
    assert prediction.probabilities.dtype == np.float32
    assert prediction.heatmaps is not None
    assert prediction.heatmaps.shape == (4, 5, 8, 8)
    assert ((prediction.probabilities >= 0) & (prediction.probabilities <= 1)).all()
    assert prediction.inference_ms > 0
    # the graph's logits are the mean of the conv map, so sigmoid(mean) must match
    raw = model._session.run(["logits"], {"image": _batch(4)})[0]
    np.testing.assert_allclose(prediction.probabilities, 1 / (1 + np.exp(-raw)), rtol=1e-5)


def test_batch_and_single_agree(registry: ModelRegistry) -> None:
    model = registry.load("tiny")
    batch = _batch(6)
    together = model.predict(batch)
    for i in range(len(batch)):
        alone = model.predict(batch[i : i + 1])
        np.testing.assert_allclose(alone.probabilities[0], together.probabilities[i], atol=1e-6)
        assert alone.heatmaps is not None and together.heatmaps is not None
        np.testing.assert_allclose(alone.heatmaps[0], together.heatmaps[i], atol=1e-6)


def test_fixed_batch_model_is_chunked_and_padded(settings: ModelsSettings) -> None:
    directory = write_model(
        settings.models_dir,
        classifier_onnx(batch=2, heatmap=False),
        name="fixed",
        batch=2,
        heatmap=False,
    )
    model = LoadedModel(card_from_dict(_card(directory)), directory, settings)
    batch = _batch(5)
    got = model.predict(batch).probabilities
    assert got.shape == (5, 5)
    pairs = np.concatenate([model.predict(batch[i : i + 2]).probabilities for i in (0, 2)])
    np.testing.assert_allclose(got[:4], pairs, atol=1e-6)
    model.close()


def _card(directory: Path) -> dict[str, object]:
    import yaml

    return dict(yaml.safe_load((directory / "card.yaml").read_text()))


def test_postprocess_thresholds_and_categories(registry: ModelRegistry) -> None:
    model = registry.load("tiny")
    probs = np.array([[0.9, 0.2, 0.5, 0.49, 0.0], [0.1, 0.6, 0.0, 0.7, 0.2]], dtype=np.float32)
    logits = np.log(probs / (1 - probs + 1e-12) + 1e-12)
    prediction = make_prediction(model.card, 2, logits, None, 1.0)
    first, second = model.postprocess(prediction)
    assert [r.label for r in first.crossed] == ["pneumothorax", "nodule_mass"]
    assert first.category == "P1"
    assert [r.label for r in second.crossed] == ["pleural_effusion", "cardiomegaly"]
    assert second.category == "P2"
    ptx = first.labels[0]
    assert ptx.concept.code == "36118008" and ptx.threshold == 0.5 and ptx.crossed
    assert first.probabilities["pneumothorax"] == pytest.approx(0.9, abs=1e-5)


def test_nan_model_gives_invalid_output(settings: ModelsSettings) -> None:
    write_model(settings.models_dir, classifier_onnx(nan=True), name="broken")
    model = ModelRegistry(settings).load("broken")
    with pytest.raises(InvalidOutput, match="NaN or infinite"):
        model.predict(_batch(2))
    model.close()


def test_wrong_shapes_and_out_of_range_are_invalid(registry: ModelRegistry) -> None:
    card = registry.load("tiny").card
    with pytest.raises(InvalidOutput, match="shape"):
        make_prediction(card, 2, np.zeros((2, 4), dtype=np.float32), None, 0.0)
    with pytest.raises(InvalidOutput, match="inf"):
        make_prediction(card, 1, np.array([[0, 0, np.inf, 0, 0]], np.float32), None, 0.0)
    with pytest.raises(InvalidOutput, match="heatmap"):
        make_prediction(card, 1, np.zeros((1, 5), np.float32), np.zeros((1, 4, 2, 2)), 0.0)
    data = card_dict()
    data["outputs"]["probabilities"]["activation"] = "none"
    with pytest.raises(InvalidOutput, match="outside"):
        make_prediction(card_from_dict(data), 1, np.full((1, 5), 1.5, np.float32), None, 0.0)


def test_activations_are_stable() -> None:
    x = np.array([[-1000.0, 0.0, 1000.0]], dtype=np.float32)
    sig = activate(x, Activation.SIGMOID)
    np.testing.assert_allclose(sig, [[0.0, 0.5, 1.0]], atol=1e-6)
    soft = activate(x, Activation.SOFTMAX)
    assert np.isfinite(soft).all()
    np.testing.assert_allclose(soft.sum(axis=1), [1.0], atol=1e-6)


def test_bad_batch_shape(registry: ModelRegistry) -> None:
    model = registry.load("tiny")
    with pytest.raises(ModelError, match="does not fit"):
        model.predict(np.zeros((1, 1, 16, 16), dtype=np.float32))
    with pytest.raises(ModelError, match="does not fit"):
        model.predict(np.zeros((0, 1, 32, 32), dtype=np.float32))


def test_card_graph_mismatch_is_refused(settings: ModelsSettings) -> None:
    data = card_dict(name="mismatch")
    data["outputs"]["probabilities"]["name"] = "scores"
    write_model(settings.models_dir, classifier_onnx(), card=data)
    with pytest.raises(CardError, match="no output 'scores'"):
        ModelRegistry(settings).load("mismatch")
    data = card_dict(name="mismatch2", size=64)
    write_model(settings.models_dir, classifier_onnx(size=32), card=data)
    with pytest.raises(CardError, match="axis 2 is 64 in the card but 32"):
        ModelRegistry(settings).load("mismatch2")


def test_timeout_terminates_the_run(settings: ModelsSettings) -> None:
    data = card_dict(name="slow", n_labels=1, size=384, heatmap=False)
    write_model(settings.models_dir, slow_onnx(size=384, steps=300), card=data)
    model = ModelRegistry(settings).load("slow")
    started = time.perf_counter()
    with pytest.raises(InferenceTimeout, match=r"longer than 0\.05 s"):
        model.predict(np.ones((1, 1, 384, 384), dtype=np.float32), timeout_s=0.05)
    elapsed = time.perf_counter() - started
    # 300 MatMuls of 384x384 take seconds; terminate stops the run after the current one.
    assert elapsed < 2.0
    # the worker thread is free again: a normal call on the same model still works
    assert model._executor.submit(lambda: 1).result(timeout=5) == 1
    model.close()


def test_score_datasets(registry: ModelRegistry) -> None:
    model = registry.load("tiny")
    datasets = [chest_dataset(seed=i) for i in range(5)]
    scored = model.score_datasets(datasets, batch_size=2)
    assert len(scored.results) == 5
    assert scored.preprocess_ms > 0 and scored.inference_ms > 0
    single = model.postprocess(model.predict(model.preprocess(datasets[3])[np.newaxis]))
    assert scored.results[3].probabilities == pytest.approx(single[0].probabilities, abs=1e-6)


def test_providers_skip_unavailable() -> None:
    settings = ModelsSettings(providers=["NoSuchExecutionProvider", "CPUExecutionProvider"])
    assert choose_providers(settings) == ["CPUExecutionProvider"]
    assert choose_providers(ModelsSettings(providers=["NoSuchExecutionProvider"])) == [
        "CPUExecutionProvider"
    ]


def test_runtime_path_does_not_import_torch() -> None:
    import subprocess

    code = (
        "import sys, models.registry, models.runtime, models.preprocess, models.card;"
        "bad = [m for m in ('torch', 'monai') if m in sys.modules];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_io_binding_path_gives_the_same_result(registry: ModelRegistry) -> None:
    # IO binding is used with CUDA/TensorRT; ONNX Runtime supports it on CPU too, so the code
    # path is exercised here without a GPU.
    model = registry.load("tiny")
    batch = _batch(3)
    plain = model.predict(batch)
    model._io_binding = True
    try:
        bound = model.predict(batch)
    finally:
        model._io_binding = False
    np.testing.assert_allclose(bound.probabilities, plain.probabilities, atol=1e-7)
    assert bound.heatmaps is not None and plain.heatmaps is not None
    np.testing.assert_allclose(bound.heatmaps, plain.heatmaps, atol=1e-7)


@pytest.mark.parametrize("spinning", [True, False])
def test_thread_spinning_setting_reaches_the_session(
    settings: ModelsSettings, spinning: bool
) -> None:
    registry = ModelRegistry(settings.model_copy(update={"thread_spinning": spinning}))
    try:
        model = registry.load("tiny")
        options = model._session.get_session_options()
        try:
            entry = options.get_session_config_entry("session.intra_op.allow_spinning")
        except RuntimeError:  # not set: ONNX Runtime's default, which spins
            entry = "1"
        assert entry == ("1" if spinning else "0")
        assert model.predict(_batch(2)).probabilities.shape[0] == 2
    finally:
        registry.close()
