"""Hypothesis strategies that mutate valid DICOM files, for the fuzz tests of every parser of
received data (the header check, the web app's decoders, STOW-RS, the listener).

A :class:`Seed` is a small valid instance (CT or CR, from :func:`tests.builders.dicom.make_dataset`
with fixed UIDs) in one transfer syntax: Explicit or Implicit VR Little Endian, Deflated, Big
Endian, or RLE Lossless. A mutation is a frozen dataclass with a readable ``repr``, so a failing
input is kept as ``@example(seed_name, [Flip(...), ...])`` (see :func:`mutated`): byte flips,
truncations, corrupted length fields, deleted elements, inserted elements with random tags, VRs
and lengths, and inserted sequences nested deep with defined or undefined lengths. Mutations of a
deflated seed apply to its inflated dataset, which is deflated again (a :class:`Flip` or
:class:`Truncate` with ``raw=True`` hits the deflated bytes instead).

How many examples a fuzz test runs is :func:`examples` of its CI budget: the ``ci`` Hypothesis
profile (the default, derandomized) runs the budget, ``HYPOTHESIS_PROFILE=long`` fifty times it.
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass
from functools import cache

from hypothesis import strategies as st
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import correct_ambiguous_vr, write_data_element, write_file_meta_info
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    RLELossless,
)

from tests.builders.dicom import make_dataset

LONG_FACTOR = 50
"""How many times more examples ``HYPOTHESIS_PROFILE=long`` runs than CI."""

STUDY_UID = "1.2.826.0.1.3680043.9.7433.3.1"
SERIES_UID = "1.2.826.0.1.3680043.9.7433.3.1.1"
SOP_UID = "1.2.826.0.1.3680043.9.7433.3.1.1.1"

_LONG_VRS = frozenset(
    {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"}
)
VRS = [
    "AE",
    "AS",
    "AT",
    "CS",
    "DA",
    "DS",
    "DT",
    "FD",
    "FL",
    "IS",
    "LO",
    "LT",
    "OB",
    "OD",
    "OF",
    "OL",
    "OV",
    "OW",
    "PN",
    "SH",
    "SL",
    "SQ",
    "SS",
    "ST",
    "SV",
    "TM",
    "UC",
    "UI",
    "UL",
    "UN",
    "UR",
    "US",
    "UT",
    "UV",
]
"""Every VR of PS3.5 (the fuzzer also sends two random bytes as a VR)."""
KNOWN_TAGS = (
    0x00080016,  # SOP Class UID
    0x00080018,  # SOP Instance UID
    0x00080060,  # Modality
    0x00100010,  # Patient's Name
    0x00100020,  # Patient ID
    0x0020000D,  # Study Instance UID
    0x0020000E,  # Series Instance UID
    0x00280002,  # Samples per Pixel
    0x00280004,  # Photometric Interpretation
    0x00280008,  # Number of Frames
    0x00280010,  # Rows
    0x00280011,  # Columns
    0x00280100,  # Bits Allocated
    0x00281050,  # Window Center
    0x00283010,  # VOI LUT Sequence
    0x0040A730,  # Content Sequence
    0x0040A370,  # Request Attributes Sequence
    0x00401003,  # Requested Procedure Priority
    0x7FE00010,  # Pixel Data
    0xFFFEE000,  # Item
    0xFFFEE00D,  # Item Delimitation
    0xFFFEE0DD,  # Sequence Delimitation
    0xFFFCFFFC,  # Data Set Trailing Padding
)
"""Tags the parsers look at, or that delimit: the fuzzer inserts these more often than others."""


def examples(ci: int) -> int:
    """Return how many examples to run: ``ci`` in CI, :data:`LONG_FACTOR` times it when long."""
    return ci * LONG_FACTOR if os.environ.get("HYPOTHESIS_PROFILE") == "long" else ci


@dataclass(frozen=True)
class Seed:
    """A valid instance split into file meta and dataset, with its top-level element offsets."""

    name: str
    meta: bytes
    """Preamble, ``DICM`` and the file meta group."""
    body: bytes
    """The dataset as encoded, before deflating."""
    offsets: tuple[int, ...]
    """Where each top-level element of :attr:`body` starts, then ``len(body)``."""
    transfer_syntax: UID

    @property
    def endian(self) -> str:
        """``<`` or ``>`` for :mod:`struct`."""
        return "<" if self.transfer_syntax.is_little_endian else ">"

    @property
    def implicit(self) -> bool:
        """Whether the dataset is Implicit VR."""
        return self.transfer_syntax.is_implicit_VR

    @property
    def deflated(self) -> bool:
        """Whether the dataset is deflated in the file."""
        return self.transfer_syntax == DeflatedExplicitVRLittleEndian

    def file(self, body: bytes | None = None) -> bytes:
        """Return the file of ``body`` (the seed's own by default): meta, then (deflated) body."""
        data = self.body if body is None else body
        if self.deflated:
            deflater = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
            data = deflater.compress(data) + deflater.flush()
        return self.meta + data


def _instance(modality: str) -> Dataset:
    ds = make_dataset(
        study_uid=STUDY_UID,
        series_uid=SERIES_UID,
        sop_uid=SOP_UID,
        modality=modality,
        size=8,
    )
    ds.WindowCenter, ds.WindowWidth = 2048, 4096
    item = Dataset()
    item.RequestedProcedurePriority = "HIGH"
    ds.RequestAttributesSequence = [item]
    return ds


def _seed(name: str, ds: Dataset, syntax: UID) -> Seed:
    ds.file_meta = FileMetaDataset(ds.file_meta)
    if syntax == RLELossless:
        ds.compress(RLELossless, generate_instance_uid=False)
    ds.file_meta.TransferSyntaxUID = syntax
    meta = DicomBytesIO()
    write_file_meta_info(meta, ds.file_meta, enforce_standard=True)
    inflated = syntax == DeflatedExplicitVRLittleEndian
    correct_ambiguous_vr(ds, UID(syntax).is_little_endian or inflated)
    offsets, pieces, pos = [], [], 0
    for tag in sorted(ds.keys()):
        elem = ds[tag]
        out = DicomBytesIO()
        out.is_little_endian = UID(syntax).is_little_endian or inflated
        out.is_implicit_VR = UID(syntax).is_implicit_VR
        write_data_element(out, elem)
        offsets.append(pos)
        pieces.append(out.getvalue())
        pos += len(pieces[-1])
    offsets.append(pos)
    return Seed(
        name, b"\0" * 128 + b"DICM" + meta.getvalue(), b"".join(pieces), tuple(offsets), syntax
    )


SYNTAXES = {
    "explicit": ExplicitVRLittleEndian,
    "implicit": ImplicitVRLittleEndian,
    "deflated": DeflatedExplicitVRLittleEndian,
    "bigendian": ExplicitVRBigEndian,
    "rle": RLELossless,
}


@cache
def seeds() -> dict[str, Seed]:
    """Return every seed by name (``CT-explicit``, ``CR-deflated``, ...), built once."""
    out: dict[str, Seed] = {}
    for modality in ("CT", "CR"):
        for label, syntax in SYNTAXES.items():
            name = f"{modality}-{label}"
            out[name] = _seed(name, _instance(modality), syntax)
    return out


# -- mutations -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Flip:
    """XOR the byte at ``at`` (modulo the length) of the dataset, or of the file when ``raw``."""

    at: int
    xor: int
    raw: bool = False


@dataclass(frozen=True)
class Truncate:
    """Cut the dataset (or the file, when ``raw``) at ``at`` (modulo its length)."""

    at: int
    raw: bool = False


@dataclass(frozen=True)
class SetLength:
    """Overwrite the length field of top-level element ``element`` (modulo their number)."""

    element: int
    length: int


@dataclass(frozen=True)
class Delete:
    """Remove top-level element ``element`` (modulo their number)."""

    element: int


@dataclass(frozen=True)
class Insert:
    """Insert an element before top-level element ``element`` (the end included).

    ``length`` ``None`` means the value's own length; else it is written as given (a lie).
    """

    element: int
    tag: int
    vr: str
    value: bytes
    length: int | None = None


@dataclass(frozen=True)
class Nest:
    """Insert a Content Sequence nested ``depth`` deep before top-level element ``element``."""

    element: int
    depth: int
    undefined: bool


Mutation = Flip | Truncate | SetLength | Delete | Insert | Nest


def _header(seed: Seed, tag: int, vr: str, length: int) -> bytes:
    e = seed.endian
    head = struct.pack(f"{e}HH", tag >> 16, tag & 0xFFFF)
    if seed.implicit or tag >> 16 == 0xFFFE:
        return head + struct.pack(f"{e}I", length & 0xFFFFFFFF)
    raw_vr = vr.encode("latin-1")[:2].ljust(2, b" ")
    if vr in _LONG_VRS or vr not in VRS:
        return head + raw_vr + b"\0\0" + struct.pack(f"{e}I", length & 0xFFFFFFFF)
    return head + raw_vr + struct.pack(f"{e}H", length & 0xFFFF)


def _nested(seed: Seed, depth: int, undefined: bool) -> bytes:
    if undefined:
        opening = _header(seed, 0x0040A730, "SQ", 0xFFFFFFFF) + _header(seed, 0xFFFEE000, "", -1)
        closing = _header(seed, 0xFFFEE00D, "", 0) + _header(seed, 0xFFFEE0DD, "", 0)
        return opening * depth + closing * depth
    inner = b""
    for _ in range(depth):
        item = _header(seed, 0xFFFEE000, "", len(inner)) + inner
        inner = _header(seed, 0x0040A730, "SQ", len(item)) + item
    return inner


def _apply(seed: Seed, body: bytes, offsets: list[int], m: Mutation) -> tuple[bytes, list[int]]:
    """Apply one dataset mutation; return the new body and its (approximate) element offsets."""
    count = len(offsets) - 1
    if not body and isinstance(m, Flip | Truncate):
        return body, offsets
    if isinstance(m, Flip):
        at = m.at % max(1, len(body))
        return body[:at] + bytes([body[at] ^ m.xor]) + body[at + 1 :], offsets
    if isinstance(m, Truncate):
        at = m.at % max(1, len(body))
        return body[:at], [o for o in offsets if o <= at]
    if count < 1:
        return body, offsets
    if isinstance(m, SetLength | Delete):
        index = m.element % count
        start = offsets[index]
        if isinstance(m, Delete):
            size = offsets[index + 1] - start
            rest = [o - size for o in offsets[index + 1 :]]
            return body[:start] + body[offsets[index + 1] :], offsets[:index] + rest
        if seed.implicit:
            field, fmt = start + 4, "I"
        else:
            vr = body[start + 4 : start + 6].decode("latin-1")
            field, fmt = (start + 8, "I") if vr in _LONG_VRS else (start + 6, "H")
        size = struct.calcsize(fmt)
        packed = struct.pack(
            f"{seed.endian}{fmt}", m.length & (0xFFFFFFFF if fmt == "I" else 0xFFFF)
        )
        return body[:field] + packed + body[field + size :], offsets
    index = m.element % (count + 1)
    if isinstance(m, Insert):
        length = len(m.value) if m.length is None else m.length
        piece = _header(seed, m.tag, m.vr, length) + m.value
    else:
        piece = _nested(seed, m.depth, m.undefined)
    at = offsets[index]
    shifted = [o + len(piece) for o in offsets[index:]]
    return body[:at] + piece + body[at:], [*offsets[:index], at, *shifted]


def mutate(seed: Seed, mutations: list[Mutation]) -> bytes:
    """Return the file of ``seed`` with ``mutations`` applied in order.

    Parameters
    ----------
    seed : Seed
        The valid instance.
    mutations : list of Mutation
        Applied to the dataset in order; then the file is built (deflated for a deflated seed)
        and the ``raw`` flips and truncations are applied to the file.

    Returns
    -------
    bytes
        The file (preamble, file meta, dataset).
    """
    body, offsets = seed.body, list(seed.offsets)
    raw = [m for m in mutations if isinstance(m, Flip | Truncate) and m.raw]
    for m in mutations:
        if m not in raw:
            body, offsets = _apply(seed, body, offsets, m)
    data = seed.file(body)
    for m in raw:
        if not data:
            break
        at = m.at % len(data)
        if isinstance(m, Flip):
            data = data[:at] + bytes([data[at] ^ m.xor]) + data[at + 1 :]
        else:
            data = data[:at]
    return data


def _latin1(raw: bytes) -> str:
    return raw.decode("latin-1")


def _tags() -> st.SearchStrategy[int]:
    return st.one_of(
        st.sampled_from(KNOWN_TAGS),
        st.integers(0, 0xFFFFFFFF),
        st.integers(0x00080000, 0x00300000).map(lambda t: t | 1),  # private tags
    )


def _values() -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=24),
        st.sampled_from([b"1.2.3\0", b"1A", b"-1", b"99999", b"\xff\xff\xff\xff", b"RGB "]),
    )


