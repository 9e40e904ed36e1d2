import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";

import {
  AuthNotConfigured,
  BadRequest,
  ChatStore,
  ChatStoreError,
  Conflict,
  InternalError,
  InvalidJson,
  NotFound,
  ProblemError,
  ProtocolError,
  RateLimited,
  ServiceUnavailable,
  StorageUnavailable,
  TransportError,
  UnexpectedResponse,
  ValidationError,
  createChatStore,
  type ChatStoreOptions,
  type ResponseEvent,
} from "../src/index.js";
import { fakeFetch, json, message, problem, recordingSleep, type Answer } from "./fake.js";

const ULID = /^[0-9ABCDEFGHJKMNPQRSTVWXYZ]{26}$/;

function store(answers: Answer[], options: Partial<ChatStoreOptions> = {}) {
  const fake = fakeFetch(...answers);
  const { sleep, delays } = recordingSleep();
  const client = createChatStore({
    baseUrl: "https://store.example/base/",
    token: "secret",
    fetch: fake.fetch,
    sleep,
    random: () => 0,
    ...options,
  } as ChatStoreOptions);
  return { client, sent: fake.sent, delays };
}

async function rejectsWith<E extends Error>(
  promise: Promise<unknown>,
  kind: abstract new (...args: never[]) => E,
): Promise<E> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof kind, `expected ${kind.name}, got ${String(error)}`);
    return error;
  }
  assert.fail(`expected ${kind.name}, got a result`);
}

describe("requests", () => {
  it("sends the token, the path under the base URL and the query", async () => {
    const { client, sent } = store([json({ messages: [], next_cursor: null })]);
    await client.listUserMessages("alice", { limit: 5, order: "asc", start: 0, end: 99 });
    const [request] = sent;
    assert.ok(request);
    assert.equal(request.method, "GET");
    assert.equal(
      request.url.origin + request.url.pathname,
      "https://store.example/base/v1/users/alice/messages",
    );
    assert.deepEqual(Object.fromEntries(request.url.searchParams), {
      limit: "5",
      order: "asc",
      start: "0",
      end: "99",
    });
    assert.equal(request.headers.get("authorization"), "Bearer secret");
    assert.equal(request.headers.get("content-type"), null);
  });

  it("leaves out undefined query values and percent-encodes path segments", async () => {
    const { client, sent } = store([json({ count: 3 })]);
    assert.equal(await client.countConversationMessages("a b/c", { start: undefined, end: 7 }), 3);
    assert.equal(sent[0]?.url.pathname, "/base/v1/conversations/a%20b%2Fc/messages/count");
    assert.equal(sent[0]?.url.search, "?end=7");
  });

  it("refuses the dot segments an id can never be", async () => {
    const { client, sent } = store([]);
    await rejectsWith(client.getMessage(".."), TypeError);
    await rejectsWith(client.getMessage("."), TypeError);
    assert.equal(sent.length, 0);
  });

  it("goes through a binding with a Request, and asks a token function each attempt", async () => {
    const seen: Request[] = [];
    const answers = [
      problem("storage_unavailable", 503, { "retry-after": "0" }),
      json({ status: "ok" }),
    ];
    let calls = 0;
    const client = createChatStore({
      binding: {
        fetch: async (request: Request) => {
          seen.push(request);
          return answers.shift() ?? json({}, 500);
        },
      },
      token: async () => `jwt-${++calls}`,
      sleep: async () => undefined,
    });
    assert.deepEqual(await client.getHealth(), { status: "ok" });
    assert.deepEqual(
      seen.map((request) => [request.url, request.headers.get("authorization")]),
      [
        ["https://chat-store/health", "Bearer jwt-1"],
        ["https://chat-store/health", "Bearer jwt-2"],
      ],
    );
  });

  it("lets a failing token function fail the call, unretried", async () => {
    const { client, sent } = store([], {
      token: () => Promise.reject(new Error("cannot refresh")),
    });
    await assert.rejects(client.getHealth(), /cannot refresh/);
    assert.equal(sent.length, 0);
  });

  it("sends no Authorization without a token", async () => {
    const { client, sent } = store([json({ status: "ok" })], { token: undefined });
    await client.getHealth();
    assert.equal(sent[0]?.headers.has("authorization"), false);
  });

  it("adds configured headers", async () => {
    const { client, sent } = store([json({ status: "ok" })], {
      headers: { "CF-Access-Client-Id": "id-1" },
    });
    await client.getHealth();
    assert.equal(sent[0]?.headers.get("cf-access-client-id"), "id-1");
  });

  it("needs a binding or a base URL", () => {
    assert.throws(() => createChatStore({ baseUrl: "" }), TypeError);
  });

  it("has a method for every operationId of openapi.json", () => {
    const spec = JSON.parse(readFileSync("openapi.json", "utf8")) as {
      paths: Record<string, Record<string, { operationId?: string }>>;
    };
    const operationIds = Object.values(spec.paths).flatMap((item) =>
      Object.values(item).flatMap((op) => (op.operationId === undefined ? [] : [op.operationId])),
    );
    assert.equal(operationIds.length, 20);
    const client = createChatStore({ baseUrl: "https://x" }) as unknown as Record<string, unknown>;
    for (const operationId of operationIds) {
      assert.equal(typeof client[operationId], "function", operationId);
    }
  });
});

