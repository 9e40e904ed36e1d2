// Example client of chat-store over a service binding, using the TypeScript client
// (clients/typescript; wrangler bundles its source through this relative import).
//
// POST /roundtrip {"user_id", "content"}
//   stores a message, reads the user's newest message back; answers
//   {"created": {status, body: {message}}, "latest": {status, body: {messages, next_cursor}}}.
// POST /seed {"user_id", "conversation_id"?, "count", "start"?}
//   one batch create of `count` messages with timestamps start, start+1, ...: {"ids": [...]}.
// GET /users/{user_id}/messages?page_size=&order=
//   the user's whole history through iterUserMessages, and its count:
//   {"ids", "count", "pages"} (pages: list requests the iterator made).
// GET /users/{user_id}/export?limit=
//   the history through iterExportUserMessages: {"ids", "pages"}.
// GET /users/{user_id}/conversations?page_size=
//   {"first_page": one listUserConversations page, "ids": every conversation id, "pages"}.
// GET /conversations/{conversation_id}?page_size=
//   {"conversation", "ids" (oldest first), "count", "pages"}.
// PATCH /conversations/{conversation_id} {"title"}   {"conversation"}.
// DELETE /conversations/{conversation_id}/messages?after=
//   one truncation: {"deleted", "remaining"}.
// GET /messages/{id}   {"message"}.
// GET /messages/{id}/context?before=&after=   the context, as the API answers it.
// DELETE /users/{user_id}
//   erases the user, chunk after chunk (untilDone): {"deleted", "remaining", "requests"}.
// GET /health   200 (the test harness waits for it).
//
// A chat-store error answers with its status and {"error": {name, code, status, problem}}, the
// client's typed error as it was caught.
import {
  ChatStoreError,
  NotFound,
  createChatStore,
  type ChatStore,
  type ListMessagesQuery,
  type MessageCreate,
  type OperationId,
} from "../../../clients/typescript/src/index.js";

interface Env {
  CHAT_STORE: Fetcher;
  CHAT_STORE_TOKEN: string;
}

/** A client for this request, counting the answers it got per operation. */
function connect(env: Env): { store: ChatStore; calls: Map<OperationId, number[]> } {
  const calls = new Map<OperationId, number[]>();
  const store = createChatStore({
    binding: env.CHAT_STORE,
    token: env.CHAT_STORE_TOKEN,
    onResponse: ({ operationId, status }) => {
      calls.set(operationId, [...(calls.get(operationId) ?? []), status]);
    },
  });
  return { store, calls };
}

class BadInput extends Error {}

async function jsonBody(request: Request): Promise<Record<string, unknown>> {
  let body: unknown;
  try {
    body = await request.json();
  } catch {
    throw new BadInput("body must be JSON");
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new BadInput("body must be a JSON object");
  }
  return body as Record<string, unknown>;
}

function requireString(body: Record<string, unknown>, name: string): string {
  const value = body[name];
  if (typeof value !== "string") {
    throw new BadInput(`${name} must be a string`);
  }
  return value;
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new BadInput("malformed percent-encoding in the path");
  }
}

function intParam(url: URL, name: string): number | undefined {
  const text = url.searchParams.get(name);
  if (text === null) {
    return undefined;
  }
  const value = Number(text);
  if (!Number.isSafeInteger(value)) {
    throw new BadInput(`${name} must be an integer`);
  }
  return value;
}

function errorResponse(error: ChatStoreError): Response {
  const { name, code, status, problem } = error;
  return Response.json(
    { error: { name, code, status, problem: problem ?? null } },
    {
      status: status === 0 ? 502 : status,
    },
  );
}

async function roundtrip(request: Request, env: Env): Promise<Response> {
  const input = await jsonBody(request);
  const userId = requireString(input, "user_id");
  const content = requireString(input, "content");
  const { store, calls } = connect(env);

  const created = await store.createMessage({ user_id: userId, sender: { id: userId }, content });
  const latest = await store.listUserMessages(userId, { limit: 1 });
  // The client returns bodies; the statuses come from what it observed (201 new, 200 replay).
  const createdStatus = calls.get("createMessage")?.at(-1);
  const latestStatus = calls.get("listUserMessages")?.at(-1);
  return Response.json({
    created: { status: createdStatus, body: { message: created } },
    latest: { status: latestStatus, body: latest },
  });
}

async function seed(request: Request, env: Env): Promise<Response> {
  const input = await jsonBody(request);
  const userId = requireString(input, "user_id");
  const conversationId = input["conversation_id"];
  const count = input["count"];
  const start = input["start"] ?? Date.now();
  if (conversationId !== undefined && typeof conversationId !== "string") {
    throw new BadInput("conversation_id must be a string");
  }
  if (typeof count !== "number" || !Number.isInteger(count) || count < 1 || count > 100) {
    throw new BadInput("count must be an integer 1..100");
  }
  if (typeof start !== "number" || !Number.isSafeInteger(start)) {
    throw new BadInput("start must be an integer");
  }
  const messages: MessageCreate[] = Array.from({ length: count }, (_, i) => ({
    user_id: userId,
    ...(conversationId === undefined ? {} : { conversation_id: conversationId }),
    sender: { id: i % 2 === 0 ? userId : "assistant", role: i % 2 === 0 ? "user" : "assistant" },
    content: `message ${i}`,
    timestamp: start + i,
  }));
  const { store } = connect(env);
  const stored = await store.createMessages(messages);
  return Response.json({ ids: stored.map((message) => message.id) }, { status: 201 });
}

