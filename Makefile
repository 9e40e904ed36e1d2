# Thin aliases over scripts/ (the scripts install what is missing, so every target works on a
# fresh clone).
SHELL := bash
PY := .venv/bin/python

.PHONY: dev test lint bench clean venv

dev:  ## run the Worker locally on 127.0.0.1:$${PORT:-8787}
	bash scripts/dev.sh

test:  ## ruff + mypy + all tests (unit and integration)
	bash scripts/test.sh

venv:
	source scripts/_bootstrap.sh && ensure_venv

lint: venv
	.venv/bin/ruff check src tests
	.venv/bin/mypy

bench: venv  ## benchmark harness lives in bench/ (bench/run.py)
	$(PY) bench/run.py

clean:  ## caches and local Worker state (.wrangler/ holds the dev KV data); keeps .venv, node_modules
	rm -rf .wrangler examples/*/.wrangler .pytest_cache .mypy_cache .ruff_cache .hypothesis bench/out
	find . -path ./node_modules -prune -o -path ./.venv -prune -o -name __pycache__ -type d -exec rm -rf {} +
