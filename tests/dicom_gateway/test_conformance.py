"""The README's DICOM conformance statement is what the AE actually negotiates."""

from __future__ import annotations

import re
from pathlib import Path

from dicom_gateway.conformance import STATUSES, render_conformance
from dicom_gateway.scp import build_ae
from dicom_gateway.settings import GatewaySettings

README = Path(__file__).resolve().parents[2] / "README.md"


def _section() -> str:
    text = README.read_text(encoding="utf-8")
    m = re.search(r"<!-- section:conformance -->\n(.*?)<!-- /section:conformance -->", text, re.S)
    assert m, "README has no conformance section"
    return m.group(1)


def _table_uids(section: str, heading: str) -> list[str]:
    part = section.split(heading, 1)[1].split("\n### ", 1)[0]
    return re.findall(r"^\| `([0-9.]+)` \|", part, re.M)


def test_readme_sop_classes_and_transfer_syntaxes_match_the_ae() -> None:
    section = _section()
    ae = build_ae(GatewaySettings())
    contexts = ae.supported_contexts
    readme_sops = _table_uids(section, "### SOP classes")
    assert sorted(readme_sops) == sorted(str(cx.abstract_syntax) for cx in contexts)
    readme_ts = _table_uids(section, "### Transfer syntaxes")
    for cx in contexts:
        if cx.abstract_syntax == "1.2.840.10008.1.1":
            continue  # Verification: the uncompressed defaults
        assert sorted(str(ts) for ts in cx.transfer_syntax) == sorted(readme_ts), cx
    assert f"`{GatewaySettings().ae_title}`" in section


def test_readme_statuses_match_the_handlers() -> None:
    section = _section()
    codes = re.findall(r"^\| `0x([0-9A-F]{4})` \|", section, re.M)
    assert [int(c, 16) for c in codes] == [code for code, _ in STATUSES]


def test_readme_section_is_the_generated_statement() -> None:
    expected = render_conformance(GatewaySettings().ae_title)
    assert _section() == expected, (
        "README conformance section is stale: regenerate it with "
        "`python -m dicom_gateway.conformance`"
    )
