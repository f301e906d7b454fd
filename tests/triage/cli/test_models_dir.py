"""``--models-dir`` and ``--config`` on the ``triage models`` commands that open the registry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pydicom
import pytest

from tests.builders.dicom import chest_dataset
from tests.builders.onnx import classifier_onnx, write_model
from triage.cli import main


@pytest.fixture
def two_dirs(tmp_path: Path, clean_cli_env: Path, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Two models directories, ``one`` holding ``tiny@1.0.0`` and ``two`` holding ``tiny@2.0.0``."""
    monkeypatch.setenv("TRIAGE_MODELS_PROVIDERS", '["CPUExecutionProvider"]')
    monkeypatch.setenv("TRIAGE_MODELS_INTRA_OP_THREADS", "1")
    dirs = [tmp_path / "one", tmp_path / "two"]
    write_model(dirs[0], classifier_onnx(seed=0), version="1.0.0")
    write_model(dirs[1], classifier_onnx(seed=1), version="2.0.0")
    return dirs


def _listed(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    assert main(["models", "list", "--json", *args]) == 0, capsys.readouterr().err
    listed: dict[str, Any] = json.loads(capsys.readouterr().out)
    return listed


def _statuses(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, str]:
    return {m["ref"]: m["status"] for m in _listed(capsys, *args)["models"]}


def test_models_commands_use_the_models_dir_given(
    two_dirs: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    one, two = two_dirs
    assert _listed(capsys, "--models-dir", str(one))["models_dir"] == str(one)
    assert list(_statuses(capsys, "--models-dir", str(one))) == ["tiny@1.0.0"]
    assert list(_statuses(capsys, "--models-dir", str(two))) == ["tiny@2.0.0"]

    assert main(["models", "show", "tiny", "--json", "--models-dir", str(two)]) == 0
    assert json.loads(capsys.readouterr().out)["card"]["identity"]["version"] == "2.0.0"
    assert main(["models", "show", "tiny@2.0.0", "--models-dir", str(one)]) == 2
    capsys.readouterr()

    data = tmp_path / "data"
    for verb, status in (("disable", "disabled"), ("shadow", "shadow"), ("enable", "enabled")):
        assert (
            main(["models", verb, "tiny", "--models-dir", str(one), "--data-dir", str(data)]) == 0
        )
        assert str(data / "model-state.json") in capsys.readouterr().out
        listed = _statuses(capsys, "--models-dir", str(one), "--data-dir", str(data))
        assert listed == {"tiny@1.0.0": status}
    assert not (one / "state.json").exists()
    assert not (two / "state.json").exists()

    image = tmp_path / "image.dcm"
    pydicom.dcmwrite(image, chest_dataset(), enforce_file_format=True)
    assert main(["models", "run", "tiny", str(image), "--models-dir", str(two)]) == 0
    assert json.loads(capsys.readouterr().out)["model"] == "tiny@2.0.0"


def test_models_commands_take_the_models_dir_from_config(
    two_dirs: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    one, two = two_dirs
    cfg = tmp_path / "site.toml"
    cfg.write_text(f"[models]\nmodels_dir = {json.dumps(str(one))}\n")
    assert list(_statuses(capsys, "--config", str(cfg))) == ["tiny@1.0.0"]
    assert list(_statuses(capsys, "--config", str(cfg), "--models-dir", str(two))) == ["tiny@2.0.0"]
    assert main(["models", "disable", "tiny", "--config", str(cfg)]) == 0
    capsys.readouterr()
    assert (Path.cwd() / "var" / "model-state.json").is_file()
    assert not (one / "state.json").exists()
    assert main(["models", "validate", str(two / "tiny" / "2.0.0"), "--config", str(cfg)]) == 0
    assert "ok: tiny@2.0.0" in capsys.readouterr().out


def test_model_statuses_live_in_the_data_dir_given(
    two_dirs: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    one, _ = two_dirs
    first, second = tmp_path / "site-a", tmp_path / "site-b"
    args = ["--models-dir", str(one)]
    assert main(["models", "disable", "tiny", *args, "--data-dir", str(first)]) == 0
    capsys.readouterr()
    assert _statuses(capsys, *args, "--data-dir", str(first)) == {"tiny@1.0.0": "disabled"}
    # Another deployment sharing the same models folder keeps its own statuses.
    assert _statuses(capsys, *args, "--data-dir", str(second)) == {"tiny@1.0.0": "enabled"}
    cfg = tmp_path / "site.toml"
    cfg.write_text(f"[worklist]\ndata_dir = {json.dumps(str(first))}\n")
    assert _statuses(capsys, *args, "--config", str(cfg)) == {"tiny@1.0.0": "disabled"}


def test_a_status_file_left_in_the_models_dir_is_reported_not_silently_ignored(
    two_dirs: list[Path],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    one, _ = two_dirs
    (one / "state.json").write_text('{"models": {"tiny@1.0.0": "disabled"}}')
    data = tmp_path / "data"
    with caplog.at_level("WARNING"):
        listed = _statuses(capsys, "--models-dir", str(one), "--data-dir", str(data))
    assert listed == {"tiny@1.0.0": "enabled"}
    assert any(
        str(one / "state.json") in r.getMessage() and "no longer read" in r.getMessage()
        for r in caplog.records
    )
