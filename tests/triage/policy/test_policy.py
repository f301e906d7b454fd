from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from triage.policy import (
    AIFinding,
    PolicyError,
    StudyFacts,
    clinical_priority,
    decide,
    escalate,
    escalated_at,
    load_policy,
    ordering_deadline,
    parse_duration,
    parse_policy,
)
from worklist.domain import Priority

P1, P2, P3 = Priority.P1, Priority.P2, Priority.P3
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def policy_data(**over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "classes": {
            "P1": {"label": "urgent", "target": "1h"},
            "P2": {"label": "soon", "target": "24h"},
            "P3": {"label": "routine", "target": "6w"},
        },
        "referral": {"STAT": "P1", "HIGH": "P2", "ROUTINE": "P3"},
        "site_defaults": {"default": "P3", "sites": {"ED_CR": "P2"}},
        "escalation": {"P3": {"after": 0.5, "max": "P2"}, "P2": {"after": 0.5, "max": "P1"}},
    }
    data.update(over)
    return data


POLICY = parse_policy(policy_data())


def finding(
    label: str = "pneumothorax",
    p: float = 0.9,
    thr: float = 0.5,
    cat: Priority = P1,
    *,
    shadow: bool = False,
    model: str = "chest",
    version: str = "1.0",
) -> AIFinding:
    return AIFinding(label, p, thr, p >= thr, cat, model, version, shadow, "1.2.3.4")


def test_bundled_policy_loads_with_documented_targets() -> None:
    policy = load_policy()
    assert policy.target(P1) == timedelta(hours=1)
    assert policy.target(P2) == timedelta(hours=24)
    assert policy.target(P3) == timedelta(weeks=6)
    assert policy.referral["STAT"] is P1 and policy.referral["HIGH"] is P2


@pytest.mark.parametrize(
    ("raw", "site", "expected", "source", "rule"),
    [
        ("STAT", "", P1, "referral", "referral"),
        (" stat ", "", P1, "referral", "referral"),
        ("HIGH", "ED_CR", P2, "referral", "referral"),
        ("ROUTINE", "ED_CR", P3, "referral", "referral"),
        ("", "ED_CR", P2, "default", "site_default"),
        ("", "ed_cr", P2, "default", "site_default"),
        ("", "CDC_A", P3, "default", "global_default"),
        ("WHENEVER", "CDC_A", P3, "default", "global_default"),
    ],
)
def test_clinical_priority_mapping(
    raw: str, site: str, expected: Priority, source: str, rule: str
) -> None:
    got = clinical_priority(POLICY, raw, site)
    assert (got.priority, got.source, got.entry["rule"]) == (expected, source, rule)
    assert got.entry["priority"] == str(expected)
    if raw.strip() == "WHENEVER":
        assert "not in the policy's mapping" in got.entry["text"]


def test_api_priority_wins_over_referral() -> None:
    got = clinical_priority(POLICY, "STAT", "ED_CR", api_priority=P3)
    assert (got.priority, got.source, got.entry["rule"]) == (P3, "api", "api")


def test_ai_raises_and_explanation_names_finding_model_threshold() -> None:
    facts = StudyFacts(arrived_at=T0, referral_priority="ROUTINE", findings=(finding(),))
    d = decide(POLICY, facts, T0)
    assert d.priority is P1 and d.base_priority is P1 and d.clinical.priority is P3
    ai = [e for e in d.explanation if e["rule"] == "ai_finding"]
    assert ai == [
        {
            "rule": "ai_finding",
            "priority": "P1",
            "finding": "pneumothorax",
            "probability": 0.9,
            "threshold": 0.5,
            "model": "chest@1.0",
            "sop_instance_uid": "1.2.3.4",
            "text": ai[0]["text"],
        }
    ]
    assert "pneumothorax" in ai[0]["text"] and "chest@1.0" in ai[0]["text"]
    assert d.due_at == T0 + timedelta(hours=1)
    json.dumps(d.explanation)  # JSON-able
    assert [e["rule"] for e in d.explanation] == ["referral", "ai_finding", "result"]


def test_ai_never_downgrades_clinical_priority() -> None:
    facts = StudyFacts(
        arrived_at=T0, referral_priority="STAT", findings=(finding("nodule", 0.99, 0.5, P3),)
    )
    d = decide(POLICY, facts, T0)
    assert d.priority is P1
    entry = next(e for e in d.explanation if e["rule"] == "ai_finding")
    assert "does not lower" in entry["text"]


def test_not_crossed_and_shadow_findings_do_not_count() -> None:
    facts = StudyFacts(
        arrived_at=T0,
        findings=(finding(p=0.2), finding("effusion", 0.99, 0.5, P1, shadow=True)),
    )
    d = decide(POLICY, facts, T0)
    assert d.priority is P3
    assert [e["rule"] for e in d.explanation] == ["global_default", "ai_no_finding", "result"]
    assert not any("effusion" in json.dumps(e) for e in d.explanation)


def test_most_urgent_finding_wins_and_images_are_grouped() -> None:
    facts = StudyFacts(
        arrived_at=T0,
        findings=(finding("nodule", 0.7, 0.5, P2), finding(p=0.6), finding(p=0.8)),
    )
    d = decide(POLICY, facts, T0)
    ai = [e for e in d.explanation if e["rule"] == "ai_finding"]
    assert d.priority is P1
    assert [(e["finding"], e["probability"]) for e in ai] == [
        ("pneumothorax", 0.8),
        ("nodule", 0.7),
    ]


def test_ai_not_available_keeps_clinical_priority_with_reason() -> None:
    facts = StudyFacts(
        arrived_at=T0,
        referral_priority="HIGH",
        ai_available=False,
        ai_reason="model chest@1.0 timed out",
    )
    d = decide(POLICY, facts, T0)
    assert d.priority is P2
    entry = next(e for e in d.explanation if e["rule"] == "ai_not_available")
    assert entry["reason"] == "model chest@1.0 timed out"
    assert "AI not available" in entry["text"]


