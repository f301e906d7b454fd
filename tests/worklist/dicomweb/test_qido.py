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
from worklist.query.matching import InvalidKeyError
from worklist.web.errors import status_for

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


def _store(db: Database, archive: Path) -> tuple[Database, Path, dict[str, str]]:
    ingestor = Ingestor(db, Archive(archive))
    uids = {
        "doe": _study(ingestor, name="DOE^JOHN", date="20240105", modalities=("CR",)),
        "doe2": _study(ingestor, name="Doe^Jane", date="20240220", modalities=("CT", "DX")),
        "roe": _study(
            ingestor, name="ROE^RICHARD", date="20231231", modalities=("MR",), time="231000"
        ),
    }
    return db, archive, uids


@pytest.fixture
def stored(sqlite_db: Database, tmp_path: Path) -> tuple[Database, Path, dict[str, str]]:
    """Three studies on SQLite (for tests that are not about the backend)."""
    return _store(sqlite_db, tmp_path / "archive")


@pytest.fixture
def stored_on_both(db: Database, tmp_path: Path) -> tuple[Database, Path, dict[str, str]]:
    """The same three studies on SQLite and on PostgreSQL."""
    return _store(db, tmp_path / "archive")


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


def test_matching_follows_ps3_4_as_c_find_does(
    stored_on_both: tuple[Database, Path, dict[str, str]],
) -> None:
    """QIDO-RS matches with the C-FIND SCP's matcher (PS3.4 C.2.2.2, as PS3.18 8.3.4 asks).

    Before one matcher served both, QIDO-RS ignored case in wild cards on SQLite (LIKE), took
    ``*`` and ``?`` as wild cards in dates, times and numbers, and matched a list of modalities
    only literally.
    """
    uids = stored_on_both[2]

    def found(*params: tuple[str, str]) -> set[str]:
        by_uid = {uid: name for name, uid in uids.items()}
        return {by_uid[u] for u in _uids(_run(stored_on_both, list(params)))}

    everyone = {"doe", "doe2", "roe"}
    # Wild cards are case-sensitive, except in person names (C.2.2.2.1, C.2.2.2.4).
    assert found(("StudyDescription", "synthetic*")) == set()
    assert found(("StudyDescription", "Synthetic*")) == everyone
    assert found(("PatientName", "doe*")) == {"doe", "doe2"}
    # No wild cards in DA, TM or IS values: "*" and "?" are single value matching there.
    assert found(("StudyDate", "2024*")) == set()
    assert found(("StudyTime", "23????")) == set()
    # Several modalities (commas or backslashes), each with wild cards.
    assert found(("ModalitiesInStudy", "C?,MR")) == everyone
    assert found(("ModalitiesInStudy", "D*\\M?")) == {"doe2", "roe"}
    doe2 = uids["doe2"]
    series = _run(stored_on_both, [("Modality", "c?")], Level.SERIES, study_uid=doe2)
    assert series.items == []
    series = _run(stored_on_both, [("SeriesNumber", "?")], Level.SERIES, study_uid=doe2)
    assert series.items == []
    series = _run(stored_on_both, [("SeriesNumber", "2")], Level.SERIES, study_uid=doe2)
    assert [i["00080060"]["Value"] for i in series.items] == [["DX"]]


@pytest.mark.parametrize("value", ["-", "2024-01-01", "20240101-20240131-"])
def test_malformed_ranges_are_refused_as_c_find_refuses_them(
    stored: tuple[Database, Path, dict[str, str]], value: str
) -> None:
    """A date range with no bound or more than one hyphen is refused (it matched before)."""
    with pytest.raises(InvalidKeyError, match="range") as refused:
        _run(stored, [("StudyDate", value)])
    assert status_for(refused.value) == 422
