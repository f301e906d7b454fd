"""Charts of the monitoring page as inline SVG, drawn on the server (no script, no CDN).

Each function returns markup-safe SVG with a ``viewBox`` and fixed ``width``/``height``, a
``<title>`` for screen readers, and ``data-*`` attributes the browser test reads.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from html import escape

from markupsafe import Markup

from worklist.reading.monitoring import SiteRate

__all__ = ["agreement_chart", "histogram_chart", "rate_chart"]

logger = logging.getLogger(__name__)

WIDTH, HEIGHT = 480, 200
LEFT, RIGHT, TOP, BOTTOM = 40, 10, 12, 28
PALETTE = ("#1565c0", "#c62828", "#2e7d32", "#6a1b9a", "#ef6c00", "#00838f", "#5d4037")
REFERENCE_COLOUR, CURRENT_COLOUR = "#90a4ae", "#1565c0"


def _svg(kind: str, title: str, body: list[str], width: int = WIDTH) -> Markup:
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" data-chart="{escape(kind)}" '
        f'width="{width}" height="{HEIGHT}" viewBox="0 0 {width} {HEIGHT}" role="img">'
        f"<title>{escape(title)}</title>" + "".join(body) + "</svg>"
    )


def _axes(width: int, y_max: float, x_labels: Sequence[tuple[float, str]]) -> list[str]:
    x0, x1, y0, y1 = LEFT, width - RIGHT, HEIGHT - BOTTOM, TOP
    parts = [
        f'<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y0}" stroke="#555"/>',
        f'<line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y1}" stroke="#555"/>',
    ]
    for frac in (0.0, 0.5, 1.0):
        y = y0 - frac * (y0 - y1)
        parts.append(
            f'<text x="{x0 - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end">'
            f"{frac * y_max:.2g}</text>"
        )
    for x, text in x_labels:
        parts.append(
            f'<text x="{x:.1f}" y="{y0 + 14}" font-size="10" text-anchor="middle">'
            f"{escape(text)}</text>"
        )
    return parts


def histogram_chart(label: str, reference: Sequence[float], current: Sequence[float]) -> Markup:
    """Draw the share of scores per bin on [0, 1]: reference as grey bars, window as a line.

    Parameters
    ----------
    label : str
        The label (its title).
    reference, current : sequence of float
        Shares per equal-width bin (same length; either may be all zero).

    Returns
    -------
    markupsafe.Markup
        The SVG element.
    """
    bins = max(len(reference), len(current), 1)
    y_max = max([*reference, *current, 0.01])
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    bar_w = plot_w / bins
    ticks = [(LEFT + plot_w * f, f"{f:g}") for f in (0.0, 0.25, 0.5, 0.75, 1.0)]
    body = _axes(WIDTH, y_max, ticks)
    for i, share in enumerate(reference):
        h = plot_h * share / y_max
        body.append(
            f'<rect class="reference" x="{LEFT + i * bar_w + 1:.1f}" '
            f'y="{HEIGHT - BOTTOM - h:.1f}" width="{bar_w - 2:.1f}" height="{h:.1f}" '
            f'fill="{REFERENCE_COLOUR}"/>'
        )
    points = " ".join(
        f"{LEFT + (i + 0.5) * bar_w:.1f},{HEIGHT - BOTTOM - plot_h * s / y_max:.1f}"
        for i, s in enumerate(current)
    )
    if points:
        body.append(
            f'<polyline class="current" points="{points}" fill="none" '
            f'stroke="{CURRENT_COLOUR}" stroke-width="2"/>'
        )
    return _svg("histogram", f"{label}: score distribution, reference and window", body)


def rate_chart(rates: Sequence[SiteRate]) -> Markup:
    """Draw the positive rate per site over the periods, one line (and its dots) per site.

    Parameters
    ----------
    rates : sequence of SiteRate
        Rates per site and period.

    Returns
    -------
    markupsafe.Markup
        The SVG element (empty axes without rates).
    """
    periods = sorted({r.period for r in rates})
    sites = sorted({r.site for r in rates})
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(len(periods), 1)
    xs = {p: LEFT + (i + 0.5) * step for i, p in enumerate(periods)}
    every = max(1, len(periods) // 6)
    ticks = [(xs[p], p[5:] if len(p) == 10 else p) for p in periods[::every]]
    body = _axes(WIDTH, 1.0, ticks)
    for i, site in enumerate(sites):
        colour = PALETTE[i % len(PALETTE)]
        mine = [r for r in rates if r.site == site and r.rate is not None]
        pts = [(xs[r.period], HEIGHT - BOTTOM - plot_h * (r.rate or 0.0)) for r in mine]
        if len(pts) > 1:
            line = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
            body.append(
                f'<polyline class="site" data-site="{escape(site)}" points="{line}" '
                f'fill="none" stroke="{colour}" stroke-width="2"/>'
            )
        for (x, y), r in zip(pts, mine, strict=True):
            body.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}">'
                f"<title>{escape(site)} {escape(r.period)}: {r.positives}/{r.studies}</title>"
                "</circle>"
            )
        body.append(
            f'<text x="{LEFT + 6 + 90 * i}" y="{TOP + 8}" font-size="10" fill="{colour}">'
            f"{escape(site)}</text>"
        )
    return _svg("positive-rate", "positive rate per site over time", body)


def agreement_chart(rate: float | None, low: float, high: float) -> Markup:
    """Draw the agreement rate as a dot on [0, 1] with its interval as a bar.

    Parameters
    ----------
    rate : float or None
        The proportion (``None``: no feedback, only the axis).
    low, high : float
        Its interval.

    Returns
    -------
    markupsafe.Markup
        The SVG element.
    """
    plot_w = WIDTH - LEFT - RIGHT
    y = HEIGHT / 2
    ticks = [(LEFT + plot_w * f, f"{f:g}") for f in (0.0, 0.25, 0.5, 0.75, 1.0)]
    body = [f'<line x1="{LEFT}" y1="{y}" x2="{LEFT + plot_w}" y2="{y}" stroke="#555"/>']
    body += [
        f'<text x="{x:.1f}" y="{y + 18}" font-size="10" text-anchor="middle">{t}</text>'
        for x, t in ticks
    ]
    if rate is not None:
        body.append(
            f'<line class="interval" x1="{LEFT + plot_w * low:.1f}" y1="{y - 12}" '
            f'x2="{LEFT + plot_w * high:.1f}" y2="{y - 12}" stroke="{CURRENT_COLOUR}" '
            'stroke-width="6"/>'
        )
        body.append(
            f'<circle class="estimate" cx="{LEFT + plot_w * rate:.1f}" cy="{y - 12}" r="5" '
            f'fill="#c62828"/>'
        )
    return _svg("agreement", "agreement with radiologists, 95% Wilson interval", body)
