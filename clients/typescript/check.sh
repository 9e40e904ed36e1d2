#!/usr/bin/env bash
# Checks of the TypeScript client, from any directory (needs the repo's node_modules: npm ci):
#   1. src/openapi.ts is what openapi-typescript makes of openapi.json now (no drift);
#   2. prettier --check; tsc --noEmit over the client as browsers type it (DOM) and, with the
#      service-binding example, as Workers type it (@cloudflare/workers-types);
#   3. the unit tests (node:test, fake fetch), compiled by tsc into a temporary directory.
# Regenerate after changing openapi.json: node clients/typescript/scripts/generate-types.mjs
set -euo pipefail
cd "$(dirname "$0")/../.."
tsc=node_modules/.bin/tsc
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

node clients/typescript/scripts/generate-types.mjs "$out/openapi.ts"
if ! diff -u clients/typescript/src/openapi.ts "$out/openapi.ts"; then
  echo "error: clients/typescript/src/openapi.ts is out of date with openapi.json;" \
    "run: node clients/typescript/scripts/generate-types.mjs" >&2
  exit 1
fi
echo "openapi.ts: up to date"

node_modules/.bin/prettier --check --config clients/typescript/.prettierrc.json \
  'clients/typescript/{src,test,scripts}/**/*.{ts,mjs}' '!clients/typescript/src/openapi.ts' \
  'examples/service-binding/src/**/*.ts'

"$tsc" -p clients/typescript/tsconfig.json
"$tsc" -p examples/service-binding/tsconfig.json
echo "tsc: client (DOM) and service-binding example (Workers) clean"

"$tsc" -p clients/typescript/tsconfig.test.json --outDir "$out/build"
echo '{"type": "module"}' > "$out/build/package.json"
# From the repo root: the tests read openapi.json to compare it with the client.
node --test "$out"/build/test/*.test.js
