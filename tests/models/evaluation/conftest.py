"""Fixtures of the evaluation tests."""

from __future__ import annotations

import pytest

from tests.builders.cohorts import Cohort, make_cohort


@pytest.fixture
def cohort() -> Cohort:
    """The default cohort (600 images of 200 patients)."""
    return make_cohort()
