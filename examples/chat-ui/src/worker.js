// A chat page on top of chat-store: serves the page (./static) and the JSON API it calls under
// /api/, forwarding every call to chat-store through the CHAT_STORE service binding with a user
// token for the demo user.
//
//   GET    /api/me                                   who the page acts for
//   GET    /api/conversations?cursor=                the sidebar (listUserConversations)
//   POST   /api/conversations                        a fresh conversation id (nothing stored
//                                                    until its first message)
//   GET    /api/conversations/{cid}                  getConversation
//   PATCH  /api/conversations/{cid}      {title}     patchConversation
//   GET    /api/conversations/{cid}/messages?cursor= newest first (listConversationMessages,
//                                                    order=desc): the page prepends each page
//   POST   /api/conversations/{cid}/messages {id, content}
//                                                    createMessage with the page's client id
//   PATCH  /api/messages/{id}                {content}  patchMessage
//   DELETE /api/messages/{id}                        deleteMessage
//
// chat-store's answers (problem documents included) are passed through unchanged, so the page
// sees chat-store's own status codes, `code`s and Retry-After.
//
// Demo signing: a user token may list or write in a conversation only if its `conversations`
// claim names it (README "Auth model"). This Worker signs a short-lived token per request and
// puts a conversation in the claim only after checking that it is the demo user's: either an id
// this Worker minted for that user (`{user}~{ULID}`, the namespace of new conversations) or a
// conversation the user already has a message in (chat-store answers GET /v1/conversations/{cid}
// for a claimless user token only then). Refuses to run unless DEMO_SIGNING_DEV_ONLY is "true".

import INDEX_HTML from "./static/index.html";
import APP_JS from "./static/app.js";
import APP_CSS from "./static/app.css";

// A service binding ignores the hostname; only the path and query reach chat-store.
const CHAT_STORE = "https://chat-store";
const TOKEN_TTL_SECONDS = 60;
const MIN_SECRET_BYTES = 32;
const MAX_DEMO_USER_LENGTH = 100; // leaves room for "~" + a ULID within chat-store's 128
const ID_RE = /^(?!\.\.?$)[A-Za-z0-9._~-]{1,128}$/;
const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const SIDEBAR_PAGE = 20;
const HISTORY_PAGE_DEFAULT = 50;
const HISTORY_PAGE_MAX = 100;

const STATIC_FILES = {
  "/": { body: INDEX_HTML, type: "text/html; charset=utf-8" },
  "/index.html": { body: INDEX_HTML, type: "text/html; charset=utf-8" },
  "/app.js": { body: APP_JS, type: "text/javascript; charset=utf-8" },
  "/app.css": { body: APP_CSS, type: "text/css; charset=utf-8" },
};

const SECURITY_HEADERS = {
  "Content-Security-Policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
};

// -- responses ------------------------------------------------------------------------------

function problem(status, code, detail, extraHeaders = {}) {
  const titles = {
    400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
    500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
  };
  const body = { type: "about:blank", title: titles[status] ?? "Error", status, code, detail };
  return new Response(JSON.stringify(body), {
    status,
    headers: {
      "Content-Type": "application/problem+json",
      "Cache-Control": "no-store",
      ...SECURITY_HEADERS,
      ...extraHeaders,
    },
  });
}

function json(value, status = 200) {
  return new Response(JSON.stringify(value), {
    status,
    headers: { "Content-Type": "application/json", "Cache-Control": "no-store", ...SECURITY_HEADERS },
  });
}

class HttpError extends Error {
  constructor(response) {
    super(`HTTP ${response.status}`);
    this.response = response;
  }
}

// -- configuration --------------------------------------------------------------------------

// Checked on every request: a misconfigured Worker must say so plainly instead of half working.
function readConfig(env) {
  if (env.DEMO_SIGNING_DEV_ONLY !== "true") {
    throw new HttpError(problem(503, "demo_signing_disabled",
      "This example signs user tokens for a demo user itself, which is for local development " +
      "only: set DEMO_SIGNING_DEV_ONLY=\"true\" in examples/chat-ui/.dev.vars (never in " +
      "production; a real deployment mints tokens for its logged-in users instead)."));
  }
  const secret = typeof env.JWT_SECRET === "string" ? env.JWT_SECRET : "";
  if (new TextEncoder().encode(secret).length < MIN_SECRET_BYTES) {
    throw new HttpError(problem(503, "misconfigured",
      `JWT_SECRET must be set to chat-store's JWT_SECRET (at least ${MIN_SECRET_BYTES} bytes).`));
  }
  const user = env.DEMO_USER ?? "demo";
  if (!ID_RE.test(user) || user.length > MAX_DEMO_USER_LENGTH) {
    throw new HttpError(problem(503, "misconfigured",
      `DEMO_USER must be 1-${MAX_DEMO_USER_LENGTH} characters of [A-Za-z0-9._~-].`));
  }
  if (!env.CHAT_STORE || typeof env.CHAT_STORE.fetch !== "function") {
    throw new HttpError(problem(503, "misconfigured", "the CHAT_STORE service binding is missing"));
  }
  return {
    secret,
    user,
    userName: env.DEMO_USER_NAME || user,
    issuer: env.JWT_ISSUER || undefined,
    audience: env.JWT_AUDIENCE || undefined,
    store: env.CHAT_STORE,
  };
}

