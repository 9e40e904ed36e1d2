import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";

import {
  BadRequest,
  ChatStoreError,
  ERROR_CLASSES,
  ProblemError,
  ServiceUnavailable,
  errorFromBody,
  parseRetryAfter,
} from "../src/index.js";

// The enum as the contract has it, read at run time (tsc already checks the table against the
// generated type; this checks the generated type was generated from this openapi.json).
const spec = JSON.parse(readFileSync("openapi.json", "utf8")) as {
  components: { schemas: { Problem: { properties: { code: { enum: string[] } } } } };
};
const CODES = spec.components.schemas.Problem.properties.code.enum;

function camel(code: string): string {
  return code.replace(/(^|_)([a-z])/g, (_, __, letter: string) => letter.toUpperCase());
}

describe("error classes", () => {
  it("has one class per problem code, named after it", () => {
    assert.deepEqual(Object.keys(ERROR_CLASSES).sort(), [...CODES].sort());
    const names = new Set<string>();
    for (const code of CODES) {
      const status = code === "rate_limited" ? 429 : 400;
      const body = JSON.stringify({
        type: `https://chat-store.dev/problems/${code}`,
        title: "t",
        status,
        detail: "d",
        code,
      });
      const error = errorFromBody(status, body, 1500);
      assert.ok(error instanceof ProblemError, code);
      const group = ["invalid_json", "validation_error"].includes(code)
        ? BadRequest
        : ["auth_not_configured", "storage_unavailable"].includes(code)
          ? ServiceUnavailable
          : undefined;
      assert.equal(error instanceof BadRequest, group === BadRequest, code);
      assert.equal(error instanceof ServiceUnavailable, group === ServiceUnavailable, code);
      assert.ok(error instanceof ChatStoreError, code);
      assert.equal(error.code, code);
      assert.equal(error.status, status);
      assert.equal(error.retryAfterMs, 1500);
      assert.deepEqual(error.problem, JSON.parse(body));
      // Json for invalid_json, the rest as the code reads (NotFound, RateLimited, ...).
      assert.equal(error.name.toLowerCase(), camel(code).toLowerCase(), code);
      assert.equal(error.constructor, ERROR_CLASSES[code as keyof typeof ERROR_CLASSES]);
      names.add(error.name);
    }
    assert.equal(names.size, CODES.length);
  });

  it("does not take a JSON body without the problem members for a problem", () => {
    const error = errorFromBody(404, JSON.stringify({ code: "not_found" }));
    assert.equal(error.name, "UnexpectedResponse");
    assert.equal(error.code, "unexpected_response");
  });
});

describe("parseRetryAfter", () => {
  const now = Date.parse("2024-11-01T00:00:00Z");
  it("reads seconds and HTTP-dates", () => {
    assert.equal(parseRetryAfter("0", now), 0);
    assert.equal(parseRetryAfter(" 60 ", now), 60_000);
    assert.equal(parseRetryAfter("Fri, 01 Nov 2024 00:00:10 GMT", now), 10_000);
    assert.equal(parseRetryAfter("Thu, 31 Oct 2024 23:00:00 GMT", now), 0);
    assert.equal(parseRetryAfter("Friday, 01-Nov-24 00:00:02 GMT", now), 2_000);
    assert.equal(parseRetryAfter("Fri Nov  1 00:00:04 2024", now), 4_000);
  });
  it("ignores what it cannot read", () => {
    assert.equal(parseRetryAfter(null, now), undefined);
    assert.equal(parseRetryAfter("soon", now), undefined);
    assert.equal(parseRetryAfter("-1", now), undefined);
    assert.equal(parseRetryAfter("1.5", now), undefined);
  });
});
