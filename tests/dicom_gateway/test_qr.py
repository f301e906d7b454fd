"""The Query/Retrieve SCP driven by DCMTK's findscu, movescu, getscu and storescp."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from pydicom.dataset import Dataset
from pynetdicom import AE, build_context
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelMove,
)
from sqlalchemy import select, update

from dicom_gateway.qr import PRIORITY_ELEMENT, PRIVATE_CREATOR, PRIVATE_GROUP
from dicom_gateway.settings import GatewaySettings
from dicom_gateway.statuses import (
    IDENTIFIER_MISMATCH,
    MOVE_DESTINATION_UNKNOWN,
    PENDING,
    PENDING_WARNING,
    SUCCESS,
)
from tests.builders.gateway import GatewayFactory
from tests.builders.peers import free_port, fresh_postgres_db, storescu
from tests.builders.qr import (
    QRStudy,
    dataset_bytes,
    findscu,
    getscu,
    movescu,
    qr_studies,
    received,
    storescp,
)
from triage.settings_load import load_config
from worklist.db.engine import Database
from worklist.db.schema import Event, Instance, Study

pytestmark = pytest.mark.dcmtk

DEST = "QR_DEST"


Stored = tuple[int, Database, dict[str, QRStudy], int, Path]
"""The listener's port, its store, the studies sent, the move destination's port, the archive."""


def _store(gateway_factory: GatewayFactory, folder: Path, **worklist: Any) -> Stored:
    dest_port = free_port()
    gw, db, wl = gateway_factory(
        worklist=worklist or None,
        move_destinations={DEST: {"host": "127.0.0.1", "port": dest_port}},
    )
    studies = qr_studies(folder)
    files = [f for study in studies.values() for f in study.files.values()]
    rc, responses = storescu(gw.port, files)
    assert rc == 0 and len(responses) == len(files)
    assert set(responses.values()) == {"Success"}
    return gw.port, db, studies, dest_port, wl.effective_archive_dir


@pytest.fixture
def stored(gateway_factory: GatewayFactory, tmp_path: Path) -> Stored:
    """A gateway with a move destination, and the :func:`qr_studies` sent by storescu."""
    return _store(gateway_factory, tmp_path / "sent")


def _audited(db: Database, action: str) -> list[tuple[str, str, str, dict[str, Any]]]:
    """The audit events of ``action``: actor, study, outcome and details."""
    with db.read() as s:
        events = s.scalars(select(Event).where(Event.action == action).order_by(Event.id))
        return [(e.actor, e.study_instance_uid, e.outcome, dict(e.details)) for e in events]


def _uids(responses: list[Dataset], keyword: str) -> set[str]:
    return {str(r.get(keyword, "")) for r in responses}


def test_findscu_study_level_matches_wildcards_ranges_and_names_whatever_their_case(
    stored: Stored, tmp_path: Path
) -> None:
    port, _, studies, _, _ = stored
    jane, smith, john = studies["doe_jane"], studies["smith"], studies["doe_john"]
    runs = iter(range(100))

    def find(**keys: str) -> list[Dataset]:
        return findscu(port, "STUDY", {"StudyInstanceUID": "", **keys}, tmp_path / str(next(runs)))

    everything = find()
    assert _uids(everything, "StudyInstanceUID") == {jane.uid, smith.uid, john.uid}
    # PN: wild card and single value, case-insensitive.
    assert _uids(find(PatientName="doe*"), "StudyInstanceUID") == {jane.uid, john.uid}
    assert _uids(find(PatientName="DOE^JANE"), "StudyInstanceUID") == {jane.uid}
    assert _uids(find(PatientName="?mith^J*"), "StudyInstanceUID") == {smith.uid}
    # Other text is case-sensitive.
    assert find(AccessionNumber="acc*") == []
    assert _uids(find(AccessionNumber="ACC2026*"), "StudyInstanceUID") == {jane.uid, john.uid}
    # Date ranges: closed, open below, open above; a single date.
    assert _uids(find(StudyDate="20260101-20260131"), "StudyInstanceUID") == {jane.uid}
    assert _uids(find(StudyDate="-20251231"), "StudyInstanceUID") == {smith.uid}
    assert _uids(find(StudyDate="20260106-"), "StudyInstanceUID") == {john.uid}
    assert _uids(find(StudyDate="20251220"), "StudyInstanceUID") == {smith.uid}
    assert _uids(find(StudyTime="1000-1030"), "StudyInstanceUID") == {jane.uid, smith.uid, john.uid}
    assert find(StudyTime="1100-") == []
    # ModalitiesInStudy: the SR series makes the study match SR; several values match any.
    (sr,) = find(ModalitiesInStudy="SR")
    assert sr.StudyInstanceUID == jane.uid
    assert set(sr.ModalitiesInStudy) == {"CT", "SR"}
    assert _uids(find(ModalitiesInStudy="CR\\MR"), "StudyInstanceUID") == {smith.uid, john.uid}
    # A list of UIDs, and return keys.
    listed = find(
        StudyInstanceUID=f"{smith.uid}\\{john.uid}",
        PatientName="",
        NumberOfStudyRelatedInstances="",
        NumberOfStudyRelatedSeries="",
    )
    assert {(r.StudyInstanceUID, str(r.PatientName)) for r in listed} == {
        (smith.uid, "Smith^John"),
        (john.uid, "DOE^JOHN"),
    }
    (jane_row,) = find(
        StudyInstanceUID=jane.uid, NumberOfStudyRelatedInstances="", NumberOfStudyRelatedSeries=""
    )
    assert int(jane_row.NumberOfStudyRelatedInstances) == 5
    assert int(jane_row.NumberOfStudyRelatedSeries) == 3


def test_findscu_series_and_image_levels_include_the_sr_series(
    stored: Stored, tmp_path: Path
) -> None:
    port, _, studies, _, _ = stored
    jane = studies["doe_jane"]
    series = findscu(
        port,
        "SERIES",
        {"StudyInstanceUID": jane.uid, "SeriesInstanceUID": "", "Modality": ""},
        tmp_path / "series",
    )
    assert {(r.SeriesInstanceUID, r.Modality) for r in series} == set(jane.series.items())
    assert all(r.StudyInstanceUID == jane.uid for r in series)
    (sr_series,) = [uid for uid, modality in jane.series.items() if modality == "SR"]
    (only_sr,) = findscu(
        port,
        "SERIES",
        {"StudyInstanceUID": jane.uid, "Modality": "S?", "SeriesDescription": "AI*"},
        tmp_path / "sr",
    )
    assert only_sr.SeriesInstanceUID == sr_series
    images = findscu(
        port,
        "IMAGE",
        {
            "StudyInstanceUID": jane.uid,
            "SOPInstanceUID": "",
            "SOPClassUID": "",
            "InstanceNumber": "",
        },
        tmp_path / "images",
    )
    assert {(r.SOPInstanceUID, r.SOPClassUID) for r in images} == set(jane.sop_classes.items())
    (sr_image,) = findscu(
        port,
        "IMAGE",
        {"StudyInstanceUID": jane.uid, "SeriesInstanceUID": sr_series, "SOPClassUID": ""},
        tmp_path / "sr_image",
    )
    assert sr_image.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.34"  # Comprehensive 3D SR
    assert sr_image.SeriesInstanceUID == sr_series


def test_movescu_to_storescp_receives_every_instance_byte_identical(
    stored: Stored, tmp_path: Path
) -> None:
    port, db, studies, dest_port, _ = stored
    jane = studies["doe_jane"]
    with storescp(dest_port, DEST, tmp_path / "moved") as out:
        proc = movescu(port, DEST, "STUDY", {"StudyInstanceUID": jane.uid})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    got = received(out)
    assert set(got) == set(jane.files)
    for uid, path in jane.files.items():
        assert got[uid] == dataset_bytes(path), uid
    assert _audited(db, "dicom.move") == [
        (
            "MOVESCU",
            jane.uid,
            "success",
            {"level": "STUDY", "instances": 5, "destination": DEST},
        )
    ]


def test_getscu_receives_every_instance_byte_identical(stored: Stored, tmp_path: Path) -> None:
    port, db, studies, _, _ = stored
    wanted = {**studies["smith"].files, **studies["doe_john"].files}
    proc = getscu(
        port,
        "STUDY",
        {"StudyInstanceUID": f"{studies['smith'].uid}\\{studies['doe_john'].uid}"},
        tmp_path / "got",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    got = received(tmp_path / "got")
    assert set(got) == set(wanted)
    for uid, path in wanted.items():
        assert got[uid] == dataset_bytes(path), uid
    audited = _audited(db, "dicom.get")
    assert {(actor, study, outcome) for actor, study, outcome, _ in audited} == {
        ("GETSCU", studies["smith"].uid, "success"),
        ("GETSCU", studies["doe_john"].uid, "success"),
    }


def _scu(port: int, *contexts: Any) -> Any:
    ae = AE(ae_title="QR_TEST")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 20
    ae.requested_contexts = [build_context(cx) for cx in contexts]
    assoc = ae.associate("127.0.0.1", port, ae_title="ICS_TRIAGE")
    assert assoc.is_established
    return assoc


def test_an_unknown_move_destination_gets_move_destination_unknown_a801(
    stored: Stored, caplog: pytest.LogCaptureFixture
) -> None:
    port, _, studies, _, _ = stored
    proc = movescu(port, "NOT_CONFIGURED", "STUDY", {"StudyInstanceUID": studies["smith"].uid})
    assert "MoveDestinationUnknown" in proc.stdout + proc.stderr
    assoc = _scu(port, StudyRootQueryRetrieveInformationModelMove)
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    identifier.StudyInstanceUID = studies["smith"].uid
    try:
        statuses = [
            int(status.Status)
            for status, _ in assoc.send_c_move(
                identifier, "NOT_CONFIGURED", StudyRootQueryRetrieveInformationModelMove
            )
        ]
    finally:
        assoc.release()
    assert statuses == [MOVE_DESTINATION_UNKNOWN]
    audited = _audited(stored[1], "dicom.move")
    assert [(actor, outcome, d["status"]) for actor, _, outcome, d in audited] == [
        ("MOVESCU", "failure", "0xA801"),
        ("QR_TEST", "failure", "0xA801"),
    ]
    refusals = [r.getMessage() for r in caplog.records if r.name == "dicom_gateway.qr"]
    assert any(
        "refused with 0xA801" in m and "'NOT_CONFIGURED' is not in gateway.move_destinations" in m
        for m in refusals
    ), refusals


def _find(port: int, identifier: Dataset) -> list[tuple[int, Dataset | None]]:
    assoc = _scu(port, StudyRootQueryRetrieveInformationModelFind)
    try:
        return [
            (int(status.Status), found)
            for status, found in assoc.send_c_find(
                identifier, StudyRootQueryRetrieveInformationModelFind
            )
        ]
    finally:
        assoc.release()


def test_the_triage_priority_is_a_private_key(
    stored: Stored,
) -> None:
    port, db, studies, _, _ = stored
    with db.write() as s:
        s.execute(
            update(Study)
            .where(Study.study_instance_uid == studies["doe_john"].uid)
            .values(priority="P1")
        )
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    identifier.StudyInstanceUID = ""
    block = identifier.private_block(PRIVATE_GROUP, PRIVATE_CREATOR, create=True)
    block.add_new(PRIORITY_ELEMENT, "CS", "P1")
    results = _find(port, identifier)
    assert [status for status, _ in results] == [PENDING, SUCCESS]
    match = results[0][1]
    assert match is not None
    assert match.StudyInstanceUID == studies["doe_john"].uid
    assert match.private_block(PRIVATE_GROUP, PRIVATE_CREATOR)[PRIORITY_ELEMENT].value == "P1"


def test_refusals_and_unsupported_keys(stored: Stored, caplog: pytest.LogCaptureFixture) -> None:
    port, _, studies, _, _ = stored
    patient = Dataset()
    patient.QueryRetrieveLevel = "PATIENT"
    patient.PatientID = ""
    assert [status for status, _ in _find(port, patient)] == [IDENTIFIER_MISMATCH]
    below = Dataset()
    below.QueryRetrieveLevel = "STUDY"
    below.SOPInstanceUID = ""
    assert [status for status, _ in _find(port, below)] == [IDENTIFIER_MISMATCH]
    bad_range = Dataset()
    bad_range.QueryRetrieveLevel = "STUDY"
    bad_range.StudyDate = "2026-01-01-2026"
    assert [status for status, _ in _find(port, bad_range)] == [IDENTIFIER_MISMATCH]
    unsupported = Dataset()
    unsupported.QueryRetrieveLevel = "STUDY"
    unsupported.StudyInstanceUID = studies["smith"].uid
    unsupported.InstitutionName = ""
    results = _find(port, unsupported)
    assert [status for status, _ in results] == [PENDING_WARNING, SUCCESS]
    match = results[0][1]
    assert match is not None
    assert "InstitutionName" not in match
    refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) == 3, refusals
    assert "unsupported QueryRetrieveLevel 'PATIENT'" in refusals[0]
    assert "key SOPInstanceUID is at IMAGE level, below the query level STUDY" in refusals[1]
    assert "malformed DA range" in refusals[2]


def test_a_missing_archive_file_fails_its_sub_operation_only(
    stored: Stored, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    port, db, studies, _, archive = stored
    jane = studies["doe_jane"]
    lost = next(iter(jane.files))
    with db.read() as s:
        path = s.scalar(select(Instance.path).where(Instance.sop_instance_uid == lost))
    assert path is not None
    (archive / path).unlink()
    proc = getscu(port, "STUDY", {"StudyInstanceUID": jane.uid}, tmp_path / "got")
    output = proc.stdout + proc.stderr
    assert "Number of Failed Suboperations    : 1" in output, output
    assert set(received(tmp_path / "got")) == set(jane.files) - {lost}
    assert any(f"instance {lost} not sent" in r.getMessage() for r in caplog.records)


def test_move_destinations_come_from_the_toml_file_and_the_environment(
    clean_cli_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    toml = clean_cli_env / "triage.toml"
    toml.write_text(
        '[gateway.move_destinations.PACS]\nhost = "10.0.0.5"\nport = 104\n', encoding="utf-8"
    )
    destinations = load_config(toml).gateway.move_destinations
    assert {aet: (d.host, d.port) for aet, d in destinations.items()} == {"PACS": ("10.0.0.5", 104)}
    monkeypatch.setenv(
        "TRIAGE_GATEWAY_MOVE_DESTINATIONS", '{"VIEWER": {"host": "127.0.0.1", "port": 4242}}'
    )
    assert set(GatewaySettings().move_destinations) == {"VIEWER"}
    with pytest.raises(ValidationError):
        GatewaySettings(move_destinations={"BAD": {"host": "x", "port": 0}})


@pytest.mark.postgres
def test_find_and_get_on_postgresql(
    gateway_factory: GatewayFactory, tmp_path: Path, postgres_url: str
) -> None:
    url = fresh_postgres_db(postgres_url)
    port, _, studies, _, _ = _store(gateway_factory, tmp_path / "sent", database_url=url)
    jane, john = studies["doe_jane"], studies["doe_john"]
    found = findscu(
        port,
        "STUDY",
        {"StudyInstanceUID": "", "PatientName": "DOE*", "StudyDate": "20260101-20260131"},
        tmp_path / "find",
    )
    assert _uids(found, "StudyInstanceUID") == {jane.uid}
    proc = getscu(port, "STUDY", {"StudyInstanceUID": john.uid}, tmp_path / "got")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    got = received(tmp_path / "got")
    assert got == {uid: dataset_bytes(path) for uid, path in john.files.items()}
