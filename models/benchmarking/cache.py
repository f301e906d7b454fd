"""The benchmark's predictions cache: scores by image sha256, one file per model, resumable.

``OUT/cache/predictions-<key>.jsonl`` holds one JSON line per image scored,
``{"sha256": ..., "scores": {label: probability}}``, appended and flushed after each batch. The
key is the sha256 of the model's ONNX sha256 and the card's input, preprocessing and outputs
blocks, so a card whose preprocessing differs does not reuse another's scores, while a calibrated
copy (same network, other thresholds) does. A run that is killed leaves whole lines behind (a
torn last line is ignored), and the next run scores only the images missing.

``OUT/cache/timing-<key>.json`` keeps the throughput of the last run that scored images, which a
run that scored none (everything cached) reports again, so that a rerun writes the same report.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from models.card import ModelCard

__all__ = ["PredictionCache", "cache_key"]

logger = logging.getLogger(__name__)


def cache_key(card: ModelCard) -> str:
    """Return the cache key of a model: its network and the card blocks that change scores.

    Parameters
    ----------
    card
        The model's card.

    Returns
    -------
    str
        16 hex digits.
    """
    parts = {
        "sha256": card.identity.sha256,
        "input": card.input.model_dump(mode="json"),
        "preprocessing": card.preprocessing.model_dump(mode="json"),
        "probabilities": card.outputs.probabilities.model_dump(mode="json"),
        "labels": [label.name for label in card.outputs.labels],
    }
    text = json.dumps(parts, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class PredictionCache:
    """Scores by image sha256 for one model, kept in ``directory``.

    Parameters
    ----------
    directory
        The cache folder (``OUT/cache``), made when missing.
    card
        The model's card (its :func:`cache_key` names the files).
    """

    def __init__(self, directory: Path, card: ModelCard) -> None:
        self.directory = directory
        key = cache_key(card)
        self.path = directory / f"predictions-{key}.jsonl"
        self.timing_path = directory / f"timing-{key}.json"
        self.scores: dict[str, dict[str, float]] = {}
        self._fh: IO[str] | None = None
        self._load()

    def _load(self) -> None:
        if not self.path.is_file():
            return
        torn = 0
        with self.path.open(encoding="utf-8") as fh:
            for line in fh:
                try:
                    item = json.loads(line)
                    self.scores[str(item["sha256"])] = {
                        str(k): float(v) for k, v in item["scores"].items()
                    }
                except (ValueError, KeyError, TypeError, AttributeError):
                    torn += 1
        if torn:
            logger.warning("%s: %d unreadable lines ignored (an interrupted run)", self.path, torn)
        logger.info("%s: %d cached predictions", self.path, len(self.scores))

    def __contains__(self, digest: object) -> bool:
        return digest in self.scores

    def add(self, items: Mapping[str, Mapping[str, float]]) -> None:
        """Record the scores of a batch of images and flush them to disk.

        Parameters
        ----------
        items
            sha256 to ``{label: probability}``.
        """
        if self._fh is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._fh = self.path.open("a", encoding="utf-8")
            if self._fh.tell() and not self.path.read_bytes().endswith(b"\n"):
                self._fh.write("\n")  # end a torn line left by a killed run
        for digest, scores in items.items():
            self.scores[digest] = dict(scores)
            self._fh.write(json.dumps({"sha256": digest, "scores": dict(scores)}) + "\n")
        self._fh.flush()

    def close(self) -> None:
        """Close the file."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def read_timing(self) -> dict[str, Any] | None:
        """Return the throughput recorded by the last run that scored images, if any."""
        try:
            data: dict[str, Any] = json.loads(self.timing_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data

    def write_timing(self, timing: Mapping[str, Any]) -> None:
        """Record the throughput of this run."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.timing_path.write_text(json.dumps(dict(timing), indent=2) + "\n", encoding="utf-8")
