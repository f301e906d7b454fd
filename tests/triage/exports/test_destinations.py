"""Export destinations as data: which studies they take, the retry schedule, P1 claimed first,
one job per study and destination."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from tests.builders.store import add_study
from triage.exports import ExportDestination, matching
from triage.settings import TriageSettings
from triage.settings_load import load_config
from triage.worker.service import options_from
from worklist.db.engine import Database
from worklist.db.schema import Study
from worklist.exports import enqueue_export
from worklist.jobs import claim

PACS = {"name": "pacs", "ae_title": "PACS", "host": "127.0.0.1", "port": 104}


def _study(**fields: str) -> Study:
    base = {"site": "CDC1", "modalities": "DX", "priority": "P3", "ai_status": "done"}
    return Study(study_instance_uid="1.2.3", **{**base, **fields})


def test_filters_select_studies_by_site_modality_priority_and_ai_status() -> None:
    every = ExportDestination(**PACS)
    urgent = ExportDestination(**{**PACS, "name": "urgent"}, priorities=["P1"], sites=["CDC1"])
    ct = ExportDestination(**{**PACS, "name": "ct"}, modalities=["CT", "MR"])
    failed_ai = ExportDestination(**{**PACS, "name": "no-ai"}, ai_statuses=["not_available"])
    dests = [every, urgent, ct, failed_ai]
    assert matching(dests, _study()) == [every]
    assert matching(dests, _study(priority="P1")) == [every, urgent]
    assert matching(dests, _study(priority="P1", site="CDC2")) == [every]
    assert matching(dests, _study(modalities="SR\\CT")) == [every, ct]
    assert matching(dests, _study(ai_status="not_available")) == [every, failed_ai]
    assert every.send == ["sr", "key_image"]  # the AI's outputs by default, not the images


def test_retry_delays_grow_exponentially_up_to_the_cap() -> None:
    dest = ExportDestination(**PACS, first_delay_s=2, backoff=3, max_delay_s=60)
    assert [dest.delay_after(n) for n in (1, 2, 3, 4, 5)] == [2, 6, 18, 54, 60]


def test_destinations_come_from_the_triage_settings() -> None:
    settings = TriageSettings(exports=[{**PACS, "send": ["sr", "originals"], "attempts": 7}])
    (dest,) = settings.exports
    assert (dest.ae_title, dest.port, dest.attempts) == ("PACS", 104, 7)
    assert dest.send == ["sr", "originals"]
    with pytest.raises(ValidationError):
        TriageSettings(exports=[{**PACS, "send": ["everything"]}])
    with pytest.raises(ValidationError):
        TriageSettings(exports=[{**PACS, "port": 0}])


def test_destinations_are_read_from_the_toml_file_and_reach_the_worker(
    tmp_path: Path, clean_cli_env: Path
) -> None:
    toml = tmp_path / "triage.toml"
    toml.write_text(
        "[[triage.exports]]\n"
        'name = "pacs"\nae_title = "PACS"\nhost = "10.0.0.5"\nport = 104\n'
        'priorities = ["P1"]\nsend = ["sr", "key_image", "originals"]\n'
        "attempts = 4\nfirst_delay_s = 5\n"
        "[[triage.exports]]\n"
        'name = "ris"\nae_title = "RIS"\nhost = "10.0.0.6"\nport = 11112\n'
    )
    config = load_config(toml)
    pacs, ris = options_from(config).exports
    assert (pacs.name, pacs.host, pacs.priorities, pacs.attempts) == ("pacs", "10.0.0.5", ["P1"], 4)
    assert pacs.send == ["sr", "key_image", "originals"] and pacs.delay_after(2) == 10
    assert (ris.name, ris.port, ris.send) == ("ris", 11112, ["sr", "key_image"])


def test_p1_exports_are_claimed_first_and_one_job_per_destination(
    db: Database, tmp_path: Path
) -> None:
    routine, _ = add_study(db, tmp_path, enqueue_job=False)
    urgent, _ = add_study(db, tmp_path, enqueue_job=False)
    with db.write() as s:
        first = enqueue_export(s, routine, "pacs", priority=3, max_attempts=3).id
        urgent_job = enqueue_export(s, urgent, "pacs", priority=1, max_attempts=3).id
        other = enqueue_export(s, urgent, "ris", priority=1, max_attempts=3).id
        assert enqueue_export(s, routine, "pacs", priority=3, max_attempts=3).id == first
    assert len({first, urgent_job, other}) == 3
    got = claim(db, "w", kinds=["export"], limit=2)
    assert [j.id for j in got.jobs] == [urgent_job, other]
    assert [j.payload["destination"] for j in got.jobs] == ["pacs", "ris"]