describe("creates", () => {
  it("gives a create without id a ULID and sends the rest as given", async () => {
    const { client, sent } = store([
      async (request) => {
        const body = (await request.json()) as { id: string };
        return json({ message: message(body.id) }, 201);
      },
    ]);
    const created = await client.createMessage({
      user_id: "u1",
      sender: { id: "u1", role: "user" },
      content: "hi",
      metadata: { lang: "en" },
    });
    const body = JSON.parse(sent[0]?.body ?? "") as Record<string, unknown>;
    assert.match(String(body["id"]), ULID);
    assert.equal(created.id, body["id"]);
    assert.deepEqual(body, {
      id: body["id"],
      user_id: "u1",
      sender: { id: "u1", role: "user" },
      content: "hi",
      metadata: { lang: "en" },
    });
    assert.equal(sent[0]?.headers.get("content-type"), "application/json");
  });

  it("gives an id also to a create with id: undefined", async () => {
    const { client, sent } = store([json({ message: message("m") }, 201)]);
    await client.createMessage({
      id: undefined,
      user_id: "u1",
      sender: { id: "u1" },
      content: "x",
    });
    assert.match((JSON.parse(sent[0]?.body ?? "") as { id: string }).id, ULID);
  });

  it("keeps an explicit id", async () => {
    const { client, sent } = store([json({ message: message("mine") }, 200)]);
    await client.createMessage({
      id: "mine",
      user_id: "u1",
      sender: { id: "u1" },
      parts: [{ type: "text", text: "x" }],
    });
    assert.equal((JSON.parse(sent[0]?.body ?? "") as { id: string }).id, "mine");
  });

  it("leaves the id to the server with generateId: false", async () => {
    const { client, sent } = store([json({ message: message("server") }, 201)], {
      generateId: false,
    });
    await client.createMessage({ user_id: "u1", sender: { id: "u1" }, content: "x" });
    assert.equal("id" in (JSON.parse(sent[0]?.body ?? "") as object), false);
  });

  it("gives a batch distinct ids that sort in the given order", async () => {
    const { client, sent } = store([json({ messages: [] }, 201)]);
    const inputs = Array.from({ length: 50 }, (_, i) => ({
      user_id: "u1",
      sender: { id: "u1" },
      content: `${i}`,
    }));
    await client.createMessages(inputs);
    const ids = (JSON.parse(sent[0]?.body ?? "") as { messages: { id: string; content: string }[] })
      .messages;
    assert.deepEqual(
      ids.map((m) => m.content),
      inputs.map((m) => m.content),
    );
    const sorted = ids.map((m) => m.id).sort();
    assert.deepEqual(
      ids.map((m) => m.id),
      sorted,
    );
    assert.equal(new Set(sorted).size, 50);
  });

  it("sends a retried create with the same id and body", async () => {
    const { client, sent, delays } = store([
      problem("storage_unavailable", 503, { "retry-after": "1" }),
      new TypeError("network down"),
      json({ message: message("m") }, 200),
    ]);
    await client.createMessage({ user_id: "u1", sender: { id: "u1" }, content: "once" });
    assert.equal(sent.length, 3);
    assert.equal(new Set(sent.map((request) => request.body)).size, 1);
    assert.deepEqual(delays, [1000, 0]); // Retry-After, then full jitter with random() = 0
  });
});

