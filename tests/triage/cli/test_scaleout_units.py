"""The region's process-manager units (deploy/systemd) and the options they rely on.

Every ``ExecStart`` of the templated systemd units, with its specifiers filled in, must be
accepted by the ``triage`` command line's own argument parsing (options, types, the
subcommand), and every process of a region takes the store's URL as ``--database-url``.
"""

from __future__ import annotations

import configparser
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer

from tests.builders import REPO
from tests.builders.peers import free_port
from triage.cli import app, main
from triage.settings import AppConfig
from worklist.settings import WorklistSettings

UNITS = REPO / "deploy" / "systemd"
SPECIFIERS = {"%i": "11112", "%H": "node1", "%p": "triage-unit", "%%": "%"}


def _unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys keep their case
    parser.read(path)
    return parser


def _parse(argv: list[str]) -> tuple[str, dict[str, Any]]:
    """Parse ``triage ARGV`` as the command line would, without running it."""
    root: Any = typer.main.get_command(app)  # a group: it resolves subcommands
    with root.make_context("triage", list(argv), resilient_parsing=False) as ctx:
        # Typer's vendored Click keeps the subcommand's name apart from its arguments.
        words = [*getattr(ctx, "_protected_args", []), *ctx.args]
        name, command, rest = root.resolve_command(ctx, words)
        assert command is not None and name is not None
        with command.make_context(name, rest, parent=ctx) as sub:
            return name, dict(sub.params)


@pytest.mark.parametrize("name", ["triage-gateway@", "triage-worker@", "triage-web@"])
def test_each_unit_starts_its_command_with_options_the_cli_accepts(name: str) -> None:
    unit = _unit(UNITS / f"{name}.service")
    assert set(unit.sections()) == {"Unit", "Service", "Install"}
    service = unit["Service"]
    assert service["Restart"] == "always" and service["KillSignal"] == "SIGTERM"
    assert service["EnvironmentFile"] == "/etc/triage/region.env"
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    line = service["ExecStart"]
    for spec, value in SPECIFIERS.items():
        line = line.replace(spec, value)
    program, *argv = shlex.split(line)
    assert program == "/opt/triage/.venv/bin/triage"
    command, params = _parse(argv)
    assert f"triage-{command}@" == name
    assert params["data_dir"] == Path(f"/var/lib/triage/{command}-11112")
    if command in ("gateway", "web"):
        assert params["port"] == 11112
    if command == "worker":
        assert params["worker_id"] == "node1-worker-11112"


def test_region_env_example_names_only_known_settings() -> None:
    from dicom_gateway.settings import GatewaySettings
    from models.settings import ModelsSettings
    from triage.settings import TriageSettings

    fields = {
        f"{cls.model_config.get('env_prefix', '')}{name}".upper()
        for cls in (GatewaySettings, ModelsSettings, TriageSettings, WorklistSettings)
        for name in cls.model_fields
    }
    lines = (UNITS / "region.env.example").read_text().splitlines()
    names = [ln.split("=", 1)[0] for ln in lines if ln and not ln.startswith("#")]
    assert names and set(names) <= fields, set(names) - fields


@pytest.mark.parametrize(
    ("command", "runner"),
    [
        (["gateway"], "dicom_gateway.service.run_gateway"),
        (["worker"], "triage.worker.run_worker"),
        (["web"], "worklist.web.app.run_web"),
    ],
)
def test_every_region_process_takes_the_database_url(
    command: list[str], runner: str, monkeypatch: pytest.MonkeyPatch, clean_cli_env: Path
) -> None:
    seen: list[Any] = []
    monkeypatch.setattr(runner, lambda *args, **kwargs: seen.append(args))
    url = "postgresql+psycopg://triage@db.example:5432/triage"
    assert main([*command, "--database-url", url]) == 0
    (args,) = seen
    worklist = [a.worklist if isinstance(a, AppConfig) else a for a in args]
    (settings,) = [w for w in worklist if isinstance(w, WorklistSettings)]
    assert settings.database_url == url


def test_a_process_started_while_the_store_is_down_exits_with_one_line(
    clean_cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"postgresql+psycopg://triage:s3cret@127.0.0.1:{free_port()}/triage"
    assert main(["worker", "--database-url", url]) != 0
    err = capsys.readouterr().err
    assert "error: cannot reach the store at" in err and "Traceback" not in err
    assert "s3cret" not in err
