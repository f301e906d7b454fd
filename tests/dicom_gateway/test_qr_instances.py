"""Instances read from the archive for C-GET and C-MOVE sub-operations, without a network."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pydicom.tag import Tag
from pydicom.uid import ImplicitVRLittleEndian
from pynetdicom.dsutils import encode

from dicom_gateway.qr import archived_instance
from tests.builders.dicom import dicom_dataset, random_pixels, write_dicom_file
from tests.builders.qr import dataset_bytes
from worklist.archive import Archive
from worklist.query.find import InstanceRef


def _archived(archive: Archive, ds: Dataset, relative: str) -> InstanceRef:
    write_dicom_file(ds, archive.root / relative)
    return InstanceRef(
        study_instance_uid=str(ds.StudyInstanceUID),
        sop_class_uid=str(ds.SOPClassUID),
        sop_instance_uid=str(ds.SOPInstanceUID),
        transfer_syntax_uid=str(ds.file_meta.TransferSyntaxUID),
        path=relative,
    )


def _as_pynetdicom_sends(ds: Dataset) -> bytes | None:
    """Encode ``ds`` as pynetdicom's C-STORE does, after reading the UIDs it reads."""
    assert ds.SOPClassUID and ds.SOPInstanceUID
    syntax = ds.file_meta.TransferSyntaxUID
    return encode(ds, syntax.is_implicit_VR, syntax.is_little_endian, syntax.is_deflated)


@pytest.mark.parametrize("implicit", [False, True])
def test_an_instance_is_sent_in_its_own_transfer_syntax_with_the_same_bytes(
    tmp_path: Path, implicit: bool
) -> None:
    archive = Archive(tmp_path / "archive")
    ds = dicom_dataset(random_pixels(512), AccessionNumber="ACC1", PatientName="Doe^Jane")
    if implicit:
        ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    ref = _archived(archive, ds, "a/one.dcm")
    instance = archived_instance(archive, ref)
    assert instance.file_meta.TransferSyntaxUID == ref.transfer_syntax_uid
    assert _as_pynetdicom_sends(instance) == dataset_bytes(archive.root / ref.path)


def test_pixel_data_stays_on_disk_until_the_instance_is_encoded(tmp_path: Path) -> None:
    archive = Archive(tmp_path / "archive")
    ref = _archived(archive, dicom_dataset(random_pixels(512)), "a/big.dcm")  # 512 KB pixels
    instance = archived_instance(archive, ref)
    assert instance.Rows == 512
    (archive.root / ref.path).unlink()
    with pytest.raises(OSError, match="Deferred read"):
        _ = instance.PixelData


def test_an_unreadable_file_gives_a_dataset_pynetdicom_will_not_send(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    archive = Archive(tmp_path / "archive")
    ds = dicom_dataset()
    ref = _archived(archive, ds, "a/broken.dcm")
    (archive.root / ref.path).write_bytes(b"not DICOM")
    outside = InstanceRef(
        ref.study_instance_uid, ref.sop_class_uid, "1.2.3.4", ref.transfer_syntax_uid, "../x.dcm"
    )
    for bad in (ref, outside):
        instance = archived_instance(archive, bad)
        # No SOP Class UID: pynetdicom's send_c_store raises, so the sub-operation fails and
        # the instance is listed in Failed SOP Instance UID List.
        assert list(instance.keys()) == [Tag("SOPInstanceUID")]
        assert instance.SOPInstanceUID == bad.sop_instance_uid
        assert any(
            f"instance {bad.sop_instance_uid} not sent" in r.getMessage() for r in caplog.records
        )
