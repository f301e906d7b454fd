from __future__ import annotations

import io
import json
import logging
import sys
from pathlib import Path

import pytest

from triage.cli import main
from triage.cli.app import setup_logging


def test_config_show_json_reflects_file_env_and_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "triage.toml"
    cfg.write_text('[gateway]\nport = 4242\nae_title = "FROM_FILE"\n')
    monkeypatch.setenv("TRIAGE_GATEWAY_AE_TITLE", "FROM_ENV")
    assert main(["--config", str(cfg), "config", "show", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["gateway"]["port"] == 4242
    assert shown["gateway"]["ae_title"] == "FROM_ENV"  # environment beats the file
    assert shown["worklist"]["data_dir"] == "var"  # default


def test_config_errors_are_clear(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[gateway]\nport = 99999\n")
    assert main(["--config", str(bad), "config", "show"]) == 2
    err = capsys.readouterr().err
    assert "[gateway]" in err and "port" in err
    bad.write_text("[nonsense]\nx = 1\n")
    assert main(["--config", str(bad), "config", "show"]) == 2
    assert "unknown table" in capsys.readouterr().err
    assert main(["--config", str(tmp_path / "missing.toml"), "config", "show"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_unknown_command_is_usage_error() -> None:
    assert main(["no-such-command"]) == 2


def test_log_lines_go_to_the_current_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    # A thread that logs after the stderr it started with was closed (a test's capture, a
    # redirected console) must not end in a "Logging error": the handler follows sys.stderr.
    root = logging.getLogger()
    before = list(root.handlers)
    level = root.level
    first, second = io.StringIO(), io.StringIO()
    try:
        monkeypatch.setattr(sys, "stderr", first)
        setup_logging("INFO")
        logging.getLogger("tests.cli").info("one")
        first.close()
        monkeypatch.setattr(sys, "stderr", second)
        logging.getLogger("tests.cli").info("two")
    finally:
        for handler in root.handlers:
            if handler not in before:
                root.removeHandler(handler)
        root.setLevel(level)
    assert "tests.cli: two" in second.getvalue()
