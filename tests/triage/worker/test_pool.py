from __future__ import annotations

from typing import Any

from models.card import ModelCard, ModelStatus
from tests.builders.cards import card
from triage.worker.pool import Entry, ModelPool


class Fake:
    def __init__(self, c: ModelCard) -> None:
        self.card = c
        self.closed = False

    def preprocess(self, ds: Any) -> Any:
        raise NotImplementedError

    def predict(self, batch: Any) -> Any:
        raise NotImplementedError

    def postprocess(self, prediction: Any) -> Any:
        raise NotImplementedError

    def close(self) -> None:
        self.closed = True


def test_statuses_are_refreshed_and_models_loaded_once() -> None:
    a, b, bad = card("a"), card("b"), card("bad")
    statuses = {"a": ModelStatus.ENABLED, "b": ModelStatus.DISABLED, "bad": ModelStatus.SHADOW}
    loads: list[str] = []
    fakes: list[Fake] = []

    def source() -> list[Entry]:
        return [Entry(c, statuses[c.identity.name]) for c in (a, b, bad)]

    def loader(c: ModelCard) -> Fake:
        loads.append(c.ref)
        if c.identity.name == "bad":
            raise ValueError("sha256 differs")
        fakes.append(Fake(c))
        return fakes[-1]

    pool = ModelPool(source, loader, refresh_s=0.0)
    assert [(m.ref, m.shadow) for m in pool.active] == [("a@1.0", False)]
    assert pool.broken["bad@1.0"][2] == "model bad@1.0 could not be loaded: sha256 differs"
    statuses.update(a=ModelStatus.SHADOW, b=ModelStatus.ENABLED)
    pool.refresh()
    assert sorted((m.ref, m.shadow) for m in pool.active) == [("a@1.0", True), ("b@1.0", False)]
    pool.refresh()
    assert sorted(loads) == ["a@1.0", "b@1.0", "bad@1.0", "bad@1.0", "bad@1.0"]
    pool.close()
    assert all(f.closed for f in fakes) and pool.active == []


def test_a_broken_source_keeps_the_current_models() -> None:
    a = card("a")
    calls = {"n": 0}

    def source() -> list[Entry]:
        calls["n"] += 1
        if calls["n"] > 1:
            raise OSError("state file unreadable")
        return [Entry(a, ModelStatus.ENABLED)]

    pool = ModelPool(source, Fake, refresh_s=0.0)
    pool.refresh()
    assert [m.ref for m in pool.active] == ["a@1.0"]
