"""Fuzz: a live listener fed generated PDU streams over raw sockets stays up, answers a C-ECHO
from a normal SCU after every stream, and answers Success only for an instance it has stored.

Each stream is an A-ASSOCIATE-RQ (valid, or mutated: a flipped byte, a truncation, random AE
titles and maximum PDU length) followed by P-DATA-TF PDUs carrying a C-STORE whose dataset is a
mutated valid instance (tests.builders.fuzz) and whose command UID may be anything, random PDUs
(any type, any length, random bodies), an A-RELEASE-RQ, or nothing; the stream may be cut
anywhere. The fuzzer connects from 127.0.0.2, so its connections count against its own
per-peer limit, not the SCU's (127.0.0.1).
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydicom.uid import ComputedRadiographyImageStorage, CTImageStorage
from pynetdicom import AE
from pynetdicom.fsm import InvalidEventError
from sqlalchemy import select

from dicom_gateway.service import Gateway
from dicom_gateway.statuses import SUCCESS
from tests.builders import pdus
from tests.builders.fuzz import SOP_UID, Mutation, examples, mutate, mutations, seeds
from tests.builders.gateway import GatewayFactory
from tests.builders.peers import wait_for
from worklist.db.engine import Database
from worklist.db.schema import Instance
from worklist.ingest.header import parse_instance
from worklist.settings import WorklistSettings

pytestmark = pytest.mark.fuzz

FUZZER = "127.0.0.2"
"""The fuzzer's source address (any of 127.0.0.0/8 on Linux)."""
IDLE_S = 0.3
"""How long the fuzzer waits for the listener's next PDU before it hangs up."""


@dataclass(frozen=True)
class Damage:
    """How one PDU of the stream is spoiled: ``xor`` a byte at ``at``, or cut it at ``cut``."""

    at: int = 0
    xor: int = 0
    cut: int | None = None

    def apply(self, pdu: bytes) -> bytes:
        if self.cut is not None:
            return pdu[: self.cut % (len(pdu) + 1)]
        if self.xor and pdu:
            at = self.at % len(pdu)
            return pdu[:at] + bytes([pdu[at] ^ self.xor]) + pdu[at + 1 :]
        return pdu


@dataclass(frozen=True)
class Stream:
    """One connection's bytes, as the fuzzer generates them (a readable ``repr`` for examples)."""

    seed: str
    changes: tuple[Mutation, ...]
    command_uid: bytes | None
    """Affected SOP Instance UID of the C-STORE command; ``None``: the dataset's."""
    calling: bytes
    max_pdu: int
    rq_damage: Damage
    store_damage: Damage
    extra: tuple[tuple[int, bytes, int | None], ...]
    """Random PDUs after the C-STORE: type, body, announced length (``None``: the body's)."""
    release: bool

    def dataset(self) -> bytes:
        """The dataset sent: the mutated seed without preamble and file meta."""
        seed = seeds()[self.seed]
        return mutate(seed, list(self.changes))[len(seed.meta) :]

    def phases(self) -> tuple[bytes, bytes, bytes]:
        """The association request; the C-STORE and random PDUs; the release (or nothing)."""
        seed = seeds()[self.seed]
        sop_class = (
            CTImageStorage if self.seed.startswith("CT") else ComputedRadiographyImageStorage
        )
        contexts = [(1, str(sop_class), [str(seed.transfer_syntax)])]
        rq = pdus.associate_rq(calling=self.calling, contexts=contexts, max_pdu=self.max_pdu)
        uid = SOP_UID.encode() if self.command_uid is None else self.command_uid
        data = self.dataset()
        store = pdus.p_data_tf(1, pdus.c_store_rq(str(sop_class), uid), command=True)
        step = 8192
        store += b"".join(
            pdus.p_data_tf(1, data[i : i + step], command=False, last=i + step >= len(data))
            for i in range(0, max(len(data), 1), step)
        )
        store = self.store_damage.apply(store)
        for pdu_type, body, length in self.extra:
            size = len(body) if length is None else length
            store += struct.pack(">BBI", pdu_type, 0, size) + body
        return self.rq_damage.apply(rq), store, pdus.release_rq() if self.release else b""


_damage = st.one_of(
    st.just(Damage()),
    st.builds(Damage, at=st.integers(0, 1 << 12), xor=st.integers(1, 255)),
    st.builds(Damage, cut=st.integers(0, 1 << 12)),
)
_streams = st.builds(
    Stream,
    seed=st.sampled_from(sorted(seeds())),
    changes=st.lists(mutations(max_depth=64), max_size=2).map(tuple),
    command_uid=st.one_of(st.none(), st.binary(max_size=70)),
    calling=st.one_of(st.just(b"FUZZ"), st.binary(max_size=16)),
    max_pdu=st.one_of(st.just(16384), st.integers(0, 0xFFFFFFFF)),
    rq_damage=st.one_of(st.just(Damage()), _damage),
    store_damage=_damage,
    extra=st.lists(
        st.tuples(
            st.integers(0, 255), st.binary(max_size=32), st.none() | st.integers(0, 0xFFFFFFFF)
        ),
        max_size=2,
    ).map(tuple),
    release=st.booleans(),
)


