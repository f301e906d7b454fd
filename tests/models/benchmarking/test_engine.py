"""The benchmark engine: DICOM as the worker preprocesses it, PNG through the card, the cache."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image

from models.benchmarking import BenchmarkOptions, score_dataset
from models.benchmarking.cache import PredictionCache
from models.benchmarking.calibrate import bump_version
from models.benchmarking.images import image_tensor, is_dicom
from models.errors import BenchmarkError, PreprocessError
from models.phantoms import write_dataset
from models.preprocess import preprocess_plane
from models.registry import ModelRegistry
from models.runtime import LoadedModel
from tests.builders import REPO
from tests.builders.cards import card
from tests.builders.onnx import cpu_settings


@pytest.fixture(scope="module")
def demo() -> Iterator[LoadedModel]:
    """The bundled demo model, loaded on CPU."""
    registry = ModelRegistry(cpu_settings(REPO / "models" / "bundled"))
    yield registry.load("chest-phantom-demo")
    registry.close()


def test_dicom_images_are_scored_exactly_as_the_worker_scores_them(
    demo: LoadedModel, tmp_path: Path
) -> None:
    root = tmp_path / "rsna"
    write_dataset(root, 8, 99, "rsna", size=160)
    options = BenchmarkOptions(layout="rsna", split="all", workers=0, batch_size=3)
    scored = score_dataset(demo, root, options, tmp_path / "cache")
    assert scored.labels == ("consolidation",) and scored.computed == 8
    paths = [r.image for r in scored.records]
    assert all(is_dicom(p.read_bytes(), p) for p in paths)
    worker = demo.score_datasets([pydicom.dcmread(p) for p in paths], batch_size=3)
    expected = [result.probabilities["consolidation"] for result in worker.results]
    np.testing.assert_allclose(scored.scores["consolidation"], expected, rtol=0, atol=1e-6)
    assert scored.digests == tuple(hashlib.sha256(p.read_bytes()).hexdigest() for p in paths)


def test_png_images_go_through_the_cards_resize_and_scaling(tmp_path: Path) -> None:
    spec = card(size=16)
    grey16 = (np.arange(32 * 32, dtype=np.uint16).reshape(32, 32) * 60).astype(np.uint16)
    path16 = tmp_path / "grey16.png"
    Image.fromarray(grey16).save(path16)
    tensor = image_tensor(path16.read_bytes(), path16, spec.preprocessing, spec.input)
    want = preprocess_plane(grey16.astype(np.float32), False, spec.preprocessing, spec.input)
    np.testing.assert_array_equal(tensor, want)
    assert tensor.shape == (1, 16, 16) and tensor.min() == 0.0 and tensor.max() == 1.0
    rgb = np.zeros((16, 16, 3), dtype=np.uint8)
    rgb[..., 1] = np.arange(16, dtype=np.uint8)[None, :] * 16
    path_rgb = tmp_path / "colour.jpg.png"
    Image.fromarray(rgb).save(path_rgb)
    luma = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    got = image_tensor(path_rgb.read_bytes(), path_rgb, spec.preprocessing, spec.input)
    want = preprocess_plane(luma, False, spec.preprocessing, spec.input)
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_an_unreadable_image_is_an_error_naming_it(tmp_path: Path) -> None:
    spec = card(size=16)
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(PreprocessError, match=r"broken\.png"):
        image_tensor(bad.read_bytes(), bad, spec.preprocessing, spec.input)


def test_the_cache_ignores_a_torn_line_and_is_keyed_by_the_model(tmp_path: Path) -> None:
    first = PredictionCache(tmp_path, card(size=16))
    first.add({"a" * 64: {"pneumothorax": 0.25}, "b" * 64: {"pneumothorax": 0.75}})
    first.close()
    with first.path.open("a") as fh:
        fh.write('{"sha256": "ccc')
    again = PredictionCache(tmp_path, card(size=16))
    assert again.scores == {"a" * 64: {"pneumothorax": 0.25}, "b" * 64: {"pneumothorax": 0.75}}
    again.add({"d" * 64: {"pneumothorax": 0.5}})
    again.close()
    assert len(PredictionCache(tmp_path, card(size=16)).scores) == 3
    assert PredictionCache(tmp_path, card(size=32)).scores == {}  # other preprocessing


def test_versions_are_bumped_on_their_last_number() -> None:
    assert bump_version("1.0.0") == "1.0.1"
    assert bump_version("2.3") == "2.4"
    with pytest.raises(BenchmarkError, match="--version"):
        bump_version("not a version!")


def test_a_copy_with_nothing_left_to_score_is_a_clear_error(
    demo: LoadedModel, tmp_path: Path
) -> None:
    options = BenchmarkOptions(layout="nih", split="all", workers=0, skip_bad_images=True)
    absent = tmp_path / "absent"
    write_dataset(absent, 4, 5, "nih", size=64)
    for image in absent.glob("images*/*.png"):
        image.unlink()
    with pytest.raises(BenchmarkError, match=r"every image of split 'all' was left out \(4 "):
        score_dataset(demo, absent, options, tmp_path / "cache")
    broken = tmp_path / "broken"
    write_dataset(broken, 4, 5, "nih", size=64)
    for image in broken.glob("images*/*.png"):
        image.write_bytes(b"not a PNG")
    with pytest.raises(BenchmarkError, match=r"none of the 4 images could be read \(the last: "):
        score_dataset(demo, broken, options, tmp_path / "cache")