function listQuery(url: URL): ListMessagesQuery {
  const order = url.searchParams.get("order");
  if (order !== null && order !== "asc" && order !== "desc") {
    throw new BadInput("order must be asc or desc");
  }
  return { limit: intParam(url, "page_size"), ...(order === null ? {} : { order }) };
}

async function userMessages(url: URL, env: Env, userId: string): Promise<Response> {
  const { store, calls } = connect(env);
  const ids: string[] = [];
  for await (const message of store.iterUserMessages(userId, listQuery(url))) {
    ids.push(message.id);
  }
  const count = await store.countUserMessages(userId);
  return Response.json({ ids, count, pages: calls.get("listUserMessages")?.length ?? 0 });
}

async function userExport(url: URL, env: Env, userId: string): Promise<Response> {
  const { store, calls } = connect(env);
  const ids: string[] = [];
  for await (const message of store.iterExportUserMessages(userId, {
    limit: intParam(url, "limit"),
  })) {
    ids.push(message.id);
  }
  return Response.json({ ids, pages: calls.get("exportUserMessages")?.length ?? 0 });
}

async function userConversations(url: URL, env: Env, userId: string): Promise<Response> {
  const { store, calls } = connect(env);
  const limit = intParam(url, "page_size");
  const firstPage = await store.listUserConversations(userId, { limit });
  const ids: string[] = [];
  for await (const conversation of store.iterUserConversations(userId, { limit })) {
    ids.push(conversation.id);
  }
  // The first page was fetched once on its own, before the iterator's pages.
  const pages = (calls.get("listUserConversations")?.length ?? 1) - 1;
  return Response.json({ first_page: firstPage, ids, pages });
}

async function conversation(url: URL, env: Env, conversationId: string): Promise<Response> {
  const { store, calls } = connect(env);
  const found = await store.getConversation(conversationId);
  const ids: string[] = [];
  const query = { limit: intParam(url, "page_size"), order: "asc" } as const;
  for await (const message of store.iterConversationMessages(conversationId, query)) {
    ids.push(message.id);
  }
  const count = await store.countConversationMessages(conversationId);
  return Response.json({
    conversation: found,
    ids,
    count,
    pages: calls.get("listConversationMessages")?.length ?? 0,
  });
}

async function eraseUser(env: Env, userId: string): Promise<Response> {
  const { store, calls } = connect(env);
  const result = await store.eraseUserMessages(userId, { untilDone: true });
  return Response.json({ ...result, requests: calls.get("eraseUserMessages")?.length ?? 0 });
}

async function route(request: Request, env: Env): Promise<Response> {
  const url = new URL(request.url);
  const parts = url.pathname.split("/").slice(1).map(decodeSegment);
  const method = request.method;
  const [first, id, sub] = parts;

  if (url.pathname === "/health" && method === "GET") {
    return new Response("ok");
  }
  if (url.pathname === "/roundtrip" && method === "POST") {
    return roundtrip(request, env);
  }
  if (url.pathname === "/seed" && method === "POST") {
    return seed(request, env);
  }
  if (first === "users" && id !== undefined) {
    if (parts.length === 3 && sub === "messages" && method === "GET") {
      return userMessages(url, env, id);
    }
    if (parts.length === 3 && sub === "export" && method === "GET") {
      return userExport(url, env, id);
    }
    if (parts.length === 3 && sub === "conversations" && method === "GET") {
      return userConversations(url, env, id);
    }
    if (parts.length === 2 && method === "DELETE") {
      return eraseUser(env, id);
    }
  }
  if (first === "conversations" && id !== undefined) {
    if (parts.length === 2 && method === "GET") {
      return conversation(url, env, id);
    }
    if (parts.length === 2 && method === "PATCH") {
      const title = requireString(await jsonBody(request), "title");
      const { store } = connect(env);
      return Response.json({ conversation: await store.patchConversation(id, { title }) });
    }
    if (parts.length === 3 && sub === "messages" && method === "DELETE") {
      const after = url.searchParams.get("after") ?? undefined;
      const { store } = connect(env);
      return Response.json(await store.eraseConversationMessages(id, { after }));
    }
  }
  if (first === "messages" && id !== undefined && method === "GET") {
    const { store } = connect(env);
    if (parts.length === 2) {
      try {
        return Response.json({ message: await store.getMessage(id) });
      } catch (error) {
        // The typed error a caller branches on; the generic handler below would answer the same,
        // this just shows the instanceof check.
        if (error instanceof NotFound) {
          return errorResponse(error);
        }
        throw error;
      }
    }
    if (parts.length === 3 && sub === "context") {
      const query = { before: intParam(url, "before"), after: intParam(url, "after") };
      return Response.json(await store.getMessageContext(id, query));
    }
  }
  return new Response("not found", { status: 404 });
}

export default {
  async fetch(request, env): Promise<Response> {
    try {
      return await route(request, env);
    } catch (error) {
      if (error instanceof BadInput) {
        return Response.json({ error: error.message }, { status: 400 });
      }
      if (error instanceof ChatStoreError) {
        return errorResponse(error);
      }
      throw error;
    }
  },
} satisfies ExportedHandler<Env>;
