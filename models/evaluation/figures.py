"""The report's figures, drawn with matplotlib (object API, Agg) and returned as PNG data URIs.

PNG rather than SVG: a data URI image carries no namespace or DTD addresses, so the HTML holds
no ``http(s)://`` text at all, and the PNG writer is told to leave out its "Software" text so
the same report gives the same bytes.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from models.evaluation.operating_points import OperatingPoint
from models.evaluation.report import LabelResult
from models.evaluation.subgroups import Status

__all__ = ["curves_figure", "forest_figure"]

_DPI = 100
_MARKERS = ("o", "s", "^", "D", "v")
_COLOURS = ("#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2")


def curves_figure(label: LabelResult) -> str:
    """ROC and PR curves with the operating points marked, and the reliability diagram.

    Parameters
    ----------
    label : LabelResult
        The label's results.

    Returns
    -------
    str
        A ``data:image/png;base64,...`` URI.
    """
    figure = Figure(figsize=(13.5, 4.2), dpi=_DPI, layout="constrained")
    roc_axes, pr_axes, rel_axes = figure.subplots(1, 3)
    _roc(roc_axes, label)
    _pr(pr_axes, label)
    _reliability(rel_axes, label)
    return _data_uri(figure)


def forest_figure(label: LabelResult) -> str:
    """Forest plot of the label's AUROC (bootstrap 95% CI) by subgroup, overall as reference.

    Parameters
    ----------
    label : LabelResult
        The label's results (with subgroups).

    Returns
    -------
    str
        A ``data:image/png;base64,...`` URI.
    """
    rows = list(label.subgroups)
    height = 1.2 + 0.32 * (len(rows) + 1)
    figure = Figure(figsize=(8.0, height), dpi=_DPI, layout="constrained")
    axes = figure.subplots()
    names = ["overall"] + [f"{row.attribute}: {row.group}" for row in rows]
    positions = list(range(len(names)))[::-1]
    overall = label.auroc
    if overall.value is not None:
        axes.axvline(overall.value, color="#999999", linestyle="--", linewidth=1)
    entries = [(overall, None)] + [(row.auroc, row) for row in rows]
    for position, (result, row) in zip(positions, entries, strict=True):
        interval = result.bootstrap if result is not None else None
        if (
            result is None
            or result.value is None
            or interval is None
            or interval.low is None
            or interval.high is None
        ):
            why = "too few" if row is not None and row.status is Status.TOO_FEW else "undefined"
            if result is not None and result.reason is not None and why == "undefined":
                why = f"undefined ({result.reason.value})"
            axes.text(
                0.02,
                position,
                why,
                va="center",
                fontsize=8,
                color="#666666",
                transform=axes.get_yaxis_transform(),
            )
            continue
        axes.errorbar(
            result.value,
            position,
            xerr=[[result.value - interval.low], [interval.high - result.value]],
            fmt="s" if row is None else "o",
            color="black" if row is None else "#1f77b4",
            capsize=3,
        )
    axes.set_yticks(positions, names, fontsize=8)
    lows = [
        r.bootstrap.low for r, _ in entries if r and r.bootstrap and r.bootstrap.low is not None
    ]
    axes.set_xlim(min([0.5, *lows]) - 0.02, 1.0)
    axes.set_ylim(-0.7, len(names) - 0.3)
    axes.set_xlabel("AUROC (patient-clustered bootstrap 95% CI)")
    axes.set_title(f"{label.name}: AUROC by subgroup")
    axes.grid(axis="x", alpha=0.3)
    return _data_uri(figure)


def _roc(axes: Axes, label: LabelResult) -> None:
    axes.plot([0, 1], [0, 1], color="#bbbbbb", linestyle=":", linewidth=1)
    if not label.roc.x:
        _undefined(axes, label.roc.reason)
    else:
        auc = label.auroc.value
        text = f"AUROC {auc:.3f}" if auc is not None else "AUROC undefined"
        axes.plot(label.roc.x, label.roc.y, color="#1f77b4", label=text)
        _mark(axes, label.operating_points, roc=True)
        axes.legend(loc="lower right", fontsize=8)
    _frame(axes, "1 - specificity", "sensitivity", f"{label.name}: ROC")


def _pr(axes: Axes, label: LabelResult) -> None:
    prevalence = label.prevalence.value
    if prevalence is not None:
        axes.axhline(prevalence, color="#bbbbbb", linestyle=":", linewidth=1)
    if not label.pr.x:
        _undefined(axes, label.pr.reason)
    else:
        axes.plot(label.pr.x, label.pr.y, color="#1f77b4", drawstyle="steps-post")
        _mark(axes, label.operating_points, roc=False)
        axes.legend(loc="lower left", fontsize=8)
    _frame(axes, "recall (sensitivity)", "precision (PPV)", f"{label.name}: precision-recall")


def _reliability(axes: Axes, label: LabelResult) -> None:
    axes.plot([0, 1], [0, 1], color="#bbbbbb", linestyle=":", linewidth=1)
    filled = [
        (b.mean_score, b.observed.value, b.observed.low, b.observed.high)
        for b in label.calibration.bins
        if b.mean_score is not None
        and b.observed.value is not None
        and b.observed.low is not None
        and b.observed.high is not None
    ]
    if not filled:
        _undefined(axes, label.calibration.reason)
    else:
        x = [mean for mean, _, _, _ in filled]
        y = [value for _, value, _, _ in filled]
        below = [value - low for _, value, low, _ in filled]
        above = [high - value for _, value, _, high in filled]
        axes.errorbar(x, y, yerr=[below, above], fmt="o-", color="#1f77b4", capsize=2)
        ece = label.calibration.ece
        axes.set_title(f"{label.name}: reliability (ECE {ece:.3f})" if ece is not None else "")
    _frame(axes, "mean score in bin", "observed positive fraction", None)


def _mark(axes: Axes, points: Sequence[OperatingPoint], *, roc: bool) -> None:
    for index, point in enumerate(points):
        sens, spec, ppv = point.sensitivity.value, point.specificity.value, point.ppv.value
        x = None if spec is None else 1.0 - spec
        if not roc:
            x, y = sens, ppv
        else:
            y = sens
        if x is None or y is None or point.threshold is None:
            continue
        axes.plot(
            x,
            y,
            linestyle="none",
            marker=_MARKERS[index % len(_MARKERS)],
            color=_COLOURS[index % len(_COLOURS)],
            label=f"{point.name} (t={point.threshold:.3f})",
        )


def _frame(axes: Axes, xlabel: str, ylabel: str, title: str | None) -> None:
    axes.set_xlim(-0.01, 1.01)
    axes.set_ylim(-0.01, 1.01)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    if title is not None:
        axes.set_title(title)
    axes.grid(alpha=0.3)


def _undefined(axes: Axes, reason: object) -> None:
    text = f"undefined: {getattr(reason, 'value', reason)}"
    axes.text(0.5, 0.5, text, ha="center", va="center", transform=axes.transAxes)


def _data_uri(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
