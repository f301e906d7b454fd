"""Our DICOMweb server and Orthanc's DICOMweb plugin answer dicomweb-client the same way.

Both get the same STOW-RS request (three CR instances and a 10-frame RLE MR); then OHIF's own
QIDO queries must give the same instances with equal values for every attribute OHIF reads,
``retrieve_instance`` the same bytes (those sent), ``retrieve_instance_frames`` the same pixel
bytes, and the metadata the same values.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom
import pytest
import requests
from dicomweb_client import DICOMwebClient
from pydicom.data import get_testdata_file

from tests.builders.dicomweb import (
    client,
    encode_multipart,
    encoded,
    make_instances,
    read_multipart,
)
from tests.builders.orthanc_dicomweb import orthanc_dicomweb
from tests.builders.store import add_users
from tests.builders.web import live_server, make_app
from worklist.db.engine import Database

# What OHIF v3's DICOMweb data source reads from QIDO-RS answers, per level.
OHIF_STUDY = (
    "0020000D",
    "00080020",
    "00080030",
    "00080050",
    "00080061",
    "00081030",
    "00100010",
    "00100020",
    "00201206",
    "00201208",
)
OHIF_SERIES = ("0020000D", "0020000E", "00080060", "0008103E", "00080021", "00200011", "00201209")
OHIF_INSTANCE = ("00080016", "00080018", "00200013", "0020000E")
# OHIF's study list query (it adds the filters the user typed).
OHIF_STUDY_QUERY: dict[str, Any] = {"limit": 101, "offset": 0, "fuzzymatching": False}
OHIF_STUDY_FIELDS = ["00081030", "00080060"]
NATIVE = (("application/octet-stream", "1.2.840.10008.1.2.1"),)
AS_STORED = (("application/octet-stream", "*"),)


@dataclass
class Pair:
    """Our server (on SQLite: this is not about the backend) and Orthanc, same instances."""

    ours: DICOMwebClient
    theirs: DICOMwebClient
    files: dict[str, bytes]
    uids: dict[str, tuple[str, str, str]]


def _post(base: str, body: bytes, content_type: str, token: str | None) -> None:
    headers = {"Content-Type": content_type}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    resp = requests.post(f"{base}/studies", data=body, headers=headers, timeout=60)
    assert resp.status_code == 200, resp.text


@pytest.fixture
def pair(sqlite_db: Database, tmp_path: Path) -> Iterator[Pair]:
    tokens = add_users(sqlite_db)
    instances = make_instances(3)
    for ds in instances:
        ds.SeriesDescription = "PA chest"
    rle_path = get_testdata_file("emri_small_RLE.dcm")
    assert rle_path is not None
    files = {ds.SOPInstanceUID: encoded(ds) for ds in instances}
    first = instances[0]
    uids = {"cr": (first.StudyInstanceUID, first.SeriesInstanceUID, first.SOPInstanceUID)}
    rle = pydicom.dcmread(rle_path)
    files[rle.SOPInstanceUID] = Path(rle_path).read_bytes()
    uids["rle"] = (rle.StudyInstanceUID, rle.SeriesInstanceUID, rle.SOPInstanceUID)
    body, content_type = encode_multipart(list(files.values()))
    with (
        make_app(sqlite_db, tmp_path) as (app, _),
        live_server(app) as url,
        orthanc_dicomweb(tmp_path / "orthanc") as orthanc,
    ):
        _post(f"{url}/dicom-web", body, content_type, tokens["admin"])
        _post(orthanc, body, content_type, None)
        yield Pair(client(url, tokens["radiologist"]), DICOMwebClient(orthanc), files, uids)
        app.state.audit.flush()


def _ohif_view(items: list[dict[str, Any]], keys: tuple[str, ...]) -> list[dict[str, list[str]]]:
    """The values OHIF reads, as text, absent and empty alike; in a stable order."""
    view = [
        {k: sorted(str(v) for v in item.get(k, {}).get("Value", [])) for k in keys}
        for item in items
    ]
    return sorted(view, key=str)


def test_qido_answers_ohif_queries_alike(pair: Pair) -> None:
    study, series, _ = pair.uids["cr"]
    query: dict[str, Any] = {**OHIF_STUDY_QUERY, "search_filters": {"PatientID": "SYNTH001"}}
    ours = pair.ours.search_for_studies(fields=OHIF_STUDY_FIELDS, **query)
    theirs = pair.theirs.search_for_studies(fields=OHIF_STUDY_FIELDS, **query)
    assert len(ours) == 1
    assert _ohif_view(ours, OHIF_STUDY) == _ohif_view(theirs, OHIF_STUDY)
    for uid in (study, pair.uids["rle"][0]):
        assert _ohif_view(pair.ours.search_for_series(uid), OHIF_SERIES) == _ohif_view(
            pair.theirs.search_for_series(uid), OHIF_SERIES
        )
        assert _ohif_view(pair.ours.search_for_instances(uid), OHIF_INSTANCE) == _ohif_view(
            pair.theirs.search_for_instances(uid), OHIF_INSTANCE
        )
    assert len(pair.ours.search_for_instances(study, series)) == 3


@pytest.mark.parametrize("which", ["cr", "rle"])
def test_retrieve_instance_is_byte_identical_from_both(pair: Pair, which: str) -> None:
    uids = pair.uids[which]
    accept = 'multipart/related; type="application/dicom"; transfer-syntax=*'
    for server, token in ((pair.ours, True), (pair.theirs, False)):
        url = server.base_url + "/studies/{}/series/{}/instances/{}".format(*uids)
        headers = {"Accept": accept}
        if token:
            headers.update(pair.ours._session.headers)
        resp = requests.get(url, headers=headers, timeout=60)
        assert resp.status_code == 200
        ((_, content),) = read_multipart(resp.content, resp.headers["content-type"])
        assert content == pair.files[uids[2]]
    assert pair.ours.retrieve_instance(*uids) == pair.theirs.retrieve_instance(*uids)


@pytest.mark.parametrize("which", ["cr", "rle"])
@pytest.mark.parametrize("media_types", [NATIVE, AS_STORED], ids=["native", "as-stored"])
def test_frames_have_the_same_pixel_bytes(
    pair: Pair, which: str, media_types: tuple[tuple[str, str], ...]
) -> None:
    uids = pair.uids[which]
    frames = [1] if which == "cr" else [2, 7]
    ours = pair.ours.retrieve_instance_frames(*uids, frame_numbers=frames, media_types=media_types)
    theirs = pair.theirs.retrieve_instance_frames(
        *uids, frame_numbers=frames, media_types=media_types
    )
    assert ours == theirs
    assert all(ours)


@pytest.mark.parametrize("which", ["cr", "rle"])
def test_metadata_has_the_same_values(pair: Pair, which: str) -> None:
    uids = pair.uids[which]
    ours = pair.ours.retrieve_instance_metadata(*uids)
    theirs = pair.theirs.retrieve_instance_metadata(*uids)
    pixels = "7FE00010"  # Orthanc 1.7 leaves encapsulated Pixel Data out of the metadata
    assert {k for k, v in ours.items() if "BulkDataURI" in v} == {pixels}
    assert {k for k, v in theirs.items() if "BulkDataURI" in v} <= {pixels}
    ignored = {pixels, "00083002"}  # and Available Transfer Syntax UID is ours only
    assert {k: v for k, v in ours.items() if k not in ignored} == {
        k: v for k, v in theirs.items() if k not in ignored
    }
