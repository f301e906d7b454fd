"""The simulation's figures (matplotlib, no pyplot state): PNG files in the output folder.

- ``turnaround.png``: turnaround per true class (urgent, soon, routine findings, negatives) and
  policy, pooled over replications (box: quartiles; whiskers: 5th-95th percentile; dot: mean);
- ``backlog.png``: studies waiting over time, and urgent positives waiting, per policy (mean over
  replications and its 95 % band);
- ``missed_positives.png``: the turnaround of positives the model flagged none of, per policy
  (empirical distribution; the tail is what the cap is for);
- ``gain_grid.png``: over sensitivity and load (mean over the grid's replications), how much
  sooner urgent positives are reported with AI than with FIFO and how much longer the longest
  routine wait grows; cells that meet the goal are framed.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from triage.simulation.experiment import GOAL, Outcome
from triage.simulation.stats import backlog, group_masks

__all__ = ["write_plots"]

logger = logging.getLogger(__name__)

_CLASSES = (
    ("urgent_positive", "urgent positives (P1 finding)"),
    ("soon_positive", "soon positives (P2 finding)"),
    ("routine_positive", "routine positives (P3 finding)"),
    ("negative", "negatives"),
)
_COLOURS = {"fifo": "#4d4d4d", "ai": "#d95f02", "ai_capped": "#1b9e77"}
_NAMES = {"fifo": "FIFO", "ai": "AI", "ai_capped": "AI + escalation cap"}


def _pooled(outcome: Outcome, group: str) -> dict[str, np.ndarray[Any, Any]]:
    categories = [lab.category for lab in outcome.scenario.behaviour.labels]
    pooled: dict[str, list[np.ndarray[Any, Any]]] = {}
    for rep in outcome.replications:
        mask = group_masks(rep, outcome.settings.warmup_days, categories)[group]
        for name, run in rep.runs.items():
            tat = run.end[mask] - rep.studies.arrival[mask]
            pooled.setdefault(name, []).append(tat[~np.isnan(tat)])
    return {k: np.concatenate(v) / 60.0 for k, v in pooled.items()}


def _turnaround(outcome: Outcome, path: Path) -> None:
    fig = Figure(figsize=(11, 7), layout="constrained")
    axes = fig.subplots(2, 2)
    for ax, (group, title) in zip(axes.ravel(), _CLASSES, strict=True):
        data = _pooled(outcome, group)
        names = [n for n in outcome.settings.policies if data.get(n) is not None and data[n].size]
        if not names:
            ax.set_title(f"{title}: none")
            continue
        values = [data[n] for n in names]
        box = ax.boxplot(values, whis=(5, 95), showfliers=False, showmeans=True, patch_artist=True)
        for patch, name in zip(box["boxes"], names, strict=True):
            patch.set_facecolor(_COLOURS.get(name, "#999999"))
            patch.set_alpha(0.6)
        ax.set_xticks(range(1, len(names) + 1), [_NAMES.get(n, n) for n in names])
        ax.set_title(f"{title}, n={data[names[0]].size}")
        ax.set_ylabel("turnaround (hours, log scale)")
        ax.set_yscale("log")
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(
        "Turnaround by true class and policy, pooled over replications "
        "(box: quartiles, whiskers: 5th-95th percentile, triangle: mean)"
    )
    fig.savefig(path, dpi=110)


def _backlog(outcome: Outcome, path: Path) -> None:
    step = outcome.settings.backlog_step_min
    categories = [lab.category for lab in outcome.scenario.behaviour.labels]
    fig = Figure(figsize=(11, 7), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True)
    for name in outcome.settings.policies:
        series_all = []
        series_urgent = []
        for rep in outcome.replications:
            series_all.append(backlog(rep, name, step))
            urgent = group_masks(rep, 0, categories)["urgent_positive"]
            series_urgent.append(backlog(rep, name, step, urgent))
        for ax, series in ((top, series_all), (bottom, series_urgent)):
            data = np.asarray(series, dtype=np.float64)
            days = np.arange(data.shape[1]) * step / 1440.0
            mean = data.mean(axis=0)
            colour = _COLOURS.get(name, "#999999")
            ax.plot(days, mean, color=colour, label=_NAMES.get(name, name), lw=1)
            if len(data) > 1:
                half = 1.96 * data.std(axis=0, ddof=1) / np.sqrt(len(data))
                ax.fill_between(days, mean - half, mean + half, color=colour, alpha=0.2)
    top.set_ylabel("studies waiting")
    bottom.set_ylabel("urgent positives waiting")
    bottom.set_xlabel("day")
    top.legend()
    for ax in (top, bottom):
        ax.axvline(outcome.settings.warmup_days, color="k", ls=":", lw=0.8)
        ax.grid(alpha=0.3)
    fig.suptitle("Backlog over time (mean over replications, 95 % band; dotted: end of warm-up)")
    fig.savefig(path, dpi=110)


def _missed(outcome: Outcome, path: Path) -> None:
    data = _pooled(outcome, "missed_positive")
    fig = Figure(figsize=(8, 5), layout="constrained")
    ax = fig.subplots()
    drawn = 0
    for name in outcome.settings.policies:
        values = np.sort(data.get(name, np.zeros(0)))
        if values.size:
            drawn += 1
            ax.step(
                values,
                np.arange(1, values.size + 1) / values.size,
                where="post",
                color=_COLOURS.get(name, "#999999"),
                label=f"{_NAMES.get(name, name)} (max {values[-1]:.1f} h)",
            )
    ax.set_xlabel("turnaround (hours)")
    ax.set_ylabel("share of missed positives reported")
    ax.set_title("Positives the model flagged none of")
    ax.grid(alpha=0.3)
    if drawn:
        ax.legend()
    else:
        ax.text(0.5, 0.5, "no missed positives", ha="center", transform=ax.transAxes)
    fig.savefig(path, dpi=110)


def _means(table: list[list[dict[str, Any]]]) -> np.ndarray:
    return np.asarray([[np.nan if c["mean"] is None else c["mean"] for c in row] for row in table])


def _grid(grid: dict[str, Any], path: Path) -> None:
    met = np.asarray(grid["goal_met"], dtype=bool)
    fig = Figure(figsize=(13, 6), layout="constrained")
    panels = (
        ("urgent_sooner_pct", "Urgent positives reported sooner (mean TAT)", "viridis"),
        ("routine_max_growth_pct", "Longest routine wait: growth", "magma_r"),
    )
    loads = [
        f"{load:g}\n({util:.0%}{'*' if util >= 1 else ''})"
        for load, util in zip(grid["loads"], grid["utilisation"], strict=True)
    ]
    for ax, (key, title, cmap) in zip(fig.subplots(1, 2), panels, strict=True):
        values = _means(grid[key])
        image = ax.imshow(values, origin="lower", cmap=cmap, aspect="auto")
        ax.set_xticks(range(len(loads)), loads)
        ax.set_yticks(range(len(grid["sensitivities"])), [f"{x:g}" for x in grid["sensitivities"]])
        for i in range(values.shape[0]):
            for j in range(values.shape[1]):
                if np.isfinite(values[i, j]):
                    red, green, blue, _ = image.cmap(image.norm(values[i, j]))
                    dark = 0.299 * red + 0.587 * green + 0.114 * blue < 0.5
                    ax.text(
                        j,
                        i,
                        f"{values[i, j]:+.0f}%",
                        ha="center",
                        va="center",
                        color="w" if dark else "k",
                    )
                if met[i, j]:
                    ax.add_patch(
                        Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="c", lw=3)
                    )
        ax.set_xlabel("load: x the scenario's volume (offered load; *: the list grows without end)")
        ax.set_ylabel("sensitivity (every label)")
        ax.set_title(f"AI against FIFO: {title}")
        fig.colorbar(image, ax=ax, label="%")
    fig.suptitle(
        f"Cyan frame: the goal is met (>= {GOAL['urgent_sooner_pct_at_least']:g}% sooner, "
        f"longest routine wait <= +{GOAL['routine_max_growth_pct_at_most']:g}%)"
    )
    fig.savefig(path, dpi=110)


def write_plots(outcome: Outcome, out_dir: Path) -> list[Path]:
    """Draw the simulation's figures into ``out_dir``.

    Parameters
    ----------
    outcome
        The simulation's outcome.
    out_dir
        The folder (it exists).

    Returns
    -------
    list of Path
        The files written.
    """
    written = []
    for name, draw in (
        ("turnaround.png", _turnaround),
        ("backlog.png", _backlog),
        ("missed_positives.png", _missed),
    ):
        draw(outcome, out_dir / name)
        written.append(out_dir / name)
    if outcome.grid is not None:
        _grid(outcome.grid, out_dir / "gain_grid.png")
        written.append(out_dir / "gain_grid.png")
    return written
