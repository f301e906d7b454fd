"""The DICOM conformance statement, rendered from the AE the listener builds.

``docs/conformance.md`` is :func:`render_statement` at the built-in defaults
(``triage conformance --defaults --out docs/conformance.md``); a test keeps the two equal, and
checks the statement against what the AE negotiates and what the C-STORE handler returns.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Sequence
from typing import Any

from pydicom.datadict import tag_for_keyword
from pydicom.uid import UID

from dicom_gateway import scu
from dicom_gateway.conformance import (
    QR_SOP_CLASSES,
    QR_STATUSES,
    QR_TRANSFER_SYNTAXES,
    STATUSES,
    verification_sop_class,
)
from dicom_gateway.qr import PRIORITY_ELEMENT, PRIVATE_CREATOR, PRIVATE_GROUP
from dicom_gateway.scp import build_ae
from dicom_gateway.settings import GatewaySettings
from dicom_gateway.statuses import status_name
from worklist.query.keys import KEYS, TRIAGE_PRIORITY, UNRECORDED, Key

__all__ = ["REGENERATE", "built_in_defaults", "render_statement"]

logger = logging.getLogger(__name__)

REGENERATE = "triage conformance --defaults --out docs/conformance.md"
"""The command that writes ``docs/conformance.md``."""


def built_in_defaults() -> GatewaySettings:
    """Return the gateway settings at their defaults, ignoring the TOML file and ``TRIAGE_*``.

    Returns
    -------
    GatewaySettings
        Every field at its declared default (valid by construction, so not re-validated).
    """
    return GatewaySettings.model_construct()


def _uid_row(uid: UID) -> str:
    name = uid.name if uid.name != str(uid) else "(not named in pydicom's UID dictionary)"
    return f"| `{uid}` | {name} |"


def _uid_table(uids: Sequence[UID]) -> list[str]:
    return ["| UID | name |", "|---|---|", *(_uid_row(uid) for uid in uids)]


def _storage_transfer_syntaxes(contexts: Sequence[Any], verification: UID) -> list[UID]:
    """Return the one transfer syntax list every storage context of the AE accepts."""
    lists = {
        tuple(str(ts) for ts in cx.transfer_syntax)
        for cx in contexts
        if cx.abstract_syntax != verification and cx.abstract_syntax not in QR_SOP_CLASSES
    }
    if len(lists) != 1:
        raise ValueError(
            f"the storage contexts accept {len(lists)} different transfer syntax lists; "
            "the statement lists one: extend render_statement"
        )
    return [UID(ts) for ts in lists.pop()]


def _default_of(function: Any, parameter: str) -> str:
    return str(inspect.signature(function).parameters[parameter].default)


def _ae_rows(ae: Any, settings: GatewaySettings) -> list[str]:
    calling = ", ".join(f"`{aet}`" for aet in ae.require_calling_aet) or "any (a warning is logged)"
    called = f"only `{ae.ae_title}`" if ae.require_called_aet else "any (not checked)"
    pdu = f"{ae.maximum_pdu_size} bytes" if ae.maximum_pdu_size else "no limit"
    processes = settings.processes or "one per CPU core, as many as the memory cap allows"
    memory = settings.max_memory_bytes
    return [
        "| item | value | setting |",
        "|---|---|---|",
        f"| AE title | `{ae.ae_title}` | `gateway.ae_title` |",
        f"| listens on | `{settings.host}:{settings.port}` | `gateway.host`, `gateway.port` |",
        f"| calling AE titles accepted | {calling} | `gateway.allowed_calling_aets` |",
        f"| called AE title accepted | {called} | |",
        f"| simultaneous associations | {ae.maximum_associations} per listener process "
        "| `gateway.max_associations` |",
        f"| listener processes sharing the port | {processes} | `gateway.processes` |",
        f"| resident memory of the listener | at most {memory} bytes ({memory / 2**20:g} MiB), "
        "all its processes together; an instance that would take it further: `0xA700` "
        "| `gateway.max_memory_bytes` |",
        f"| largest PDU received | {pdu} (a PDU announcing more closes the connection) "
        "| `gateway.max_pdu_length` |",
        f"| associations from one peer address | {settings.max_associations_per_peer} per "
        "listener process | `gateway.max_associations_per_peer` |",
        f"| deadlines: association setup, a whole PDU | "
        f"{settings.association_setup_timeout_s:g} s, {settings.pdu_read_timeout_s:g} s "
        "| `gateway.association_setup_timeout_s`, `gateway.pdu_read_timeout_s` |",
        f"| ACSE, DIMSE, network timeouts | {ae.acse_timeout:g} s, {ae.dimse_timeout:g} s, "
        f"{ae.network_timeout:g} s | `gateway.acse_timeout_s`, `gateway.dimse_timeout_s`, "
        "`gateway.network_timeout_s` (ACSE: at most the setup deadline) |",
        f"| secure transport (TLS) | {_tls_row(settings)} | `gateway.tls_*` |",
        f"| implementation class UID | `{ae.implementation_class_uid}` (pynetdicom's) | |",
        f"| implementation version name | `{ae.implementation_version_name}` | |",
    ]


def _tls_row(settings: GatewaySettings) -> str:
    if settings.tls_port is None:
        where = "not enabled (set `gateway.tls_port`)"
    else:
        where = f"on `{settings.host}:{settings.tls_port}` beside the plain port"
    client = "required" if settings.tls_require_client_certificate else "verified if sent"
    bound = "; calling AE titles bound to certificate subjects" if settings.tls_aet_subjects else ""
    return (
        f"PS3.15 B.9 (BCP 195): {where}; TLS {settings.tls_min_version}+, ECDHE with AES-GCM "
        f"or ChaCha20; client certificate {client}{bound}"
    )


def _behaviour(settings: GatewaySettings) -> list[str]:
    return [
        "- Success is returned only after the instance is durable on disk in the archive (fsync "
        "of the file and its folders, or one `syncfs` of the archive's filesystem for a group "
        "of instances, `gateway.group_commit`) and its row is committed in the store.",
        "- Each instance is stored as received (the encoded dataset, with a file meta "
        "information header added): no coercion of attributes, no transcoding.",
        f"- **Duplicate policy** (`gateway.duplicate_policy`, default "
        f"`{settings.duplicate_policy.value}`): the same SOP Instance UID with identical bytes "
        "is answered Success and stored once. With different bytes, `keep_first` keeps the "
        "stored copy, answers Success and logs a warning; `replace` durably replaces the "
        "stored copy. Both are recorded as `instance.duplicate` events.",
        "- Refused instances are answered with the statuses below, logged with the reason and "
        "recorded as `instance.refused` events (shown on the site status page).",
        "- C-ECHO is answered Success.",
    ]


def _matching(key: Key) -> str:
    if key.keyword in UNRECORDED:
        return "returned empty: not recorded by the ingest; a value is not matched"
    if not key.matchable:
        return "returned only"
    kinds = {
        "UI": "single value, list of UIDs, universal",
        "DA": "single value, range, universal",
        "TM": "single value, range, universal",
        "IS": "single value, universal",
        "PN": "single value, wild card, universal; case-insensitive",
    }
    text = kinds.get(key.vr, "single value, wild card, universal; case-sensitive")
    if key.keyword == "ModalitiesInStudy":
        text += "; several values match a study with a series of any of them"
    return text


def _tag(key: Key) -> str:
    if key.keyword == TRIAGE_PRIORITY:
        return f"`({PRIVATE_GROUP:04X},xx{PRIORITY_ELEMENT:02X})` private"
    tag = tag_for_keyword(key.keyword)
    return f"`({tag >> 16:04X},{tag & 0xFFFF:04X})`" if tag is not None else "?"


def _query_retrieve(settings: GatewaySettings) -> list[str]:
    destinations = ", ".join(
        f"`{aet}` at `{d.host}:{d.port}`" for aet, d in settings.move_destinations.items()
    )
    return [
        "## Query/Retrieve",
        "",
        "Study Root C-FIND at STUDY, SERIES and IMAGE level; C-MOVE and C-GET at the same "
        "levels. Matching follows PS3.4 C.2.2: universal matching (an empty value or `*`), "
        "single value matching, wild cards `*` and `?` (not for DA, TM, UI, IS), ranges "
        "`A-B`, `A-`, `-B` for DA and TM, lists of UIDs. Person names match whatever their "
        "case; other text is case-sensitive. A key of the query level or a level above it is "
        "matched; a key of a level below is refused (0xA900). Each response carries the keys "
        "asked for, the unique keys of the query level and the levels above, "
        "`SpecificCharacterSet` `ISO_IR 192` and `RetrieveAETitle`. Keys this SCP does not "
        "support are left out of the responses, which then carry 0xFF01.",
        "",
        f"The study's triage priority (`P1` most urgent to `P3`) is the private attribute "
        f"`({PRIVATE_GROUP:04X},xx{PRIORITY_ELEMENT:02X})` CS of private creator "
        f"`{PRIVATE_CREATOR}` (`({PRIVATE_GROUP:04X},00xx)` LO): no standard attribute holds "
        "the priority an AI triage gave a study. Ask for it with the creator element and the "
        'priority element, e.g. `findscu -k (0041,0010)="ICS TRIAGE" -k (0041,1001)`.',
        "",
        "C-MOVE sends to the AE titles of `gateway.move_destinations` only (currently: "
        f"{destinations or 'none configured'}); any other destination is answered Move "
        "Destination Unknown (0xA801). C-GET sends on the requestor's association, which must "
        "propose the storage SOP class and the instance's transfer syntax with the SCP role. "
        "Either way each instance is read from its archive file and sent in the transfer "
        "syntax it was received in, its elements encoded as they were received except that "
        "retired group lengths (gggg,0000) are left out and SOP Class UID, SOP Instance UID "
        "and Specific Character Set are written in their standard encoding; a Deflated "
        "instance is compressed anew. An instance whose file cannot be read fails its own "
        "sub-operation. A retrieve with failed sub-operations ends with 0xB000 (set by "
        "pynetdicom).",
        "",
        "| key | tag | level | VR | matching |",
        "|---|---|---|---|---|",
        *(
            f"| {k.keyword} | {_tag(k)} | {k.level} | {k.vr} | {_matching(k)} |"
            for k in KEYS.values()
        ),
        "",
        "## Statuses returned to C-FIND, C-MOVE and C-GET",
        "",
        "| status | meaning | services | when |",
        "|---|---|---|---|",
        *(
            f"| `0x{code:04X}` | {status_name(code, services.split(',')[0])} | {services} "
            f"| {when} |"
            for code, services, when in QR_STATUSES
        ),
    ]


def _scu(settings: GatewaySettings) -> list[str]:
    return [
        "## SCU: `triage echo` and `triage send`",
        "",
        f"The command-line tools call with AE title `{_default_of(scu.send_files, 'calling_aet')}`"
        " unless `--calling-aet` says otherwise, and call the peer AE title `--called-aet` "
        f"(default: `gateway.ae_title`, `{settings.ae_title}`). `triage echo` proposes the "
        "Verification SOP class. `triage send` proposes exactly the SOP classes and transfer "
        "syntaxes of the files it sends and sends each file as it is on disk (no decoding, no "
        "transcoding). With `--tls` / `--tls-ca`, `--tls-cert`, `--tls-key` they associate over "
        "DICOM TLS (TLS 1.2+, BCP 195 cipher suites, the peer's certificate and host name "
        "verified).",
        "",
        "## SCU: exports to PACS",
        "",
        "A triage worker with export destinations (`[[triage.exports]]`, see `docs/exports.md`) "
        "calls each destination's `ae_title` with its `calling_aet` (default `ICS_TRIAGE`) and "
        "sends the triaged study's Comprehensive 3D SR, its Secondary Capture key image and, "
        "where configured, its received instances in the same way as `triage send`: exactly "
        "the SOP classes and transfer syntaxes of the instances, each as it is in the archive. "
        "Any status other than Success (0x0000) counts as a failure of that instance: the "
        "export is retried with an exponential backoff and sends only what was not "
        "acknowledged. A destination with `tls = true` is called over DICOM TLS as `triage "
        "send --tls` does.",
    ]


def render_statement(settings: GatewaySettings) -> str:
    """Return the DICOM conformance statement of the listener as a Markdown document.

    Parameters
    ----------
    settings
        The gateway settings to describe (:func:`built_in_defaults` for ``docs/conformance.md``).

    Returns
    -------
    str
        The whole document, ending with a newline.
    """
    ae = build_ae(settings)
    contexts = list(ae.supported_contexts)
    verification = verification_sop_class()
    verification_ts = [
        UID(str(ts))
        for cx in contexts
        if cx.abstract_syntax == verification
        for ts in cx.transfer_syntax
    ]
    storage_ts = _storage_transfer_syntaxes(contexts, verification)
    sop_classes = [
        UID(str(cx.abstract_syntax)) for cx in contexts if cx.abstract_syntax not in QR_SOP_CLASSES
    ]
    lines = [
        "# DICOM conformance statement",
        "",
        f"<!-- Generated from the code by `{REGENERATE}`: do not edit by hand. -->",
        "",
        "The DICOM gateway of this project (`triage gateway`, also started by `triage serve`): "
        "a Storage SCP and Verification SCP that receives studies from modalities and PACS, "
        "and a Query/Retrieve SCP (Study Root C-FIND, C-MOVE, C-GET) that serves them. "
        "This file is generated from the AE the listener builds, the gateway's default "
        f"settings and the statuses its C-STORE handler returns (`{REGENERATE}`); "
        "`tests/dicom_gateway/test_conformance.py` checks that it is what the code generates "
        "and what the AE negotiates. `triage conformance` prints the statement of an "
        "installation's effective settings.",
        "",
        "## Application entity",
        "",
        *_ae_rows(ae, settings),
        "",
        "## Behaviour",
        "",
        *_behaviour(settings),
        "",
        "## Statuses returned to C-STORE",
        "",
        "| status | meaning | when |",
        "|---|---|---|",
        *(f"| `0x{code:04X}` | {status_name(code)} | {when} |" for code, when in STATUSES),
        "",
        "## Presentation contexts",
        "",
        "Every SOP class below is accepted in the SCP role; the storage SOP classes also accept "
        "SCP/SCU role selection, so that a C-GET requestor receives its sub-operations as "
        "Storage SCP. No extended negotiation.",
        "",
        "### Transfer syntaxes of the Verification SOP class",
        "",
        *_uid_table(verification_ts),
        "",
        "### Transfer syntaxes of every storage SOP class (in order of preference)",
        "",
        *_uid_table(storage_ts),
        "",
        f"### SOP classes (SCP): {len(sop_classes)}",
        "",
        *_uid_table(sop_classes),
        "",
        "### Transfer syntaxes of the Query/Retrieve SOP classes",
        "",
        *_uid_table(list(QR_TRANSFER_SYNTAXES)),
        "",
        f"### Query/Retrieve SOP classes (SCP): {len(QR_SOP_CLASSES)}",
        "",
        *_uid_table(list(QR_SOP_CLASSES)),
        "",
        *_query_retrieve(settings),
        "",
        *_scu(settings),
    ]
    return "\n".join(lines) + "\n"
