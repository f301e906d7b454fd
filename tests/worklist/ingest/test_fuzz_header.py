"""Fuzz: the header check of every received instance (C-STORE and STOW-RS) returns a header or
refuses with a domain error, whatever the bytes (mutated valid CT/CR files in five transfer
syntaxes: tests.builders.fuzz).

The inputs the fuzzer found are kept as ``@example`` cases and as :data:`FOUND`, each with what
it found; ``HYPOTHESIS_PROFILE=long`` runs fifty times the CI examples (docs/security.md).
"""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings

from models.errors import Invalid, TriageError, Unavailable, meaning_of
from tests.builders.fuzz import Delete, Flip, Mutation, build, examples, mutated, valid_file
from worklist.archive import validate_uid
from worklist.ingest.header import UndecodableInstanceError, parse_instance

pytestmark = pytest.mark.fuzz

FOUND: list[tuple[str, list[Mutation], str]] = [
    # A VR byte of SOP Class UID flipped to 'UH' (unknown VR): NotImplementedError escaped the
    # header check (0xC211 with a traceback on C-STORE; HTTP 500 on STOW-RS).
    ("CR-deflated", [Flip(at=5, xor=1)], "unknown VR of SOP Class UID"),
    # The same byte flipped to 'UL': pydicom's BytesLengthException (not a ValueError) escaped.
    ("CR-deflated", [Flip(at=5, xor=5)], "UID element read as UL"),
]
"""Inputs the fuzzer found, each refused with :class:`UndecodableInstanceError` since the fix."""


def _check(data: bytes) -> None:
    try:
        header, _ds = parse_instance(data)
    except TriageError as exc:
        assert meaning_of(exc) in (Invalid, Unavailable), repr(exc)
        return
    for uid in (header.study_uid, header.series_uid, header.sop_uid, header.sop_class_uid):
        assert validate_uid(uid) == uid


@pytest.mark.filterwarnings("ignore")  # pydicom warns about what it tolerates, as in production
@given(case=mutated())
@settings(max_examples=examples(300))
@example(case=(FOUND[0][0], FOUND[0][1]))
@example(case=(FOUND[1][0], FOUND[1][1]))
@example(case=("CT-implicit", [Delete(element=19), Delete(element=19)]))
def test_header_check_returns_a_header_or_a_domain_error(case: tuple[str, list[Mutation]]) -> None:
    _check(build(*case))


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize(("seed", "changes", "what"), FOUND, ids=[f[2] for f in FOUND])
def test_found_inputs_are_refused_as_undecodable(
    seed: str, changes: list[Mutation], what: str
) -> None:
    with pytest.raises(UndecodableInstanceError):
        parse_instance(build(seed, changes))


def test_every_seed_is_valid() -> None:
    from tests.builders.fuzz import seeds

    for name in seeds():
        header, _ = parse_instance(valid_file(name))
        assert header.referral_priority == "HIGH", name
