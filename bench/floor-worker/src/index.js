// The floor for bench/run.py: the least KV work an append and a newest-50 read can do.
// bench/run.py compares chat-store's newest-50 read with /read?list=P (P: the user's journal
// prefix), the floor doing the KV calls our read does; plain /read and /list are reported too.
//
// POST /append?user=U  -> put the message record (a ~300-byte JSON body, like chat-store's
//                         `chat:{id}`), then put one small index key; 201 {"id": n}.
// GET  /read?user=U[&limit=N][&list=P]
//                      -> get one small key (the index), then the 50 (or N) newest records
//                         with that many gets in parallel; 200 {"messages": [...records...]}.
//                         With list=P, between the two: one KV list of prefix P, awaited, as
//                         chat-store's read lists its index's journal (get the index, list, then
//                         the gets in parallel); the response then also has "listed": n keys.
// GET  /list?prefix=P  -> one KV list of prefix P alone (the journal listing every chat-store
//                         read, count and compaction makes): 200 {"keys": n}.
// GET  /health         -> 200 "ok".
//
// Keys live under "floor:" so they never mix with chat-store's own keys.

const PAGE = 50;

function indexKey(user) {
  return `floor:idx:${user}`;
}

function messageKey(user, n) {
  return `floor:msg:${user}:${String(n).padStart(12, "0")}`;
}

function record(user, n, now) {
  // ~300 bytes of JSON, shaped like a chat-store message record.
  return JSON.stringify({
    id: `floor-${user}-${n}`,
    user_id: user,
    conversation_id: null,
    sender: { id: user, role: "user" },
    content: "x".repeat(130),
    timestamp: now,
    created_at: now,
  });
}

async function append(url, env) {
  const user = url.searchParams.get("user") || "floor";
  const now = Date.now();
  // The counter only names keys; racing appends may reuse a number, which is fine for a floor.
  const n = Number(url.searchParams.get("n") || now);
  await env.CHAT_KV.put(messageKey(user, n), record(user, n, now), {
    metadata: { u: user, s: now },
  });
  await env.CHAT_KV.put(indexKey(user), JSON.stringify({ newest: n }));
  return Response.json({ id: n }, { status: 201 });
}

async function read(url, env) {
  const user = url.searchParams.get("user") || "floor";
  const index = await env.CHAT_KV.get(indexKey(user), "json");
  const prefix = url.searchParams.get("list");
  let listed = null;
  if (prefix !== null) {
    const page = await env.CHAT_KV.list({ prefix });
    listed = page.keys.length;
  }
  const extra = listed === null ? {} : { listed };
  if (index === null) {
    return Response.json({ messages: [], ...extra });
  }
  const limit = Number(url.searchParams.get("limit") || PAGE);
  const keys = [];
  for (let n = index.newest; n > index.newest - limit; n--) {
    keys.push(messageKey(user, n));
  }
  const values = await Promise.all(keys.map((key) => env.CHAT_KV.get(key)));
  const messages = values.filter((v) => v !== null).map((v) => JSON.parse(v));
  return Response.json({ messages, ...extra });
}

async function list(url, env) {
  const prefix = url.searchParams.get("prefix") || "floor:none:";
  const page = await env.CHAT_KV.list({ prefix });
  return Response.json({ keys: page.keys.length });
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/health" && request.method === "GET") {
      return new Response("ok");
    }
    if (url.pathname === "/append" && request.method === "POST") {
      return append(url, env);
    }
    if (url.pathname === "/read" && request.method === "GET") {
      return read(url, env);
    }
    if (url.pathname === "/list" && request.method === "GET") {
      return list(url, env);
    }
    return new Response("not found", { status: 404 });
  },
};
