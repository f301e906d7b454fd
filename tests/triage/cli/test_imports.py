"""``import triage.cli`` stays light: heavy dependencies load only in the commands that use them.

Every ``triage`` invocation imports the whole command tree, so a module-level import of the store,
the web framework, DICOM or the model runtime in any subcommand module is paid by ``triage
--help`` and ``triage echo`` too (about 4 s before this was fixed). These tests check which
modules are loaded, in a fresh interpreter; they do not time anything.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from tests.builders import REPO

WATCHED = (
    "sqlalchemy",
    "alembic",
    "fastapi",
    "onnxruntime",
    "torch",
    "monai",
    "pydicom",
    "pynetdicom",
    "numpy",
    "PIL",
)
"""Packages whose import is watched; none of them is needed to build the command tree."""

PROBE = textwrap.dedent(
    """
    import contextlib
    import io
    import json
    import sys

    watched = json.loads(sys.argv[1])

    def loaded():
        return sorted(name for name in watched if name in sys.modules)

    import triage.cli

    report = {"after_import": loaded(), "help": {}}
    for argv in (["--help"], ["echo", "--help"]):
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            rc = triage.cli.main(argv)
        report["help"][" ".join(argv)] = {"rc": rc, "text": out.getvalue()}
    report["after_help"] = loaded()
    print(json.dumps(report))
    """
)


@pytest.fixture(scope="module")
def probe() -> dict[str, Any]:
    """Import ``triage.cli`` and ask for help in a fresh interpreter; return what it saw."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(WATCHED)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def test_importing_the_cli_loads_no_heavy_dependency(probe: dict[str, Any]) -> None:
    assert probe["after_import"] == [], (
        f"import triage.cli loaded {probe['after_import']}: import them inside the command "
        "functions that need them"
    )


def test_building_the_command_tree_for_help_loads_no_heavy_dependency(
    probe: dict[str, Any],
) -> None:
    # Typer resolves every command's parameter types (Role, Activation, ...) to build the tree.
    assert probe["after_help"] == [], f"triage --help loaded {probe['after_help']}"


def test_help_still_works(probe: dict[str, Any]) -> None:
    root = probe["help"]["--help"]
    assert root["rc"] == 0
    for command in ("echo", "send", "gateway", "serve", "web", "worker", "models", "users"):
        assert command in root["text"]
    echo = probe["help"]["echo --help"]
    assert echo["rc"] == 0
    assert "C-ECHO" in echo["text"]
    assert "--calling-aet" in echo["text"]
