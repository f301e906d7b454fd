"""Readers of public chest X-ray datasets in their published layouts.

One module per dataset (:mod:`~models.datasets.nih`, :mod:`~models.datasets.chexpert`,
:mod:`~models.datasets.mimic`, :mod:`~models.datasets.rsna`, :mod:`~models.datasets.siim`,
:mod:`~models.datasets.vindr`, :mod:`~models.datasets.padchest`, and our own
:mod:`~models.datasets.generic`), each a :class:`DatasetReader` in :data:`READERS` by layout
name. A reader yields one frozen :class:`Record` per image: its path, patient key, labels mapped
to a model card's label names by a YAML label map (``labels.yaml``), sex, age, view, site and
official split where the dataset has them. Missing files or columns raise
:class:`~models.errors.DatasetError` naming them.

Importing this package loads neither numpy nor pydicom; DICOM headers are read on demand.

Examples
--------
>>> from models.datasets import READERS
>>> sorted(READERS)
['chexpert', 'generic', 'mimic', 'nih', 'padchest', 'rsna', 'siim', 'vindr']
>>> READERS["chexpert"].evaluation_split, READERS["chexpert"].uncertain
('valid', True)
"""

from __future__ import annotations

from models.datasets import chexpert, generic, mimic, nih, padchest, rsna, siim, vindr
from models.datasets.base import (
    ALL,
    OFFICIAL,
    DatasetReader,
    LeftOut,
    Missing,
    ReadOptions,
    Record,
)
from models.datasets.labelmap import LabelMap, Uncertainty, load_label_map
from models.datasets.values import Sex
from models.errors import DatasetError

__all__ = [
    "ALL",
    "OFFICIAL",
    "READERS",
    "DatasetError",
    "DatasetReader",
    "LabelMap",
    "LeftOut",
    "Missing",
    "ReadOptions",
    "Record",
    "Sex",
    "Uncertainty",
    "load_label_map",
]

READERS: dict[str, DatasetReader] = {
    module.READER.name: module.READER
    for module in (generic, nih, chexpert, mimic, rsna, siim, vindr, padchest)
}
"""Every reader by layout name (the names of ``--layout``)."""
