"""Typed settings of the waiting-list simulation, read from YAML (``triage simulate --config``).

Every default comes from :mod:`triage.simulation.defaults`, where each is labelled an
ASSUMPTION and its source, if any, is named. Times inside the simulation are minutes from the
start (day 0, 00:00, on ``start_weekday``).
"""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from models.errors import TriageError
from triage.simulation.defaults import (
    DEFAULT_PREVALENCE,
    DEFAULT_READ_TIME,
    DEFAULT_ROSTER,
    DEFAULT_SOURCES,
    ROSTERS,
)

__all__ = [
    "MAX_STUDIES",
    "POLICIES",
    "GridSettings",
    "ModelSettings",
    "PolicyName",
    "ReadTime",
    "Shift",
    "SimulationError",
    "SimulationSettings",
    "Source",
    "load_settings",
]

logger = logging.getLogger(__name__)

PolicyName = Literal["fifo", "ai", "ai_capped"]
POLICIES: tuple[PolicyName, ...] = ("fifo", "ai", "ai_capped")
"""FIFO by clinical priority; AI-prioritised; AI-prioritised with the policy's escalation."""

_CLOCK = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)$")
Rate = Annotated[float, Field(ge=0.0, le=1.0)]


class SimulationError(TriageError):
    """The simulation's settings or inputs are not usable; the message says which and why."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ReadTime(_Frozen):
    """How long one read takes (minutes): a distribution with its mean and spread."""

    distribution: Literal["lognormal", "gamma", "exponential", "fixed"] = "lognormal"
    mean_min: float = Field(gt=0.0)
    cv: float = Field(default=0.6, ge=0.0, description="Coefficient of variation (sd / mean).")


class Source(_Frozen):
    """One source of studies (ED, inpatient, GP, a CDC...): volume, timing, referral priorities.

    ``daily_volume`` is the mean number of studies a day over a week; ``weekday_factors``
    (Monday first) and ``hourly_profile`` (00:00 first) are relative weights, normalised here.
    ``referral_mix`` maps DICOM referral priorities (``STAT``, ``HIGH``, ``ROUTINE``...) to their
    shares; ``site`` is the calling AE title the policy's site defaults see (default: ``name``).
    """

    name: str = Field(min_length=1)
    daily_volume: float = Field(ge=0.0)
    hourly_profile: tuple[float, ...] = Field(default=(1.0,) * 24, min_length=24, max_length=24)
    weekday_factors: tuple[float, ...] = Field(default=(1.0,) * 7, min_length=7, max_length=7)
    referral_mix: dict[str, float] = Field(default_factory=lambda: {"ROUTINE": 1.0})
    site: str = ""
    read_time: ReadTime | None = None

    @model_validator(mode="after")
    def _weights(self) -> Self:
        for name in ("hourly_profile", "weekday_factors"):
            values = getattr(self, name)
            if any(v < 0 for v in values) or sum(values) <= 0:
                raise ValueError(f"{name}: weights must be >= 0 and not all 0")
        shares = self.referral_mix.values()
        if not shares or any(v < 0 for v in shares) or not math.isclose(sum(shares), 1.0):
            raise ValueError("referral_mix: shares must be >= 0 and sum to 1")
        return self


class Shift(_Frozen):
    """A roster line: ``readers`` radiologists on duty from ``start`` to ``end`` on ``weekdays``.

    Times are ``HH:MM`` (``24:00`` allowed as an end); an end at or before the start runs past
    midnight into the next day. Weekdays are 0 (Monday) to 6 (Sunday). Each of the ``readers``
    is one person, named ``<name>-<k>``; a read starts only while its reader is on duty.
    """

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    weekdays: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6)
    start: str
    end: str
    readers: int = Field(ge=0)

    @field_validator("start", "end")
    @classmethod
    def _clock(cls, value: str) -> str:
        m = _CLOCK.match(value.strip())
        if not m or (m.group(1) == "24" and m.group(2) != "00"):
            raise ValueError(f"not a time of day HH:MM: {value!r}")
        return value.strip()

    @field_validator("weekdays")
    @classmethod
    def _days(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(d < 0 or d > 6 for d in value):
            raise ValueError("weekdays are 0 (Monday) to 6 (Sunday)")
        return tuple(sorted(set(value)))

    def span(self) -> tuple[float, float]:
        """Return the shift's start and end in minutes from its day's midnight (end > start)."""
        start, end = (_minutes(self.start), _minutes(self.end))
        return (start, end if end > start else end + 1440.0)


def _minutes(clock: str) -> float:
    hours, minutes = clock.split(":")
    return int(hours) * 60.0 + int(minutes)


class ModelSettings(_Frozen):
    """The model's behaviour: a benchmark's ``predictions.csv`` or sensitivity/specificity.

    ``card`` gives the label names, thresholds and categories (default: the bundled demo card);
    ``thresholds`` overrides the card's. ``sensitivity``/``specificity`` are one number for every
    label or one per label. ``prevalence`` (per label) draws the truth when the model is given
    by rates, and reweights the rows of ``predictions`` when ``reweight_predictions`` is true.
    """

    card: Path | None = None
    predictions: Path | None = None
    sensitivity: float | dict[str, Rate] | None = None
    specificity: float | dict[str, Rate] | None = None
    thresholds: dict[str, Rate] = Field(default_factory=dict)
    prevalence: dict[str, Rate] = Field(default_factory=lambda: dict(DEFAULT_PREVALENCE))
    reweight_predictions: bool = True

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        rates = self.sensitivity is not None or self.specificity is not None
        if rates and self.predictions is not None:
            raise ValueError("give either predictions or sensitivity/specificity, not both")
        if rates and (self.sensitivity is None or self.specificity is None):
            raise ValueError("sensitivity and specificity go together")
        for name in ("sensitivity", "specificity"):
            value = getattr(self, name)
            if isinstance(value, float) and not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be within 0..1")
        return self

    @property
    def given(self) -> bool:
        """Whether the model's behaviour is set (predictions or rates)."""
        return self.predictions is not None or self.sensitivity is not None


