"""``report.html``: one self-contained page (inline CSS, figures as PNG data URIs, no script).

Nothing on the page is fetched from anywhere: no external stylesheet, font, script or image,
so it opens the same offline, in a mail attachment or in an archive. Text from the inputs
(label names, provenance) is HTML-escaped by Jinja2's autoescaping.
"""

from __future__ import annotations

from typing import Any

import jinja2

from models.evaluation.estimates import Proportion, Undefined
from models.evaluation.figures import curves_figure, forest_figure
from models.evaluation.report import Report

__all__ = ["REASONS", "render_html"]

REASONS: dict[Undefined, str] = {
    Undefined.NO_POSITIVES: "undefined: no positive image",
    Undefined.NO_NEGATIVES: "undefined: no negative image",
    Undefined.CONSTANT_SCORES: "undefined: every image has the same score",
    Undefined.EMPTY: "undefined: empty denominator",
    Undefined.TOO_FEW: "too few images",
    Undefined.NO_VALID_REPLICATES: "undefined: no bootstrap replicate held both classes",
}
"""How each reason for an undefined estimate reads on the page."""

_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Model evaluation: {{ p.model or "model" }} on {{ p.dataset or "dataset" }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1400px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f3f3f3; }
.muted { color: #777; }
img { max-width: 100%; }
section { margin-bottom: 2.5em; }
</style>
</head>
<body>
<h1>Model evaluation report</h1>
<p>Decision support: these statistics describe the model on this dataset; they are not a
diagnosis and do not transfer unchanged to other populations or equipment.</p>
<section id="provenance">
<h2>What was evaluated</h2>
<table>
<tr><th>model</th><td>{{ p.model or "—" }}</td></tr>
<tr><th>version</th><td>{{ p.model_version or "—" }}</td></tr>
<tr><th>ONNX sha256</th><td>{{ p.model_sha256 or "—" }}</td></tr>
<tr><th>dataset</th><td>{{ p.dataset or "—" }}</td></tr>
<tr><th>layout</th><td>{{ p.layout or "—" }}</td></tr>
<tr><th>split</th><td>{{ p.split or "—" }}</td></tr>
<tr><th>created</th><td>{{ p.created_at or "—" }}</td></tr>
<tr><th>images / patients</th><td>{{ r.n_images }} / {{ r.n_patients }}</td></tr>
<tr><th>images left out</th><td>{{ p.left_out_absent + p.left_out_unreadable }}
({{ p.left_out_absent }} absent, {{ p.left_out_unreadable }} unreadable)</td></tr>
<tr><th>seed / bootstrap replicates</th><td>{{ s.seed }} / {{ s.replicates }}</td></tr>
<tr><th>report schema</th><td>{{ r.schema_version }}</td></tr>
</table>
</section>
<section id="summary">
<h2>Summary</h2>
<table>
<tr><th>label</th><th>images</th><th>positives</th><th>prevalence</th><th>AUROC</th>
<th>bootstrap {{ pct }} CI</th><th>DeLong {{ pct }} CI</th>
<th>sensitivity at {{ s.threshold_source }} threshold</th>
<th>specificity at {{ s.threshold_source }} threshold</th><th>ECE</th><th>Brier</th></tr>
{% for l in r.labels %}<tr><td><a href="#label-{{ loop.index }}">{{ l.name }}</a></td>
<td>{{ l.n }}</td><td>{{ l.n_positive }}</td><td>{{ l.prevalence | prop }}</td>
<td>{{ l.auroc.value | num(reason=l.auroc.reason) }}</td><td>{{ l.auroc.bootstrap | ci }}</td>
<td>{{ l.auroc.delong | ci }}</td><td>{{ l.operating_points[0].sensitivity | prop }}</td>
<td>{{ l.operating_points[0].specificity | prop }}</td>
<td>{{ l.calibration.ece | num }}</td><td>{{ l.calibration.brier | num }}</td></tr>
{% endfor %}</table>
</section>
{% for l in r.labels %}{% set li = loop.index %}
<section id="label-{{ li }}">
<h2>{{ l.name }}</h2>
<p>{{ l.n }} labelled images of {{ l.n_patients }} patients: {{ l.n_positive }} positive,
{{ l.n_negative }} negative; prevalence {{ l.prevalence | prop }}.</p>
<h3>AUROC</h3>
<table>
<tr><th>AUROC</th><th>patient-clustered bootstrap {{ pct }} CI</th><th>valid replicates</th>
<th>DeLong {{ pct }} CI</th><th>DeLong variance</th></tr>
<tr><td>{{ l.auroc.value | num(reason=l.auroc.reason) }}</td>
<td>{{ l.auroc.bootstrap | ci }}</td>
<td>{% if l.auroc.bootstrap %}{{ l.auroc.bootstrap.valid_replicates }} of
{{ l.auroc.bootstrap.replicates }}{% else %}—{% endif %}</td>
<td>{{ l.auroc.delong | ci }}</td>
<td>{% if l.auroc.delong %}{{ l.auroc.delong.variance | num(6) }}{% else %}—{% endif %}</td></tr>
</table>
<h3>Operating points</h3>
<table>
<tr><th>operating point</th><th>threshold</th><th>TP</th><th>FP</th><th>TN</th><th>FN</th>
<th>sensitivity</th><th>specificity</th><th>PPV</th><th>NPV</th></tr>
{% for o in l.operating_points %}<tr><td>{{ o.name }}</td>
<td>{{ o.threshold | num(reason=o.reason) }}</td><td>{{ o.tp }}</td><td>{{ o.fp }}</td>
<td>{{ o.tn }}</td><td>{{ o.fn }}</td><td>{{ o.sensitivity | prop }}</td>
<td>{{ o.specificity | prop }}</td><td>{{ o.ppv | prop }}</td><td>{{ o.npv | prop }}</td></tr>
{% endfor %}</table>
<h3>Curves and calibration</h3>
<p>ECE {{ l.calibration.ece | num }} ({{ s.ece_bins }} equal-width bins),
Brier score {{ l.calibration.brier | num }}.</p>
<img src="{{ figures[li - 1][0] }}" alt="{{ l.name }}: ROC and precision-recall curves with
the operating points, and the reliability diagram">
<h3>Subgroups</h3>
{% if l.subgroups %}
<table>
<tr><th>subgroup</th><th>images</th><th>positives</th><th>negatives</th><th>patients</th>
<th>prevalence</th><th>AUROC</th><th>bootstrap {{ pct }} CI</th><th>DeLong {{ pct }} CI</th>
<th>sensitivity</th><th>specificity</th></tr>
{% for g in l.subgroups %}<tr><td>{{ g.attribute }}: {{ g.group }}</td><td>{{ g.n }}</td>
<td>{{ g.n_positive }}</td><td>{{ g.n_negative }}</td><td>{{ g.n_patients }}</td>
{% if g.status == "too_few" %}<td colspan="6" class="muted">too few (fewer than
{{ s.min_count }} positives or negatives)</td>{% else %}
<td>{{ g.prevalence | prop }}</td><td>{{ g.auroc.value | num(reason=g.auroc.reason) }}</td>
<td>{{ g.auroc.bootstrap | ci }}</td><td>{{ g.auroc.delong | ci }}</td>
<td>{{ g.operating_point.sensitivity | prop }}</td>
<td>{{ g.operating_point.specificity | prop }}</td>{% endif %}</tr>
{% endfor %}</table>
<img src="{{ figures[li - 1][1] }}" alt="{{ l.name }}: forest plot of AUROC by subgroup">
{% else %}<p class="muted">No subgroup attributes were given.</p>{% endif %}
</section>
{% endfor %}
<section id="throughput">
<h2>Throughput</h2>
{% if t %}<table>
<tr><th>images per second (benchmark pipeline)</th><td>{{ t.images_per_s | num(1) }}</td></tr>
<tr><th>images per second (bare ONNX Runtime)</th><td>{{ t.bare_images_per_s | num(1) }}</td></tr>
<tr><th>share of bare ONNX Runtime</th><td>{{ t.share_of_bare | num(2) }}</td></tr>
<tr><th>execution provider</th><td>{{ t.provider or "—" }}</td></tr>
<tr><th>batch size</th><td>{{ t.batch_size or "—" }}</td></tr>
<tr><th>images timed</th><td>{{ t.images or "—" }}</td></tr>
</table>{% else %}<p class="muted">Not measured.</p>{% endif %}
</section>
<section id="methods">
<h2>Methods</h2>
<ul>
<li>AUROC: scikit-learn's roc_auc_score (ties count one half). Bootstrap interval:
{{ s.replicates }} replicates drawing patients with replacement (all images of a drawn
patient), percentile interval. DeLong interval: variance by the fast midrank algorithm
(Sun &amp; Xu 2014), normal interval clipped to [0, 1]; it treats images as independent.</li>
<li>Operating points: positive when score &ge; threshold. The {{ s.threshold_source }} threshold
as given; the thresholds for target sensitivities
{{ s.sensitivity_targets | join(", ") }} are chosen on this data (the highest threshold reaching
the target), so they are optimistic for new data. Wilson score intervals (statsmodels).</li>
<li>Calibration: ECE over {{ s.ece_bins }} equal-width score bins, weighted by bin size; Brier
score (scikit-learn).</li>
<li>Subgroups: estimated only with at least {{ s.min_count }} positives and
{{ s.min_count }} negatives; age bands {{ s.age_bands | join(", ") }} years; missing values form
the group "unknown".</li>
<li>All intervals are {{ pct }}; labels whose truth is unknown or ignored are left out image by
image.</li>
</ul>
</section>
</body>
</html>
"""


def render_html(report: Report) -> str:
    """Render the report as one self-contained HTML page.

    Parameters
    ----------
    report : Report
        The evaluation.

    Returns
    -------
    str
        The page.
    """
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    environment.filters.update(num=_num, ci=_ci, prop=_prop)
    template = environment.from_string(_TEMPLATE)
    figures = [
        (curves_figure(label), forest_figure(label) if label.subgroups else "")
        for label in report.labels
    ]
    return template.render(
        r=report,
        p=report.provenance,
        s=report.settings,
        t=report.throughput,
        pct=f"{report.settings.confidence * 100:g}%",
        figures=figures,
    )


def _num(value: float | None, digits: int = 3, reason: Undefined | None = None) -> str:
    if value is None:
        return "—" if reason is None else REASONS[reason]
    return f"{value:.{digits}f}"


def _ci(interval: Any) -> str:
    low = getattr(interval, "low", None)
    high = getattr(interval, "high", None)
    if low is None or high is None:
        reason = getattr(interval, "reason", None)
        return REASONS[reason] if reason is not None else "—"
    return f"{low:.3f}\N{EN DASH}{high:.3f}"


def _prop(proportion: Proportion | None) -> str:
    if proportion is None:
        return "—"
    if proportion.value is None:
        return f"— ({proportion.count}/{proportion.total})"
    return f"{proportion.value:.3f} ({_ci(proportion)}; {proportion.count}/{proportion.total})"