describe("retries", () => {
  it("waits Retry-After seconds before retrying a 503", async () => {
    const { client, delays, sent } = store([
      problem("storage_unavailable", 503, { "retry-after": "2" }),
      json({ message: message("m1") }),
    ]);
    assert.equal((await client.getMessage("m1")).id, "m1");
    assert.deepEqual(delays, [2000]);
    assert.equal(sent.length, 2);
  });

  it("reads an HTTP-date Retry-After against the clock", async () => {
    const now = Date.parse("2024-11-01T00:00:00Z");
    const { client, delays } = store(
      [
        problem("rate_limited", 429, { "retry-after": "Fri, 01 Nov 2024 00:00:03 GMT" }),
        json({ count: 1 }),
      ],
      { now: () => now },
    );
    assert.equal(await client.countUserMessages("u1"), 1);
    assert.deepEqual(delays, [3000]);
  });

  it("backs off exponentially with jitter without Retry-After, then gives up", async () => {
    const { client, delays, sent } = store(
      [
        problem("storage_unavailable", 503),
        problem("storage_unavailable", 503),
        problem("storage_unavailable", 503),
        problem("storage_unavailable", 503),
      ],
      { random: () => 1 },
    );
    const error = await rejectsWith(client.getMessage("m"), StorageUnavailable);
    assert.equal(sent.length, 4);
    assert.deepEqual(delays, [500, 1000, 2000]); // the caps: random() = 1
    assert.equal(error.status, 503);
    assert.equal(error.problem.code, "storage_unavailable");
  });

  it("draws each backoff from [0, cap], the cap at most maxDelayMs", async () => {
    const { client, delays } = store(
      [
        problem("storage_unavailable", 503),
        problem("storage_unavailable", 503),
        problem("storage_unavailable", 503),
        json({ count: 0 }),
      ],
      { random: () => 0.5, retry: { baseDelayMs: 1000, maxDelayMs: 3000 } },
    );
    await client.countUserMessages("u1");
    assert.deepEqual(delays, [500, 1000, 1500]);
  });

  it("waits a Retry-After within the total budget, and not one beyond it", async () => {
    const within = store([
      problem("rate_limited", 429, { "retry-after": "60" }),
      json({ count: 2 }),
    ]);
    assert.equal(await within.client.countUserMessages("u1"), 2);
    assert.deepEqual(within.delays, [60_000]);

    const beyond = store([problem("rate_limited", 429, { "retry-after": "61" })]);
    const error = await rejectsWith(beyond.client.listUserConversations("u1"), RateLimited);
    assert.equal(error.retryAfterMs, 61_000);
    assert.deepEqual(beyond.delays, []);
    assert.equal(beyond.sent.length, 1);
  });

  it("clips a backoff to the budget left", async () => {
    const { client, delays } = store(
      [problem("storage_unavailable", 503), problem("storage_unavailable", 503), json({})],
      { random: () => 1, retry: { maxTotalDelayMs: 700 } },
    );
    await client.getOpenAPI();
    assert.deepEqual(delays, [500, 200]);
  });

  it("does not retry auth_not_configured, which no wait changes", async () => {
    const { client, sent } = store([problem("auth_not_configured", 503)]);
    const error = await rejectsWith(client.getHealth(), AuthNotConfigured);
    assert.ok(error instanceof ServiceUnavailable);
    assert.equal(sent.length, 1);
  });

  it("stops when the total wait would pass maxTotalDelayMs", async () => {
    const { client, delays } = store(
      [
        problem("storage_unavailable", 503, { "retry-after": "3" }),
        problem("storage_unavailable", 503, { "retry-after": "3" }),
        problem("storage_unavailable", 503, { "retry-after": "3" }),
      ],
      { retry: { maxTotalDelayMs: 7000 } },
    );
    await rejectsWith(client.getConversation("c1"), StorageUnavailable);
    assert.deepEqual(delays, [3000, 3000]);
  });

  it("makes one attempt with retry: false", async () => {
    const { client, sent } = store([problem("rate_limited", 429, { "retry-after": "1" })], {
      retry: false,
    });
    await rejectsWith(client.getHealth(), RateLimited);
    assert.equal(sent.length, 1);
  });

  it("does not retry other errors", async () => {
    for (const [code, status, kind] of [
      ["internal_error", 500, InternalError],
      ["not_found", 404, NotFound],
      ["conflict", 409, Conflict],
      ["validation_error", 400, ValidationError],
    ] as const) {
      const { client, sent } = store([problem(code, status)]);
      await rejectsWith<ProblemError>(client.patchMessage("m", { content: "x" }), kind);
      assert.equal(sent.length, 1, code);
    }
  });

  it("retries a 503 that is not a problem document (a restarting dev server)", async () => {
    const { client, sent } = store([
      new Response("Service Unavailable", { status: 503 }),
      json({ status: "ok" }),
    ]);
    await client.getHealth();
    assert.equal(sent.length, 2);
  });

  it("retries a request that got no answer, up to maxAttempts", async () => {
    const read = store([new TypeError("connection reset"), json({ message: message("m") })]);
    assert.equal((await read.client.getMessage("m")).id, "m");
    assert.equal(read.sent.length, 2);

    const cause = new TypeError("connection reset");
    const lost = store([cause, cause, cause, cause]);
    const error = await rejectsWith(lost.client.eraseUserMessages("u"), TransportError);
    assert.equal(error.cause, cause);
    assert.equal(error.status, 0);
    assert.equal(error.code, "transport_error");
    assert.equal(lost.sent.length, 4);
  });

  it("does not retry a request without answer with retryTransportErrors: false", async () => {
    const { client, sent } = store([new TypeError("reset")], {
      retry: { retryTransportErrors: false },
    });
    await rejectsWith(client.getHealth(), TransportError);
    assert.equal(sent.length, 1);
  });

  it("takes a 404 after a lost DELETE for done, and a plain 404 for NotFound", async () => {
    const lost = store([new TypeError("reset"), problem("not_found", 404)]);
    assert.equal(await lost.client.deleteMessage("m"), undefined);
    assert.deepEqual(
      lost.sent.map((request) => request.method),
      ["DELETE", "DELETE"],
    );

    const plain = store([problem("not_found", 404)]);
    await rejectsWith(plain.client.deleteMessage("m"), NotFound);
  });

  it("does not resend a create without id after a lost answer", async () => {
    const { client, sent } = store([new TypeError("reset")], { generateId: false });
    await rejectsWith(
      client.createMessage({ user_id: "u", sender: { id: "u" }, content: "x" }),
      TransportError,
    );
    assert.equal(sent.length, 1);
  });

  it("times out an attempt", async () => {
    const client = createChatStore({
      baseUrl: "https://x",
      retry: false,
      timeoutMs: 5,
      fetch: (request) =>
        new Promise((_, reject) => {
          request.signal.addEventListener("abort", () => reject(new Error("aborted")));
        }),
    });
    const error = await rejectsWith(client.getHealth(), TransportError);
    assert.match(error.message, /timed out after 5 ms/);
  });

  it("stops at once when the caller aborts", async () => {
    const controller = new AbortController();
    const reason = new Error("user left");
    controller.abort(reason);
    const { client, sent } = store([json({ status: "ok" })]);
    await assert.rejects(
      client.getHealth({ signal: controller.signal }),
      (error) => error === reason,
    );
    assert.equal(sent.length, 0);
  });

  it("stops waiting for a retry when the caller aborts", async () => {
    const controller = new AbortController();
    const client = createChatStore({
      baseUrl: "https://x",
      fetch: async () => {
        setTimeout(() => controller.abort(new Error("gone")), 1);
        return problem("storage_unavailable", 503, { "retry-after": "5" });
      },
    });
    await assert.rejects(client.getHealth({ signal: controller.signal }), /gone/);
  });

  it("reports every answer to onResponse", async () => {
    const events: ResponseEvent[] = [];
    const { client } = store(
      [problem("rate_limited", 429, { "retry-after": "0" }), json({ message: message("m") }, 201)],
      { onResponse: (event: ResponseEvent) => events.push(event) },
    );
    await client.createMessage({ id: "m", user_id: "u1", sender: { id: "u1" }, content: "x" });
    assert.deepEqual(
      events.map(({ operationId, method, status, attempt }) => [
        operationId,
        method,
        status,
        attempt,
      ]),
      [
        ["createMessage", "POST", 429, 1],
        ["createMessage", "POST", 201, 2],
      ],
    );
    assert.equal(events[0]?.url, "https://store.example/base/v1/messages");
  });
});

