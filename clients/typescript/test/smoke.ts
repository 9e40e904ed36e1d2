// The client over HTTP (baseUrl mode, Node's global fetch) against a running chat-store:
//
//   CHAT_STORE_URL=http://127.0.0.1:8787 CHAT_STORE_TOKEN=... \
//     node <build>/test/smoke.js USER_ID CONVERSATION_ID
//
// Exercises every operation, checks the answers with node:assert, and prints one JSON line
// that tests/integration/test_typescript_client.py compares with what the Worker stored.
import assert from "node:assert/strict";

import {
  Conflict,
  NotFound,
  Unauthorized,
  ValidationError,
  createChatStore,
  monotonicUlid,
  type ChatStoreError,
  type Message,
  type OperationId,
} from "../src/index.js";

const baseUrl = process.env["CHAT_STORE_URL"] ?? "http://127.0.0.1:8787";
const token = process.env["CHAT_STORE_TOKEN"] ?? "";
const [userId, conversationId] = process.argv.slice(2);
if (userId === undefined || conversationId === undefined) {
  throw new Error("usage: smoke.js USER_ID CONVERSATION_ID");
}

const statuses: [OperationId, number][] = [];
const madeIds: string[] = [];
const ulid = monotonicUlid();
const store = createChatStore({
  baseUrl,
  token,
  generateId: () => {
    const id = ulid();
    madeIds.push(id);
    return id;
  },
  onResponse: ({ operationId, status }) => statuses.push([operationId, status]),
});
const lastStatus = (operationId: OperationId): number | undefined =>
  statuses.filter(([op]) => op === operationId).at(-1)?.[1];
const requests = (operationId: OperationId): number =>
  statuses.filter(([op]) => op === operationId).length;

async function thrown<E extends ChatStoreError>(
  promise: Promise<unknown>,
  kind: abstract new (...args: never[]) => E,
): Promise<E> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof kind, `expected ${kind.name}, got ${String(error)}`);
    return error;
  }
  return assert.fail(`expected ${kind.name}`);
}

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of iterable) {
    items.push(item);
  }
  return items;
}

const ids = (messages: readonly Message[]): string[] => messages.map((m) => m.id);

assert.deepEqual(await store.getHealth(), { status: "ok" });
assert.match((await store.getOpenAPI()).openapi, /^3\.1\./);

// A create without id gets a client ULID; an identical replay answers the stored message.
const base = Date.now() - 60_000;
const first = {
  user_id: userId,
  sender: { id: userId, role: "user" },
  content: "first",
  timestamp: base,
};
const created = await store.createMessage(first);
assert.match(created.id, /^[0-9A-HJKMNP-TV-Z]{26}$/);
assert.deepEqual(madeIds, [created.id], "the server stored the id the client made");
assert.equal(lastStatus("createMessage"), 201);
const replayed = await store.createMessage({ ...first, id: created.id });
assert.deepEqual(replayed, created);
assert.equal(lastStatus("createMessage"), 200);
const conflict = await thrown(
  store.createMessage({ ...first, id: created.id, content: "other" }),
  Conflict,
);
assert.equal(conflict.status, 409);
assert.equal(conflict.problem.code, "conflict");

// A batch of 7 in the conversation, one millisecond apart, alternating senders.
const batch = await store.createMessages(
  Array.from({ length: 7 }, (_, i) => ({
    user_id: userId,
    conversation_id: conversationId,
    sender: i % 2 === 0 ? { id: userId, role: "user" } : { id: "assistant", role: "assistant" },
    content: `turn ${i}`,
    timestamp: base + 1 + i,
    metadata: { turn: i },
  })),
);
assert.equal(lastStatus("createMessages"), 201);
const batchIds = ids(batch);
assert.deepEqual(batchIds, madeIds.slice(1), "the batch's ids are the client's");
assert.deepEqual([...batchIds].sort(), batchIds, "client ids increase in batch order");
assert.deepEqual((await store.getMessage(batchIds[2] ?? "")).metadata, { turn: 2 });

const patched = await store.patchMessage(batchIds[1] ?? "", { content: "turn 1, edited" });
assert.equal(patched.content, "turn 1, edited");
assert.equal(typeof patched.edited_at, "number");

