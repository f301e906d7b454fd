"""QIDO-RS and WADO-RS against a live server, with dicomweb-client as the client."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pydicom
import pytest
import requests
from dicomweb_client import DICOMwebClient
from pydicom.data import get_testdata_file
from pydicom.encaps import generate_frames
from pydicom.uid import RLELossless

from tests.builders.audit import audit_events
from tests.builders.dicomweb import (
    client,
    encode_multipart,
    encoded,
    make_instances,
    read_multipart,
)
from tests.builders.store import add_users
from tests.builders.web import live_server, make_app
from worklist.db.engine import Database


class Server:
    """A live app with stored instances, clients per role and its archive."""

    def __init__(self, url: str, tokens: dict[str, str], db: Database) -> None:
        self.url = url
        self.tokens = tokens
        self.db = db
        self.reader = client(url, tokens["radiologist"])
        self.admin = client(url, tokens["admin"])

    def get(self, path: str, accept: str = "", token: str | None = "") -> requests.Response:
        """GET a path (or the path of an absolute URL) as the radiologist."""
        token = self.tokens["radiologist"] if token == "" else token
        headers = {"Accept": accept} if accept else {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        target = urlsplit(path)
        relative = target.path + (f"?{target.query}" if target.query else "")
        return requests.get(self.url + relative, headers=headers, timeout=30)


@pytest.fixture
def server(db: Database, tmp_path: Path) -> Iterator[Server]:
    tokens = add_users(db)
    with make_app(db, tmp_path) as (app, _), live_server(app) as url:
        yield Server(url, tokens, db)
        app.state.audit.flush()


@pytest.fixture
def stored(server: Server) -> list[pydicom.Dataset]:
    """Three instances stored with STOW-RS as exactly the bytes of :func:`encoded`."""
    instances = make_instances(3)
    body, content_type = encode_multipart([encoded(d) for d in instances])
    resp = requests.post(
        f"{server.url}/dicom-web/studies",
        data=body,
        headers={
            "Content-Type": content_type,
            "Authorization": f"Bearer {server.tokens['admin']}",
        },
        timeout=30,
    )
    assert resp.status_code == 200, resp.text
    return instances


def test_searches_find_what_was_stored(server: Server, stored: list[pydicom.Dataset]) -> None:
    first = stored[0]
    study, series = first.StudyInstanceUID, first.SeriesInstanceUID
    (found,) = server.reader.search_for_studies(search_filters={"PatientID": first.PatientID})
    assert found["0020000D"]["Value"] == [study]
    assert found["00201208"]["Value"] == [3]
    assert found["00080061"]["Value"] == ["CR"]
    (one_series,) = server.reader.search_for_series(study)
    assert one_series["0020000E"]["Value"] == [series]
    assert one_series["00201209"]["Value"] == [3]
    instances = server.reader.search_for_instances(study, series)
    assert {i["00080018"]["Value"][0] for i in instances} == {d.SOPInstanceUID for d in stored}
    assert len(server.reader.search_for_instances(study)) == 3
    assert server.reader.search_for_studies(search_filters={"PatientID": "NOBODY"}) == []
    paged = server.reader.search_for_instances(study, limit=2, offset=2)
    assert len(paged) == 1


def test_retrieve_is_byte_identical_and_framed(
    server: Server, stored: list[pydicom.Dataset]
) -> None:
    first = stored[0]
    uids = (first.StudyInstanceUID, first.SeriesInstanceUID, first.SOPInstanceUID)
    got = server.reader.retrieve_instance(*uids)
    assert got.SOPInstanceUID == first.SOPInstanceUID
    assert got.PixelData == first.PixelData
    resp = server.get("/dicom-web/studies/{}/series/{}/instances/{}".format(*uids))
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith('multipart/related; type="application/dicom"')
    ((part_type, content),) = read_multipart(resp.content, resp.headers["content-type"])
    assert content == encoded(first)  # what the client sent, byte for byte
    assert "transfer-syntax=1.2.840.10008.1.2.1" in part_type.replace('"', "")
    study = server.get(f"/dicom-web/studies/{uids[0]}")
    parts = read_multipart(study.content, study.headers["content-type"])
    assert sorted(c for _, c in parts) == sorted(encoded(d) for d in stored)
    assert len(server.reader.retrieve_study(uids[0])) == 3
    assert len(server.reader.retrieve_series(uids[0], uids[1])) == 3


def test_other_transfer_syntax_is_not_acceptable(
    server: Server, stored: list[pydicom.Dataset]
) -> None:
    first = stored[0]
    accept = f'multipart/related; type="application/dicom"; transfer-syntax={RLELossless}'
    resp = server.get(f"/dicom-web/studies/{first.StudyInstanceUID}", accept=accept)
    assert resp.status_code == 406


def _bulk_uris(item: object) -> Iterator[str]:
    """Every BulkDataURI in a DICOM JSON dataset, nested sequences included."""
    if isinstance(item, dict):
        if "BulkDataURI" in item:
            yield item["BulkDataURI"]
        for value in item.values():
            yield from _bulk_uris(value)
    elif isinstance(item, list):
        for value in item:
            yield from _bulk_uris(value)


def test_metadata_loads_and_every_bulk_data_uri_resolves(
    server: Server, stored: list[pydicom.Dataset], multiframe: pydicom.Dataset
) -> None:
    first = stored[0]
    uids = (first.StudyInstanceUID, first.SeriesInstanceUID, first.SOPInstanceUID)
    metadata = server.reader.retrieve_instance_metadata(*uids)
    ds = pydicom.Dataset.from_json(metadata, bulk_data_uri_handler=lambda _uri: b"")
    assert ds.SOPInstanceUID == first.SOPInstanceUID
    assert ds.Rows == first.Rows
    resp = server.get(metadata["7FE00010"]["BulkDataURI"])
    assert resp.status_code == 200
    ((_, value),) = read_multipart(resp.content, resp.headers["content-type"])
    assert value == first.PixelData
    everything = server.reader.retrieve_study_metadata(uids[0])
    everything += server.reader.retrieve_series_metadata(
        multiframe.StudyInstanceUID, multiframe.SeriesInstanceUID
    )
    assert len(everything) == 4
    uris = [uri for item in everything for uri in _bulk_uris(item)]
    assert len(uris) >= 4
    for uri in uris:
        assert server.get(uri).status_code == 200, uri
    for item in everything:
        pydicom.Dataset.from_json(item, bulk_data_uri_handler=lambda _uri: b"")
    assert len(server.reader.retrieve_series_metadata(uids[0], uids[1])) == 3


def test_frames_native(server: Server, stored: list[pydicom.Dataset]) -> None:
    first = stored[0]
    uids = (first.StudyInstanceUID, first.SeriesInstanceUID, first.SOPInstanceUID)
    (frame,) = server.reader.retrieve_instance_frames(*uids, frame_numbers=[1])
    assert frame == first.PixelData
    resp = server.get("/dicom-web/studies/{}/series/{}/instances/{}/frames/2".format(*uids))
    assert resp.status_code == 404


@pytest.fixture
def multiframe(server: Server) -> pydicom.Dataset:
    path = get_testdata_file("emri_small_RLE.dcm")
    assert path is not None
    ds = pydicom.dcmread(path)
    server.admin.store_instances([ds])
    return ds


def test_frames_as_stored_decoded_and_transcoded(
    server: Server, multiframe: pydicom.Dataset
) -> None:
    ds = multiframe
    uids = (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
    stored_frames = list(generate_frames(ds.PixelData, number_of_frames=10))
    as_stored = server.reader.retrieve_instance_frames(
        *uids, frame_numbers=[2, 5], media_types=(("application/octet-stream", "*"),)
    )
    assert as_stored == [stored_frames[1], stored_frames[4]]
    native = server.reader.retrieve_instance_frames(*uids, frame_numbers=[3])
    assert native == [ds.pixel_array[2].tobytes()]
    url = "/dicom-web/studies/{}/series/{}/instances/{}/frames/1,10".format(*uids)
    resp = server.get(url, accept='multipart/related; type="image/jls"; transfer-syntax=*')
    parts = read_multipart(resp.content, resp.headers["content-type"])
    assert [c for _, c in parts] == [stored_frames[0], stored_frames[9]]
    assert all(RLELossless in t for t, _ in parts)
    jls = server.get(url, accept='multipart/related; type="image/jls"')
    assert jls.status_code == 200, jls.text
    parts = read_multipart(jls.content, jls.headers["content-type"])
    assert len(parts) == 2
    assert all(t.startswith("image/jls") for t, _ in parts)
    assert server.get(url, accept='multipart/related; type="image/gif"').status_code == 406


@pytest.mark.parametrize(
    ("resource", "accept", "magic"),
    [
        ("rendered", "image/jpeg", b"\xff\xd8\xff"),
        ("rendered", "image/png", b"\x89PNG"),
        ("thumbnail", "", b"\xff\xd8\xff"),
    ],
)
def test_rendered_and_thumbnail(
    server: Server, multiframe: pydicom.Dataset, resource: str, accept: str, magic: bytes
) -> None:
    ds = multiframe
    uids = (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
    url = "/dicom-web/studies/{}/series/{}/instances/{}/".format(*uids) + resource
    resp = server.get(url, accept=accept)
    assert resp.status_code == 200
    assert resp.content.startswith(magic)


def test_every_retrieve_is_audited(server: Server, stored: list[pydicom.Dataset]) -> None:
    first = stored[0]
    uids = (first.StudyInstanceUID, first.SeriesInstanceUID, first.SOPInstanceUID)
    server.reader.search_for_studies()
    server.reader.retrieve_instance(*uids)
    server.reader.retrieve_instance_metadata(*uids)
    server.reader.retrieve_instance_frames(*uids, frame_numbers=[1])
    server.reader.retrieve_instance_rendered(*uids)
    server.get("/dicom-web/studies/0.0/metadata")  # nothing: 404, no audit
    server.get(f"/dicom-web/studies/{uids[0]}", token=server.tokens["radiographer"])
    sink_flush(server)
    retrieves = audit_events(server.db, "dicomweb.retrieve")
    assert sorted(e.details["what"] for e in retrieves) == [
        "frames",
        "instances",
        "metadata",
        "rendered",
    ]
    assert {(e.actor, e.study_instance_uid) for e in retrieves} == {("radiologist", uids[0])}
    (search,) = audit_events(server.db, "dicomweb.search")
    assert search.details["studies"] == [uids[0]]


def sink_flush(server: Server) -> None:
    """Wait for the audit sink's batch (written every 0.1 s) with the searches and retrieves."""
    for _ in range(50):
        if len(audit_events(server.db, "dicomweb.retrieve")) >= 4:
            return
        time.sleep(0.1)


@pytest.mark.parametrize(
    ("who", "code"), [("anonymous", 401), ("radiographer", 403), ("ml_engineer", 200)]
)
def test_who_may_read(server: Server, stored: list[pydicom.Dataset], who: str, code: int) -> None:
    token = None if who == "anonymous" else server.tokens[who]
    resp = server.get("/dicom-web/studies", token=token)
    assert resp.status_code == code
    if code != 200:
        assert stored[0].PatientID not in resp.text
    reader: DICOMwebClient = client(server.url, token)
    if code == 200:
        assert len(reader.search_for_studies()) == 1
