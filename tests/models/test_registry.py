from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.card import ModelStatus
from models.errors import IntegrityError, ModelNotFoundError, ModelRefError, RegistryStateError
from models.registry import ModelRef, ModelRegistry, version_key
from models.settings import ModelsSettings
from tests.builders.cards import card_dict
from tests.builders.onnx import classifier_onnx, write_model


def test_scan_lists_models_and_versions(registry: ModelRegistry) -> None:
    refs = [m.ref for m in registry.list()]
    assert refs == ["tiny@1.0.0", "tiny@1.2.0"]
    assert registry.problems == []
    assert all(m.status is ModelStatus.ENABLED for m in registry.enabled())


def test_get_newest_by_semantic_version(settings: ModelsSettings) -> None:
    write_model(settings.models_dir, classifier_onnx(), version="1.10.0")
    write_model(settings.models_dir, classifier_onnx(), version="1.11.0rc1", name="tiny")
    write_model(settings.models_dir, classifier_onnx(), name="other", version="0.1.0")
    registry = ModelRegistry(settings)
    # 1.10.0 is newer than 1.2.0 (not a string comparison) and newer than a pre-release? No:
    # 1.11.0rc1 > 1.10.0 in PEP 440 ordering.
    assert registry.get("tiny").version == "1.11.0rc1"
    assert registry.get("tiny", "1.2.0").version == "1.2.0"
    assert registry.get("tiny@1.10.0").version == "1.10.0"
    assert registry.resolve("other").ref == "other@0.1.0"
    assert [m.name for m in registry.models()] == ["other", "tiny", "tiny", "tiny", "tiny"]
    assert version_key("1.2.0") < version_key("1.10.0")
    assert version_key("not a version") < version_key("0.0.1")


def test_unknown_model_or_version(registry: ModelRegistry) -> None:
    with pytest.raises(ModelNotFoundError, match="no model named 'nope'"):
        registry.get("nope")
    with pytest.raises(ModelNotFoundError, match=r"has no version '9\.9'"):
        registry.resolve("tiny@9.9")
    with pytest.raises(ModelRefError, match="bad model reference"):
        ModelRef.parse("tiny@")
    assert str(ModelRef.parse(" tiny@1.0.0 ")) == "tiny@1.0.0"
    assert ModelRef.parse("tiny").version is None


def test_sha256_mismatch_is_refused(registry: ModelRegistry, models_dir: Path) -> None:
    onnx_path = models_dir / "tiny" / "1.0.0" / "model.onnx"
    onnx_path.write_bytes(onnx_path.read_bytes() + b"\0")
    with pytest.raises(IntegrityError, match="refusing to load"):
        registry.load("tiny", "1.0.0")
    with pytest.raises(IntegrityError):
        registry.verify("tiny@1.0.0")
    onnx_path.unlink()
    with pytest.raises(IntegrityError, match="cannot read"):
        registry.load("tiny", "1.0.0")
    # the other version is untouched and loads
    assert registry.load("tiny", "1.2.0").identity.version == "1.2.0"


def test_load_once_and_reuse(registry: ModelRegistry) -> None:
    first = registry.load("tiny")
    assert registry.load("tiny@1.2.0") is first
    assert first.identity.name == "tiny"
    assert first.provider == "CPUExecutionProvider"


def test_invalid_cards_are_reported_not_fatal(settings: ModelsSettings) -> None:
    bad = card_dict(name="broken")
    bad["outputs"]["labels"][0]["threshold"] = 2
    write_model(settings.models_dir, classifier_onnx(), card=bad)
    misplaced = card_dict(name="elsewhere", version="2.0.0")
    directory = write_model(settings.models_dir, classifier_onnx(), card=misplaced)
    directory.rename(directory.parent / "3.0.0")
    registry = ModelRegistry(settings)
    assert [m.ref for m in registry.models()] == ["tiny@1.0.0", "tiny@1.2.0"]
    messages = sorted(p.message for p in registry.problems)
    assert len(messages) == 2
    assert "outputs.labels.0.threshold" in messages[0]
    assert "lives in elsewhere/3.0.0" in messages[1]


def test_missing_models_dir_is_empty(tmp_path: Path) -> None:
    registry = ModelRegistry(ModelsSettings(models_dir=tmp_path / "none"))
    assert registry.models() == []


def test_status_override_persists(settings: ModelsSettings) -> None:
    registry = ModelRegistry(settings)
    updated = registry.set_status("tiny", "1.0.0", ModelStatus.DISABLED)
    assert updated.status is ModelStatus.DISABLED
    registry.set_status("tiny@1.2.0", None, "shadow")
    state = json.loads(settings.effective_state_file.read_text())
    assert state["models"] == {"tiny@1.0.0": "disabled", "tiny@1.2.0": "shadow"}
    fresh = ModelRegistry(settings)
    assert fresh.get("tiny", "1.0.0").status is ModelStatus.DISABLED
    assert fresh.get("tiny", "1.2.0").status is ModelStatus.SHADOW
    assert fresh.enabled() == []
    assert [m.ref for m in fresh.active()] == ["tiny@1.2.0"]
    fresh.set_status("tiny", None, ModelStatus.ENABLED)  # newest version
    assert [m.ref for m in ModelRegistry(settings).enabled()] == ["tiny@1.2.0"]


def test_state_file_setting_and_bad_state(settings: ModelsSettings, tmp_path: Path) -> None:
    custom = settings.model_copy(update={"state_file": tmp_path / "elsewhere" / "state.json"})
    ModelRegistry(custom).set_status("tiny", None, "disabled")
    assert (tmp_path / "elsewhere" / "state.json").is_file()
    assert not (settings.models_dir / "state.json").exists()
    (tmp_path / "elsewhere" / "state.json").write_text("{not json")
    with pytest.raises(RegistryStateError, match="is not valid"):
        ModelRegistry(custom)


def test_unwritable_state_path_is_explained(settings: ModelsSettings, tmp_path: Path) -> None:
    # A state file whose directory is a regular file cannot be written, even as root.
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    custom = settings.model_copy(update={"state_file": blocker / "state.json"})
    with pytest.raises(RegistryStateError, match=r"TRIAGE_MODELS_STATE_FILE"):
        ModelRegistry(custom).set_status("tiny", None, "disabled")
