"""The evaluation stays off the runtime path: ``import models`` loads none of it."""

from __future__ import annotations

import subprocess
import sys


def test_import_models_loads_no_statistics_libraries() -> None:
    code = (
        "import sys, models, models.registry, models.runtime, models.results\n"
        "heavy = {'models.evaluation', 'sklearn', 'matplotlib', 'statsmodels', 'jsonschema'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_evaluation_does_not_need_torch() -> None:
    code = "import sys, models.evaluation.render\nprint('torch' in sys.modules)\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
