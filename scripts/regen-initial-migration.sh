#!/usr/bin/env bash
# Development only, before the first release: rewrite the initial revision from the schema.
# After a release, add a new revision instead (alembic revision --autogenerate).
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
rm -f worklist/db/migrations/versions/0001_initial.py
.venv/bin/python - "$tmp" <<'PY'
import sys
from alembic import command
from worklist.db.engine import _alembic_config
cfg = _alembic_config(f"sqlite:///{sys.argv[1]}/x.db")
command.revision(cfg, message="initial schema", autogenerate=True, rev_id="0001_initial")
PY
f=$(ls worklist/db/migrations/versions/0001_initial*.py)
[ "$f" = worklist/db/migrations/versions/0001_initial.py ] || mv "$f" worklist/db/migrations/versions/0001_initial.py
.venv/bin/ruff format worklist/db/migrations/versions/0001_initial.py
.venv/bin/ruff check --fix worklist/db/migrations/versions/0001_initial.py || true
rm -rf "$tmp"
