// Example client of chat-store over a service binding.
//
// POST /roundtrip {"user_id": "...", "content": "..."}
//   1. stores a message through the binding (POST /v1/messages)
//   2. reads the user's newest message back (GET /v1/users/{user_id}/messages?limit=1)
//   and answers {"created": {status, body}, "latest": {status, body}}.
// GET /health answers 200 (used by the test harness to know the Worker is up).

// The hostname is ignored by a service binding; only the path and query reach chat-store.
const CHAT_STORE = "https://chat-store";

async function callChatStore(env, path, init = {}) {
  const headers = new Headers(init.headers);
  headers.set("Authorization", `Bearer ${env.CHAT_STORE_TOKEN}`);
  const response = await env.CHAT_STORE.fetch(`${CHAT_STORE}${path}`, { ...init, headers });
  const text = await response.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    body = text; // pass non-JSON answers through so failures stay visible
  }
  return { status: response.status, body };
}

async function roundtrip(request, env) {
  let input;
  try {
    input = await request.json();
  } catch {
    return Response.json({ error: "body must be JSON" }, { status: 400 });
  }
  const { user_id, content } = input ?? {};
  if (typeof user_id !== "string" || typeof content !== "string") {
    return Response.json({ error: "user_id and content must be strings" }, { status: 400 });
  }

  const created = await callChatStore(env, "/v1/messages", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ user_id, sender: { id: user_id }, content }),
  });
  const latest = await callChatStore(
    env,
    `/v1/users/${encodeURIComponent(user_id)}/messages?limit=1`,
  );
  const ok = created.status === 201 && latest.status === 200;
  return Response.json({ created, latest }, { status: ok ? 200 : 502 });
}

export default {
  async fetch(request, env) {
    const { pathname } = new URL(request.url);
    if (pathname === "/health" && request.method === "GET") {
      return new Response("ok");
    }
    if (pathname === "/roundtrip") {
      if (request.method !== "POST") {
        return new Response("method not allowed", { status: 405, headers: { Allow: "POST" } });
      }
      return roundtrip(request, env);
    }
    return new Response("not found", { status: 404 });
  },
};
