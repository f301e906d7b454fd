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

from models.phantoms_core import FINDINGS, Phantom, PhantomError, generate_phantom
from models.phantoms_dicom import PRIORITIES, SYNTHETIC_NOTICE
from models.phantoms_layouts import LAYOUTS, display_image, phantom_seed, write_dataset

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
