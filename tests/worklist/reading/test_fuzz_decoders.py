"""Fuzz: every decode the web app does of a stored image (the key image, DICOMweb rendered and
thumbnail images, frames, metadata and bulk data) returns a result or raises a domain error (the
web app's 4xx), never another exception (a 500), for any file the header check accepts: what
the listener and STOW-RS would store (mutated valid files: tests.builders.fuzz).

Memory stays small: the seeds are 8 x 8 images and the decodes run under tight
:class:`ImageLimits` (1 Mpixel, 16 MiB), so an announced size past them is refused unread.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import example, given, settings

from models.errors import Invalid, NotFound, TriageError, meaning_of
from tests.builders.fuzz import (
    Delete,
    Flip,
    Insert,
    Mutation,
    Truncate,
    build,
    examples,
    mutated,
)
from worklist.dicomweb import frames as frame_ops
from worklist.dicomweb import wado
from worklist.dicomweb.errors import NotAcceptableError
from worklist.dicomweb.wado import Located, Wanted
from worklist.ingest.header import parse_instance
from worklist.reading.imagelimits import ImageLimits
from worklist.reading.keyimage import KeyImage, render_png

pytestmark = pytest.mark.fuzz

LIMITS = ImageLimits(max_pixels=1_000_000, max_decoded_bytes=16 * 1024 * 1024)
OCTET = "application/octet-stream"

FOUND: list[tuple[str, list[Mutation], str]] = [
    # Bits Allocated deleted (lenient header check stores it): AttributeError from pydicom's
    # decoder escaped rendered/thumbnail/frames (HTTP 500).
    ("CT-implicit", [Delete(element=19), Delete(element=19)], "no Bits Allocated"),
    # Number of Frames (an IS) inserted as LT text b'\x9c\x04': ValueError escaped (HTTP 500).
    (
        "CR-rle",
        [Insert(element=47, tag=0x00280008, vr="LT", value=b"\x9c\x04")],
        "Number of Frames not a number",
    ),
    # Study Time's VR flipped from TM to 'UM' (unknown): pydicom's to_json_dict raised
    # NotImplementedError out of WADO-RS metadata (HTTP 500); found by the long profile.
    ("CT-explicit", [Flip(at=96, xor=1)], "unknown VR in metadata"),
    # A flipped byte in an item length of the RLE seed's Pixel Data: pydicom raised struct.error,
    # which the key image did not catch (500 on the study page's key image); long profile.
    ("CT-rle", [Flip(at=498, xor=236)], "struct.error in the key image"),
    # Pixel Data cut away and Patient ID's VR flipped to 'MO': bulk data's search of the whole
    # dataset (Dataset.iterall) raised NotImplementedError (500); long profile.
    (
        "CR-bigendian",
        [Flip(at=502, xor=1, raw=True), Truncate(at=460)],
        "unknown VR while searching bulk data",
    ),
    # A flipped byte in an RLE segment: pylibjpeg-rle panicked (pyo3's PanicException, a
    # BaseException) out of the key image, rendered and native frames; long profile.
    ("CR-rle", [Flip(at=16263, xor=128)], "RLE decoder panic"),
]
"""Stored files the fuzzer found that made a decode raise a non-domain error."""


def _decodes(root: Path, data: bytes) -> dict[str, Callable[[], object]]:
    header, _ = parse_instance(data)
    path = root / "instance.dcm"
    path.write_bytes(data)
    located = Located(
        header.study_uid,
        header.series_uid,
        header.sop_uid,
        header.sop_class_uid,
        header.transfer_syntax_uid,
        "instance.dcm",
    )
    return {
        "key image": lambda: render_png(root, KeyImage("instance.dcm", "", ""), LIMITS),
        "rendered": lambda: frame_ops.render(path, ["image/png"], thumbnail=False, limits=LIMITS),
        "thumbnail": lambda: frame_ops.render(path, [], thumbnail=True, limits=LIMITS),
        "frames native": lambda: frame_ops.frames(path, [1], [Wanted(OCTET, None)], LIMITS),
        "frames stored": lambda: frame_ops.frames(path, [1], [Wanted(OCTET, "*")], LIMITS),
        "metadata": lambda: wado.metadata(root, located, "http://testserver/dicom-web"),
        "bulk": lambda: wado.bulk_value(root, located, 0x7FE00010),
    }


def _check(root: Path, data: bytes) -> None:
    try:
        decodes = _decodes(root, data)
    except TriageError:
        return  # refused at the door: never stored, never decoded
    failures = []
    for name, decode in decodes.items():
        try:
            decode()
        except NotAcceptableError:
            pass  # a 406: no representation of the frames fits
        except TriageError as exc:
            assert meaning_of(exc) in (Invalid, NotFound), f"{name}: {exc!r}"
        except BaseException as exc:  # a Rust decoder's panic is a BaseException
            failures.append(f"{name}: {type(exc).__name__}: {exc}")
    assert not failures, failures


@pytest.mark.filterwarnings("ignore")  # pydicom warns about what it tolerates, as in production
@given(case=mutated())
@settings(max_examples=examples(150))
@example(case=(FOUND[0][0], FOUND[0][1]))
@example(case=(FOUND[1][0], FOUND[1][1]))
@example(case=(FOUND[2][0], FOUND[2][1]))
@example(case=(FOUND[3][0], FOUND[3][1]))
@example(case=(FOUND[4][0], FOUND[4][1]))
@example(case=(FOUND[5][0], FOUND[5][1]))
def test_stored_images_decode_or_raise_a_domain_error(
    tmp_path: Path, case: tuple[str, list[Mutation]]
) -> None:
    _check(tmp_path, build(*case))


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize(("seed", "changes", "what"), FOUND, ids=[f[2] for f in FOUND])
def test_found_stored_images_are_refused_with_a_domain_error(
    tmp_path: Path, seed: str, changes: list[Mutation], what: str
) -> None:
    _check(tmp_path, build(seed, changes))
