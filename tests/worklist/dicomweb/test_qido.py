"""QIDO-RS matching and DICOM JSON building over a real store (no HTTP)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from sqlalchemy.orm import Session

from tests.builders.dicom import make_dataset
from tests.builders.store import store_instance
from worklist.archive import Archive
from worklist.db.engine import Database
from worklist.dicomweb.attributes import Level
from worklist.dicomweb.errors import WrongQueryError
from worklist.dicomweb.qido import SearchResult, search
from worklist.ingest.recorder import Ingestor

BASE = "http://server/dicom-web"


def _study(
    ingestor: Ingestor,
    *,
    name: str,
    date: str,
    modalities: tuple[str, ...],
    per_series: int = 2,
    time: str = "101500",
) -> str:
    study_uid = generate_uid()
    for number, modality in enumerate(modalities, start=1):
        series_uid = generate_uid()
        for i in range(per_series):
            ds: Dataset = make_dataset(
                study_uid=study_uid,
                series_uid=series_uid,
                modality=modality,
                seed=i,
                series_number=number,
                instance_number=i + 1,
            )
            ds.PatientName = name
            ds.StudyDate = date
            ds.StudyTime = time
            ds.ReferringPhysicianName = "REFERRER^RITA"
            ds.SeriesDescription = f"{modality} series {number}"
            store_instance(ingestor, ds)
    return study_uid


@pytest.fixture
def stored(sqlite_db: Database, tmp_path: Path) -> tuple[Database, Path, dict[str, str]]:
    archive = tmp_path / "archive"
    ingestor = Ingestor(sqlite_db, Archive(archive))
    uids = {
        "doe": _study(ingestor, name="DOE^JOHN", date="20240105", modalities=("CR",)),
        "doe2": _study(ingestor, name="Doe^Jane", date="20240220", modalities=("CT", "DX")),
        "roe": _study(
            ingestor, name="ROE^RICHARD", date="20231231", modalities=("MR",), time="231000"
        ),
    }
    return sqlite_db, archive, uids


def _run(
    stored: tuple[Database, Path, dict[str, str]],
    params: list[tuple[str, str]],
    level: Level = Level.STUDY,
    **kwargs: str,
) -> SearchResult:
    db, archive, _ = stored
    with db.read() as session:
        assert isinstance(session, Session)
        return search(session, level, params, base_url=BASE, archive_root=archive, **kwargs)


def _uids(result: SearchResult, tag: str = "0020000D") -> set[str]:
    return {item[tag]["Value"][0] for item in result.items}


def test_all_studies_with_the_attributes_ohif_reads(
    stored: tuple[Database, Path, dict[str, str]],
) -> None:
    result = _run(stored, [])
    uids = stored[2]
    assert _uids(result) == set(uids.values())
    doe2 = next(i for i in result.items if i["0020000D"]["Value"] == [uids["doe2"]])
    assert doe2["00201206"] == {"vr": "IS", "Value": [2]}  # series
    assert doe2["00201208"] == {"vr": "IS", "Value": [4]}  # instances
    assert sorted(doe2["00080061"]["Value"]) == ["CT", "DX"]
    assert doe2["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": "Doe^Jane"}]}
    assert doe2["00081030"]["Value"] == ["Synthetic study"]
    assert doe2["00081190"]["Value"] == [f"{BASE}/studies/{uids['doe2']}"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ([("PatientName", "DOE*")], {"doe", "doe2"}),  # wildcard, case-insensitive for PN
        ([("PatientName", "doe^j?hn")], {"doe"}),
        ([("00100010", "ROE^RICHARD")], {"roe"}),  # by tag
        ([("StudyDate", "20240101-")], {"doe", "doe2"}),
        ([("StudyDate", "-20240131")], {"doe", "roe"}),
        ([("StudyDate", "20240101-20240131")], {"doe"}),
        ([("StudyDate", "20231231")], {"roe"}),
        ([("StudyTime", "2300-")], {"roe"}),
        ([("StudyTime", "-1015")], {"doe", "doe2"}),  # inclusive at minute precision
        ([("ModalitiesInStudy", "CT")], {"doe2"}),
        ([("ModalitiesInStudy", "MR,CR")], {"doe", "roe"}),
        ([("PatientName", "DOE*"), ("ModalitiesInStudy", "CR")], {"doe"}),
        ([("PatientName", ""), ("fuzzymatching", "true")], {"doe", "doe2", "roe"}),
        ([("PatientName", "NOBODY")], set()),
    ],
)
def test_study_matching(
    stored: tuple[Database, Path, dict[str, str]],
    params: list[tuple[str, str]],
    expected: set[str],
) -> None:
    uids = stored[2]
    assert _uids(_run(stored, params)) == {uids[k] for k in expected}


def test_uid_list_matching(stored: tuple[Database, Path, dict[str, str]]) -> None:
    uids = stored[2]
    both = f"{uids['doe']},{uids['roe']}"
    assert _uids(_run(stored, [("StudyInstanceUID", both)])) == {uids["doe"], uids["roe"]}


def test_limit_and_offset_page_through(stored: tuple[Database, Path, dict[str, str]]) -> None:
    pages = [_run(stored, [("limit", "2"), ("offset", str(o))]) for o in (0, 2, 4)]
    assert [len(p.items) for p in pages] == [2, 1, 0]
    assert set().union(*(_uids(p) for p in pages)) == set(stored[2].values())


def test_includefield_reads_what_the_store_does_not_keep(
    stored: tuple[Database, Path, dict[str, str]],
) -> None:
    (item,) = _run(
        stored, [("PatientName", "ROE*"), ("includefield", "ReferringPhysicianName")]
    ).items
    assert item["00080090"]["Value"] == [{"Alphabetic": "REFERRER^RITA"}]
    (plain,) = _run(stored, [("PatientName", "ROE*")]).items
    assert "00080090" not in plain
    # A series attribute asked of a study (OHIF asks for Modality) is not read from a file.
    (study,) = _run(stored, [("PatientName", "ROE*"), ("includefield", "00080060")]).items
    assert "00080060" not in study
    assert study["00080061"]["Value"] == ["MR"]


def test_includefield_all_at_instance_level(stored: tuple[Database, Path, dict[str, str]]) -> None:
    uid = stored[2]["doe"]
    result = _run(stored, [("includefield", "all")], Level.INSTANCE, study_uid=uid)
    assert len(result.items) == 2
    for item in result.items:
        assert item["00280010"]["Value"] == [16]  # Rows, from the file
        assert item["00080016"]["Value"]  # SOP Class UID
        assert item["00083002"]["Value"] == ["1.2.840.10008.1.2.1"]
        assert item["0020000D"]["Value"] == [uid]


def test_series_of_a_study_and_series_matching(
    stored: tuple[Database, Path, dict[str, str]],
) -> None:
    uid = stored[2]["doe2"]
    result = _run(stored, [], Level.SERIES, study_uid=uid)
    assert sorted(i["00080060"]["Value"][0] for i in result.items) == ["CT", "DX"]
    assert all(i["00201209"]["Value"] == [2] for i in result.items)
    ct = _run(stored, [("Modality", "CT")], Level.SERIES, study_uid=uid)
    assert [i["0008103E"]["Value"] for i in ct.items] == [["CT series 1"]]
    assert [i["00200011"]["Value"] for i in ct.items] == [[1]]


def test_unsupported_keys_and_fuzzy_matching_are_warned(
    stored: tuple[Database, Path, dict[str, str]],
) -> None:
    result = _run(stored, [("ReferringPhysicianName", "X*"), ("fuzzymatching", "true")])
    assert len(result.items) == 3  # not matched, so not filtered
    assert any("ReferringPhysicianName" in w for w in result.warnings)
    assert any("fuzzymatching" in w for w in result.warnings)


@pytest.mark.parametrize("params", [[("limit", "many")], [("offset", "-1")], [("NoSuchKey", "1")]])
def test_malformed_queries_are_refused(
    stored: tuple[Database, Path, dict[str, str]], params: list[tuple[str, str]]
) -> None:
    with pytest.raises(WrongQueryError):
        _run(stored, params)