class GridSettings(_Frozen):
    """The sweep behind the gain-over-sensitivity-x-load plot (FIFO against AI per cell).

    ``loads`` multiply every source's volume; ``sensitivities`` replace every label's
    sensitivity while each label keeps its specificity. The default loads reach from a short
    list to one the roster only just keeps up with (with the default scenario and ``network``
    roster, an offered load of 38 % to 100 % of the reading time; with ``day-only``, 55 % to
    140 %), because how much prioritising gains depends on how long the list is.
    """

    enabled: bool = True
    sensitivities: tuple[Rate, ...] = (0.5, 0.7, 0.8, 0.9, 0.95, 0.99)
    loads: tuple[Annotated[float, Field(gt=0.0)], ...] = (0.7, 1.0, 1.3, 1.6, 1.8)
    replications: int = Field(default=5, ge=1)
    days: int = Field(default=14, ge=1)


MAX_STUDIES = 500_000
"""Most studies one replication may have (a replication holds them all in memory, about 2.5 KB
each with the event log: about 1.2 GB; 500,000 is three years of the default scenario)."""


class SimulationSettings(_Frozen):
    """Everything one run of the simulation needs; an instance is a consistent scenario.

    ``days`` of arrivals are simulated; studies arriving in the first ``warmup_days`` are left
    out of the statistics; after the last arrival the readers go on with their rosters for at
    most ``drain_days`` so that what is left gets reported. ``policy_file`` is the project's
    priority policy (default: the bundled ``triage/rules/policy.yaml``). ``roster`` is a list of
    shifts or the name of a bundled roster (``network``, the default, or ``day-only``).
    """

    version: Literal[1] = 1
    days: int = Field(default=28, ge=1)
    warmup_days: int = Field(default=7, ge=0)
    drain_days: int = Field(default=14, ge=0)
    start_weekday: int = Field(default=0, ge=0, le=6)
    replications: int = Field(default=20, ge=1)
    seed: int = Field(default=0, ge=0)
    workers: int = Field(default=1, ge=1, description="Processes over replications.")
    load: float = Field(default=1.0, gt=0.0, description="Multiplies every source's volume.")
    policy_file: Path | None = None
    policies: tuple[PolicyName, ...] = POLICIES
    sources: tuple[Source, ...] = Field(
        default_factory=lambda: tuple(Source.model_validate(s) for s in DEFAULT_SOURCES)
    )
    roster: tuple[Shift, ...] = Field(
        default_factory=lambda: tuple(Shift.model_validate(s) for s in DEFAULT_ROSTER)
    )
    read_time: ReadTime = Field(default_factory=lambda: ReadTime.model_validate(DEFAULT_READ_TIME))
    model: ModelSettings = Field(default_factory=ModelSettings)
    grid: GridSettings = Field(default_factory=GridSettings)
    backlog_step_min: float = Field(default=15.0, gt=0.0)
    event_log: Literal["first", "all", "none"] = "first"

    @field_validator("roster", mode="before")
    @classmethod
    def _named_roster(cls, value: Any) -> Any:
        """Accept a bundled roster's name (:data:`triage.simulation.defaults.ROSTERS`)."""
        if isinstance(value, str):
            if value not in ROSTERS:
                raise ValueError(f"unknown roster {value!r}; named rosters: {', '.join(ROSTERS)}")
            return ROSTERS[value]
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.warmup_days >= self.days:
            raise ValueError("warmup_days must be shorter than days")
        if "fifo" not in self.policies:
            raise ValueError("policies: fifo is the baseline every other policy is compared with")
        if len(set(self.policies)) != len(self.policies):
            raise ValueError("policies: each at most once")
        if not self.sources or sum(s.daily_volume for s in self.sources) <= 0:
            raise ValueError("sources: at least one with a volume")
        if not any(s.readers for s in self.roster):
            raise ValueError("roster: at least one reader")
        names = [s.name for s in self.sources]
        if len(set(names)) != len(names):
            raise ValueError("sources: names must be unique")
        per_day = sum(s.daily_volume for s in self.sources) * self.load
        runs = [("days x daily volume x load", per_day * self.days)]
        if self.grid.enabled:
            longest = per_day * max(self.grid.loads) * min(self.grid.days, self.days)
            runs.append(("the grid's days x daily volume x load x its largest load", longest))
        for what, studies in runs:
            if studies > MAX_STUDIES:
                raise ValueError(
                    f"about {studies:,.0f} studies per replication ({what}); at most "
                    f"{MAX_STUDIES:,}: simulate fewer days or a smaller volume"
                )
        return self

    def with_changes(self, **changes: Any) -> SimulationSettings:
        """Return a validated copy with top-level fields replaced (and ``model`` merged).

        Parameters
        ----------
        **changes
            Field values; ``model`` may be a mapping of the model's fields to replace.

        Returns
        -------
        SimulationSettings
            The new settings.

        Raises
        ------
        SimulationError
            If the changed settings are not valid.
        """
        data = self.model_dump()
        model = changes.pop("model", None)
        if isinstance(model, dict):
            data["model"] = {**data["model"], **model}
        elif model is not None:
            data["model"] = model
        data.update(changes)
        return _validated(data, "changed settings")


