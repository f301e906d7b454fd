"""Every DICOM test file that ships with pydicom, sent by DCMTK's storescu to the listener.

Each one is either stored (the stored dataset equal to the one sent, element by element, pixel
data included) or refused with a failure status (or, for files storescu itself cannot send, at
association negotiation), and the listener answers C-ECHO afterwards.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_files
from pydicom.dataset import Dataset
from sqlalchemy import select

from dicom_gateway.scu import send_files
from dicom_gateway.statuses import SUCCESS
from tests.builders.gateway import GatewayFactory
from tests.builders.peers import echoscu, storescu
from worklist.db.schema import Instance

pytestmark = [pytest.mark.dcmtk, pytest.mark.slow]


def _dicom_test_files() -> list[Path]:
    found = []
    for name in get_testdata_files():
        path = Path(name)
        if path.suffix in (".txt", ".json", ".gz", ".icc", ".dump", ".py"):
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = dcmread(path, force=True, stop_before_pixels=True)
                if "SOPClassUID" not in ds:
                    continue
        except Exception:
            continue
        found.append(path)
    return sorted(found)


def _load(path: Path) -> Dataset:
    """Read a file, without the elements DCMTK's storescu drops in transit.

    DCMTK sends datasets without group length elements (gggg,0000) and without Data Set
    Trailing Padding (FFFC,FFFC), so those are not part of "the dataset sent".
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = dcmread(path, force=True)
    for tag in [t for t in list(ds._dict) if t.element == 0 or t == 0xFFFCFFFC]:
        del ds[tag]
    return ds


def test_every_pydicom_file_is_stored_equal_or_refused(
    gateway_factory: GatewayFactory,
) -> None:
    files = _dicom_test_files()
    assert len(files) > 50
    # Listener child processes: their lenient reading is not subject to pytest's warning filter.
    gw, db, wl = gateway_factory(processes=2)
    _rc, responses = storescu(gw.port, files, "-aet", "PYDICOM_DATA")
    outcome: dict[Path, str] = {Path(k): v for k, v in responses.items()}  # in sending order
    # Files storescu would not send (unreadable to DCMTK, or no context): send them ourselves.
    rest = [f for f in files if f not in outcome]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom tolerates odd files, with warnings
        results = send_files(rest, "127.0.0.1", gw.port, calling_aet="PYDICOM_DATA")
    for result in results:
        if result.status is not None:
            outcome[result.path] = "Success" if result.status == SUCCESS else result.label
        else:
            outcome[result.path] = f"not sent: {result.message}"
    assert echoscu(gw.port).returncode == 0

    with db.read() as s:
        stored = {
            uid: path for uid, path in s.execute(select(Instance.sop_instance_uid, Instance.path))
        }
    archive = wl.effective_archive_dir
    first_success: dict[str, Path] = {}
    for path in outcome:  # in sending order: keep_first keeps the first success
        if outcome.get(path) == "Success":
            first_success.setdefault(str(_load(path).SOPInstanceUID), path)
    mismatched = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # converting odd values warns
        for uid, path in first_success.items():
            assert uid in stored, f"{path.name} acknowledged but not recorded"
            sent = _load(path)
            kept = _load(archive / stored[uid])
            if kept != sent:
                diff = [
                    e.keyword or str(e.tag) for e in sent if e.tag not in kept or kept[e.tag] != e
                ]
                mismatched.append((path.name, diff[:5]))
    assert mismatched == [], "\n".join(map(str, mismatched))
    refused = {p.name: o for p, o in outcome.items() if o != "Success"}
    never_sent = {n: o for n, o in refused.items() if o.startswith("not sent")}
    print(f"stored {len(first_success)} SOP instances; refused {len(refused)}: {refused}")
    # Every file reached the listener, except ones neither SCU could even offer.
    assert len(never_sent) <= len(files) // 4, never_sent
    assert len(first_success) >= len(files) // 2
