"""docs/conformance.md is what the code generates, and what the AE negotiates and returns."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pynetdicom import AE, build_context

import dicom_gateway
from dicom_gateway import statuses
from dicom_gateway.scp import build_ae
from dicom_gateway.statement import REGENERATE, built_in_defaults, render_statement
from dicom_gateway.statuses import status_name
from tests.builders import REPO
from triage.cli import main

ROOT = REPO
STATEMENT = ROOT / "docs" / "conformance.md"
VERIFICATION = "1.2.840.10008.1.1"
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
NOT_A_SOP_CLASS = "1.2.826.0.1.3680043.8.498.1"  # a UID under pydicom's root, not a SOP class


def _statement() -> str:
    return STATEMENT.read_text(encoding="utf-8")


def _section(text: str, heading: str) -> str:
    assert heading in text, f"docs/conformance.md has no heading {heading!r}"
    return text.split(heading, 1)[1].split("\n#", 1)[0]


def _table_uids(text: str, heading: str) -> list[str]:
    return re.findall(r"^\| `([0-9.]+)` \|", _section(text, heading), re.M)


def _sop_classes(text: str) -> list[str]:
    return _table_uids(text, "### SOP classes (SCP)")


def _qr_sop_classes(text: str) -> list[str]:
    return _table_uids(text, "### Query/Retrieve SOP classes (SCP)")


def _qr_ts(text: str) -> list[str]:
    return _table_uids(text, "### Transfer syntaxes of the Query/Retrieve SOP classes")


def _storage_ts(text: str) -> list[str]:
    return _table_uids(text, "### Transfer syntaxes of every storage SOP class")


def _verification_ts(text: str) -> list[str]:
    return _table_uids(text, "### Transfer syntaxes of the Verification SOP class")


def _statuses(text: str, heading: str) -> list[tuple[int, str]]:
    rows = re.findall(r"^\| `0x([0-9A-F]{4})` \| ([^|]+) \|", _section(text, heading), re.M)
    return [(int(code, 16), name.strip()) for code, name in rows]


STORE_STATUSES = "## Statuses returned to C-STORE"
QR_STATUSES = "## Statuses returned to C-FIND, C-MOVE and C-GET"


def test_the_statement_is_what_the_code_generates() -> None:
    assert _statement() == render_statement(built_in_defaults()), (
        f"docs/conformance.md is stale: regenerate it with `{REGENERATE}`"
    )


def test_the_regenerate_command_writes_the_same_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The command named in the failure message above must write exactly what the test expects,
    # whatever the environment says.
    monkeypatch.setenv("TRIAGE_GATEWAY_AE_TITLE", "FROM_ENV")
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "docs" / "conformance.md"
    assert main(["conformance", "--defaults", "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == render_statement(built_in_defaults())
    assert "`FROM_ENV`" not in out.read_text(encoding="utf-8")


def test_without_defaults_the_statement_describes_the_effective_settings(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TRIAGE_GATEWAY_AE_TITLE", "SITE_GW")
    monkeypatch.setenv("TRIAGE_GATEWAY_ALLOWED_CALLING_AETS", '["CDC_NORTH"]')
    assert main(["conformance"]) == 0
    text = capsys.readouterr().out
    assert "| AE title | `SITE_GW` |" in text
    assert "| calling AE titles accepted | `CDC_NORTH` |" in text


def test_statement_sop_classes_and_transfer_syntaxes_are_the_ae_contexts() -> None:
    text = _statement()
    contexts = build_ae(built_in_defaults()).supported_contexts
    assert sorted(_sop_classes(text) + _qr_sop_classes(text)) == sorted(
        str(cx.abstract_syntax) for cx in contexts
    )
    assert len(_qr_sop_classes(text)) == 3  # Study Root FIND, MOVE, GET
    for cx in contexts:
        if cx.abstract_syntax == VERIFICATION:
            expected = _verification_ts(text)
        elif cx.abstract_syntax in _qr_sop_classes(text):
            expected = _qr_ts(text)
        else:
            expected = _storage_ts(text)
        assert [str(ts) for ts in cx.transfer_syntax] == expected, cx
    defaults = built_in_defaults()
    assert f"| AE title | `{defaults.ae_title}` |" in text
    assert f"`{defaults.host}:{defaults.port}`" in text


@pytest.fixture(scope="module")
def listener() -> Iterator[int]:
    """The listener's AE at its defaults, serving on a free loopback port."""
    ae = build_ae(built_in_defaults())
    server = ae.start_server(("127.0.0.1", 0), block=False)
    assert server is not None  # non-blocking start returns the server
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()


