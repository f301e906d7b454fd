"""The bundled demo model benchmarked on NIH-layout phantoms from a seed it never saw.

The issue asks for 500 phantoms; the test draws 100 at 256x256 to stay within about 30 s on two
cores (the 500 at full size is run by hand, see the changelog). The report must validate against
its schema, its HTML must load nothing from outside, and a rerun must write the same JSON. A run
killed part way is resumed from its cache.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from models.evaluation import validate_document
from models.phantoms import write_dataset
from tests.builders import REPO
from triage.cli import main

N = 100
SEED = 424242  # the demo model was trained on seed 0 and checked on seed 1
BUNDLED = REPO / "models" / "bundled"
EXTERNAL = re.compile(
    r"""(src|href)\s*=\s*["']?\s*(https?:)?//|url\(\s*["']?(https?:)?//|@import"""
)


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """N NIH-layout phantoms of an unseen seed."""
    root = tmp_path_factory.mktemp("nih")
    write_dataset(root, N, SEED, "nih", size=256)
    return root


@pytest.fixture
def demo_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Point ``triage`` at the bundled models on CPU."""
    monkeypatch.setenv("TRIAGE_MODELS_MODELS_DIR", str(BUNDLED))
    monkeypatch.setenv("TRIAGE_MODELS_PROVIDERS", '["CPUExecutionProvider"]')
    monkeypatch.delenv("TRIAGE_CONFIG", raising=False)


def _args(phantoms: Path, out: Path) -> list[str]:
    return [
        *("models", "benchmark", "chest-phantom-demo", str(phantoms), "--layout", "nih"),
        *("--split", "all", "--out", str(out), "--replicates", "100", "--seed", "7"),
    ]


def _json(out: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((out / "report.json").read_text())
    return document


def test_demo_report_validates_is_self_contained_and_reruns_identically(
    demo_env: None, phantoms: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert main([*_args(phantoms, out), "--workers", "2"]) == 0
    first = (out / "report.json").read_bytes()
    document = _json(out)
    validate_document(document)
    assert document["n_images"] == N
    assert document["provenance"]["model"] == "chest-phantom-demo"
    assert {label["name"] for label in document["labels"]} == {
        "pneumothorax",
        "pleural_effusion",
        "nodule_mass",
        "cardiomegaly",
        "consolidation",
    }
    assert all(label["auroc"]["value"] > 0.9 for label in document["labels"])
    html = (out / "report.html").read_text()
    assert "<img" in html or "<svg" in html
    assert EXTERNAL.search(html) is None, EXTERNAL.search(html)
    assert main([*_args(phantoms, out), "--workers", "2"]) == 0
    assert (out / "report.json").read_bytes() == first
    again = tmp_path / "again"  # a fresh folder: only the measured speed may differ
    assert main([*_args(phantoms, again), "--workers", "0"]) == 0
    fresh = _json(again)
    assert {**fresh, "throughput": None} == {**document, "throughput": None}


def test_a_killed_run_resumes_from_its_cache(
    demo_env: None, phantoms: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "triage", *_args(phantoms, out)]
    child = subprocess.Popen(
        [*command, "--workers", "0", "--batch-size", "1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    cache = out / "cache"
    deadline = time.monotonic() + 60
    done = 0
    while time.monotonic() < deadline and child.poll() is None:
        files = list(cache.glob("predictions-*.jsonl"))
        done = len(files[0].read_text().splitlines()) if files else 0
        if done >= 10:
            break
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert 10 <= done < N, f"the run was not caught part way ({done} images done)"
    assert not (out / "report.json").exists()
    capsys.readouterr()
    assert main([*_args(phantoms, out), "--workers", "0"]) == 0
    said = capsys.readouterr().out
    found = re.search(r"(\d+) scored, (\d+) from the cache", said)
    assert found is not None, said
    assert 0 < int(found.group(1)) <= N - done
    whole = tmp_path / "whole"
    assert main([*_args(phantoms, whole), "--workers", "0"]) == 0
    assert (out / "predictions.csv").read_bytes() == (whole / "predictions.csv").read_bytes()
    assert _json(out)["labels"] == _json(whole)["labels"]