describe("errors", () => {
  it("throws the class of the problem code with the document and status", async () => {
    const { client } = store([problem("not_found", 404)]);
    const error = await rejectsWith(client.getMessage("nope"), NotFound);
    assert.ok(error instanceof ProblemError);
    assert.ok(error instanceof ChatStoreError);
    assert.equal(error.name, "NotFound");
    assert.equal(error.code, "not_found");
    assert.equal(error.status, 404);
    assert.equal(error.problem.detail, "detail of not_found");
    assert.equal(error.message, "404 not_found: detail of not_found");
  });

  it("keeps a batch error's index", async () => {
    const { client } = store([problem("conflict", 409, {}, { index: 3 })]);
    const error = await rejectsWith(
      client.createMessages([{ user_id: "u", sender: { id: "u" }, content: "x" }]),
      Conflict,
    );
    assert.equal(error.problem.index, 3);
  });

  it("throws the base class for a code this client does not know", async () => {
    const { client } = store([problem("teapot", 418)]);
    const error = await rejectsWith(client.getHealth(), ChatStoreError);
    assert.equal(Object.getPrototypeOf(error), ChatStoreError.prototype);
    assert.equal(error.code, "teapot");
    assert.equal(error.problem?.status, 418);
  });

  it("throws UnexpectedResponse for an error that is not a problem document", async () => {
    const { client } = store([new Response("<html>Bad gateway</html>", { status: 502 })]);
    const error = await rejectsWith(client.getHealth(), UnexpectedResponse);
    assert.equal(error.status, 502);
    assert.equal(error.problem, undefined);
    assert.match(error.body, /Bad gateway/);
  });

  it("throws ProtocolError for a success that is not JSON", async () => {
    const { client } = store([new Response("ok", { status: 200 })]);
    const error = await rejectsWith(client.getHealth(), ProtocolError);
    assert.equal(error.body, "ok");
  });

  it("groups the 400 codes under BadRequest", async () => {
    const { client } = store([problem("invalid_json", 400)]);
    const error = await rejectsWith(client.reindex({ user_id: "u" }), InvalidJson);
    assert.ok(error instanceof BadRequest);
  });
});

