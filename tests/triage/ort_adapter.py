"""A minimal ONNX Runtime model with the LoadedModel shape (until models.runtime lands)."""

from __future__ import annotations

import concurrent.futures
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from pydicom import Dataset

from models.card import Concept, ModelCard, load_card
from models.errors import InferenceTimeout, InvalidOutput, ModelError


@dataclass(frozen=True)
class Prediction:
    probabilities: np.ndarray[Any, Any]
    heatmaps: np.ndarray[Any, Any] | None


@dataclass(frozen=True)
class LabelResult:
    label: str
    probability: float
    threshold: float
    crossed: bool
    category: str
    concept: Concept


@dataclass(frozen=True)
class ImageResult:
    labels: tuple[LabelResult, ...]


class OrtModel:
    def __init__(self, directory: Path, timeout_s: float = 30.0) -> None:
        self.card: ModelCard = load_card(directory)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        self._session = ort.InferenceSession(
            str(directory / self.card.identity.onnx_file), opts, providers=["CPUExecutionProvider"]
        )
        self._timeout = timeout_s
        self.identity = self.card.identity

    def preprocess(self, ds: Dataset) -> np.ndarray[Any, Any]:
        px = ds.pixel_array.astype(np.float32)
        lo, hi = float(px.min()), float(px.max())
        px = (px - lo) / (hi - lo) if hi > lo else np.zeros_like(px)
        h, w = self.card.input.size
        rows = (np.arange(h) * px.shape[0] // h).astype(int)
        cols = (np.arange(w) * px.shape[1] // w).astype(int)
        return px[np.ix_(rows, cols)][None, :, :].astype(np.float32)

    def predict(self, batch: np.ndarray[Any, Any]) -> Prediction:
        run_opts = ort.RunOptions()
        names = [self.card.outputs.probabilities.name]
        if self.card.outputs.heatmap is not None:
            names.append(self.card.outputs.heatmap.name)
        pool = concurrent.futures.ThreadPoolExecutor(1)
        fut = pool.submit(self._session.run, names, {self.card.input.name: batch}, run_opts)
        try:
            out = fut.result(timeout=self._timeout)
        except concurrent.futures.TimeoutError as exc:
            run_opts.terminate = True
            pool.shutdown(wait=True)
            raise InferenceTimeout(f"inference took longer than {self._timeout} s") from exc
        except Exception as exc:
            raise ModelError(str(exc)) from exc
        pool.shutdown()
        probs = np.asarray(out[0])
        if not np.all(np.isfinite(probs)):
            raise InvalidOutput("probabilities contain NaN or infinite values")
        return Prediction(probs, np.asarray(out[1]) if len(out) > 1 else None)

    def postprocess(self, prediction: Prediction) -> list[ImageResult]:
        out = []
        for row in prediction.probabilities:
            labels = tuple(
                LabelResult(
                    lab.name,
                    float(row[lab.index]),
                    lab.threshold,
                    float(row[lab.index]) >= lab.threshold,
                    lab.category,
                    lab.concept,
                )
                for lab in self.card.outputs.labels
            )
            out.append(ImageResult(labels))
        return out
