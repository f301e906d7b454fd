"""The listener driven by DCMTK's echoscu/storescu (a real peer) and by pynetdicom."""

from __future__ import annotations

import hashlib
import warnings
from concurrent.futures import ThreadPoolExecutor
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE
from pynetdicom.dimse_primitives import C_STORE
from sqlalchemy import select

from dicom_gateway.scu import echo, send_files
from dicom_gateway.statuses import (
    CANNOT_UNDERSTAND,
    DATASET_MISMATCH,
    OUT_OF_RESOURCES,
    SUCCESS,
    Status,
)
from tests.builders.dicom import make_dataset, make_study, write_dicom_file
from tests.builders.gateway import GatewayFactory
from tests.builders.peers import echoscu, fresh_postgres_db, storescu, wait_for
from worklist.db.engine import Database
from worklist.db.schema import Association, Event, Instance, Job, Series, Study

pytestmark = pytest.mark.dcmtk


def _state(db: Database, uid: str) -> str:
    with db.read() as s:
        return s.scalar(select(Study.state).where(Study.study_instance_uid == uid)) or ""


def _events(db: Database, action: str) -> list[dict[str, Any]]:
    """The details of the events with this action."""
    with db.read() as s:
        return [dict(e.details) for e in s.scalars(select(Event).where(Event.action == action))]


