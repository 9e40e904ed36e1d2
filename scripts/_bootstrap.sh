# Sourced by scripts/*.sh, .ci/run and the Makefile: install what is missing, from the repo root.
# Everything the project needs is installed from here, so a fresh clone only needs
# python3 >= 3.11, node 20 and npm.

# Node side: wrangler (local Workers runtime) pinned in package-lock.json.
ensure_node() {
  # npm writes node_modules/.package-lock.json on install; an older one means a stale tree.
  if [ ! -x node_modules/.bin/wrangler ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund
  fi
  # miniflare otherwise tries to download Request.cf data (no internet) and warns on every start.
  if [ ! -f node_modules/.mf/cf.json ]; then
    mkdir -p node_modules/.mf && echo '{}' > node_modules/.mf/cf.json
  fi
}

# Python side: .venv with the `dev` extras of pyproject.toml (the Worker itself is not installed).
ensure_venv() {
  if [ ! -x .venv/bin/python ]; then
    local py="${PYTHON:-python3}"
    "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
      || { echo "error: $py is older than 3.11 (set PYTHON=...)" >&2; return 1; }
    "$py" -m venv .venv
  fi
  # Reinstall only when the pinned list changed; the stamp holds the last installed list.
  local want
  want=$(.venv/bin/python -c 'import tomllib; d = tomllib.load(open("pyproject.toml", "rb"))
print(" ".join(d["project"]["optional-dependencies"]["dev"]))')
  if [ "$want" != "$(cat .venv/.dev-extras 2>/dev/null)" ]; then
    # shellcheck disable=SC2086  # word splitting wanted: one argument per requirement
    .venv/bin/python -m pip install --quiet --disable-pip-version-check $want
    echo "$want" > .venv/.dev-extras
  fi
}

# clients/python, editable (src/ on sys.path through a .pth line); its dependencies come pinned
# from the dev extras, so no build isolation and no deps. Reinstalled when its pyproject changes.
ensure_python_client() {
  ensure_venv || return 1
  if [ ! -f .venv/.python-client ] || [ clients/python/pyproject.toml -nt .venv/.python-client ]; then
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-build-isolation \
      --no-deps -e ./clients/python
    touch .venv/.python-client
  fi
}

# Benchmark side: the `bench` extras of pyproject.toml (matplotlib for bench/run.py's plot), on
# top of the dev venv, reinstalled only when that pinned list changed.
ensure_bench() {
  ensure_venv || return 1
  local want
  want=$(.venv/bin/python -c 'import tomllib; d = tomllib.load(open("pyproject.toml", "rb"))
print(" ".join(d["project"]["optional-dependencies"]["bench"]))')
  if [ "$want" != "$(cat .venv/.bench-extras 2>/dev/null)" ]; then
    # shellcheck disable=SC2086  # word splitting wanted: one argument per requirement
    .venv/bin/python -m pip install --quiet --disable-pip-version-check $want
    echo "$want" > .venv/.bench-extras
  fi
}
