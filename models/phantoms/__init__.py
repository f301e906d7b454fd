"""Synthetic chest radiograph phantoms: the public face of the generator.

Phantoms are DX or CR DICOM datasets with plausible anatomy (body outline, lungs, mediastinum
and heart, ribs, clavicles, spine, lung markings, quantum noise, varying exposure) and any of
five findings drawn per image (:data:`FINDINGS`). They are labelled as synthetic in the
dataset itself and are deterministic for a seed. numpy and pydicom only: no torch.

Examples
--------
>>> from models.phantoms import generate_phantom
>>> ph = generate_phantom(7, ["pneumothorax"], priority="STAT", size=384)
>>> ph.labels["pneumothorax"], ph.dataset.Modality in {"DX", "CR"}
(1, True)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from models.phantoms.names import FINDINGS, LAYOUTS, PRIORITIES

if TYPE_CHECKING:
    from models.phantoms.core import Phantom, PhantomError, generate_phantom
    from models.phantoms.dicom import SYNTHETIC_NOTICE
    from models.phantoms.layouts import display_image, phantom_seed, write_dataset

__all__ = [
    "FINDINGS",
    "LAYOUTS",
    "PRIORITIES",
    "SYNTHETIC_NOTICE",
    "Phantom",
    "PhantomError",
    "display_image",
    "generate_phantom",
    "phantom_seed",
    "write_dataset",
]

_LAZY = {
    "Phantom": "core",
    "PhantomError": "core",
    "generate_phantom": "core",
    "SYNTHETIC_NOTICE": "dicom",
    "display_image": "layouts",
    "phantom_seed": "layouts",
    "write_dataset": "layouts",
}
"""Names whose modules need numpy, pydicom or Pillow: imported on first use, so that
``models.phantoms.names`` (and the ``triage`` command tree built from it) stays light."""


def __getattr__(name: str) -> Any:
    """Import a heavy name from its submodule on first use (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
