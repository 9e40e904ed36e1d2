// Generates clients/typescript/src/openapi.ts from the repo's openapi.json with openapi-typescript.
//
//   node clients/typescript/scripts/generate-types.mjs [output]   (default: src/openapi.ts)
//
// check.sh runs this into a temporary file and fails when the committed file differs, so the
// client's types cannot drift from the contract.
//
// One JSON-Schema construct is rewritten before generation, into an equivalent form:
// openapi-typescript 7 turns `{properties, anyOf: [{required: [a]}, {required: [b]}]}` into
// `{...} | unknown | unknown`, which is `unknown` (MessageCreate would accept anything). An
// `anyOf` whose branches only add `required` names is the same as an `anyOf` of the whole object
// with each branch's names added to `required`, which it renders as a precise union
// (`content` or `parts` required). Object schemas without properties (Metadata) become
// `Record<string, unknown>` (`emptyObjectsUnknown`), as JSON Schema means them, not the
// generator's default `Record<string, never>`.
import { readFile, writeFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import openapiTS, { astToString } from "openapi-typescript";

const here = dirname(fileURLToPath(import.meta.url));
const specPath = resolve(here, "../../../openapi.json");
const output = resolve(process.argv[2] ?? resolve(here, "../src/openapi.ts"));

const HEADER = `// Generated from openapi.json by clients/typescript/scripts/generate-types.mjs
// (openapi-typescript). Do not edit: change openapi.json and regenerate; check.sh fails on drift.
`;

function isRequiredOnly(branch) {
  return (
    typeof branch === "object" &&
    branch !== null &&
    Object.keys(branch).length === 1 &&
    Array.isArray(branch.required)
  );
}

function distributeRequiredOnlyAnyOf(node) {
  if (Array.isArray(node)) {
    return node.map(distributeRequiredOnlyAnyOf);
  }
  if (typeof node !== "object" || node === null) {
    return node;
  }
  const walked = Object.fromEntries(
    Object.entries(node).map(([key, value]) => [key, distributeRequiredOnlyAnyOf(value)]),
  );
  const { anyOf, description, ...base } = walked;
  if (!Array.isArray(anyOf) || !base.properties || !anyOf.every(isRequiredOnly)) {
    return walked;
  }
  const required = base.required ?? [];
  return {
    ...(description === undefined ? {} : { description }),
    anyOf: anyOf.map((branch) => ({
      ...base,
      required: [...required, ...branch.required.filter((name) => !required.includes(name))],
    })),
  };
}

const spec = distributeRequiredOnlyAnyOf(JSON.parse(await readFile(specPath, "utf8")));
const ast = await openapiTS(spec, { emptyObjectsUnknown: true, silent: true });
await writeFile(output, HEADER + astToString(ast));