describe("pagination", () => {
  it("iterates a user's messages page after page with the same query", async () => {
    const { client, sent } = store([
      json({ messages: [message("a"), message("b")], next_cursor: "c1" }),
      json({ messages: [message("c")], next_cursor: "c2" }),
      json({ messages: [], next_cursor: null }),
    ]);
    const ids: string[] = [];
    for await (const m of client.iterUserMessages("u1", { order: "asc", start: 5 })) {
      ids.push(m.id);
    }
    assert.deepEqual(ids, ["a", "b", "c"]);
    assert.deepEqual(
      sent.map((request) => Object.fromEntries(request.url.searchParams)),
      [
        { order: "asc", start: "5", limit: "100" },
        { order: "asc", start: "5", limit: "100", cursor: "c1" },
        { order: "asc", start: "5", limit: "100", cursor: "c2" },
      ],
    );
  });

  it("uses the given limit as page size and resumes from a cursor", async () => {
    const { client, sent } = store([json({ messages: [message("x")], next_cursor: null })]);
    const ids: string[] = [];
    for await (const m of client.iterConversationMessages("c", { limit: 2, cursor: "from" })) {
      ids.push(m.id);
    }
    assert.deepEqual(ids, ["x"]);
    assert.equal(sent[0]?.url.pathname, "/base/v1/conversations/c/messages");
    assert.deepEqual(Object.fromEntries(sent[0]?.url.searchParams ?? []), {
      limit: "2",
      cursor: "from",
    });
  });

  it("stops early without fetching more when the caller breaks", async () => {
    const { client, sent } = store([
      json({ messages: [message("a"), message("b")], next_cursor: "c1" }),
    ]);
    for await (const m of client.iterUserMessages("u1")) {
      assert.equal(m.id, "a");
      break;
    }
    assert.equal(sent.length, 1);
  });

  it("iterates conversations", async () => {
    const conversation = (id: string) => ({
      id,
      created_at: 1,
      last_message_at: 2,
      message_count: 1,
      last_message: { id: "m", sender: { id: "u" }, timestamp: 2, preview: "p" },
    });
    const { client, sent } = store([
      json({ conversations: [conversation("c1")], next_cursor: "k" }),
      json({ conversations: [conversation("c2")], next_cursor: null }),
    ]);
    const ids: string[] = [];
    for await (const c of client.iterUserConversations("u1", { limit: 1 })) {
      ids.push(c.id);
    }
    assert.deepEqual(ids, ["c1", "c2"]);
    assert.equal(sent[1]?.url.searchParams.get("cursor"), "k");
  });

  it("refuses a server that answers the same cursor again", async () => {
    const { client } = store([
      json({ messages: [message("a")], next_cursor: "same" }),
      json({ messages: [message("a")], next_cursor: "same" }),
    ]);
    const seen: string[] = [];
    await assert.rejects(
      async () => {
        for await (const m of client.iterUserMessages("u1")) {
          seen.push(m.id);
        }
      },
      (error) => error instanceof ChatStoreError && error.code === "cursor_stuck",
    );
    assert.deepEqual(seen, ["a", "a"]);
  });

  it("exports NDJSON following Chat-Store-Next-Cursor", async () => {
    const ndjson = (ids: string[]) => ids.map((id) => `${JSON.stringify(message(id))}\n`).join("");
    const { client, sent } = store([
      new Response(ndjson(["a", "b"]), {
        headers: {
          "content-type": "application/x-ndjson",
          "chat-store-next-cursor": "n1",
          link: '</v1/users/u1/export?limit=2&cursor=n1>; rel="next"',
        },
      }),
      new Response(ndjson(["c"]), { headers: { "content-type": "application/x-ndjson" } }),
    ]);
    const messages = [];
    for await (const m of client.iterExportUserMessages("u1", { limit: 2 })) {
      messages.push(m);
    }
    assert.deepEqual(messages, [message("a"), message("b"), message("c")]);
    assert.deepEqual(
      sent.map((request) => request.url.pathname + request.url.search),
      ["/base/v1/users/u1/export?limit=2", "/base/v1/users/u1/export?limit=2&cursor=n1"],
    );
  });

  it("refuses to take a full cross-origin export page without a readable cursor for the last", async () => {
    const crossOrigin = (body: string) => {
      const response = new Response(body, { headers: { "content-type": "application/x-ndjson" } });
      Object.defineProperty(response, "type", { value: "cors" }); // as a browser's would be
      return response;
    };
    const line = `${JSON.stringify(message("a"))}\n`;
    const { client } = store([crossOrigin(line.repeat(2)), crossOrigin(line)]);
    await assert.rejects(
      client.exportUserMessages("u1", { limit: 2 }),
      (error) => error instanceof ChatStoreError && error.code === "cursor_not_exposed",
    );
    // A short page is the last one whatever the headers say.
    assert.equal((await client.exportUserMessages("u1", { limit: 2 })).messages.length, 1);
  });

  it("exports an empty history as no messages", async () => {
    const { client } = store([
      new Response("", { headers: { "content-type": "application/x-ndjson" } }),
    ]);
    assert.deepEqual(await client.exportConversationMessages("c"), {
      messages: [],
      next_cursor: null,
    });
  });
});

