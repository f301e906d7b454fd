"""``triage models benchmark`` and ``calibrate`` with tiny ONNX models of chosen behaviour.

The dataset is an NIH-layout copy whose pixels encode its labels
(:func:`tests.builders.benchmark.write_scored_nih`): the ``mean`` model ranks its pneumothorax
positives perfectly, the ``corner`` model at random, the ``constant`` model not at all.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from PIL import Image
from sklearn.metrics import roc_auc_score

from models.evaluation import validate_document
from tests.builders.benchmark import ScoredSet, write_scored_nih
from tests.builders.datasets import rewrite_header
from tests.builders.onnx import point_cli_at, write_worker_model
from triage.cli import main
from triage.simulation.behaviour import LabelSpec, read_predictions
from worklist.domain import Priority

N = 160


@pytest.fixture
def models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A models folder with ``perfect`` (mean), ``random`` (corner) and ``constant`` models."""
    folder = tmp_path / "models"
    for name, kind in (("perfect", "mean"), ("random", "corner"), ("constant", "constant")):
        write_worker_model(folder, name, kind, version="1.0.0", size=32, heatmap=False)
    return point_cli_at(folder, monkeypatch)


@pytest.fixture
def nih(tmp_path: Path) -> ScoredSet:
    """An NIH-layout copy of N images whose pixels encode their labels."""
    return write_scored_nih(tmp_path / "nih", n=N, seed=3)


def _bench(model: str, data: Path, out: Path, *extra: str) -> int:
    args = ["models", "benchmark", model, str(data), "--layout", "nih", "--split", "all"]
    return main([*args, "--out", str(out), "--replicates", "200", "--workers", "0", *extra])


def _report(out: Path) -> dict[str, Any]:
    report: dict[str, Any] = json.loads((out / "report.json").read_text())
    return report


