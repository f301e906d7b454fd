"""The priority policy file: classes and targets, referral mapping, site defaults, escalation.

The policy is data (YAML, bundled default ``triage/rules/policy.yaml``), validated into frozen
dataclasses; :mod:`triage.policy.decide` evaluates it with pure functions.
"""

from __future__ import annotations

import logging
import re
from dataclasses import field
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ConfigDict, Field, TypeAdapter
from pydantic.dataclasses import dataclass

from models.errors import Invalid
from triage.rulefile import read_rule_file, validate_rules
from worklist.domain import Priority

__all__ = [
    "DEFAULT_POLICY_FILE",
    "ClassSpec",
    "Escalation",
    "Policy",
    "PolicyError",
    "SiteDefaults",
    "load_policy",
    "parse_duration",
    "parse_policy",
]

logger = logging.getLogger(__name__)

DEFAULT_POLICY_FILE = Path(str(resources.files("triage") / "rules" / "policy.yaml"))
"""The bundled policy: P1 1 h, P2 24 h, P3 6 weeks; STAT to P1, HIGH to P2; escalation."""

_STRICT = ConfigDict(extra="forbid")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class PolicyError(Invalid):
    """A policy file is missing, not YAML, or does not follow the schema."""


def parse_duration(value: Any) -> timedelta:
    """Read a duration such as ``"90s"``, ``"30m"``, ``"1h"``, ``"2d"``, ``"6w"``.

    Parameters
    ----------
    value
        A string with one unit (s, m, h, d, w), a number of seconds, or a ``timedelta``.

    Returns
    -------
    timedelta
        The duration.

    Raises
    ------
    ValueError
        If the value is not a positive duration.
    """
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    else:
        raise ValueError(f"not a duration: {value!r} (write e.g. 90s, 30m, 1h, 2d, 6w)")
    if seconds <= 0:
        raise ValueError(f"duration must be positive: {value!r}")
    return timedelta(seconds=seconds)


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


@dataclass(frozen=True, config=_STRICT)
class ClassSpec:
    """One priority class: a short label and its target turnaround."""

    label: Annotated[str, Field(min_length=1)]
    target: Duration


@dataclass(frozen=True, config=_STRICT)
class SiteDefaults:
    """Clinical priority when the referral gives none: per site (calling AE), else ``default``."""

    default: Priority = Priority.P3
    sites: dict[str, Priority] = field(default_factory=dict)

    def for_site(self, site: str) -> tuple[Priority, bool]:
        """Return the site's default and whether it came from the site table (not global)."""
        key = site.strip().upper()
        for name, prio in self.sites.items():
            if name.strip().upper() == key:
                return prio, True
        return self.default, False


@dataclass(frozen=True, config=_STRICT)
class Escalation:
    """Waiting escalation from one class: one class up after ``after`` of its target, to ``max``."""

    after: Annotated[float, Field(gt=0)]
    max: Priority


@dataclass(frozen=True, config=_STRICT)
class Policy:
    """The whole policy file, validated. An instance is a consistent policy."""

    classes: dict[Priority, ClassSpec]
    referral: dict[str, Priority] = field(default_factory=dict)
    site_defaults: SiteDefaults = field(default_factory=SiteDefaults)
    escalation: dict[Priority, Escalation] = field(default_factory=dict)
    version: Literal[1] = 1

    def __post_init__(self) -> None:
        missing = sorted(set(Priority) - set(self.classes))
        if missing:
            raise ValueError(f"classes: every class needs a target; missing {missing}")
        targets = [self.classes[p].target for p in sorted(Priority, key=lambda p: p.rank)]
        if targets != sorted(targets):
            raise ValueError("classes: targets must not shrink from P1 to P3")
        for prio, rule in self.escalation.items():
            if rule.max.rank >= prio.rank:
                raise ValueError(
                    f"escalation.{prio}.max: {rule.max} is not more urgent than {prio}"
                )
        # Normalise referral keys once so lookups ignore case and blanks.
        object.__setattr__(
            self, "referral", {k.strip().upper(): v for k, v in self.referral.items()}
        )

    def target(self, priority: Priority) -> timedelta:
        """Return the class's target turnaround."""
        return self.classes[priority].target

    def describe(self, priority: Priority) -> str:
        """Return e.g. ``"P1 (urgent)"``."""
        return f"{priority} ({self.classes[priority].label})"


_ADAPTER: TypeAdapter[Policy] = TypeAdapter(Policy)


def parse_policy(data: Any, source: str = "<policy>") -> Policy:
    """Validate parsed YAML as a policy.

    Parameters
    ----------
    data
        The parsed YAML mapping.
    source
        Named in error messages.

    Returns
    -------
    Policy
        The validated policy.

    Raises
    ------
    PolicyError
        If the data is not a valid policy; the message names the field.
    """
    return validate_rules(_ADAPTER, data, source, "policy", PolicyError)


def load_policy(path: Path | None = None) -> Policy:
    """Read the policy from YAML.

    Parameters
    ----------
    path
        The file; ``None`` reads the bundled default.

    Returns
    -------
    Policy
        The validated policy.

    Raises
    ------
    PolicyError
        If the file cannot be read, is not YAML or is not valid.
    """
    path = path or DEFAULT_POLICY_FILE
    data = read_rule_file(path, "policy", PolicyError)
    return parse_policy(data, str(path))
