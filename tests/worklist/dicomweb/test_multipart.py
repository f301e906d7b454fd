"""multipart/related bodies: the server's writer and reader against the standard library."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from tests.builders.dicomweb import encode_multipart, read_multipart
from worklist.dicomweb.errors import WrongQueryError
from worklist.dicomweb.frames import frame_numbers
from worklist.dicomweb.multipart import locate_parts, media_type, split_parts, stream_files


def test_streamed_files_parse_back_byte_for_byte(tmp_path: Path) -> None:
    contents = [os.urandom(n) + b"\r\n--" for n in (0, 1, 300_000)]
    files = []
    for i, data in enumerate(contents):
        path = tmp_path / f"{i}.dcm"
        path.write_bytes(data)
        files.append((path, "application/dicom; transfer-syntax=1.2.840.10008.1.2.1", f"/x/{i}"))
    body = b"".join(stream_files("b0undary", files, chunk=4096))
    parts = read_multipart(body, 'multipart/related; type="application/dicom"; boundary=b0undary')
    assert [p[1] for p in parts] == contents
    assert all(p[0].startswith("application/dicom") for p in parts)


@pytest.mark.parametrize("lead", [b"", b"\r\n", b"a preamble\r\n"])
def test_split_parts_reads_what_clients_send(lead: bytes) -> None:
    contents = [b"first\r\n\r\nwith blank lines", os.urandom(5000), b""]
    body, content_type = encode_multipart(contents, boundary="zz")
    main, params = media_type(content_type)
    assert (main, params["type"], params["boundary"]) == (
        "multipart/related",
        "application/dicom",
        "zz",
    )
    parts = split_parts(lead + body, "zz")
    assert [p.content for p in parts] == contents
    assert {p.content_type for p in parts} == {"application/dicom"}


@pytest.mark.parametrize("shift", range(-40, 41, 8))
def test_parts_located_in_a_file_across_read_steps(shift: int) -> None:
    """A body scanned in 1 MiB steps: delimiters straddling a step are found, contents exact."""
    first = os.urandom(1024 * 1024 - 60 + shift)  # its delimiter lies across the first step
    contents = [first, b"\r\n-- z\r\n\r\n", b"", os.urandom(3 * 1024 * 1024 + 7)]
    body, _ = encode_multipart(contents, boundary="zz")
    handle = io.BytesIO(body)
    parts = list(locate_parts(handle, "zz"))
    assert [body[p.offset : p.offset + p.length] for p in parts] == contents
    assert {p.content_type for p in parts} == {"application/dicom"}


def test_frame_numbers() -> None:
    assert frame_numbers("1,3,5") == [1, 3, 5]
    for bad in ("0", "a", ""):
        with pytest.raises(WrongQueryError):
            frame_numbers(bad)