describe("other operations", () => {
  it("unwraps envelopes and counts, and answers void for a delete", async () => {
    const conversation = {
      id: "c",
      title: "T",
      created_at: 1,
      last_message_at: 2,
      message_count: 1,
      last_message: { id: "m", sender: { id: "u" }, timestamp: 2, preview: "p" },
    };
    const { client, sent } = store([
      json({ message: message("m", 1, { edited_at: 5 }) }),
      new Response(null, { status: 204 }),
      json({ conversation }),
      json({ deleted: 2, remaining: 0 }),
      json({ index: "user:chat:u", entries: 3, scanned: 9 }),
      json({
        before: [],
        message: message("m"),
        after: [],
        before_cursor: null,
        after_cursor: null,
      }),
    ]);
    assert.equal((await client.patchMessage("m", { content: "new" })).edited_at, 5);
    assert.equal(await client.deleteMessage("m"), undefined);
    assert.equal((await client.patchConversation("c", { title: "T" })).title, "T");
    assert.deepEqual(await client.eraseConversationMessages("c", { after: "m0" }), {
      deleted: 2,
      remaining: 0,
    });
    assert.equal((await client.reindex({ user_id: "u" })).entries, 3);
    assert.equal(
      (await client.getMessageContext("m", { scope: "user", before: 2 })).message.id,
      "m",
    );
    assert.deepEqual(
      sent.map((request) => [
        request.method,
        request.url.pathname + request.url.search,
        request.body,
      ]),
      [
        ["PATCH", "/base/v1/messages/m", '{"content":"new"}'],
        ["DELETE", "/base/v1/messages/m", ""],
        ["PATCH", "/base/v1/conversations/c", '{"title":"T"}'],
        ["DELETE", "/base/v1/conversations/c/messages?after=m0", ""],
        ["POST", "/base/v1/admin/reindex", '{"user_id":"u"}'],
        ["GET", "/base/v1/messages/m/context?scope=user&before=2", ""],
      ],
    );
  });

  it("erases chunk after chunk with untilDone, and once without", async () => {
    const { client, sent } = store([
      json({ deleted: 300, remaining: 120 }),
      json({ deleted: 120, remaining: 0 }),
      json({ deleted: 300, remaining: 5 }),
      json({ deleted: 1, remaining: 4 }),
      json({ deleted: 4, remaining: 0 }),
    ]);
    assert.deepEqual(await client.eraseUserMessages("u", { untilDone: true }), {
      deleted: 420,
      remaining: 0,
    });
    assert.deepEqual(await client.eraseConversationMessages("c"), { deleted: 300, remaining: 5 });
    assert.deepEqual(
      await client.eraseConversationMessages("c", { after: "m1", untilDone: true }),
      { deleted: 5, remaining: 0 },
    );
    assert.deepEqual(
      sent.map((request) => `${request.method} ${request.url.pathname}${request.url.search}`),
      [
        "DELETE /base/v1/users/u/messages",
        "DELETE /base/v1/users/u/messages",
        "DELETE /base/v1/conversations/c/messages",
        "DELETE /base/v1/conversations/c/messages?after=m1",
        "DELETE /base/v1/conversations/c/messages?after=m1",
      ],
    );
  });

  it("is a ChatStore", () => {
    assert.ok(createChatStore({ baseUrl: "https://x" }) instanceof ChatStore);
  });
});
