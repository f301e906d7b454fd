"""``--data-dir``, ``--models-dir`` and ``--config`` on the long-running commands.

``triage worker``, ``web``, ``gateway`` and ``serve`` run until a signal; here the function each
one hands its settings to is replaced by a recorder, so the test sees exactly the settings the
command built from its options, without starting a server.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from triage.cli import main


@pytest.fixture
def no_signals(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the commands from installing SIGTERM/SIGINT handlers in the test process."""
    for module in ("worker_cmd", "web_cmd", "dicom_cmd", "serve_cmd"):
        monkeypatch.setattr(f"triage.cli.{module}.stop_on_signals", threading.Event)


def _site_file(tmp_path: Path) -> tuple[Path, Path, Path]:
    """Write a settings file naming a data dir and a models dir; return the three paths."""
    data, models = tmp_path / "file-data", tmp_path / "file-models"
    cfg = tmp_path / "site.toml"
    cfg.write_text(
        f"[worklist]\ndata_dir = {json.dumps(str(data))}\n"
        f"[models]\nmodels_dir = {json.dumps(str(models))}\n"
    )
    return cfg, data, models


def _points_at(worklist: Any, data: Path) -> None:
    assert worklist.data_dir == data
    assert worklist.effective_database_url == f"sqlite:///{(data / 'triage.db').resolve()}"
    assert worklist.effective_archive_dir == data / "archive"


@pytest.mark.usefixtures("clean_cli_env", "no_signals")
def test_worker_builds_its_settings_from_the_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[Any] = []
    monkeypatch.setattr("triage.worker.run_worker", lambda config, stop: seen.append(config))
    data, models = tmp_path / "d", tmp_path / "m"
    assert main(["worker", "--data-dir", str(data), "--models-dir", str(models)]) == 0
    cfg, file_data, file_models = _site_file(tmp_path)
    assert main(["worker", "--config", str(cfg)]) == 0
    assert main(["worker", "--config", str(cfg), "--data-dir", str(data)]) == 0
    _points_at(seen[0].worklist, data)
    assert seen[0].models.models_dir == models
    _points_at(seen[1].worklist, file_data)
    assert seen[1].models.models_dir == file_models
    _points_at(seen[2].worklist, data)  # the option beats the file
    assert seen[2].models.models_dir == file_models


@pytest.mark.usefixtures("clean_cli_env", "no_signals")
def test_web_builds_its_settings_from_the_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[Any, ...]] = []

    def record(worklist: Any, models: Any, host: str, port: int, stop: Any) -> None:
        seen.append((worklist, models, host, port))

    monkeypatch.setattr("worklist.web.app.run_web", record)
    data, models = tmp_path / "d", tmp_path / "m"
    argv = ["web", "--data-dir", str(data), "--models-dir", str(models), "--port", "9"]
    assert main(argv) == 0
    cfg, file_data, file_models = _site_file(tmp_path)
    assert main(["web", "--config", str(cfg)]) == 0
    _points_at(seen[0][0], data)
    assert (seen[0][1].models_dir, seen[0][3]) == (models, 9)
    _points_at(seen[1][0], file_data)
    assert seen[1][1].models_dir == file_models


@pytest.mark.usefixtures("clean_cli_env", "no_signals")
def test_gateway_builds_its_settings_from_the_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[Any, Any]] = []
    monkeypatch.setattr(
        "dicom_gateway.service.run_gateway",
        lambda gateway, worklist, stop: seen.append((gateway, worklist)),
    )
    data = tmp_path / "d"
    assert main(["gateway", "--data-dir", str(data), "--port", "11999"]) == 0
    cfg, file_data, _ = _site_file(tmp_path)
    assert main(["gateway", "--config", str(cfg)]) == 0
    assert seen[0][0].port == 11999
    _points_at(seen[0][1], data)
    _points_at(seen[1][1], file_data)


class _StartedError(Exception):
    """Raised by the stand-in gateway: ``serve`` got as far as starting its parts."""

    def __init__(self, worklist: Any) -> None:
        super().__init__("gateway started")
        self.worklist = worklist


class _FakeGateway:
    def __init__(self, gateway: Any, worklist: Any) -> None:
        raise _StartedError(worklist)


@pytest.mark.usefixtures("no_signals")
@pytest.mark.parametrize("how", ["option", "config"])
def test_serve_creates_its_store_in_the_data_dir(
    how: str, tmp_path: Path, clean_cli_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # serve creates (or migrates) the store before it starts any part; the gateway is the first
    # part it builds, and stands in here for all of them.
    monkeypatch.setattr("dicom_gateway.service.Gateway", _FakeGateway)
    cfg, file_data, _ = _site_file(tmp_path)
    data = tmp_path / "d" if how == "option" else file_data
    where = ["--data-dir", str(data)] if how == "option" else ["--config", str(cfg)]
    with pytest.raises(_StartedError) as started:
        main(["serve", *where])
    _points_at(started.value.worklist, data)
    assert (data / "triage.db").is_file()
    assert not (clean_cli_env / "var").exists()


@pytest.mark.usefixtures("no_signals")
def test_web_and_serve_take_the_tls_options(
    tmp_path: Path, clean_cli_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[Any] = []
    monkeypatch.setattr(
        "worklist.web.app.run_web", lambda worklist, *_a, **_k: seen.append(worklist)
    )
    monkeypatch.setattr("dicom_gateway.service.Gateway", _FakeGateway)
    pem, key, ca = tmp_path / "web.pem", tmp_path / "web.key", tmp_path / "ca.pem"
    tls = ["--tls-cert", str(pem), "--tls-key", str(key), "--tls-ca", str(ca)]
    assert main(["web", "--data-dir", str(tmp_path / "d"), *tls, "--tls-require-client-cert"]) == 0
    with pytest.raises(_StartedError) as started:
        main(["serve", "--data-dir", str(tmp_path / "d"), *tls])
    web, serve = seen[0], started.value.worklist
    assert (web.web_tls_certificate, web.web_tls_private_key, web.web_tls_ca_bundle) == (
        pem,
        key,
        ca,
    )
    assert web.web_tls_require_client_certificate
    assert (serve.web_tls_certificate, serve.web_tls_private_key) == (pem, key)
    assert not serve.web_tls_require_client_certificate
