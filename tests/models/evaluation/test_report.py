"""report.json against its schema and deterministic; report.html self-contained with its plots."""

from __future__ import annotations

import base64
import io
import json
import math
from html.parser import HTMLParser
from pathlib import Path

import jsonschema
import pytest
from PIL import Image

from models.evaluation import (
    SCHEMA_VERSION,
    Provenance,
    Report,
    Throughput,
    evaluate,
    load_schema,
    validate_document,
)
from models.evaluation.render import render_html
from tests.builders.cohorts import Cohort


def _report(cohort: Cohort, seed: int = 7, **kwargs: object) -> Report:
    return evaluate(
        cohort.predictions,
        cohort.labels,
        cohort.patients,
        cohort.subgroups,
        cohort.thresholds,
        seed,
        replicates=200,
        provenance=Provenance(model="demo", model_version="1.0.0", dataset="nih", split="test"),
        throughput=Throughput(images_per_s=80.0, bare_images_per_s=100.0, batch_size=8),
        **kwargs,  # type: ignore[arg-type]
    )


def test_the_schema_is_a_valid_2020_12_schema_of_this_version() -> None:
    schema = load_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["properties"]["schema_version"] == {"const": SCHEMA_VERSION}


def test_report_json_validates_and_is_deterministic(cohort: Cohort) -> None:
    text = _report(cohort).to_json()
    document = json.loads(text)
    validate_document(document)
    assert document["schema_version"] == SCHEMA_VERSION
    assert [label["name"] for label in document["labels"]] == ["Effusion", "Cardiomegaly", "Nodule"]
    assert document["throughput"]["share_of_bare"] == pytest.approx(0.8)
    assert "NaN" not in text and "Infinity" not in text
    assert _report(cohort).to_json() == text  # byte-identical on a rerun
    assert _report(cohort, seed=8).to_json() != text  # the seed matters


def test_undefined_estimates_are_null_with_a_reason(cohort: Cohort) -> None:
    document = _report(cohort).to_dict()
    constant = document["labels"][1]
    assert constant["auroc"] == {
        "value": None, "reason": "constant_scores", "bootstrap": None, "delong": None,
    }  # fmt: skip
    too_few = [g for g in document["labels"][0]["subgroups"] if g["group"] == "site-2"]
    assert too_few and too_few[0]["status"] == "too_few" and too_few[0]["auroc"] is None


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda d: d.pop("schema_version"),
        lambda d: d.update(schema_version="0.9"),
        lambda d: d["labels"][0]["auroc"].update(value=1.5),
        lambda d: d["labels"][0]["prevalence"].update(reason="because"),
        lambda d: d["labels"][0].update(extra=1),
        lambda d: d["labels"][0]["subgroups"][0].update(status="maybe"),
    ],
)
def test_the_schema_rejects_broken_documents(cohort: Cohort, corrupt: object) -> None:
    document = json.loads(_report(cohort).to_json())
    corrupt(document)  # type: ignore[operator]
    with pytest.raises(jsonschema.ValidationError):
        validate_document(document)


class _Resources(HTMLParser):
    """Every URL-bearing attribute, every tag, and the images' data URIs."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.tags: list[str] = []
        self.images: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if name in {"src", "href", "srcset", "action", "poster", "data"} and value:
                self.urls.append(value)
                if tag == "img":
                    self.images.append(value)


def test_report_html_is_self_contained_and_renders_the_plots(cohort: Cohort) -> None:
    report = _report(cohort)
    page = render_html(report)
    parser = _Resources()
    parser.feed(page)
    assert "http://" not in page and "https://" not in page
    assert "url(" not in page and "@import" not in page
    assert "script" not in parser.tags and "link" not in parser.tags
    for url in parser.urls:  # only in-page anchors and embedded images
        assert url.startswith("#") or url.startswith("data:image/png;base64,"), url
    assert len(parser.images) == 2 * len(report.labels)  # curves + forest plot per label
    for uri in parser.images:
        image = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
        assert image.format == "PNG" and image.width > 400 and image.height > 150
        assert len(image.convert("RGB").getcolors(maxcolors=1 << 20) or []) > 10  # not blank
    for text in ("Effusion", "AUROC", "Throughput", "0.80", "too few", "every image has the same"):
        assert text in page
    assert render_html(_report(cohort)) == page  # same report, same page


def test_label_names_are_escaped(cohort: Cohort) -> None:
    hostile = "<script>alert(1)</script>"
    report = evaluate(
        {hostile: cohort.predictions["Effusion"]},
        {hostile: cohort.labels["Effusion"]},
        cohort.patients,
        None,
        {hostile: 0.5},
        0,
        replicates=20,
    )
    page = render_html(report)
    assert hostile not in page and "&lt;script&gt;" in page


def test_write_puts_both_files(cohort: Cohort, tmp_path: Path) -> None:
    json_path, html_path = _report(cohort).write(tmp_path / "out")
    assert json_path.name == "report.json" and html_path.name == "report.html"
    validate_document(json.loads(json_path.read_text()))
    assert html_path.read_text().startswith("<!DOCTYPE html>")


def test_floats_in_json_are_finite(cohort: Cohort) -> None:
    def walk(value: object) -> None:
        if isinstance(value, float):
            assert math.isfinite(value)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(json.loads(_report(cohort).to_json()))
