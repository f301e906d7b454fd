"""While the store cannot be reached, a C-STORE is refused with Out of Resources (0xA700),
which a modality retries, with one log line per refusal instead of tracebacks; once the store
is back, storing works again without restarting the gateway.

Seen in the chaos test: PostgreSQL restarting gave 0x0110 Processing Failure and two
tracebacks per refused instance.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.builders.dicom import make_study
from tests.builders.gateway import GatewayFactory
from tests.builders.peers import free_port, storescu
from tests.builders.postgres import PostgresServer

pytestmark = [pytest.mark.postgres, pytest.mark.dcmtk]


def test_store_down_is_out_of_resources_and_the_gateway_recovers(
    gateway_factory: GatewayFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = PostgresServer(free_port())
    try:
        url = server.create()
        gw, _db, _ = gateway_factory(worklist={"database_url": url}, group_commit=False)
        _, files = make_study(tmp_path / "in", modality="CT", series=1, per_series=3)
        assert storescu(gw.port, files[:1])[1] == {str(files[0]): "Success"}

        server.kill()
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="dicom_gateway"):
            code, responses = storescu(gw.port, files[1:2])
        assert responses == {str(files[1]): "Refused: OutOfResources"}, (code, caplog.text)
        refusals = [r for r in caplog.records if "refused C-STORE" in r.getMessage()]
        assert len(refusals) == 1 and "0xA700" in refusals[0].getMessage()
        assert not [r for r in caplog.records if r.exc_info], caplog.text  # no tracebacks

        server.start()
        assert storescu(gw.port, files[1:])[1] == {str(f): "Success" for f in files[1:]}
    finally:
        server.destroy()
