// Monotonic ULIDs (https://github.com/ulid/spec): 48-bit millisecond time + 80 random bits,
// Crockford base32, 26 characters, so they satisfy the API's id grammar.
//
// Monotonic because listings order messages of one timestamp by id bytes: ids made in the same
// millisecond (a batch, or anything inside one Workers request, where Date.now() only moves
// after I/O) must still sort in the order they were made.

const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const TIME_CHARS = 10;
const RANDOM_CHARS = 16;
const MAX_TIME = 2 ** 48 - 1;

export type RandomBytes = (bytes: Uint8Array) => Uint8Array;

function defaultRandomBytes(bytes: Uint8Array): Uint8Array {
  // Workers, browsers and Node >= 19 all have Web Crypto on globalThis.
  return crypto.getRandomValues(bytes);
}

function encodeTime(ms: number): string {
  let out = "";
  let rest = ms;
  for (let i = 0; i < TIME_CHARS; i += 1) {
    out = ALPHABET.charAt(rest % 32) + out;
    rest = Math.floor(rest / 32);
  }
  return out;
}

/**
 * A ULID generator: each call returns an id greater (in byte order) than the one before,
 * also within one millisecond and when the clock steps back.
 */
export function monotonicUlid(
  now: () => number = Date.now,
  randomBytes: RandomBytes = defaultRandomBytes,
): () => string {
  let lastTime = -1;
  let lastRandom: number[] = [];

  return () => {
    let time = Math.floor(now());
    if (!Number.isSafeInteger(time) || time < 0 || time > MAX_TIME) {
      throw new RangeError(`ULID time out of range: ${time}`);
    }
    if (time <= lastTime) {
      time = lastTime;
      lastRandom = increment(lastRandom);
    } else {
      // 256 is a multiple of 32, so the low five bits of a random byte are uniform.
      lastRandom = Array.from(randomBytes(new Uint8Array(RANDOM_CHARS)), (byte) => byte & 31);
      lastTime = time;
    }
    return encodeTime(time) + lastRandom.map((digit) => ALPHABET.charAt(digit)).join("");
  };
}

function increment(digits: readonly number[]): number[] {
  const next = [...digits];
  for (let i = next.length - 1; i >= 0; i -= 1) {
    const digit = next[i] ?? 0;
    if (digit < 31) {
      next[i] = digit + 1;
      return next;
    }
    next[i] = 0;
  }
  // 2^80 ids in one millisecond: the spec says to fail rather than wrap around.
  throw new RangeError("ULID random part overflowed within one millisecond");
}
