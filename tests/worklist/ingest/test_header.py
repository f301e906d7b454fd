"""Reading an instance's header: the fields the store records, and what is refused."""

from __future__ import annotations

import logging
import tracemalloc
import warnings
from pathlib import Path

import pydicom.config
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from models.errors import Unavailable
from tests.builders.dicom import encode, make_dataset
from tests.builders.hostile import deflate_bomb, nested_instance
from worklist.archive import InvalidUIDError
from worklist.ingest.header import (
    DEFER_BYTES,
    MAX_NESTING_DEPTH,
    InstanceTooLargeError,
    UndecodableInstanceError,
    parse_instance,
)


def test_parse_reads_header_fields_and_referral_priority() -> None:
    ds = make_dataset(study_uid=generate_uid(), modality="DX")
    item = Dataset()
    item.RequestedProcedurePriority = "STAT"
    ds.RequestAttributesSequence = [item]
    ds.RequestedProcedurePriority = "ROUTINE"
    header, _ = parse_instance(encode(ds))
    assert header.referral_priority == "STAT"
    assert header.modality == "DX"
    assert header.view_position == "PA"
    assert header.patient_name == "Synthetic^Patient"
    del ds.RequestAttributesSequence
    assert parse_instance(encode(ds))[0].referral_priority == "ROUTINE"


def test_parse_refuses_truncated_and_missing_uid() -> None:
    ds = make_dataset(study_uid=generate_uid(), size=32)
    data = encode(ds)
    with pytest.raises(UndecodableInstanceError, match="truncated"):
        parse_instance(data[:-100])
    with pytest.raises(UndecodableInstanceError):
        parse_instance(b"not dicom at all" * 20)
    del ds.SOPInstanceUID
    with pytest.raises(InvalidUIDError, match="SOP Instance UID"):
        parse_instance(encode(ds))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns about the invalid UI value
        ds.SOPInstanceUID = "../../etc"
        data = encode(ds)
        with pytest.raises(InvalidUIDError):
            parse_instance(data)


def test_a_bad_vr_in_the_pixel_description_is_tolerated_and_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # pydicom's badVR.dcm: Number of Frames '1A' (IS); DCMTK's storescp stores it.
    monkeypatch.setattr(pydicom.config.settings, "reading_validation_mode", pydicom.config.IGNORE)
    path = Path(get_testdata_file("badVR.dcm"))  # type: ignore[arg-type]
    with caplog.at_level(logging.INFO, logger="worklist.ingest.header"):
        header, _ = parse_instance(path.read_bytes())
    assert header.sop_uid
    assert "tolerated: pixel description is not numeric" in caplog.text


@pytest.mark.parametrize("defined_lengths", [True, False], ids=["defined", "undefined"])
def test_one_nesting_limit_for_both_length_encodings(defined_lengths: bool) -> None:
    for depth in (MAX_NESTING_DEPTH + 1, 10_000):
        _, data = nested_instance(depth, defined_lengths=defined_lengths)
        with pytest.raises(UndecodableInstanceError, match=f"deeper than {MAX_NESTING_DEPTH}"):
            parse_instance(data)
    ds, data = nested_instance(MAX_NESTING_DEPTH, defined_lengths=defined_lengths)
    assert parse_instance(data)[0].sop_uid == ds.SOPInstanceUID
    with pytest.raises(UndecodableInstanceError, match="deeper than 3 levels"):
        parse_instance(data, max_depth=3)


def test_a_deflate_bomb_is_refused_without_inflating_it() -> None:
    _, data = deflate_bomb(64 * 1024 * 1024)
    assert len(data) < 1024 * 1024
    tracemalloc.start()
    try:
        with pytest.raises(InstanceTooLargeError, match="inflates to more than 16777216 bytes"):
            parse_instance(data, max_inflated=16 * 1024 * 1024)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024 * 1024, peak
    assert isinstance(InstanceTooLargeError("x"), Unavailable)
    small, data = deflate_bomb(4096)  # an ordinary deflated instance still parses
    assert parse_instance(data)[0].sop_uid == small.SOPInstanceUID


def test_pixel_data_is_checked_by_its_length_without_being_copied() -> None:
    """A large Pixel Data element is skipped by the reader (deferred), not copied or decoded,
    and a file cut inside it is still refused as truncated."""
    ds = make_dataset(study_uid=generate_uid(), size=256)  # 128 KiB of pixels
    data = encode(ds)
    header, parsed = parse_instance(data)
    assert header.sop_uid == ds.SOPInstanceUID
    raw = parsed.get_item(0x7FE00010, keep_deferred=True)
    assert isinstance(raw, RawDataElement)
    assert raw.value is None  # deferred: not read out of the received bytes
    assert raw.length == 256 * 256 * 2 > DEFER_BYTES
    with pytest.raises(UndecodableInstanceError, match="truncated dataset: element 7FE00010"):
        parse_instance(data[:-1000])