// -- HS256 tokens (WebCrypto) ---------------------------------------------------------------

const keyCache = new Map(); // secret -> CryptoKey, per isolate

async function hmacKey(secret) {
  let key = keyCache.get(secret);
  if (!key) {
    key = await crypto.subtle.importKey(
      "raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"],
    );
    keyCache.set(secret, key);
  }
  return key;
}

function base64url(bytes) {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function base64urlJson(value) {
  return base64url(new TextEncoder().encode(JSON.stringify(value)));
}

// The demo's stand-in for a login: a token for the demo user, valid for a minute, naming at
// most the one conversation the request is about.
async function signDemoToken(config, conversationId) {
  const claims = { sub: config.user, exp: Math.floor(Date.now() / 1000) + TOKEN_TTL_SECONDS };
  if (conversationId) claims.conversations = [conversationId];
  if (config.issuer) claims.iss = config.issuer;
  if (config.audience) claims.aud = config.audience;
  const signingInput = `${base64urlJson({ alg: "HS256", typ: "JWT" })}.${base64urlJson(claims)}`;
  const signature = await crypto.subtle.sign(
    "HMAC", await hmacKey(config.secret), new TextEncoder().encode(signingInput),
  );
  return `${signingInput}.${base64url(new Uint8Array(signature))}`;
}

// -- ids ------------------------------------------------------------------------------------

function ulid(nowMs = Date.now()) {
  const random = crypto.getRandomValues(new Uint8Array(10));
  let out = "";
  let time = nowMs;
  for (let i = 0; i < 10; i++) {
    out = CROCKFORD[time % 32] + out;
    time = Math.floor(time / 32);
  }
  let bits = 0;
  let value = 0;
  for (const byte of random) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += CROCKFORD[(value >> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return out;
}

function mintedConversationId(config) {
  return `${config.user}~${ulid()}`;
}

function isMintedFor(config, conversationId) {
  const prefix = `${config.user}~`;
  return conversationId.startsWith(prefix) &&
    /^[0-9A-HJKMNP-TV-Z]{26}$/.test(conversationId.slice(prefix.length));
}

function pathId(raw, what) {
  let id;
  try {
    id = decodeURIComponent(raw);
  } catch {
    id = "";
  }
  if (!ID_RE.test(id)) {
    throw new HttpError(problem(400, "validation_error", `${what} is not a valid id`));
  }
  return id;
}

// -- talking to chat-store ------------------------------------------------------------------

async function callStore(config, path, { method = "GET", body, conversationId } = {}) {
  const headers = new Headers({
    Authorization: `Bearer ${await signDemoToken(config, conversationId)}`,
    Accept: "application/json",
  });
  if (body !== undefined) headers.set("Content-Type", "application/json");
  return config.store.fetch(`${CHAT_STORE}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

// chat-store's answer as this Worker's answer: status, body and the headers a client needs.
async function passThrough(response) {
  const headers = new Headers({ "Cache-Control": "no-store", ...SECURITY_HEADERS });
  for (const name of ["Content-Type", "Retry-After"]) {
    const value = response.headers.get(name);
    if (value !== null) headers.set(name, value);
  }
  const body = response.status === 204 ? null : await response.arrayBuffer();
  return new Response(body, { status: response.status, headers });
}

// Throws a 404 problem unless the conversation is the demo user's (see the header comment).
async function requireOwnConversation(config, conversationId) {
  if (isMintedFor(config, conversationId)) return;
  const response = await callStore(config, `/v1/conversations/${encodeURIComponent(conversationId)}`);
  if (response.status === 200) return;
  if (response.status === 404) {
    throw new HttpError(problem(404, "not_found",
      `conversation ${conversationId} is not one of ${config.user}'s conversations`));
  }
  throw new HttpError(await passThrough(response));
}

async function readJsonBody(request) {
  try {
    const value = await request.json();
    if (value && typeof value === "object" && !Array.isArray(value)) return value;
  } catch {
    // falls through to the same answer
  }
  throw new HttpError(problem(400, "invalid_json", "the body must be a JSON object"));
}

function historyLimit(url) {
  const raw = url.searchParams.get("limit");
  if (raw === null) return HISTORY_PAGE_DEFAULT;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > HISTORY_PAGE_MAX) {
    throw new HttpError(problem(400, "validation_error", `limit must be 1..${HISTORY_PAGE_MAX}`));
  }
  return n;
}

function withCursor(params, url) {
  const cursor = url.searchParams.get("cursor");
  if (cursor) params.set("cursor", cursor);
  return params;
}

// -- routes ---------------------------------------------------------------------------------

async function routeApi(request, url, config) {
  const segments = url.pathname.split("/").slice(2); // after "", "api"
  const method = request.method;
  const allow = (methods) => {
    if (!methods.includes(method)) {
      throw new HttpError(problem(405, "method_not_allowed", `${method} not allowed here`,
        { Allow: methods.join(", ") }));
    }
  };
  const userPath = `/v1/users/${encodeURIComponent(config.user)}`;

  if (segments.length === 1 && segments[0] === "me") {
    allow(["GET"]);
    return json({ user_id: config.user, name: config.userName });
  }

  if (segments[0] === "conversations" && segments.length === 1) {
    allow(["GET", "POST"]);
    if (method === "POST") return json({ id: mintedConversationId(config) }, 201);
    const params = withCursor(new URLSearchParams({ limit: String(SIDEBAR_PAGE) }), url);
    return passThrough(await callStore(config, `${userPath}/conversations?${params}`));
  }

  if (segments[0] === "conversations" && (segments.length === 2 || segments.length === 3)) {
    const cid = pathId(segments[1], "conversation id");
    const storePath = `/v1/conversations/${encodeURIComponent(cid)}`;
    if (segments.length === 2) {
      allow(["GET", "PATCH"]);
      await requireOwnConversation(config, cid);
      if (method === "GET") {
        return passThrough(await callStore(config, storePath, { conversationId: cid }));
      }
      const { title } = await readJsonBody(request);
      return passThrough(await callStore(config, storePath, {
        method: "PATCH", body: { title }, conversationId: cid,
      }));
    }
    if (segments[2] !== "messages") return problem(404, "not_found", "no such route");
    allow(["GET", "POST"]);
    await requireOwnConversation(config, cid);
    if (method === "GET") {
      const params = withCursor(
        new URLSearchParams({ order: "desc", limit: String(historyLimit(url)) }), url,
      );
      return passThrough(
        await callStore(config, `${storePath}/messages?${params}`, { conversationId: cid }),
      );
    }
    const { id, content } = await readJsonBody(request);
    // The page always sends its own id: a retried send then answers 200 with the stored
    // message instead of storing it twice.
    if (typeof id !== "string" || !ID_RE.test(id)) {
      return problem(400, "validation_error", "id (the client's message id) is required");
    }
    const message = {
      id,
      user_id: config.user,
      conversation_id: cid,
      sender: { id: config.user, name: config.userName, role: "user" },
      content,
    };
    return passThrough(await callStore(config, "/v1/messages", {
      method: "POST", body: message, conversationId: cid,
    }));
  }

  if (segments[0] === "messages" && segments.length === 2) {
    allow(["PATCH", "DELETE"]);
    // No claim needed: a user token reaches exactly the user's own messages.
    const storePath = `/v1/messages/${encodeURIComponent(pathId(segments[1], "message id"))}`;
    if (method === "DELETE") {
      return passThrough(await callStore(config, storePath, { method: "DELETE" }));
    }
    const { content } = await readJsonBody(request);
    return passThrough(await callStore(config, storePath, { method: "PATCH", body: { content } }));
  }

  return problem(404, "not_found", "no such route");
}

async function handle(request, env) {
  const url = new URL(request.url);
  const config = readConfig(env);
  if (url.pathname === "/health") return json({ status: "ok" });
  if (url.pathname.startsWith("/api/")) return routeApi(request, url, config);
  const file = STATIC_FILES[url.pathname];
  if (!file) return problem(404, "not_found", "no such page");
  if (request.method !== "GET" && request.method !== "HEAD") {
    return problem(405, "method_not_allowed", `${request.method} not allowed here`,
      { Allow: "GET, HEAD" });
  }
  return new Response(request.method === "HEAD" ? null : file.body, {
    headers: { "Content-Type": file.type, "Cache-Control": "no-cache", ...SECURITY_HEADERS },
  });
}

export default {
  async fetch(request, env) {
    try {
      return await handle(request, env);
    } catch (error) {
      if (error instanceof HttpError) return error.response;
      console.error("chat-ui example:", error?.stack ?? error);
      return problem(502, "upstream_error", "chat-store could not be reached through CHAT_STORE");
    }
  },
};
