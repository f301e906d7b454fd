"""Store rows for the query tests: studies, series and instances without archive files."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydicom.uid import generate_uid

from worklist.db.engine import Database
from worklist.db.schema import Instance, Series, Study

__all__ = ["QueryRows", "add_query_study"]

CR_IMAGE = "1.2.840.10008.5.1.4.1.1.1"
SR_DOCUMENT = "1.2.840.10008.5.1.4.1.1.88.34"


@dataclass
class QueryRows:
    """The UIDs of a study added by :func:`add_query_study`."""

    uid: str
    series: list[str] = field(default_factory=list)
    instances: list[str] = field(default_factory=list)


def add_query_study(
    db: Database, *, series: tuple[tuple[str, int], ...] = (("CR", 1),), **study: str
) -> QueryRows:
    """Insert a study with ``series`` (modality, number of instances) and study ``fields``.

    Parameters
    ----------
    db : worklist.db.engine.Database
        The store.
    series : tuple of (str, int), optional
        Per series its modality and how many instances (SR series get an SR SOP class).
    **study : str
        Columns of :class:`~worklist.db.schema.Study` (``patient_name``, ``study_date``...).

    Returns
    -------
    QueryRows
        The UIDs added.
    """
    rows = QueryRows(generate_uid())
    modalities = "\\".join(dict.fromkeys(modality for modality, _ in series))
    with db.write() as s:
        row = Study(study_instance_uid=rows.uid, modalities=modalities, **study)
        s.add(row)
        s.flush()
        for number, (modality, count) in enumerate(series, start=1):
            series_row = Series(
                study_id=row.id,
                series_instance_uid=generate_uid(),
                modality=modality,
                series_number=str(number),
            )
            s.add(series_row)
            s.flush()
            rows.series.append(series_row.series_instance_uid)
            for index in range(1, count + 1):
                sop = generate_uid()
                s.add(
                    Instance(
                        study_id=row.id,
                        series_id=series_row.id,
                        sop_instance_uid=sop,
                        sop_class_uid=SR_DOCUMENT if modality == "SR" else CR_IMAGE,
                        transfer_syntax_uid="1.2.840.10008.1.2.1",
                        instance_number=str(index),
                        path=f"{rows.uid}/{series_row.series_instance_uid}/{sop}.dcm",
                        size_bytes=1,
                        sha256="0" * 64,
                    )
                )
                rows.instances.append(sop)
    return rows
