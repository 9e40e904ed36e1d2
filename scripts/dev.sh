#!/usr/bin/env bash
# Run chat-store locally on http://127.0.0.1:${PORT:-8787}. Local KV data survives restarts
# under .wrangler/state; secrets come from .dev.vars (created from .dev.vars.example).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_bootstrap.sh
ensure_node
[ -f .dev.vars ] || cp .dev.vars.example .dev.vars
# No internet here; metrics would only time out.
export WRANGLER_SEND_METRICS="${WRANGLER_SEND_METRICS:-false}"
exec npx wrangler dev --ip 127.0.0.1 --port "${PORT:-8787}" --persist-to .wrangler/state "$@"