def _predictions(out: Path) -> list[dict[str, str]]:
    with (out / "predictions.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_perfect_model_gives_auroc_one_through_decoding_processes(
    models: Path, nih: ScoredSet, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert _bench("perfect", nih.root, out, "--workers", "2", "--batch-size", "16") == 0
    report = _report(out)
    (label,) = report["labels"]
    assert label["name"] == "pneumothorax"
    assert (label["n"], label["n_positive"]) == (N, sum(nih.pneumothorax))
    assert label["auroc"]["value"] == 1.0
    rows = _predictions(out)
    assert [row["image_id"] for row in rows] == nih.images
    assert [int(row["pneumothorax"]) for row in rows] == nih.pneumothorax
    throughput = report["throughput"]
    assert throughput["images"] == N and throughput["images_per_s"] > 0
    assert throughput["bare_images_per_s"] > 0 and throughput["share_of_bare"] > 0
    assert (out / "report.html").is_file()


def test_random_model_gives_about_one_half_as_scikit_learn_does(
    models: Path, nih: ScoredSet, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert _bench("random", nih.root, out) == 0
    rows = _predictions(out)
    scores = np.array([float(row["pneumothorax_score"]) for row in rows])
    # PNG path: the corner pixel, min-max scaled by the image's own 0 and 255, is the score.
    corners = [
        float(np.asarray(Image.open(nih.root / "images" / name))[0, 0]) / 255 for name in nih.images
    ]
    np.testing.assert_allclose(scores, corners, atol=1e-6)
    value = _report(out)["labels"][0]["auroc"]["value"]
    assert value == pytest.approx(roc_auc_score(nih.pneumothorax, scores), abs=1e-12)
    assert abs(value - 0.5) < 0.15


def test_constant_model_gives_an_undefined_auroc_and_still_a_report(
    models: Path, nih: ScoredSet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert _bench("constant", nih.root, out) == 0
    auroc = _report(out)["labels"][0]["auroc"]
    assert auroc["value"] is None and auroc["reason"] == "constant_scores"
    assert "AUROC undefined" in capsys.readouterr().out


def test_predictions_csv_is_read_by_the_simulation(
    models: Path, nih: ScoredSet, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert _bench("perfect", nih.root, out) == 0
    spec = LabelSpec("pneumothorax", 0.5, Priority("P1"))
    used, truth, scores = read_predictions(out / "predictions.csv", (spec,))
    assert [lab.name for lab in used] == ["pneumothorax"]
    assert truth[:, 0].astype(int).tolist() == nih.pneumothorax
    assert scores.shape == (N, 1)


def test_rerun_scores_nothing_and_writes_the_same_report(
    models: Path, nih: ScoredSet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert _bench("perfect", nih.root, out) == 0
    first = (out / "report.json").read_bytes(), (out / "predictions.csv").read_bytes()
    capsys.readouterr()
    assert _bench("perfect", nih.root, out) == 0
    assert f"0 scored, {N} from the cache" in capsys.readouterr().out
    assert ((out / "report.json").read_bytes(), (out / "predictions.csv").read_bytes()) == first


def test_resume_after_a_torn_cache_scores_only_the_rest(
    models: Path, nih: ScoredSet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert _bench("perfect", nih.root, out) == 0
    whole = _report(out)
    predictions = (out / "predictions.csv").read_bytes()
    (cache,) = (out / "cache").glob("predictions-*.jsonl")
    lines = cache.read_text().splitlines(keepends=True)
    cache.write_text("".join(lines[:50]) + lines[50][: len(lines[50]) // 2])  # killed mid-write
    capsys.readouterr()
    assert _bench("perfect", nih.root, out) == 0
    assert f"{N - 50} scored, 50 from the cache" in capsys.readouterr().out
    assert (out / "predictions.csv").read_bytes() == predictions
    assert _report(out)["labels"] == whole["labels"]
    assert len(cache.read_text().splitlines()) == N + 1  # the torn line, then N whole lines


def test_missing_column_is_a_clear_error(
    models: Path, nih: ScoredSet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rewrite_header(nih.root / "Data_Entry_2017.csv", "Finding Labels", "Findings")
    assert _bench("perfect", nih.root, tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert "Finding Labels" in err and "Data_Entry_2017.csv" in err


def test_missing_image_is_a_clear_error(
    models: Path, nih: ScoredSet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (nih.root / "images" / nih.images[7]).unlink()
    assert _bench("perfect", nih.root, tmp_path / "out") == 2
    assert nih.images[7] in capsys.readouterr().err


def test_unknown_layout_and_uncovered_labels_are_clear_errors(
    models: Path, nih: ScoredSet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["models", "benchmark", "perfect", str(nih.root), "--layout", "nope"]
    assert main([*args, "--out", str(tmp_path / "o")]) == 2
    assert "unknown layout 'nope'" in capsys.readouterr().err
    label_map = tmp_path / "map.yaml"
    label_map.write_text("nih:\n  effusion: [Effusion]\n")
    assert _bench("perfect", nih.root, tmp_path / "o", "--label-map", str(label_map)) == 2
    assert "covers none of perfect@1.0.0's labels" in capsys.readouterr().err


def test_calibrate_writes_a_shadow_version_with_thresholds_and_their_source(
    models: Path, nih: ScoredSet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["models", "calibrate", "perfect", str(nih.root), "--layout", "nih"]
    args += ["--split", "test", "--target-sensitivity", "0.95", "--workers", "0"]
    assert main(args) == 0
    assert "perfect@1.0.1 (status shadow)" in capsys.readouterr().out
    card = yaml.safe_load((models / "perfect" / "1.0.1" / "card.yaml").read_text())
    old = yaml.safe_load((models / "perfect" / "1.0.0" / "card.yaml").read_text())
    assert card["status"] == "shadow" and card["identity"]["uid"] != old["identity"]["uid"]
    assert card["identity"]["sha256"] == old["identity"]["sha256"]
    (label,) = card["outputs"]["labels"]
    source = label["threshold_source"]
    test_side = range(N // 2, N)  # test_list.txt holds the second half
    truth = [nih.pneumothorax[i] for i in test_side]
    assert source["split"] == "test" and source["dataset"] == "nih" and source["layout"] == "nih"
    assert (source["n"], source["n_positive"]) == (len(truth), sum(truth))
    assert source["target_sensitivity"] == 0.95 and source["from_version"] == "1.0.0"
    # the threshold reaches the target on that split, and is the highest that does
    out = tmp_path / "out"
    assert _bench("perfect", nih.root, out) == 0
    rows = _predictions(out)
    positives = sorted(float(rows[i]["pneumothorax_score"]) for i in test_side if truth[i - N // 2])
    caught = sum(s >= label["threshold"] for s in positives)
    assert caught / len(positives) >= 0.95 > (caught - 1) / len(positives)
    assert source["sensitivity"] == caught / len(positives)
    capsys.readouterr()
    assert main(["models", "list", "--json"]) == 0
    listed = {m["ref"]: m["status"] for m in json.loads(capsys.readouterr().out)["models"]}
    assert listed["perfect@1.0.1"] == "shadow"
    args[2] = "perfect@1.0.0"  # "perfect" is now the newest version, 1.0.1
    assert main(args) == 2
    assert "perfect@1.0.1 is taken" in capsys.readouterr().err


def _huge_png(path: Path) -> None:
    """A valid 1 x 1 PNG whose header then announces 60000 x 60000 pixels (CRC fixed)."""
    import struct
    import zlib

    Image.fromarray(np.zeros((1, 1), dtype=np.uint8)).save(path)
    data = bytearray(path.read_bytes())
    ihdr = data.index(b"IHDR")
    data[ihdr + 4 : ihdr + 12] = struct.pack(">II", 60000, 60000)
    crc_at = ihdr + 4 + 13
    data[crc_at : crc_at + 4] = struct.pack(">I", zlib.crc32(bytes(data[ihdr : ihdr + 17])))
    path.write_bytes(bytes(data))


def test_absent_and_unreadable_images_stop_the_run_or_are_left_out_and_listed(
    models: Path, nih: ScoredSet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    images = nih.root / "images"
    absent, broken, huge = nih.images[3], nih.images[10], nih.images[20]
    (images / absent).unlink()
    (images / broken).write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    _huge_png(images / huge)
    # Without the flag the first bad image stops the run, named.
    assert _bench("perfect", nih.root, tmp_path / "stopped") == 2
    err = capsys.readouterr().err
    assert absent in err and "does not exist" in err and "--skip-bad-images" in err
    (images / absent).write_bytes((images / nih.images[0]).read_bytes())  # back, as a copy
    assert _bench("perfect", nih.root, tmp_path / "stopped", "--workers", "2") == 2
    err = capsys.readouterr().err
    assert broken in err and "--skip-bad-images" in err
    (images / absent).unlink()
    # With it, they are left out, listed and counted; the rest is evaluated as usual.
    out = tmp_path / "out"
    assert _bench("perfect", nih.root, out, "--workers", "2", "--skip-bad-images") == 0
    printed = capsys.readouterr().out
    assert "left out 3 images (1 absent, 2 unreadable)" in printed
    bad = {absent, broken, huge}
    kept = [name for name in nih.images if name not in bad]
    assert [row["image_id"] for row in _predictions(out)] == kept
    with (out / "left_out.csv").open(newline="") as fh:
        listed = list(csv.DictReader(fh))
    assert [(row["image"], row["reason"]) for row in listed] == [
        (f"images/{absent}", "absent"),
        (f"images/{broken}", "unreadable"),
        (f"images/{huge}", "unreadable"),
    ]
    assert "decompression bomb" in listed[2]["detail"].lower()
    report = _report(out)
    validate_document(report)
    assert report["provenance"]["left_out_absent"] == 1
    assert report["provenance"]["left_out_unreadable"] == 2
    assert report["n_images"] == N - 3
    truths = [t for name, t in zip(nih.images, nih.pneumothorax, strict=True) if name not in bad]
    assert report["labels"][0]["n_positive"] == sum(truths)
    assert "3\n(1 absent, 2 unreadable)" in (out / "report.html").read_text()
    # Calibration on the same copy records how many images it left out.
    args = ["models", "calibrate", "perfect", str(nih.root), "--layout", "nih", "--split", "all"]
    args += ["--target-sensitivity", "0.9", "--workers", "0", "--skip-bad-images"]
    assert main(args) == 0
    assert "left out 3 images (1 absent, 2 unreadable)" in capsys.readouterr().out
    card = yaml.safe_load((models / "perfect" / "1.0.1" / "card.yaml").read_text())
    source = card["outputs"]["labels"][0]["threshold_source"]
    assert source["n_left_out"] == 3 and source["n"] == N - 3
    # A clean run lists nobody (the file has its header only).
    (images / absent).write_bytes((images / nih.images[0]).read_bytes())
    for name in (broken, huge):
        (images / name).write_bytes((images / nih.images[0]).read_bytes())
    clean = tmp_path / "clean"
    assert _bench("perfect", nih.root, clean, "--skip-bad-images") == 0
    assert (clean / "left_out.csv").read_text() == "image,reason,detail\n"
    assert _report(clean)["provenance"]["left_out_unreadable"] == 0