def _negotiate(port: int, contexts: list[Any]) -> Any:
    scu = AE(ae_title="CONFORMANCE")
    scu.acse_timeout = scu.dimse_timeout = scu.network_timeout = 10
    scu.requested_contexts = contexts
    assoc = scu.associate("127.0.0.1", port, ae_title="ICS_TRIAGE")
    assert assoc.is_established
    return assoc


def test_the_listener_accepts_every_statement_sop_class(listener: int) -> None:
    sop_classes = [uid for uid in _sop_classes(_statement()) if uid != VERIFICATION]
    for start in range(0, len(sop_classes), 120):  # at most 128 contexts per association
        batch = sop_classes[start : start + 120]
        assoc = _negotiate(
            listener, [build_context(uid, _storage_ts(_statement())) for uid in batch]
        )
        try:
            accepted = sorted(str(cx.abstract_syntax) for cx in assoc.accepted_contexts)
        finally:
            assoc.release()
        assert accepted == sorted(batch)


def test_the_listener_accepts_each_statement_transfer_syntax_and_nothing_else(
    listener: int,
) -> None:
    text = _statement()
    proposed = [build_context(CT_IMAGE, ts) for ts in _storage_ts(text)]
    proposed += [build_context(VERIFICATION, ts) for ts in _verification_ts(text)]
    proposed.append(build_context(NOT_A_SOP_CLASS, _storage_ts(text)))
    proposed.append(build_context(CT_IMAGE, "1.2.840.10008.1.2.4.201"))  # HTJ2K: not listed
    assoc = _negotiate(listener, proposed)
    try:
        accepted = [
            (str(cx.abstract_syntax), str(cx.transfer_syntax[0])) for cx in assoc.accepted_contexts
        ]
        rejected = [str(cx.abstract_syntax) for cx in assoc.rejected_contexts]
        echo = assoc.send_c_echo()
    finally:
        assoc.release()
    assert sorted(accepted) == sorted(
        [(CT_IMAGE, ts) for ts in _storage_ts(text)]
        + [(VERIFICATION, ts) for ts in _verification_ts(text)]
    )
    assert sorted(rejected) == sorted([NOT_A_SOP_CLASS, CT_IMAGE])
    assert echo.Status == statuses.SUCCESS


def _statuses_named_in(path: Path) -> set[int]:
    """Return the codes of the status constants a module names (``NAME`` or ``Status.NAME``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    codes: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in statuses.__all__:
            value = getattr(statuses, node.id)
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "Status"
        ):
            value = getattr(statuses.Status, node.attr, None)
        else:
            continue
        if isinstance(value, int):
            codes.add(int(value))
    return codes


def _services(heading: str) -> dict[int, str]:
    """The first service of each row of a status table with a services column."""
    rows = re.findall(
        r"^\| `0x([0-9A-F]{4})` \| [^|]+ \| ([^|,]+)", _section(_statement(), heading), re.M
    )
    return {int(code, 16): service.strip() for code, service in rows}


def _check_statuses(heading: str, returned: set[int], service: str | None) -> None:
    documented = _statuses(_statement(), heading)
    assert {code for code, _ in documented} == returned
    assert len(documented) == len(returned), "a status is listed twice"
    services = _services(heading) if service is None else {}
    for code, name in documented:
        service = services.get(code, service)
        assert service is not None
        assert name == status_name(code, service), (
            f"0x{code:04X} is {status_name(code, service)!r} in pynetdicom"
        )


def test_statement_statuses_are_those_the_store_handler_returns() -> None:
    # Every module of the listener except the status table itself, the statement's sources,
    # the SCU (which reads peers' statuses, it does not return them) and the Q/R handlers.
    package = Path(dicom_gateway.__file__).parent
    skip = {"statuses.py", "conformance.py", "statement.py", "scu.py", "qr.py"}
    returned: set[int] = set()
    for module in sorted(package.glob("*.py")):
        if module.name not in skip:
            returned |= _statuses_named_in(module)
    _check_statuses(STORE_STATUSES, returned, "C-STORE")


def test_statement_statuses_are_those_the_query_retrieve_handlers_return() -> None:
    package = Path(dicom_gateway.__file__).parent
    # pynetdicom itself answers Success when a handler's generator ends.
    returned = _statuses_named_in(package / "qr.py") | {statuses.SUCCESS}
    _check_statuses(QR_STATUSES, returned, None)
    assert set(_services(QR_STATUSES).values()) <= {"C-FIND", "C-MOVE", "C-GET"}