def raw_c_store(port: int, ds: Dataset, sop_uid: str, sop_class: str | None = None) -> int:
    """Send a C-STORE whose command names ``sop_uid`` (and ``sop_class``), ``ds`` as it is."""
    sop_class = sop_class or ds.SOPClassUID
    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = False
    write_dataset(fp, ds)
    ae = AE(ae_title="RAW_SCU")
    ae.add_requested_context(sop_class, ExplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", port)
    assert assoc.is_established
    try:
        context = assoc.accepted_contexts[0]
        assert context.context_id is not None
        req = C_STORE()
        req.MessageID = 1
        req.AffectedSOPClassUID = sop_class
        req.AffectedSOPInstanceUID = sop_uid
        req.Priority = 2
        req.DataSet = BytesIO(fp.getvalue())
        assoc._reactor_checkpoint.clear()  # as pynetdicom's own send_c_store does
        try:
            assoc.dimse.send_msg(req, context.context_id)
            _cx, rsp = assoc.dimse.get_msg(block=True)
        finally:
            assoc._reactor_checkpoint.set()
        assert rsp is not None and rsp.Status is not None
        return int(rsp.Status)
    finally:
        assoc.release()


def test_echo(gateway_factory: GatewayFactory) -> None:
    gw, _db, _wl = gateway_factory()
    assert echoscu(gw.port).returncode == 0
    assert echo("127.0.0.1", gw.port) == SUCCESS


def test_study_of_several_series_is_stored_recorded_and_assembled(
    gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    gw, db, wl = gateway_factory()
    study_uid, files = make_study(tmp_path / "in", modality="CT", series=3, per_series=3)
    rc, responses = storescu(gw.port, files, "-aet", "CDC_NORTH")
    assert rc == 0
    assert list(responses.values()) == ["Success"] * len(files)
    assert wait_for(lambda: _state(db, study_uid) == "queued")
    archive = wl.effective_archive_dir
    with db.read() as s:
        study = s.scalars(select(Study).where(Study.study_instance_uid == study_uid)).one()
        assert study.instance_count == 9 and study.site == "CDC_NORTH"
        assert study.modalities == "CT" and study.completed_at is not None
        assert len(s.scalars(select(Series).where(Series.study_id == study.id)).all()) == 3
        instances = [
            (i.sop_instance_uid, i.path, i.sha256, i.size_bytes)
            for i in s.scalars(select(Instance).where(Instance.study_id == study.id))
        ]
        assert len(instances) == 9
        for _uid, path, sha, size in instances:
            data = (archive / path).read_bytes()
            assert hashlib.sha256(data).hexdigest() == sha
            assert len(data) == size
        jobs = s.scalars(select(Job).where(Job.study_id == study.id)).all()
        assert [(j.kind, j.state) for j in jobs] == [("triage", "queued")]
        assoc = s.scalars(select(Association)).one()
        assert assoc.outcome == "released" and assoc.calling_aet == "CDC_NORTH"
    sent = {dcmread(f).SOPInstanceUID: dcmread(f) for f in files}
    for uid, path, _sha, _size in instances:
        stored = dcmread(archive / path)
        assert stored == sent[uid]  # element by element, pixels included


def test_bad_inputs_get_named_statuses_and_echo_still_works(
    gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    gw, db, _wl = gateway_factory()
    study_uid = generate_uid()
    good = write_dicom_file(make_dataset(study_uid=study_uid, size=32), tmp_path / "good.dcm")
    truncated = tmp_path / "truncated.dcm"
    truncated.write_bytes(good.read_bytes()[:-300])

    no_sop = make_dataset(study_uid=study_uid, seed=2)
    del no_sop.SOPInstanceUID  # the command names one; the dataset has none
    assert raw_c_store(gw.port, no_sop, generate_uid()) == CANNOT_UNDERSTAND
    assert echoscu(gw.port).returncode == 0
    other = make_dataset(study_uid=study_uid, seed=2)  # command and dataset disagree
    assert raw_c_store(gw.port, other, generate_uid()) == CANNOT_UNDERSTAND

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns about the invalid UI value it writes
        hostile = make_dataset(study_uid="../../etc", seed=3)
        hostile_path = write_dicom_file(hostile, tmp_path / "hostile.dcm")

    mismatch = make_dataset(study_uid=study_uid, seed=4, modality="MR")
    ct = "1.2.840.10008.5.1.4.1.1.2"  # the command and context say CT, the dataset MR
    assert raw_c_store(gw.port, mismatch, mismatch.SOPInstanceUID, ct) == DATASET_MISMATCH
    assert echoscu(gw.port).returncode == 0

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hostile_sop = make_dataset(study_uid=study_uid, sop_uid="../../etc", seed=5)
        hostile_sop_path = write_dicom_file(hostile_sop, tmp_path / "hostile_sop.dcm")
    rc, responses = storescu(gw.port, [hostile_sop_path])  # DCMTK sends it as it is
    assert list(responses.values()) == ["Error: CannotUnderstand"]
    assert echoscu(gw.port).returncode == 0

    expected = {
        truncated: CANNOT_UNDERSTAND,
        hostile_path: CANNOT_UNDERSTAND,
    }
    for path, status in expected.items():
        (result,) = send_files([path], "127.0.0.1", gw.port)
        assert result.status == status, (path.name, result)
        assert echoscu(gw.port).returncode == 0
    # dicom_gateway.statuses registers the names on pynetdicom's Status when it is imported
    assert CANNOT_UNDERSTAND == Status.CANNOT_UNDERSTAND == 0xC000  # type: ignore[attr-defined]
    assert DATASET_MISMATCH == 0xA900
    refused = _events(db, "instance.refused")
    assert len(refused) == 6
    assert all(e["reason"] for e in refused)
    assert not (tmp_path / "gw" / "etc").exists()
    with db.read() as s:
        assert s.scalars(select(Instance)).all() == []
    rc, responses = storescu(gw.port, [good])
    assert rc == 0 and list(responses.values()) == ["Success"]


def test_over_quota_is_out_of_resources(gateway_factory: GatewayFactory, tmp_path: Path) -> None:
    gw, db, _wl = gateway_factory(worklist={"quota_bytes": 4000})
    study_uid = generate_uid()
    small = write_dicom_file(make_dataset(study_uid=study_uid, size=16), tmp_path / "small.dcm")
    big = write_dicom_file(make_dataset(study_uid=study_uid, size=64, seed=1), tmp_path / "big.dcm")
    results = send_files([small, big], "127.0.0.1", gw.port)
    assert [r.status for r in results] == [SUCCESS, OUT_OF_RESOURCES]
    assert OUT_OF_RESOURCES == Status.OUT_OF_RESOURCES == 0xA700  # type: ignore[attr-defined]
    assert echoscu(gw.port).returncode == 0
    (event,) = _events(db, "instance.refused")
    assert "quota" in event["reason"]


def test_duplicates_identical_and_different(
    gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    gw, db, wl = gateway_factory()
    ds = make_dataset(study_uid=generate_uid(), modality="DX")
    first = write_dicom_file(ds, tmp_path / "first.dcm")
    ds.PatientID = "OTHER"
    second = write_dicom_file(ds, tmp_path / "second.dcm")
    rc, responses = storescu(gw.port, [first, first, second])
    assert rc == 0
    assert len(responses) == 2  # storescu keys by file: the two sends of `first` share a key
    assert set(responses.values()) == {"Success"}
    with db.read() as s:
        (path,) = s.scalars(select(Instance.path)).all()
    assert dcmread(wl.effective_archive_dir / path) == dcmread(first)
    assert dcmread(wl.effective_archive_dir / path) != dcmread(second)
    outcomes = sorted(e["policy_outcome"] for e in _events(db, "instance.duplicate"))
    assert outcomes == ["identical", "kept_first"]


def test_replace_policy(gateway_factory: GatewayFactory, tmp_path: Path) -> None:
    gw, db, wl = gateway_factory(duplicate_policy="replace")
    ds = make_dataset(study_uid=generate_uid(), modality="DX")
    first = write_dicom_file(ds, tmp_path / "first.dcm")
    ds.PatientID = "CORRECTED"
    second = write_dicom_file(ds, tmp_path / "second.dcm")
    assert storescu(gw.port, [first])[0] == 0
    assert storescu(gw.port, [second])[0] == 0
    with db.read() as s:
        (path,) = s.scalars(select(Instance.path)).all()
    assert dcmread(wl.effective_archive_dir / path).PatientID == "CORRECTED"
    assert dcmread(wl.effective_archive_dir / path) == dcmread(second)


def test_instance_after_completion_reopens_and_requeues(
    gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    gw, db, _wl = gateway_factory()
    study_uid = generate_uid()
    a = write_dicom_file(make_dataset(study_uid=study_uid, modality="DX"), tmp_path / "a.dcm")
    b = write_dicom_file(
        make_dataset(study_uid=study_uid, modality="DX", seed=1), tmp_path / "b.dcm"
    )
    assert storescu(gw.port, [a])[0] == 0
    assert wait_for(lambda: _state(db, study_uid) == "queued")
    with db.write() as s:  # a worker triaged it
        for job in s.scalars(select(Job)):
            job.state = "done"
        study = s.scalars(select(Study)).one()
        study.state = "triaged"
    assert storescu(gw.port, [b])[0] == 0
    assert wait_for(lambda: _state(db, study_uid) == "queued")
    with db.read() as s:
        assert sorted(j.state for j in s.scalars(select(Job))) == ["done", "queued"]
        assert s.scalars(select(Study)).one().instance_count == 2
    assert len(_events(db, "study.reopened")) == 1


def test_calling_ae_allow_list(gateway_factory: GatewayFactory, tmp_path: Path) -> None:
    gw, db, _wl = gateway_factory(allowed_calling_aets=["CDC_A"])
    assert echoscu(gw.port, "-aet", "INTRUDER").returncode != 0
    assert echoscu(gw.port, "-aet", "CDC_A").returncode == 0
    f = write_dicom_file(make_dataset(study_uid=generate_uid()), tmp_path / "x.dcm")
    rc, responses = storescu(gw.port, [f], "-aet", "INTRUDER")
    assert rc != 0 and responses == {}
    assert wait_for(lambda: len(_events(db, "association.rejected")) == 2)


@pytest.mark.postgres
def test_two_listener_processes_on_postgresql(
    gateway_factory: GatewayFactory, tmp_path: Path, postgres_url: str
) -> None:
    url = fresh_postgres_db(postgres_url)
    gw, db, _wl = gateway_factory(processes=2, worklist={"database_url": url})
    study_uid, files = make_study(tmp_path / "in", modality="CT", series=2, per_series=4)
    halves = [files[0::2], files[1::2]]
    with ThreadPoolExecutor(2) as pool:  # two associations at once, same study
        outcomes = list(pool.map(lambda fs: storescu(gw.port, fs), halves))
    assert all(rc == 0 and set(r.values()) == {"Success"} for rc, r in outcomes)

    def assembled() -> bool:
        with db.read() as s:
            row = s.execute(
                select(Study.state, Study.instance_count).where(
                    Study.study_instance_uid == study_uid
                )
            ).first()
        return row is not None and tuple(row) == ("queued", len(files))

    assert wait_for(assembled)
    with db.read() as s:
        study = s.scalars(select(Study).where(Study.study_instance_uid == study_uid)).one()
        assert study.instance_count == len(files)
        assert len(s.scalars(select(Job).where(Job.study_id == study.id)).all()) == 1
        assert len(s.scalars(select(Association)).all()) == 2


@pytest.mark.parametrize("group_commit", [True, False], ids=["group-commit", "per-instance"])
def test_concurrent_associations_one_listener(
    gateway_factory: GatewayFactory, tmp_path: Path, group_commit: bool
) -> None:
    """Four associations at once into one listener process: every instance stored and recorded.

    With group commit the instances of concurrent associations share syncs and transactions;
    the outcome (one study, every instance, its file on disk) must be the same as without.
    """
    gw, db, wl = gateway_factory(group_commit=group_commit)
    study_uid, files = make_study(tmp_path / "in", modality="CT", series=2, per_series=8)
    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(lambda fs: storescu(gw.port, fs), [files[i::4] for i in range(4)]))
    assert all(rc == 0 and set(r.values()) == {"Success"} for rc, r in outcomes)
    assert sum(len(r) for _rc, r in outcomes) == len(files)
    with db.read() as s:
        study = s.scalars(select(Study).where(Study.study_instance_uid == study_uid)).one()
        assert study.instance_count == len(files)
        rows = [(i.path, i.sha256) for i in s.scalars(select(Instance))]
    assert len(rows) == len(files)
    for path, sha256 in rows:
        data = (wl.effective_archive_dir / path).read_bytes()
        assert hashlib.sha256(data).hexdigest() == sha256
    group = gw._ctx.ingestor.group if gw._ctx is not None else None
    assert (group is not None) == group_commit
    if group is not None:
        assert 1 <= group.batches <= len(files)
