from __future__ import annotations

import json
from pathlib import Path

import pydicom
import pytest
import yaml

from tests.builders.dicom import chest_dataset
from tests.builders.onnx import classifier_onnx, write_model
from triage.cli import main


def _json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_list_and_show(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "tiny@1.0.0" in out and "tiny@1.2.0" in out and "enabled" in out
    assert main(["models", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [m["ref"] for m in listed["models"]] == ["tiny@1.0.0", "tiny@1.2.0"]
    assert listed["problems"] == []
    assert main(["models", "show", "tiny"]) == 0
    shown = capsys.readouterr().out
    assert shown.startswith("# tiny@1.2.0: status enabled")
    card = yaml.safe_load(shown)
    assert card["identity"]["version"] == "1.2.0"
    assert main(["models", "show", "tiny@1.0.0", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["card"]["identity"]["version"] == "1.0.0"


def test_show_unknown_model_is_a_clear_error(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["models", "show", "nope"]) == 2
    assert "no model named 'nope'" in capsys.readouterr().err


def test_list_reports_invalid_cards(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (cli_env / "bad" / "1.0").mkdir(parents=True)
    (cli_env / "bad" / "1.0" / "card.yaml").write_text("identity: {}\n")
    assert main(["models", "list"]) == 0
    captured = capsys.readouterr()
    assert "tiny@1.0.0" in captured.out
    assert "invalid: card" in captured.err and "identity.creator: Field required" in captured.err


def test_enable_disable_shadow(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "disable", "tiny@1.0.0"]) == 0
    assert "tiny@1.0.0: disabled" in capsys.readouterr().out
    assert main(["models", "shadow", "tiny"]) == 0
    assert "tiny@1.2.0: shadow" in capsys.readouterr().out
    assert main(["models", "list", "--json"]) == 0
    statuses = {m["ref"]: m["status"] for m in json.loads(capsys.readouterr().out)["models"]}
    assert statuses == {"tiny@1.0.0": "disabled", "tiny@1.2.0": "shadow"}
    assert main(["models", "enable", "tiny@1.0.0"]) == 0
    # Statuses are the deployment's runtime state: under the data folder (./var by default),
    # never written into the models folder (often the installed package).
    state = json.loads((cli_env.parent / "var" / "model-state.json").read_text())
    assert state["models"]["tiny@1.0.0"] == "enabled"
    assert not (cli_env / "state.json").exists()


def test_validate(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = cli_env / "tiny" / "1.0.0"
    assert main(["models", "validate", str(directory)]) == 0
    assert capsys.readouterr().out.startswith("ok: tiny@1.0.0")
    assert main(["models", "validate", str(directory / "card.yaml")]) == 0
    capsys.readouterr()
    (directory / "model.onnx").write_bytes(classifier_onnx(seed=9))
    assert main(["models", "validate", str(directory)]) == 1
    assert "refusing to load" in capsys.readouterr().err
    card = yaml.safe_load((directory / "card.yaml").read_text())
    card["outputs"]["labels"][0]["threshold"] = 3
    (directory / "card.yaml").write_text(yaml.safe_dump(card))
    assert main(["models", "validate", str(directory)]) == 1
    assert "outputs.labels.0.threshold" in capsys.readouterr().err


def test_validate_nan_model_fails(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = write_model(cli_env, classifier_onnx(nan=True), name="nan")
    assert main(["models", "validate", str(directory)]) == 1
    assert "NaN" in capsys.readouterr().err


def test_run_scores_files(
    cli_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = []
    for i in range(3):
        path = tmp_path / f"img{i}.dcm"
        pydicom.dcmwrite(path, chest_dataset(seed=i), enforce_file_format=True)
        files.append(str(path))
    assert main(["models", "run", "tiny@1.0.0", *files, "--batch-size", "2"]) == 0
    lines = _json_lines(capsys.readouterr().out)
    assert [line["file"] for line in lines] == files
    for line in lines:
        assert line["model"] == "tiny@1.0.0"
        assert line["applies"] is True
        probs = line["probabilities"]
        assert isinstance(probs, dict) and len(probs) == 5
        assert all(0.0 <= p <= 1.0 for p in probs.values())
        crossed = line["crossed"]
        assert isinstance(crossed, list)
        assert line["thresholds"] == dict.fromkeys(probs, 0.5)
        assert set(crossed) == {name for name, p in probs.items() if p >= 0.5}
        assert line["category"] in (None, "P1", "P2", "P3")


def test_run_unreadable_file(
    cli_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.dcm"
    pydicom.dcmwrite(good, chest_dataset(), enforce_file_format=True)
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"this is not DICOM")
    missing = tmp_path / "missing.dcm"
    no_pixels = tmp_path / "nopixels.dcm"
    ds = chest_dataset()
    del ds.PixelData
    pydicom.dcmwrite(no_pixels, ds, enforce_file_format=True)
    args = ["models", "run", "tiny", str(junk), str(good), str(missing), str(no_pixels)]
    assert main(args) == 1
    lines = _json_lines(capsys.readouterr().out)
    assert len(lines) == 4
    assert "error" in lines[0] and "probabilities" not in lines[0]
    assert "probabilities" in lines[1] and "error" not in lines[1]
    assert "error" in lines[2]
    assert "no Pixel Data" in str(lines[3]["error"])


def test_run_unknown_model(
    cli_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["models", "run", "ghost", str(tmp_path / "x.dcm")]) == 2
    assert "no model named 'ghost'" in capsys.readouterr().err
