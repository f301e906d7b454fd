"""``triage --version``: the version of the installed distribution, from its metadata."""

from __future__ import annotations

import importlib
import importlib.metadata
import subprocess
import sys
import tomllib

import pytest

from tests.builders import REPO
from triage.cli import main

ROOT = REPO


def _distribution() -> str:
    """The distribution name that pyproject.toml declares."""
    with (ROOT / "pyproject.toml").open("rb") as fh:
        name: str = tomllib.load(fh)["project"]["name"]
    return name


def test_version_prints_the_installed_metadata_version(
    capsys: pytest.CaptureFixture[str],
) -> None:
    expected = f"triage {importlib.metadata.version(_distribution())}\n"
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == expected
    # Eager: it answers before any subcommand or settings file is looked at.
    assert main(["--version", "users", "list", "--config", "/no/such/file.toml"]) == 0
    assert capsys.readouterr().out == expected


def test_version_from_the_console_entry_point() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "triage", "--version"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"triage {importlib.metadata.version(_distribution())}\n"


def test_version_says_so_when_the_distribution_is_not_installed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # By the module object: ``triage.cli.app`` as a dotted name is the Typer app it exports.
    monkeypatch.setattr(
        importlib.import_module("triage.cli.app"), "DISTRIBUTION", "no-such-distribution"
    )
    assert main(["--version"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "the no-such-distribution distribution is not installed" in captured.err