def load_settings(path: Path | None = None, **overrides: Any) -> SimulationSettings:
    """Read the simulation's settings from YAML and apply overrides (command-line options).

    Parameters
    ----------
    path
        The YAML file; ``None`` uses the defaults.
    **overrides
        Top-level fields; a mapping (``model``, ``grid``) is merged into the file's section,
        and model rates given here replace the file's predictions (and the reverse). ``None``
        values are ignored.

    Returns
    -------
    SimulationSettings
        The validated settings.

    Raises
    ------
    SimulationError
        If the file cannot be read, is not YAML or does not follow the schema.
    """
    data = {} if path is None else _read_yaml(path)
    model_over = {k: v for k, v in (overrides.pop("model", None) or {}).items() if v is not None}
    _merge_overrides(data, overrides)
    if model_over:
        data["model"] = _merged_model(dict(data.get("model") or {}), model_over)
    return _validated(data, "defaults" if path is None else str(path))


def _read_yaml(path: Path) -> dict[str, Any]:
    """Read a settings file into a mapping, its relative paths resolved against its folder."""
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SimulationError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise SimulationError(f"{path}: not YAML: {exc}") from exc
    if loaded is not None and not isinstance(loaded, dict):
        raise SimulationError(f"{path}: the top level must be a mapping")
    return _paths_beside(dict(loaded or {}), path.parent)


def _paths_beside(data: dict[str, Any], base: Path) -> dict[str, Any]:
    """Resolve the file paths a settings file names (policy, card, predictions) against ``base``."""
    for key in ("policy_file",):
        if data.get(key):
            data[key] = str(base / data[key])
    model = dict(data.get("model") or {})
    for key in ("card", "predictions"):
        if model.get(key):
            model[key] = str(base / model[key])
    if model:
        data["model"] = model
    return data


def _merge_overrides(data: dict[str, Any], overrides: dict[str, Any]) -> None:
    """Apply top-level overrides: a mapping merges into its section; ``None`` is ignored."""
    for key, value in overrides.items():
        if isinstance(value, dict):
            data[key] = {**dict(data.get(key) or {}), **value}
        elif value is not None:
            data[key] = value


def _merged_model(model: dict[str, Any], model_over: dict[str, Any]) -> dict[str, Any]:
    """Return the model section with overrides; given predictions replace rates and the reverse."""
    if "predictions" in model_over:
        model.pop("sensitivity", None)
        model.pop("specificity", None)
    if "sensitivity" in model_over:
        model.pop("predictions", None)
    return {**model, **model_over}


def _validated(data: dict[str, Any], source: str) -> SimulationSettings:
    try:
        return SimulationSettings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise SimulationError(f"{source}: invalid simulation settings: {problems}") from exc
