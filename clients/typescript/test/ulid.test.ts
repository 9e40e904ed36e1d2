import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { monotonicUlid } from "../src/index.js";

const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

function decodeTime(id: string): number {
  return [...id.slice(0, 10)].reduce((acc, ch) => acc * 32 + CROCKFORD.indexOf(ch), 0);
}

describe("monotonicUlid", () => {
  it("makes 26 Crockford characters that carry the time", () => {
    const now = Date.parse("2024-11-27T10:00:00.123Z");
    const id = monotonicUlid(() => now)();
    assert.match(id, /^[0-9ABCDEFGHJKMNPQRSTVWXYZ]{26}$/);
    assert.equal(decodeTime(id), now);
  });

  it("increases within one millisecond and when the clock steps back", () => {
    const times = [5, 5, 5, 4, 6, 6];
    const next = monotonicUlid(() => times.shift() ?? 6);
    const ids = Array.from({ length: 6 }, () => next());
    assert.deepEqual([...ids].sort(), ids);
    assert.equal(new Set(ids).size, 6);
    assert.deepEqual(ids.map(decodeTime), [5, 5, 5, 5, 6, 6]);
  });

  it("carries the increment across random digits", () => {
    const next = monotonicUlid(
      () => 1,
      (bytes) => bytes.fill(31).fill(0, 0, 1), // random part 0ZZZ...Z
    );
    const first = next();
    const second = next();
    assert.equal(first.slice(10), `0${"Z".repeat(15)}`);
    assert.equal(second.slice(10), `1${"0".repeat(15)}`);
  });

  it("refuses to wrap around", () => {
    const next = monotonicUlid(
      () => 1,
      (bytes) => bytes.fill(31),
    );
    next();
    assert.throws(next, RangeError);
  });

  it("draws fresh randomness for each new millisecond", () => {
    let time = 0;
    const next = monotonicUlid(() => (time += 1));
    const randoms = new Set(Array.from({ length: 20 }, () => next().slice(10)));
    assert.equal(randoms.size, 20);
  });
});
