"""Matching of PS3.4 C.2.2 over the store, on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest

from tests.builders.query import QueryRows, add_query_study
from worklist.db.engine import Database
from worklist.query.find import find, parse_level, retrieve
from worklist.query.keys import Level
from worklist.query.matching import InvalidKeyError, glob_pattern, like_pattern


@pytest.fixture
def rows(db: Database) -> dict[str, QueryRows]:
    """Four studies with names, dates, times, IDs and modalities that tell matching apart."""
    return {
        "jane": add_query_study(
            db,
            series=(("CT", 2), ("SR", 1)),
            patient_name="Doe^Jane",
            patient_id="A%B_1",
            study_date="20260105",
            study_time="101500",
            accession_number="ACC1",
            priority="P1",
        ),
        "john": add_query_study(
            db,
            patient_name="DOE^JOHN",
            patient_id="AXB_1",
            study_date="20260210",
            study_time="1430",
            accession_number="acc2",
        ),
        "smith": add_query_study(
            db,
            series=(("MR", 1),),
            patient_name="Smith^John",
            patient_id="[X]1",
            study_date="20251220",
            study_time="235959.123",
            accession_number="ACC3",
        ),
        "blank": add_query_study(db, patient_name="", study_date="", study_time=""),
    }


def _studies(db: Database, rows: dict[str, QueryRows], **keys: str) -> set[str]:
    by_uid = {r.uid: name for name, r in rows.items()}
    return {by_uid[m["StudyInstanceUID"]] for m in find(db, Level.STUDY, keys)}


def test_universal_matching_matches_every_study_even_empty_values(
    db: Database, rows: dict[str, QueryRows]
) -> None:
    everyone = {"jane", "john", "smith", "blank"}
    assert _studies(db, rows, PatientName="") == everyone
    assert _studies(db, rows, PatientName="*") == everyone
    assert _studies(db, rows, StudyDate="") == everyone


def test_person_names_match_whatever_their_case(db: Database, rows: dict[str, QueryRows]) -> None:
    assert _studies(db, rows, PatientName="doe^jane") == {"jane"}
    assert _studies(db, rows, PatientName="DOE*") == {"jane", "john"}
    assert _studies(db, rows, PatientName="*^john") == {"john", "smith"}
    assert _studies(db, rows, PatientName="d?e^j?n?") == {"jane"}
    assert _studies(db, rows, PatientName="Doe") == set()  # single value: the whole name


def test_other_text_matches_case_sensitively(db: Database, rows: dict[str, QueryRows]) -> None:
    assert _studies(db, rows, AccessionNumber="ACC*") == {"jane", "smith"}
    assert _studies(db, rows, AccessionNumber="acc?") == {"john"}
    assert _studies(db, rows, AccessionNumber="acc1") == set()
    assert _studies(db, rows, AccessionNumber="ACC1") == {"jane"}


def test_sql_wildcard_characters_in_values_are_literal(
    db: Database, rows: dict[str, QueryRows]
) -> None:
    assert _studies(db, rows, PatientID="A%B_1") == {"jane"}
    assert _studies(db, rows, PatientID="A%B*") == {"jane"}
    assert _studies(db, rows, PatientID="A?B_*") == {"jane", "john"}
    assert _studies(db, rows, PatientID="[X]*") == {"smith"}
    assert _studies(db, rows, PatientID="X*") == set()


def test_date_and_time_ranges(db: Database, rows: dict[str, QueryRows]) -> None:
    assert _studies(db, rows, StudyDate="20260101-20260131") == {"jane"}
    assert _studies(db, rows, StudyDate="20260105-20260210") == {"jane", "john"}
    assert _studies(db, rows, StudyDate="-20251231") == {"smith"}  # empty dates never match
    assert _studies(db, rows, StudyDate="20260106-") == {"john"}
    assert _studies(db, rows, StudyDate="20260210") == {"john"}
    assert _studies(db, rows, StudyTime="1000-1500") == {"jane", "john"}
    assert _studies(db, rows, StudyTime="-101500") == {"jane"}
    assert _studies(db, rows, StudyTime="2359-") == {"smith"}
    assert _studies(db, rows, StudyTime="-2359") == {"jane", "john", "smith"}  # 23:59:59.123
    assert _studies(db, rows, StudyTime="1430") == {"john"}


def test_times_hold_no_wild_cards(db: Database, rows: dict[str, QueryRows]) -> None:
    """``*`` and ``?`` in a TM value are literal (C.2.2.2.4): a time's prefix match took them as
    SQL wild cards, so ``14??`` matched 14:30."""
    assert _studies(db, rows, StudyTime="14??") == set()
    assert _studies(db, rows, StudyTime="1*") == set()
    assert _studies(db, rows, StudyTime="14") == {"john"}  # every time of that hour


def test_uid_lists_modalities_in_study_and_the_triage_priority(
    db: Database, rows: dict[str, QueryRows]
) -> None:
    listed = f"{rows['jane'].uid}\\{rows['smith'].uid}"
    assert _studies(db, rows, StudyInstanceUID=listed) == {"jane", "smith"}
    assert _studies(db, rows, ModalitiesInStudy="SR") == {"jane"}
    assert _studies(db, rows, ModalitiesInStudy="CT\\MR") == {"jane", "smith"}
    assert _studies(db, rows, ModalitiesInStudy="M?") == {"smith"}
    assert _studies(db, rows, TriagePriority="P1") == {"jane"}
    (jane,) = find(
        db,
        Level.STUDY,
        {
            "StudyInstanceUID": rows["jane"].uid,
            "ModalitiesInStudy": "",
            "NumberOfStudyRelatedSeries": "",
            "NumberOfStudyRelatedInstances": "",
            "StudyID": "",
        },
    )
    assert jane["ModalitiesInStudy"] == "CT\\SR"
    assert jane["NumberOfStudyRelatedSeries"] == "2"
    assert jane["NumberOfStudyRelatedInstances"] == "3"
    assert jane["StudyID"] == ""


def test_lower_levels_return_the_unique_keys_above(
    db: Database, rows: dict[str, QueryRows]
) -> None:
    jane = rows["jane"]
    series = find(db, Level.SERIES, {"StudyInstanceUID": jane.uid, "Modality": "SR"})
    assert series == [
        {"StudyInstanceUID": jane.uid, "SeriesInstanceUID": jane.series[1], "Modality": "SR"}
    ]
    images = find(db, Level.IMAGE, {"SeriesInstanceUID": jane.series[0], "InstanceNumber": "2"})
    assert [m["SOPInstanceUID"] for m in images] == [jane.instances[1]]
    assert images[0]["StudyInstanceUID"] == jane.uid
    assert images[0]["SeriesInstanceUID"] == jane.series[0]


def test_retrieve_lists_the_instances_of_the_level(
    db: Database, rows: dict[str, QueryRows]
) -> None:
    jane = rows["jane"]
    study = retrieve(db, Level.STUDY, {"StudyInstanceUID": jane.uid})
    assert [r.sop_instance_uid for r in study] == jane.instances
    series = retrieve(db, Level.SERIES, {"SeriesInstanceUID": jane.series[1]})
    assert [(r.sop_instance_uid, r.sop_class_uid) for r in series] == [
        (jane.instances[2], "1.2.840.10008.5.1.4.1.1.88.34")
    ]
    assert series[0].path.startswith(f"{jane.uid}/{jane.series[1]}/")
    image = retrieve(db, Level.IMAGE, {"SOPInstanceUID": jane.instances[0]})
    assert [r.sop_instance_uid for r in image] == [jane.instances[0]]


def test_refusals(db: Database, rows: dict[str, QueryRows]) -> None:
    with pytest.raises(InvalidKeyError, match="below the query level"):
        find(db, Level.STUDY, {"SOPInstanceUID": ""})
    with pytest.raises(InvalidKeyError, match="below the query level"):
        retrieve(db, Level.SERIES, {"SOPInstanceUID": rows["jane"].instances[0]})
    with pytest.raises(InvalidKeyError, match="range"):
        find(db, Level.STUDY, {"StudyDate": "2026-01-01-2026"})
    with pytest.raises(InvalidKeyError, match="range"):
        find(db, Level.STUDY, {"StudyDate": "-"})
    with pytest.raises(InvalidKeyError, match="QueryRetrieveLevel"):
        parse_level("PATIENT")
    assert parse_level("series ") is Level.SERIES


def test_patterns() -> None:
    assert like_pattern("a*b?c%d_e!") == "a%b_c!%d!_e!!"
    assert like_pattern("a*b?c%d_e!", wild=False) == "a*b?c!%d!_e!!"
    assert glob_pattern("[x]*?") == "[[]x]*?"