def mutations(max_depth: int = 600) -> st.SearchStrategy[Mutation]:
    """Return a strategy of one mutation (nested sequences at most ``max_depth`` deep)."""
    lengths = st.one_of(
        st.sampled_from([0, 1, 2, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFE, 0x7FFFFFFF]),
        st.integers(0, 0xFFFFFFFF),
    )
    return st.one_of(
        st.builds(Flip, st.integers(0, 1 << 16), st.integers(1, 255), st.booleans()),
        st.builds(Truncate, st.integers(0, 1 << 16), st.booleans()),
        st.builds(SetLength, st.integers(0, 64), lengths),
        st.builds(Delete, st.integers(0, 64)),
        st.builds(
            Insert,
            st.integers(0, 64),
            _tags(),
            st.one_of(st.sampled_from(VRS), st.binary(min_size=2, max_size=2).map(_latin1)),
            _values(),
            st.one_of(st.none(), lengths),
        ),
        st.builds(Nest, st.integers(0, 64), st.integers(1, max_depth), st.booleans()),
    )


def mutated(max_depth: int = 600) -> st.SearchStrategy[tuple[str, list[Mutation]]]:
    """Return a strategy of ``(seed name, mutations)``: one to three mutations of one seed."""
    return st.tuples(
        st.sampled_from(sorted(seeds())), st.lists(mutations(max_depth), min_size=1, max_size=3)
    )


def build(seed_name: str, changes: list[Mutation]) -> bytes:
    """Return the file of seed ``seed_name`` mutated by ``changes`` (:func:`mutate`)."""
    return mutate(seeds()[seed_name], changes)


def valid_file(seed_name: str) -> bytes:
    """Return the unmutated file of a seed."""
    return seeds()[seed_name].file()


__all__ = [
    "KNOWN_TAGS",
    "LONG_FACTOR",
    "SOP_UID",
    "STUDY_UID",
    "VRS",
    "Delete",
    "Flip",
    "Insert",
    "Mutation",
    "Nest",
    "Seed",
    "SetLength",
    "Truncate",
    "build",
    "examples",
    "mutate",
    "mutated",
    "mutations",
    "seeds",
    "valid_file",
]
