"""End to end: ``triage serve`` in a subprocess, DCMTK ``storescu`` as the modality, the API."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from models.phantoms import generate_phantom
from tests.builders.peers import dcmtk, free_port, wait_for_port

pytestmark = [pytest.mark.dcmtk, pytest.mark.slow]

# Seeds whose phantoms are drawn with exactly the findings asked for (deterministic).
NORMAL_SEED = 101
PNEUMOTHORAX_SEED = 202


def _triage(data_dir: Path, *args: str, stdin: str | None = None) -> str:
    env = {**os.environ, "TRIAGE_WORKLIST_DATA_DIR": str(data_dir)}
    done = subprocess.run(
        [sys.executable, "-m", "triage", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def served(tmp_path: Path) -> Iterator[dict[str, Any]]:
    data = tmp_path / "var"
    _triage(
        data,
        "users",
        "add",
        "reader",
        "--role",
        "radiologist",
        "--password-stdin",
        stdin="s3cret-pass\n",
    )
    token = _triage(data, "users", "token", "reader").strip().splitlines()[-1]
    dicom_port, http_port = free_port(), free_port()
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "triage",
            "serve",
            "--data-dir",
            str(data),
            "--dicom-port",
            str(dicom_port),
            "--http-port",
            str(http_port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for_port(dicom_port, 120)
        wait_for_port(http_port, 120)
        yield {"dicom_port": dicom_port, "http_port": http_port, "token": token, "dir": tmp_path}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def test_pneumothorax_study_is_p1_and_listed_first(served: dict[str, Any]) -> None:
    files = []
    for name, seed, findings in (
        ("normal", NORMAL_SEED, []),
        ("ptx", PNEUMOTHORAX_SEED, ["pneumothorax"]),
    ):
        phantom = generate_phantom(seed, findings, priority="ROUTINE")
        path = served["dir"] / f"{name}.dcm"
        phantom.dataset.save_as(path, enforce_file_format=True)
        files.append((name, path, str(phantom.dataset.StudyInstanceUID)))
    for _, path, _ in files:
        subprocess.run(
            [
                dcmtk("storescu"),
                "-aec",
                "ICS_TRIAGE",
                "-aet",
                "CDC_A",
                "127.0.0.1",
                str(served["dicom_port"]),
                str(path),
            ],
            check=True,
            timeout=60,
        )
    with httpx.Client(
        base_url=f"http://127.0.0.1:{served['http_port']}",
        headers={"Authorization": f"Bearer {served['token']}"},
    ) as client:
        _check_triage(client, {name: uid for name, _, uid in files}, served["dir"])


def _check_triage(client: httpx.Client, uids: dict[str, str], tmp: Path) -> None:
    deadline = time.monotonic() + 90
    items: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        response = client.get("/api/v1/studies")
        assert response.status_code == 200, response.text
        items = response.json()["items"]
        if {i["study_instance_uid"] for i in items if i["state"] == "triaged"} >= set(
            uids.values()
        ):
            break
        time.sleep(0.2)
    else:
        log = (tmp / "serve.log").read_text()
        pytest.fail(f"studies not triaged in time: {items}\n{log[-4000:]}")
    by_uid = {i["study_instance_uid"]: i for i in items}
    ptx, normal = by_uid[uids["ptx"]], by_uid[uids["normal"]]
    assert ptx["clinical_priority"] == "P3" and normal["clinical_priority"] == "P3"
    assert ptx["priority"] == "P1", ptx
    assert normal["priority"] == "P3", normal
    assert ptx["ai_status"] == "done" and normal["ai_status"] == "done"
    explanation = str(ptx["explanation"]).lower()
    assert "pneumothorax" in explanation and "chest-phantom-demo" in explanation
    assert items[0]["study_instance_uid"] == uids["ptx"]
    detail = client.get(f"/api/v1/studies/{uids['ptx']}")
    assert detail.status_code == 200 and detail.json()["priority"] == "P1"
