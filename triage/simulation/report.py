"""The simulation's files: ``simulation.json`` (versioned), ``events.csv`` and a short text.

``simulation.json`` has ``schema`` ``ics-triage/simulation`` and ``schema_version`` 1: the
effective settings, the model's behaviour, the offered load, per policy and group the figures
of :mod:`triage.simulation.stats` (each ``{mean, lo, hi, n}`` over replications, minutes), the
comparisons with FIFO, the goal, the grid and the files written.

``events.csv`` is the event log: one row per reader going on or off duty, arrival, read start
and report, per policy, for the first replication (``event_log: first``), all of them
(``all``) or none. Columns: ``replication, policy, time_min, event, study, reader, source,
referral, priority`` (``priority``: the study's class on arrival under that policy; escalation
by waiting is not logged); rows sorted by replication, policy, time, then off-duty, report,
on-duty, arrival, start, then study. The same settings and seed give the same file byte for
byte.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from triage.simulation.experiment import Outcome
from triage.simulation.runner import Replication
from triage.simulation.workload import reader_intervals, referral_names

__all__ = [
    "EVENT_COLUMNS",
    "SCHEMA",
    "SCHEMA_VERSION",
    "headline",
    "report_document",
    "write_event_log",
    "write_json",
]

logger = logging.getLogger(__name__)

SCHEMA = "ics-triage/simulation"
SCHEMA_VERSION = 1
_ORDER = {"off_duty": 0, "report": 1, "on_duty": 2, "arrival": 3, "start": 4}
EVENT_COLUMNS = (
    "replication",
    "policy",
    "time_min",
    "event",
    "study",
    "reader",
    "source",
    "referral",
    "priority",
)


def _events(outcome: Outcome, rep: Replication) -> list[tuple[Any, ...]]:
    settings = outcome.settings
    names = outcome.scenario.reader_names
    sources = [s.name for s in settings.sources]
    referrals = referral_names(settings)
    until = (rep.days + settings.drain_days) * 1440.0
    _, intervals = reader_intervals(
        settings.roster, rep.days + settings.drain_days + 1, settings.start_weekday
    )
    s = rep.studies
    rows: list[tuple[Any, ...]] = []
    for policy, run in rep.runs.items():
        block: list[tuple[Any, ...]] = []
        for r, spans in enumerate(intervals):
            for on, off in spans:
                if on < until:
                    block.append((on, "on_duty", -1, names[r]))
                    block.append((min(off, until), "off_duty", -1, names[r]))
        for i in range(len(s)):
            block.append((float(s.arrival[i]), "arrival", i, ""))
            if not math.isnan(run.start[i]):
                reader = names[int(run.reader[i])]
                block.append((float(run.start[i]), "start", i, reader))
                block.append((float(run.end[i]), "report", i, reader))
        block.sort(key=lambda e: (e[0], _ORDER[e[1]], e[2], e[3]))
        for time, event, i, reader in block:
            if i < 0:
                study: list[Any] = ["", reader, "", "", ""]
            else:
                study = [
                    i,
                    reader,
                    sources[int(s.source[i])],
                    referrals[int(s.referral[i])],
                    f"P{int(run.rank[i])}",
                ]
            rows.append((rep.index, policy, f"{time:.6f}", event, *study))
    return rows


def write_event_log(outcome: Outcome, path: Path) -> str | None:
    """Write the event log (see the module docstring) and return its sha256.

    Parameters
    ----------
    outcome
        The simulation's outcome.
    path
        The CSV file to write.

    Returns
    -------
    str or None
        The file's sha256, ``None`` when ``event_log`` is ``none`` (nothing written).
    """
    mode = outcome.settings.event_log
    if mode == "none":
        return None
    reps = outcome.replications[:1] if mode == "first" else outcome.replications
    digest = hashlib.sha256()
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(EVENT_COLUMNS)
        for rep in reps:
            writer.writerows(_events(outcome, rep))
    digest.update(path.read_bytes())
    return digest.hexdigest()


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, float | np.floating):
        return round(float(value), 4) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, Path):
        return str(value)
    return value


def report_document(outcome: Outcome, files: dict[str, Any]) -> dict[str, Any]:
    """Return the JSON document of a simulation.

    Parameters
    ----------
    outcome
        The simulation's outcome.
    files
        The files written (name to path or digest), recorded in the document.

    Returns
    -------
    dict
        The document (JSON-able; non-finite numbers become ``null``).
    """
    settings = outcome.settings
    document: dict[str, Any] = _clean(
        {
            "schema": SCHEMA,
            "schema_version": SCHEMA_VERSION,
            "generated_by": "triage simulate",
            "units": "minutes unless a name ends in _pct",
            "note": "Every default of the scenario is an assumption; see "
            "triage/simulation/defaults.py for the sources.",
            "settings": settings.model_dump(mode="json"),
            "policy_file": str(settings.policy_file or "bundled triage/rules/policy.yaml"),
            "escalation_steps_min": {
                f"P{b + 1}": [list(s) for s in steps]
                for b, steps in enumerate(outcome.scenario.steps)
            },
            "model": outcome.scenario.behaviour.describe(),
            "offered_load": outcome.offered,
            "studies_per_replication": float(
                np.mean([len(rep.studies) for rep in outcome.replications])
            ),
            "policies": outcome.summary["policies"],
            "comparison": outcome.summary["comparison"],
            "goal": outcome.goal(),
            "grid": outcome.grid,
            "files": files,
        }
    )
    return document


def headline(outcome: Outcome) -> list[str]:
    """Return the lines the command prints: per policy, urgent positives and routine waits.

    Parameters
    ----------
    outcome
        The simulation's outcome.

    Returns
    -------
    list of str
        Human-readable lines (means over replications with 95 % CIs).
    """

    def ci(value: dict[str, Any], unit: str = "%") -> str:
        if value["mean"] is None:
            return "n/a"
        if value["lo"] is None:
            return f"{value['mean']:.1f}{unit}"
        return f"{value['mean']:.1f}{unit} (95% CI {value['lo']:.1f} to {value['hi']:.1f})"

    fifo = outcome.summary["policies"]["fifo"]
    lines = [
        f"offered load: {outcome.offered['utilisation']:.0%} of the roster's reading time; "
        f"{len(outcome.replications)} replications of {outcome.settings.days} days",
        f"FIFO: urgent positives reported after {ci(fifo['urgent_positive']['mean_tat'], ' min')}"
        f" on average; longest routine wait {ci(fifo['routine']['max_tat'], ' min')}",
    ]
    for name, comp in outcome.summary["comparison"].items():
        lines.append(
            f"{name}: urgent positives reported {ci(comp['urgent_sooner_pct'])} sooner than "
            f"FIFO; longest routine wait {ci(comp['routine_max_growth_pct'])} longer"
        )
    goal = outcome.goal()
    for name, verdict in goal["policies"].items():
        lines.append(
            f"goal (>= {goal['urgent_sooner_pct_at_least']:g}% sooner, longest routine wait "
            f"<= +{goal['routine_max_growth_pct_at_most']:g}%) {name}: "
            + ("met" if verdict["met"] else "NOT met")
        )
    if outcome.grid is not None:
        lines.append(_grid_line(outcome.grid))
    return lines


def _grid_line(grid: dict[str, Any]) -> str:
    """Say in which cells of the sensitivity x load grid AI alone meets the goal."""
    cells = [
        f"{sens:g}/{load:g}"
        for sens, row in zip(grid["sensitivities"], grid["goal_met"], strict=True)
        for load, met in zip(grid["loads"], row, strict=True)
        if met
    ]
    loads = ", ".join(
        f"{load:g} ({util:.0%})"
        for load, util in zip(grid["loads"], grid["utilisation"], strict=True)
    )
    where = (
        f"met in {len(cells)} cells (sensitivity/load: {', '.join(cells)})"
        if cells
        else ("met in no cell")
    )
    saturated = [
        f"{load:g}" for load, u in zip(grid["loads"], grid["utilisation"], strict=True) if u >= 1
    ]
    caveat = (
        f"; at load {', '.join(saturated)} the list grows without end, so those cells depend on "
        "the days simulated"
        if saturated
        else ""
    )
    return (
        f"grid (ai, {grid['replications']} replications of {grid['days']} days per cell): "
        f"goal {where}; loads (offered load): {loads}{caveat}"
    )


def write_json(document: dict[str, Any], path: Path) -> None:
    """Write the document as indented, key-sorted JSON (a rerun gives the same bytes)."""
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