def test_escalation_moves_one_class_after_fraction_and_stops_at_cap() -> None:
    half_p3 = timedelta(weeks=3)
    assert escalate(POLICY, P3, T0, T0 + half_p3 - timedelta(seconds=1))[0] is P3
    prio, steps, nxt = escalate(POLICY, P3, T0, T0 + half_p3)
    assert prio is P2 and [s["rule"] for s in steps] == ["escalation"]
    assert steps[0]["from"] == "P3" and steps[0]["to"] == "P2" and steps[0]["cap"] == "P2"
    assert nxt is None
    # Routine never reaches P1 by waiting, however long.
    assert escalate(POLICY, P3, T0, T0 + timedelta(weeks=100))[0] is P2
    # Before it moves, the next step is announced.
    assert escalate(POLICY, P3, T0, T0)[2] == T0 + half_p3
    # P2 may reach P1 after 12 h.
    assert escalate(POLICY, P2, T0, T0 + timedelta(hours=12))[0] is P1
    assert escalate(POLICY, P1, T0, T0 + timedelta(weeks=100))[0] is P1


def test_multi_step_escalation_counts_time_in_each_class() -> None:
    policy = parse_policy(
        policy_data(
            escalation={"P3": {"after": 0.5, "max": "P1"}, "P2": {"after": 0.5, "max": "P1"}}
        )
    )
    three_weeks = timedelta(weeks=3)
    assert escalate(policy, P3, T0, T0 + three_weeks)[0] is P2
    assert escalate(policy, P3, T0, T0 + three_weeks + timedelta(hours=11))[0] is P2
    prio, steps, _ = escalate(policy, P3, T0, T0 + three_weeks + timedelta(hours=12))
    assert prio is P1 and [s["to"] for s in steps] == ["P2", "P1"]


def test_escalated_study_keeps_its_due_time_and_explains() -> None:
    facts = StudyFacts(arrived_at=T0)
    d = decide(POLICY, facts, T0 + timedelta(weeks=4))
    assert d.priority is P2 and d.base_priority is P3
    assert d.due_at == T0 + timedelta(weeks=6)
    assert [e["rule"] for e in d.explanation] == [
        "global_default",
        "ai_no_finding",
        "escalation",
        "result",
    ]


def test_a_raised_study_is_ordered_as_due_from_the_moment_it_was_raised() -> None:
    # Issue 12: the order within the new class counts the study due since it was raised.
    before = decide(POLICY, StudyFacts(arrived_at=T0), T0 + timedelta(weeks=3, seconds=-1))
    assert before.priority is P3 and before.order_at == before.due_at
    d = decide(POLICY, StudyFacts(arrived_at=T0), T0 + timedelta(weeks=4))
    assert d.priority is P2 and d.order_at == T0 + timedelta(weeks=3) < d.due_at
    assert escalated_at(POLICY, P3, T0, T0 + timedelta(weeks=4)) == d.order_at
    assert d.explanation[-1]["order_at"] == d.order_at.isoformat()
    assert "due since" in d.explanation[-1]["text"]
    # Two steps: the moment of the last one.
    policy = parse_policy(
        policy_data(
            escalation={"P3": {"after": 0.5, "max": "P1"}, "P2": {"after": 0.5, "max": "P1"}}
        )
    )
    late = decide(policy, StudyFacts(arrived_at=T0), T0 + timedelta(weeks=5))
    assert late.priority is P1
    assert late.order_at == T0 + timedelta(weeks=3, hours=12)
    # Never later than the due time, whatever the policy's steps.
    assert ordering_deadline(T0, T0 + timedelta(days=1)) == T0
    assert ordering_deadline(T0, None) == T0


def test_escalation_never_lowers_and_ai_escalation_uses_base_cap() -> None:
    # AI raised to P2; P2 escalates to P1 after 12 h.
    facts = StudyFacts(arrived_at=T0, findings=(finding("nodule", 0.9, 0.5, P2),))
    assert decide(POLICY, facts, T0 + timedelta(hours=13)).priority is P1


@pytest.mark.parametrize(
    ("over", "match"),
    [
        ({"classes": {"P1": {"label": "u", "target": "1h"}}}, "missing"),
        ({"escalation": {"P3": {"after": 0.5, "max": "P3"}}}, r"escalation\.P3\.max"),
        ({"referral": {"STAT": "P0"}}, r"referral\.STAT"),
        ({"colour": 1}, "colour"),
        (
            {
                "classes": {
                    "P1": {"label": "u", "target": "2w"},
                    "P2": {"label": "s", "target": "1h"},
                    "P3": {"label": "r", "target": "6w"},
                }
            },
            "shrink",
        ),
        (
            {
                "classes": {
                    "P1": {"label": "u", "target": "soon"},
                    "P2": {"label": "s", "target": "1h"},
                    "P3": {"label": "r", "target": "6w"},
                }
            },
            "not a duration",
        ),
    ],
)
def test_invalid_policy_names_the_problem(over: dict[str, Any], match: str) -> None:
    with pytest.raises(PolicyError, match=match):
        parse_policy(policy_data(**over))


def test_parse_duration() -> None:
    assert parse_duration("90s") == timedelta(seconds=90)
    assert parse_duration("1.5h") == timedelta(minutes=90)
    assert parse_duration("6w") == timedelta(weeks=6)
    assert parse_duration(30) == timedelta(seconds=30)
    for bad in ("0s", "1y", "", True, -1):
        with pytest.raises(ValueError):
            parse_duration(bad)
