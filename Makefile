# Thin aliases over scripts/ (the scripts install what is missing, so every target works on a
# fresh clone).
SHELL := bash
PY := .venv/bin/python

.PHONY: dev test lint bench bench-sidebar bench-quick profile profile-sizes clean venv

dev:  ## run the Worker locally on 127.0.0.1:$${PORT:-8787}
	bash scripts/dev.sh

test:  ## ruff + mypy + all tests (unit and integration)
	bash scripts/test.sh

venv:
	source scripts/_bootstrap.sh && ensure_venv

lint: venv
	.venv/bin/ruff check src tests clients/python
	.venv/bin/mypy

# Benchmarks (bench/run.py): real Worker under wrangler dev vs a minimal JS floor Worker, plus
# the burst rows (a newest-50 read right after an import and under 1, 5, 20 appends/s, against
# the same read of a quiet twin history, made in turns). Nothing stored is tidied by hand, so every run waits for the store's own
# journal collection after seeding (255 s with the default settle time), and the full run lets
# each append rate reach steady state (as long again per rate).
# Then the sidebar rows (bench/sidebar.py): the first page of 20 conversations at 10, 1,000 and
# 10,000 conversations per user.
# Tables on stdout; bench/out/{results.md,results.json,latency.png} and bench/out/sidebar/.
# BENCH_ARGS passes flags to run.py, e.g. `make bench BENCH_ARGS=--publish` also copies the
# figures to docs/bench/.
bench:  ## full benchmark: histories of 10..100k, bursts at 20k, sidebar rows (about 55 min)
	source scripts/_bootstrap.sh && ensure_node && ensure_bench
	$(PY) bench/run.py $(BENCH_ARGS)
	$(PY) bench/sidebar.py

bench-sidebar:  ## the sidebar rows alone (about 15 min)
	source scripts/_bootstrap.sh && ensure_node && ensure_bench
	$(PY) bench/sidebar.py

profile:  ## where the CPU goes: cProfile of newest-50 reads and appends (CPython, in-memory KV)
	source scripts/_bootstrap.sh && ensure_venv
	PYTHONDONTWRITEBYTECODE=1 $(PY) bench/cpu_profile.py

profile-sizes:  ## is a read's own work flat? KV calls and CPU at 100,000 and 1,000 (CPython, ~1 min)
	source scripts/_bootstrap.sh && ensure_venv
	PYTHONDONTWRITEBYTECODE=1 $(PY) bench/cpu_profile.py --sizes 100000,1000 --requests 100

bench-quick:  ## smoke run of the benchmark: histories of 10 and 1,000, bursts at 5k (about 7 min)
	source scripts/_bootstrap.sh && ensure_node && ensure_bench
	$(PY) bench/run.py --quick $(BENCH_ARGS)

clean:  ## caches and local Worker state (.wrangler/ holds the dev KV data); keeps .venv, node_modules
	rm -rf .wrangler examples/*/.wrangler bench/floor-worker/.wrangler .pytest_cache .mypy_cache .ruff_cache .hypothesis bench/out
	find . -path ./node_modules -prune -o -path ./.venv -prune -o -name __pycache__ -type d -exec rm -rf {} +

# Load check (bench/load.py, issue 9): a fresh Worker under wrangler dev with the default
# configuration; 2,000 appends then 1,000 newest-50 reads from 50 concurrent clients, every
# request must succeed first time and every count be exact. LOAD_ARGS passes flags, e.g.
# `make load LOAD_ARGS="--json bench/out/load.json"`.
.PHONY: load
load:  ## load check: 2,000 appends + 1,000 newest-50 reads, 50 clients (a few minutes)
	source scripts/_bootstrap.sh && ensure_node && ensure_venv
	$(PY) bench/load.py --appends 2000 --reads 1000 --concurrency 50 $(LOAD_ARGS)

# Edge simulation soak (tests/support/edge_sim.py): seeded runs of many clients against the real
# ChatStore over the edge model of Workers KV (tests/support/edge_kv.py), one test per seed, each
# failure printed with its trace. EDGE_SOAK_SEEDS is a count (`200`: seeds 0-199), a range
# (`100-199`) or a list (`3,17`); EDGE_SOAK_OPS the client operations per seed; SOAK_ARGS more
# pytest flags (e.g. `SOAK_ARGS=--tb=line` for just the failing seeds).
.PHONY: soak
soak:  ## edge simulation soak: EDGE_SOAK_SEEDS (200) seeds x EDGE_SOAK_OPS (600) ops (~9 min on 2 cores)
	source scripts/_bootstrap.sh && ensure_venv
	EDGE_SOAK_SEEDS=$${EDGE_SOAK_SEEDS:-200} EDGE_SOAK_OPS=$${EDGE_SOAK_OPS:-600} \
	  PYTHONDONTWRITEBYTECODE=1 \
	  $(PY) -m pytest -q -n $${EDGE_SOAK_JOBS:-auto} tests/test_edge_model.py -k test_soak $(SOAK_ARGS)