def _answers(port: int, stream: Stream, idle_s: float = IDLE_S) -> list[tuple[int | None, str]]:
    """Send ``stream`` as a peer would (waiting for each answer, at most ``idle_s``).

    Returns the Status and Affected SOP Instance UID of each P-DATA-TF answer.
    """
    answers: list[tuple[int | None, str]] = []
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((FUZZER, 0))
        sock.settimeout(idle_s)
        sock.connect(("127.0.0.1", port))
        for phase in stream.phases():
            if not phase:
                continue
            try:
                sock.sendall(phase)
                while True:
                    pdu_type, body = pdus.read_pdu(sock)
                    if pdu_type == pdus.P_DATA_TF:
                        answers.append((pdus.command_status(body), _affected_uid(body)))
                    if pdu_type in (pdus.A_ASSOCIATE_AC, pdus.P_DATA_TF):
                        break  # the peer's turn
            except TimeoutError:
                continue  # the listener waits for more: go on with the next phase
            except (OSError, ConnectionError, struct.error):
                break  # the listener hung up
    return answers


def _affected_uid(body: bytes) -> str:
    data, pos = body[6:], 0
    while pos + 8 <= len(data):
        group, elem, length = struct.unpack("<HHI", data[pos : pos + 8])
        if (group, elem) == (0x0000, 0x1000):
            return data[pos + 8 : pos + 8 + length].decode("latin-1").rstrip("\0 ")
        pos += 8 + length
    return ""


def _echo(port: int) -> int:
    ae = AE(ae_title="ECHO_SCU")
    ae.add_requested_context("1.2.840.10008.1.1")
    assoc = ae.associate("127.0.0.1", port, ae_title="ICS_TRIAGE")
    assert assoc.is_established, "the listener refused a normal SCU's association"
    try:
        status = assoc.send_c_echo()
        return int(status.Status) if status else -1
    finally:
        assoc.release()


def _check(gw: Gateway, db: Database, wl: WorklistSettings, stream: Stream) -> None:
    for status, uid in _answers(gw.port, stream):
        if status != SUCCESS:
            continue
        with db.read() as session:
            path = session.scalar(select(Instance.path).where(Instance.sop_instance_uid == uid))
        assert path is not None, f"Success for {uid!r}, which is not in the store"
        header, _ = parse_instance((wl.effective_archive_dir / path).read_bytes())
        assert header.sop_uid == uid
    assert _echo(gw.port) == SUCCESS


@pytest.fixture
def listener(gateway_factory: GatewayFactory) -> tuple[Gateway, Database, WorklistSettings]:
    return gateway_factory()  # default deadlines: the fuzzer closes its own connections


@contextmanager
def thread_exceptions(gw: Gateway) -> Iterator[list[threading.ExceptHookArgs]]:
    """Collect the exceptions that end threads, until the fuzzer's associations have all ended.

    pynetdicom's DUL reactor thread raises :class:`InvalidEventError` when a peer follows an
    A-RELEASE-RQ at once with bytes that make the listener abort (the release answer then comes
    in state Sta13, awaiting the close): the thread ends, the association and its slot are
    released (checked here), and the exception goes to ``threading.excepthook``, which pytest
    would turn into a failure.
    """
    seen: list[threading.ExceptHookArgs] = []
    previous = threading.excepthook
    threading.excepthook = seen.append
    try:
        yield seen
        server = gw._server
        assert server is not None

        def fuzzer_gone() -> bool:
            return not [a for a in server.active_associations if a.requestor.address == FUZZER]

        assert wait_for(fuzzer_gone, 10), "an association of the fuzzer outlived its connection"
    finally:
        threading.excepthook = previous


def _only_pynetdicom_fsm_races(seen: list[threading.ExceptHookArgs]) -> None:
    unexpected = [
        f"{args.thread.name if args.thread else '?'}: {args.exc_type.__name__}: {args.exc_value}"
        for args in seen
        if not (
            args.exc_type is InvalidEventError and args.thread and "run_reactor" in args.thread.name
        )
    ]
    assert not unexpected, unexpected


VALID = Stream("CR-explicit", (), None, b"FUZZ", 16384, Damage(), Damage(), (), True)
"""An unspoiled stream: one valid C-STORE, then a release (it must be stored: Success)."""


@pytest.mark.filterwarnings("ignore")  # pydicom warns about what it tolerates, as in production
def test_listener_survives_any_pdu_stream_and_acknowledges_only_what_it_stored(
    listener: tuple[Gateway, Database, WorklistSettings],
) -> None:
    @given(stream=_streams)
    @settings(max_examples=examples(24))
    @example(stream=VALID)
    def fuzz(stream: Stream) -> None:
        _check(*listener, stream)

    with thread_exceptions(listener[0]) as seen:
        fuzz()
    _only_pynetdicom_fsm_races(seen)


def test_a_valid_stream_is_stored_and_acknowledged(
    listener: tuple[Gateway, Database, WorklistSettings],
) -> None:
    gw, _db, _wl = listener
    with thread_exceptions(gw) as seen:
        answers = _answers(gw.port, VALID, idle_s=10.0)  # a loaded machine may answer late
        assert answers == [(SUCCESS, SOP_UID)]
        _check(*listener, VALID)
    assert not seen
