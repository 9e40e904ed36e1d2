#!/usr/bin/env bash
# Lint, type-check, then run every test (unit + integration against a local `wrangler dev`
# that the test session starts itself). Extra arguments go to pytest, e.g. -k, -x, -m "not integration".
# All three steps always run so one failure does not hide another; the exit code is non-zero
# if any failed (pytest's own code wins, so "no tests collected" = 5 still fails).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_bootstrap.sh
ensure_venv
ensure_python_client
ensure_node
export WRANGLER_SEND_METRICS=false
# No src/__pycache__ writes mid-run: wrangler dev would hot-reload the Worker (see tests/conftest.py).
export PYTHONDONTWRITEBYTECODE=1

status=0
.venv/bin/ruff check src tests clients/python || status=1
.venv/bin/mypy || status=1
# The Python client is type-checked on its own terms (its pyproject: mypy --strict on its src).
(cd clients/python && ../../.venv/bin/mypy) || status=1
# The TypeScript client: generated types in step with openapi.json, formatting, tsc, unit tests.
bash clients/typescript/check.sh || status=1
.venv/bin/python -m pytest -q "$@" || status=$?
exit "$status"
