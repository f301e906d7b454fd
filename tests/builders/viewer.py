"""The OHIF viewer's dist for the viewer tests: the one the install script put here, or a fake."""

from __future__ import annotations

from pathlib import Path

from tests.builders import REPO
from worklist.web.routers.viewer import DEFAULT_VIEWER_DIR

__all__ = ["INSTALL_SCRIPT", "fake_dist", "installed_dist"]

INSTALL_SCRIPT = REPO / "scripts" / "install-viewer.sh"


def installed_dist() -> Path:
    """Return the dist ``scripts/install-viewer.sh`` installed (``make test`` runs it first).

    Returns
    -------
    pathlib.Path
        ``worklist/web/viewer_dist``.

    Raises
    ------
    AssertionError
        When it is not installed: a missing viewer is a failure, never a skip.
    """
    stamp = DEFAULT_VIEWER_DIR / ".installed"
    assert stamp.is_file(), f"the OHIF viewer is not installed: run {INSTALL_SCRIPT}"
    return DEFAULT_VIEWER_DIR


def fake_dist(root: Path) -> Path:
    """Write a minimal dist (index.html, one chunk, one wasm file and the install stamp).

    Parameters
    ----------
    root : pathlib.Path
        The folder to write (created).

    Returns
    -------
    pathlib.Path
        ``root``.
    """
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text("<!doctype html><title>OHIF</title><div id=root></div>")
    (root / "app.bundle.0123abcd.js").write_text("console.log('ohif');\n")
    (root / "0ddf166f7a343eda.wasm").write_bytes(b"\0asm\1\0\0\0")
    (root / "assets" / "logo.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    (root / ".installed").write_text("@ohif/app@0.0.0 sha512-fake\n")
    return root
