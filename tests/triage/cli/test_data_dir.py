"""``--data-dir`` and ``--config`` on the commands that open the store: real invocations.

Each command runs in-process through :func:`triage.cli.main`, in an empty working directory with
no ``TRIAGE_*`` variables, so the only way it can find the store is the option under test.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
import typer

from triage.cli import app, main
from triage.cli.options import PRECEDENCE

PASSWORD = "s3cret-password"


def _users(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """Run ``triage users ARGS``, expect success, return its stdout."""
    assert main(["users", *args]) == 0, capsys.readouterr().err
    return capsys.readouterr().out


def _add(monkeypatch: pytest.MonkeyPatch, name: str, *where: str) -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    return main(["users", "add", name, "--role", "radiologist", "--password-stdin", *where])


def test_every_users_command_works_on_the_data_dir_given(
    tmp_path: Path,
    clean_cli_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data, other = tmp_path / "d", tmp_path / "other"
    assert _add(monkeypatch, "alice", "--data-dir", str(data)) == 0
    assert "added alice" in capsys.readouterr().out
    assert (data / "triage.db").is_file()
    assert not (clean_cli_env / "var").exists()  # the default was not touched

    assert "alice\tradiologist" in _users(capsys, "list", "--data-dir", str(data))
    assert "alice" not in _users(capsys, "list", "--data-dir", str(other))

    assert main(["users", "token", "alice", "--data-dir", str(data)]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip().startswith("wl_")
    found = re.search(r"token id (\d+)", captured.err)
    assert found is not None, captured.err
    token_id = found.group(1)
    assert main(["users", "token", "alice", "--data-dir", str(other)]) == 2  # no alice there
    capsys.readouterr()

    listed = _users(capsys, "tokens", "alice", "--data-dir", str(data))
    assert re.search(rf"^{token_id}\t\S+\talice\t.*\tactive$", listed, re.MULTILINE), listed
    assert "no API tokens" in _users(capsys, "tokens", "--data-dir", str(other))

    assert "revoked token" in _users(capsys, "revoke-token", token_id, "--data-dir", str(data))
    assert "revoked" in _users(capsys, "tokens", "--data-dir", str(data))

    assert "deactivated alice" in _users(capsys, "deactivate", "alice", "--data-dir", str(data))
    assert "alice\tradiologist\t\tinactive" in _users(capsys, "list", "--data-dir", str(data))
    assert "activated alice" in _users(capsys, "activate", "alice", "--data-dir", str(data))
    assert "alice\tradiologist\t\tactive" in _users(capsys, "list", "--data-dir", str(data))
    assert not (clean_cli_env / "var").exists()


def test_users_commands_take_the_data_dir_from_config(
    tmp_path: Path,
    clean_cli_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = tmp_path / "from-file"
    cfg = tmp_path / "site.toml"
    cfg.write_text(f"[worklist]\ndata_dir = {json.dumps(str(data))}\n")
    assert _add(monkeypatch, "bob", "--config", str(cfg)) == 0
    capsys.readouterr()
    assert (data / "triage.db").is_file()
    assert "bob\tradiologist" in _users(capsys, "list", "--config", str(cfg))
    # The root option names the same file; --data-dir beats the file.
    assert main(["--config", str(cfg), "users", "list"]) == 0
    assert "bob" in capsys.readouterr().out
    elsewhere = tmp_path / "elsewhere"
    assert "bob" not in _users(capsys, "list", "--config", str(cfg), "--data-dir", str(elsewhere))
    assert (elsewhere / "triage.db").is_file()


def _effective(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    assert main(["config", "show", "--json", *args]) == 0, capsys.readouterr().err
    shown: dict[str, Any] = json.loads(capsys.readouterr().out)
    return shown


def test_precedence_option_then_environment_then_file_then_default(
    tmp_path: Path,
    clean_cli_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cfg = tmp_path / "site.toml"
    cfg.write_text('[worklist]\ndata_dir = "file-dir"\n[models]\nmodels_dir = "file-models"\n')
    assert _effective(capsys)["worklist"]["data_dir"] == "var"
    assert _effective(capsys, "--config", str(cfg))["worklist"]["data_dir"] == "file-dir"
    monkeypatch.setenv("TRIAGE_WORKLIST_DATA_DIR", "env-dir")
    monkeypatch.setenv("TRIAGE_MODELS_MODELS_DIR", "env-models")
    shown = _effective(capsys, "--config", str(cfg))
    assert (shown["worklist"]["data_dir"], shown["models"]["models_dir"]) == (
        "env-dir",
        "env-models",
    )
    shown = _effective(capsys, "-c", str(cfg), "--data-dir", "opt-dir", "--models-dir", "opt-m")
    assert (shown["worklist"]["data_dir"], shown["models"]["models_dir"]) == ("opt-dir", "opt-m")
    # TRIAGE_CONFIG is the file's default; a ./triage.toml is read when nothing names one.
    monkeypatch.delenv("TRIAGE_WORKLIST_DATA_DIR")
    monkeypatch.setenv("TRIAGE_CONFIG", str(cfg))
    assert _effective(capsys)["worklist"]["data_dir"] == "file-dir"
    monkeypatch.delenv("TRIAGE_CONFIG")
    (clean_cli_env / "triage.toml").write_text('[worklist]\ndata_dir = "cwd-file"\n')
    assert _effective(capsys)["worklist"]["data_dir"] == "cwd-file"


def test_config_given_before_and_after_the_subcommand_must_agree(
    tmp_path: Path, clean_cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    one, two = tmp_path / "one.toml", tmp_path / "two.toml"
    one.write_text('[worklist]\ndata_dir = "one"\n')
    two.write_text('[worklist]\ndata_dir = "two"\n')
    assert main(["-c", str(one), "config", "show", "--config", str(two)]) == 2
    assert "--config" in capsys.readouterr().err
    assert main(["-c", str(one), "config", "show", "--json", "--config", str(one)]) == 0
    assert json.loads(capsys.readouterr().out)["worklist"]["data_dir"] == "one"


def _commands(group: Any, prefix: str = "") -> dict[str, Any]:
    """Every leaf command of the tree, by its full name (``users add``).

    Typer's commands are its vendored Click's; a group is whatever has subcommands.
    """
    found: dict[str, Any] = {}
    for name, command in group.commands.items():
        full = f"{prefix}{name}"
        if hasattr(command, "commands"):
            found.update(_commands(command, full + " "))
        else:
            found[full] = command
    return found


STORE_COMMANDS = {
    "users add",
    "users token",
    "users tokens",
    "users revoke-token",
    "users list",
    "users deactivate",
    "users activate",
    "worker",
    "web",
    "gateway",
    "serve",
    "config show",
    "models list",
    "models show",
    "models enable",
    "models disable",
    "models shadow",
    "models run",
    "models benchmark",
    "models calibrate",
}
"""The commands that open the store, the archive or the model statuses kept in the data folder
(``config show`` shows where they are)."""

REGISTRY_COMMANDS = {
    "models list",
    "models show",
    "models enable",
    "models disable",
    "models shadow",
    "models run",
    "models export",
    "models benchmark",
    "models calibrate",
    "worker",
    "web",
    "serve",
    "config show",
}
"""The commands that open the model registry or write into models_dir."""


def test_the_shared_options_are_declared_once_and_reused() -> None:
    root = typer.main.get_command(app)
    commands = _commands(root)
    options: dict[str, dict[str, Any]] = {}
    for name, command in commands.items():
        for param in command.params:
            if param.name in {"config_file", "data_dir", "models_dir"}:
                options.setdefault(param.name, {})[name] = param
    assert set(options["data_dir"]) == STORE_COMMANDS
    assert set(options["models_dir"]) == REGISTRY_COMMANDS
    assert set(options["config_file"]) >= STORE_COMMANDS | REGISTRY_COMMANDS | {"models validate"}
    root_config: Any = next(p for p in root.params if p.name == "config_file")
    for name, by_command in options.items():
        first = next(iter(by_command.values()))
        for param in by_command.values():  # same flags, same default, same words
            assert (param.opts, param.default, param.help) == (
                first.opts,
                first.default,
                first.help,
            )
        if name == "config_file":
            assert (root_config.opts, root_config.help) == (first.opts, first.help)
            assert first.help is not None and PRECEDENCE in first.help