// Iterators over several pages.
const conversationAsc = await collect(
  store.iterConversationMessages(conversationId, { limit: 3, order: "asc" }),
);
assert.deepEqual(ids(conversationAsc), batchIds);
assert.equal(requests("listConversationMessages"), 3);
const userDesc = await collect(store.iterUserMessages(userId, { limit: 2 }));
assert.deepEqual(ids(userDesc), [...batchIds].reverse().concat(created.id));
assert.equal(requests("listUserMessages"), 4);
const ranged = await collect(
  store.iterUserMessages(userId, { start: base + 2, end: base + 4, order: "asc" }),
);
assert.deepEqual(ids(ranged), batchIds.slice(1, 4));

assert.equal(await store.countUserMessages(userId), 8);
assert.equal(await store.countConversationMessages(conversationId), 7);
assert.equal(await store.countConversationMessages(conversationId, { start: base + 5 }), 3);

const context = await store.getMessageContext(batchIds[3] ?? "", { before: 2, after: 2 });
assert.deepEqual(ids(context.before), batchIds.slice(1, 3));
assert.equal(context.message.id, batchIds[3]);
assert.deepEqual(ids(context.after), batchIds.slice(4, 6));
assert.equal(typeof context.before_cursor, "string");

const exported = await collect(store.iterExportUserMessages(userId, { limit: 3 }));
assert.deepEqual(ids(exported), [created.id, ...batchIds]);
assert.equal(exported[2]?.content, "turn 1, edited");
assert.equal(requests("exportUserMessages"), 3);
const conversationExport = await store.exportConversationMessages(conversationId);
assert.deepEqual(ids(conversationExport.messages), batchIds);
assert.equal(conversationExport.next_cursor, null);

// Conversations.
const renamed = await store.patchConversation(conversationId, {
  title: "Smoke test",
  metadata: { pinned: true },
});
assert.equal(renamed.title, "Smoke test");
const conversation = await store.getConversation(conversationId);
assert.equal(conversation.message_count, 7);
assert.equal(conversation.last_message.id, batchIds[6]);
assert.deepEqual(conversation.metadata, { pinned: true });
const conversations = await collect(store.iterUserConversations(userId, { limit: 1 }));
assert.deepEqual(
  conversations.map((c) => c.id),
  [conversationId],
);

// Truncate after the fifth turn, delete the first, then the typed errors.
const truncated = await store.eraseConversationMessages(conversationId, {
  after: batchIds[4] ?? "",
});
assert.deepEqual(truncated, { deleted: 2, remaining: 0 });
await store.deleteMessage(batchIds[0] ?? "");
const missing = await thrown(store.getMessage(batchIds[0] ?? ""), NotFound);
assert.equal(missing.status, 404);
await thrown(store.deleteMessage(batchIds[0] ?? ""), NotFound);
await thrown(store.getConversation(`${conversationId}-none`), NotFound);
const invalid = await thrown(
  store.listUserMessages(userId, { cursor: "not-a-cursor" }),
  ValidationError,
);
assert.equal(invalid.status, 400);
const badSender = await thrown(
  store.createMessage({ user_id: userId, sender: { id: "" }, content: "x" }),
  ValidationError,
);
assert.equal(badSender.problem.code, "validation_error");
const stranger = createChatStore({ baseUrl, token: "wrong-token", retry: false });
await thrown(stranger.countUserMessages(userId), Unauthorized);

const reindexed = await store.reindex({ user_id: userId });
assert.equal(reindexed.entries, 5);

// A second user erased chunk after chunk.
const erasedUser = `${userId}-erased`;
await store.createMessages(
  Array.from({ length: 3 }, (_, i) => ({
    user_id: erasedUser,
    sender: { id: erasedUser },
    content: `${i}`,
  })),
);
const erased = await store.eraseUserMessages(erasedUser, { untilDone: true });
assert.deepEqual(erased, { deleted: 3, remaining: 0 });
assert.equal(await store.countUserMessages(erasedUser), 0);

const remaining = await collect(store.iterUserMessages(userId, { order: "asc" }));
console.log(
  JSON.stringify({
    ok: true,
    created: created.id,
    batch: batchIds,
    remaining: ids(remaining),
    erased_user: erasedUser,
    title: conversation.title,
  }),
);
