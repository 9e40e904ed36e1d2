// The chat-store client: one method per operationId of openapi.json, iterators that follow
// cursors, typed errors, bounded retries of 429/503 that honour Retry-After, and client-made
// ULIDs for creates (so a retried create is exactly-once). It needs only fetch, Request,
// Response, Headers, AbortController, setTimeout and crypto.getRandomValues: Workers,
// browsers and Node >= 20 have them all.
import {
  AuthNotConfigured,
  ChatStoreError,
  NotFound,
  ProtocolError,
  TransportError,
  errorFromBody,
} from "./errors.js";
import type { components, operations, paths } from "./openapi.js";
import { monotonicUlid } from "./ulid.js";

type Schemas = components["schemas"];

export type Message = Schemas["Message"];
export type MessageCreate = Schemas["MessageCreate"];
export type MessagePatch = Schemas["MessagePatch"];
export type Sender = Schemas["Sender"];
export type Parts = Schemas["Parts"];
export type Metadata = Schemas["Metadata"];
export type Page = Schemas["Page"];
export type Conversation = Schemas["Conversation"];
export type ConversationPage = Schemas["ConversationPage"];
export type ConversationPatch = Schemas["ConversationPatch"];
export type MessageContext = Schemas["MessageContext"];
export type EraseResult = Schemas["EraseResult"];
export type ReindexRequest = Schemas["ReindexRequest"];
export type ReindexResult = Schemas["ReindexResult"];
export type Health = Schemas["Health"];
export type OpenAPIDocument = Schemas["OpenAPIDocument"];

export type OperationId = keyof operations;
type QueryOf<K extends OperationId> = NonNullable<operations[K]["parameters"]["query"]>;
export type ListMessagesQuery = QueryOf<"listUserMessages">;
export type CountQuery = QueryOf<"countUserMessages">;
export type ExportQuery = QueryOf<"exportUserMessages">;
export type ContextQuery = QueryOf<"getMessageContext">;
export type ConversationListQuery = QueryOf<"listUserConversations">;
export type TruncateQuery = QueryOf<"eraseConversationMessages">;

export interface EraseOptions {
  /** Repeat the request until nothing remains. */
  untilDone?: boolean | undefined;
}

/** One export response: its messages (oldest first) and the cursor of the next one. */
export interface ExportPage {
  messages: Message[];
  next_cursor: string | null;
}

/** A service binding (`env.CHAT_STORE`) or anything else with a `fetch(Request)`. */
export interface ServiceBinding {
  fetch(request: Request): Promise<Response>;
}

export type FetchFunction = (request: Request) => Promise<Response>;

/** A bearer token, or a function giving one per request (to refresh short-lived user JWTs). */
export type TokenSource = string | (() => string | Promise<string>);

/**
 * When to send a request again (the Python client's policy): after `429 rate_limited`, a 503
 * other than `auth_not_configured` (no wait changes that), or no answer at all. The wait is the
 * answer's `Retry-After` when it has one, else exponential backoff with full jitter. Bounded
 * twice: `maxAttempts` requests in all, `maxTotalDelayMs` of waiting in all; a Retry-After
 * longer than the wait left is not waited out, the error is thrown at once (with
 * `retryAfterMs`).
 */
export interface RetryOptions {
  /** Requests in all, the first included (default 4). */
  maxAttempts?: number;
  /** Longest total wait per call (default 60 s). */
  maxTotalDelayMs?: number;
  /** Backoff cap of the first retry without Retry-After, doubled per retry (default 500 ms). */
  baseDelayMs?: number;
  /** Largest backoff cap without Retry-After (default 8 s). */
  maxDelayMs?: number;
  /** Also retry requests that got no answer (default true). */
  retryTransportErrors?: boolean;
}

/** What `onResponse` hears about every answer, retried ones included. */
export interface ResponseEvent {
  operationId: OperationId;
  method: string;
  url: string;
  status: number;
  attempt: number;
}

interface CommonOptions {
  /** The service token (`API_TOKEN`) or a user JWT, sent as `Authorization: Bearer`. */
  token?: TokenSource | undefined;
  /** Extra headers on every request (e.g. Cloudflare Access service-token headers). */
  headers?: Record<string, string> | undefined;
  /** Retries of 429, 503 and requests without answer (see RetryOptions); false: none. */
  retry?: RetryOptions | false | undefined;
  /** Per attempt, until the response headers arrive; default none. */
  timeoutMs?: number | undefined;
  /**
   * Makes the `id` of creates that have none. Default: monotonic ULIDs. `false` leaves the id
   * to the server, which makes a create retried after a lost answer possibly stored twice.
   */
  generateId?: (() => string) | false | undefined;
  /** Observes every answer (logging, metrics). */
  onResponse?: ((event: ResponseEvent) => void) | undefined;
  /** Injected in tests; default setTimeout-based, abortable. */
  sleep?: ((ms: number, signal?: AbortSignal) => Promise<void>) | undefined;
  /** Injected in tests; default Math.random (backoff jitter). */
  random?: (() => number) | undefined;
  /** Injected in tests; default Date.now (HTTP-date Retry-After). */
  now?: (() => number) | undefined;
}

export interface BindingOptions extends CommonOptions {
  binding: ServiceBinding;
  /** Only the path and query reach the bound Worker; the origin is cosmetic (logs). */
  baseUrl?: string | undefined;
}

export interface UrlOptions extends CommonOptions {
  /** Where chat-store answers, e.g. `https://chat-store.example.workers.dev` (a path is kept). */
  baseUrl: string;
  /** Default: the global fetch. */
  fetch?: FetchFunction | undefined;
}

export type ChatStoreOptions = BindingOptions | UrlOptions;

/** Per call. */
export interface CallOptions {
  signal?: AbortSignal | undefined;
}

// -- routes, checked against the generated `paths` -------------------------------------------

type HttpMethod = "get" | "post" | "patch" | "delete";
// [method, path] such that paths[path][method] is exactly operations[K]: a route in this table
// that does not match the operationId in openapi.json fails tsc.
type RouteOf<K extends OperationId> = {
  [P in keyof paths]: {
    [M in HttpMethod]: paths[P][M] extends operations[K]
      ? operations[K] extends paths[P][M]
        ? readonly [M, P]
        : never
      : never;
  }[HttpMethod];
}[keyof paths];

const ROUTES: { readonly [K in OperationId]: RouteOf<K> } = {
  getHealth: ["get", "/health"],
  getOpenAPI: ["get", "/openapi.json"],
  createMessage: ["post", "/v1/messages"],
  createMessages: ["post", "/v1/messages/batch"],
  getMessage: ["get", "/v1/messages/{id}"],
  patchMessage: ["patch", "/v1/messages/{id}"],
  deleteMessage: ["delete", "/v1/messages/{id}"],
  getMessageContext: ["get", "/v1/messages/{id}/context"],
  listUserMessages: ["get", "/v1/users/{user_id}/messages"],
  eraseUserMessages: ["delete", "/v1/users/{user_id}/messages"],
  countUserMessages: ["get", "/v1/users/{user_id}/messages/count"],
  exportUserMessages: ["get", "/v1/users/{user_id}/export"],
  listConversationMessages: ["get", "/v1/conversations/{conversation_id}/messages"],
  eraseConversationMessages: ["delete", "/v1/conversations/{conversation_id}/messages"],
  countConversationMessages: ["get", "/v1/conversations/{conversation_id}/messages/count"],
  exportConversationMessages: ["get", "/v1/conversations/{conversation_id}/export"],
  listUserConversations: ["get", "/v1/users/{user_id}/conversations"],
  getConversation: ["get", "/v1/conversations/{conversation_id}"],
  patchConversation: ["patch", "/v1/conversations/{conversation_id}"],
  reindex: ["post", "/v1/admin/reindex"],
};

type PathParams<K extends OperationId> = NonNullable<operations[K]["parameters"]["path"]>;
type QueryValue = string | number | undefined;

interface CallSpec<K extends OperationId> {
  path?: PathParams<K>;
  query?: Readonly<Record<string, QueryValue>>;
  body?: unknown;
  /**
   * Safe to send again after an attempt got no answer (the server may have acted on it). Only a
   * create whose id the server makes is not: it could be stored twice.
   */
  idempotent: boolean;
  /** A 404 after an attempt that got no answer means that attempt did it (a DELETE). */
  goneIsDone?: boolean;
}

const BINDING_ORIGIN = "https://chat-store";
const DEFAULT_RETRY: Required<RetryOptions> = {
  maxAttempts: 4,
  maxTotalDelayMs: 60_000,
  baseDelayMs: 500,
  maxDelayMs: 8_000,
  retryTransportErrors: true,
};
const ITERATOR_PAGE_SIZE = 100; // the API's maximum page: fewest round trips

function defaultSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

const HTTP_DATE = [
  /^[A-Za-z]{3}, \d{2} [A-Za-z]{3} \d{4} \d{2}:\d{2}:\d{2} GMT$/, // IMF-fixdate
  /^[A-Za-z]{6,9}, \d{2}-[A-Za-z]{3}-\d{2} \d{2}:\d{2}:\d{2} GMT$/, // obsolete RFC 850
  /^[A-Za-z]{3} [A-Za-z]{3} [ \d]\d \d{2}:\d{2}:\d{2} \d{4}$/, // obsolete asctime
];

/** `Retry-After` as milliseconds from now: delay-seconds or an HTTP-date (RFC 9110 §10.2.3). */
export function parseRetryAfter(value: string | null, nowMs: number): number | undefined {
  if (value === null) {
    return undefined;
  }
  const text = value.trim();
  if (/^\d+$/.test(text)) {
    return Number(text) * 1000;
  }
  // Date.parse alone would read "1.5" or "-1" as dates; only HTTP-date forms count.
  if (!HTTP_DATE.some((form) => form.test(text))) {
    return undefined;
  }
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - nowMs);
}

function pathSegment(value: string): string {
  // URL parsing turns `.`/`..` segments (also as %2E) into directory moves, so such an id would
  // address another route; the API's id grammar excludes them anyway.
  if (value === "." || value === "..") {
    throw new TypeError(`invalid id ${JSON.stringify(value)}: "." and ".." cannot be addressed`);
  }
  return encodeURIComponent(value);
}

function expandPath(template: string, params: Readonly<Record<string, string>>): string {
  return template.replace(/\{([a-z_]+)\}/g, (_, name: string) => {
    const value = params[name];
    if (value === undefined) {
      throw new TypeError(`missing path parameter ${name}`);
    }
    return pathSegment(value);
  });
}

function queryString(query: Readonly<Record<string, QueryValue>> | undefined): string {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(query ?? {})) {
    if (value !== undefined) {
      search.append(name, String(value));
    }
  }
  const text = search.toString();
  return text === "" ? "" : `?${text}`;
}

async function readJson<T>(response: Response): Promise<T> {
  const text = await response.text();
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new ProtocolError(response.status, `${response.status} answer is not JSON`, text);
  }
}

function parseNdjson(text: string, status: number): Message[] {
  const messages: Message[] = [];
  for (const line of text.split("\n")) {
    if (line.trim() === "") {
      continue;
    }
    try {
      messages.push(JSON.parse(line) as Message);
    } catch {
      throw new ProtocolError(status, "an export line is not JSON", line);
    }
  }
  return messages;
}

/**
 * A client of chat-store. Make one with {@link createChatStore}.
 *
 * Errors are thrown as subclasses of ChatStoreError (`NotFound`, `Conflict`, ...), each with the
 * problem document and the status.
 */
export class ChatStore {
  readonly #fetch: FetchFunction;
  readonly #base: string;
  readonly #token: TokenSource | undefined;
  readonly #headers: Readonly<Record<string, string>>;
  readonly #retry: Required<RetryOptions> | undefined;
  readonly #timeoutMs: number | undefined;
  readonly #generateId: (() => string) | undefined;
  readonly #onResponse: ((event: ResponseEvent) => void) | undefined;
  readonly #sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  readonly #random: () => number;
  readonly #now: () => number;

  constructor(options: ChatStoreOptions) {
    if ("binding" in options) {
      const binding = options.binding;
      this.#fetch = (request) => binding.fetch(request);
      this.#base = (options.baseUrl ?? BINDING_ORIGIN).replace(/\/+$/, "");
    } else {
      if (typeof options.baseUrl !== "string" || options.baseUrl === "") {
        throw new TypeError("createChatStore needs a binding or a baseUrl");
      }
      // Calling the global fetch detached from globalThis is an "Illegal invocation" in browsers.
      this.#fetch = options.fetch ?? ((request) => fetch(request));
      this.#base = options.baseUrl.replace(/\/+$/, "");
    }
    this.#token = options.token;
    this.#headers = { ...options.headers };
    this.#retry = options.retry === false ? undefined : { ...DEFAULT_RETRY, ...options.retry };
    this.#timeoutMs = options.timeoutMs;
    this.#generateId =
      options.generateId === false ? undefined : (options.generateId ?? monotonicUlid());
    this.#onResponse = options.onResponse;
    this.#sleep = options.sleep ?? defaultSleep;
    this.#random = options.random ?? Math.random;
    this.#now = options.now ?? Date.now;
  }

  // -- service -------------------------------------------------------------------------------

  /** `GET /health`: `{status: "ok"}` while the Worker runs (no credential needed). */
  async getHealth(options?: CallOptions): Promise<Health> {
    return readJson(await this.#call("getHealth", { idempotent: true }, options));
  }

  /** `GET /openapi.json`: the API's OpenAPI document. */
  async getOpenAPI(options?: CallOptions): Promise<OpenAPIDocument> {
    return readJson(await this.#call("getOpenAPI", { idempotent: true }, options));
  }

  // -- messages ------------------------------------------------------------------------------

  /**
   * `POST /v1/messages`. Without an `id` the client makes a ULID, so a retry (by this client
   * after a 503 or a lost answer, or by the caller with the same input and id) stores the
   * message once: an identical replay answers the stored message. Same id, other fields:
   * `Conflict`.
   */
  async createMessage(message: MessageCreate, options?: CallOptions): Promise<Message> {
    const body = this.#withId(message);
    const response = await this.#call(
      "createMessage",
      { body, idempotent: body.id !== undefined },
      options,
    );
    return (await readJson<Schemas["MessageEnvelope"]>(response)).message;
  }

  /**
   * `POST /v1/messages/batch`: 1-100 messages, all or nothing (an error names the item in
   * `problem.index`). Ids are made as for createMessage, increasing in the given order.
   */
  async createMessages(
    messages: readonly MessageCreate[],
    options?: CallOptions,
  ): Promise<Message[]> {
    const body = { messages: messages.map((message) => this.#withId(message)) };
    const idempotent = body.messages.every((message) => message.id !== undefined);
    const response = await this.#call("createMessages", { body, idempotent }, options);
    return (await readJson<{ messages: Message[] }>(response)).messages;
  }

  /** `GET /v1/messages/{id}`; `NotFound` when missing (or another user's, for a user token). */
  async getMessage(id: string, options?: CallOptions): Promise<Message> {
    const response = await this.#call("getMessage", { path: { id }, idempotent: true }, options);
    return (await readJson<Schemas["MessageEnvelope"]>(response)).message;
  }

  /** `PATCH /v1/messages/{id}`: replaces the given fields; a new `timestamp` moves it. */
  async patchMessage(id: string, patch: MessagePatch, options?: CallOptions): Promise<Message> {
    const response = await this.#call(
      "patchMessage",
      { path: { id }, body: patch, idempotent: true },
      options,
    );
    return (await readJson<Schemas["MessageEnvelope"]>(response)).message;
  }

  /**
   * `DELETE /v1/messages/{id}`; `NotFound` when missing. Resent after a lost answer; a 404 then
   * means the lost attempt deleted it, and counts as done.
   */
  async deleteMessage(id: string, options?: CallOptions): Promise<void> {
    const response = await this.#call(
      "deleteMessage",
      { path: { id }, idempotent: true, goneIsDone: true },
      options,
    );
    await response.text();
  }

  /** `GET /v1/messages/{id}/context`: the messages listed just before and after it. */
  async getMessageContext(
    id: string,
    query: ContextQuery = {},
    options?: CallOptions,
  ): Promise<MessageContext> {
    return readJson(
      await this.#call("getMessageContext", { path: { id }, query, idempotent: true }, options),
    );
  }

  // -- a user's messages ---------------------------------------------------------------------

  /** `GET /v1/users/{user_id}/messages`: one page (`next_cursor` for the next). */
  async listUserMessages(
    userId: string,
    query: ListMessagesQuery = {},
    options?: CallOptions,
  ): Promise<Page> {
    return readJson(
      await this.#call(
        "listUserMessages",
        { path: { user_id: userId }, query, idempotent: true },
        options,
      ),
    );
  }

  /**
   * `DELETE /v1/users/{user_id}/messages`: one chunk (at most 300 messages) and how many
   * remain; with `{untilDone: true}` chunk after chunk until none do (`deleted`: the total).
   */
  async eraseUserMessages(
    userId: string,
    erase: EraseOptions = {},
    options?: CallOptions,
  ): Promise<EraseResult> {
    return this.#erase(erase.untilDone, async () =>
      readJson<EraseResult>(
        await this.#call(
          "eraseUserMessages",
          { path: { user_id: userId }, idempotent: true },
          options,
        ),
      ),
    );
  }

  /** `GET /v1/users/{user_id}/messages/count`. */
  async countUserMessages(
    userId: string,
    query: CountQuery = {},
    options?: CallOptions,
  ): Promise<number> {
    const response = await this.#call(
      "countUserMessages",
      { path: { user_id: userId }, query, idempotent: true },
      options,
    );
    return (await readJson<Schemas["Count"]>(response)).count;
  }

  /** `GET /v1/users/{user_id}/export`: one NDJSON response, parsed. */
  async exportUserMessages(
    userId: string,
    query: ExportQuery = {},
    options?: CallOptions,
  ): Promise<ExportPage> {
    const response = await this.#call(
      "exportUserMessages",
      { path: { user_id: userId }, query, idempotent: true },
      options,
    );
    return readExport(response, query.limit);
  }

  // -- a conversation ------------------------------------------------------------------------

  /** `GET /v1/conversations/{conversation_id}/messages`: one page. */
  async listConversationMessages(
    conversationId: string,
    query: ListMessagesQuery = {},
    options?: CallOptions,
  ): Promise<Page> {
    return readJson(
      await this.#call(
        "listConversationMessages",
        { path: { conversation_id: conversationId }, query, idempotent: true },
        options,
      ),
    );
  }

  /**
   * `DELETE /v1/conversations/{conversation_id}/messages`: one chunk of an erase (service token
   * only), or with `{after: messageId}` of a truncation after that message (exclusive); with
   * `untilDone: true` chunk after chunk until nothing remains (`deleted`: the total).
   */
  async eraseConversationMessages(
    conversationId: string,
    { untilDone, ...query }: TruncateQuery & EraseOptions = {},
    options?: CallOptions,
  ): Promise<EraseResult> {
    return this.#erase(untilDone, async () =>
      readJson<EraseResult>(
        await this.#call(
          "eraseConversationMessages",
          { path: { conversation_id: conversationId }, query, idempotent: true },
          options,
        ),
      ),
    );
  }

  /** `GET /v1/conversations/{conversation_id}/messages/count`. */
  async countConversationMessages(
    conversationId: string,
    query: CountQuery = {},
    options?: CallOptions,
  ): Promise<number> {
    const response = await this.#call(
      "countConversationMessages",
      { path: { conversation_id: conversationId }, query, idempotent: true },
      options,
    );
    return (await readJson<Schemas["Count"]>(response)).count;
  }

  /** `GET /v1/conversations/{conversation_id}/export`: one NDJSON response, parsed. */
  async exportConversationMessages(
    conversationId: string,
    query: ExportQuery = {},
    options?: CallOptions,
  ): Promise<ExportPage> {
    const response = await this.#call(
      "exportConversationMessages",
      { path: { conversation_id: conversationId }, query, idempotent: true },
      options,
    );
    return readExport(response, query.limit);
  }

  // -- conversations -------------------------------------------------------------------------

  /** `GET /v1/users/{user_id}/conversations`: one page, most recent activity first. */
  async listUserConversations(
    userId: string,
    query: ConversationListQuery = {},
    options?: CallOptions,
  ): Promise<ConversationPage> {
    return readJson(
      await this.#call(
        "listUserConversations",
        { path: { user_id: userId }, query, idempotent: true },
        options,
      ),
    );
  }

  /** `GET /v1/conversations/{conversation_id}`; `NotFound` when it has no message. */
  async getConversation(conversationId: string, options?: CallOptions): Promise<Conversation> {
    const response = await this.#call(
      "getConversation",
      { path: { conversation_id: conversationId }, idempotent: true },
      options,
    );
    return (await readJson<Schemas["ConversationEnvelope"]>(response)).conversation;
  }

  /** `PATCH /v1/conversations/{conversation_id}`: sets `title` and/or `metadata`. */
  async patchConversation(
    conversationId: string,
    patch: ConversationPatch,
    options?: CallOptions,
  ): Promise<Conversation> {
    const response = await this.#call(
      "patchConversation",
      { path: { conversation_id: conversationId }, body: patch, idempotent: true },
      options,
    );
    return (await readJson<Schemas["ConversationEnvelope"]>(response)).conversation;
  }

  // -- admin ---------------------------------------------------------------------------------

  /** `POST /v1/admin/reindex` (service token): rebuilds one index from the message records. */
  async reindex(request: ReindexRequest, options?: CallOptions): Promise<ReindexResult> {
    return readJson(await this.#call("reindex", { body: request, idempotent: true }, options));
  }

  // -- iterators -----------------------------------------------------------------------------

  /**
   * Every message of a user matching `query`, page after page (`limit` is the page size,
   * default 100; `cursor` resumes). Each message exactly once, also while others are appended.
   */
  iterUserMessages(
    userId: string,
    query: ListMessagesQuery = {},
    options?: CallOptions,
  ): AsyncGenerator<Message, void, undefined> {
    const pageQuery = { ...query, limit: query.limit ?? ITERATOR_PAGE_SIZE };
    return follow(
      (cursor) => this.listUserMessages(userId, { ...pageQuery, cursor }, options),
      query.cursor,
      (page) => page.messages,
    );
  }

  /** Every message of a conversation matching `query`; as iterUserMessages. */
  iterConversationMessages(
    conversationId: string,
    query: ListMessagesQuery = {},
    options?: CallOptions,
  ): AsyncGenerator<Message, void, undefined> {
    const pageQuery = { ...query, limit: query.limit ?? ITERATOR_PAGE_SIZE };
    return follow(
      (cursor) => this.listConversationMessages(conversationId, { ...pageQuery, cursor }, options),
      query.cursor,
      (page) => page.messages,
    );
  }

  /** Every conversation of a user, most recent activity first (by default). */
  iterUserConversations(
    userId: string,
    query: ConversationListQuery = {},
    options?: CallOptions,
  ): AsyncGenerator<Conversation, void, undefined> {
    const pageQuery = { ...query, limit: query.limit ?? ITERATOR_PAGE_SIZE };
    return follow(
      (cursor) => this.listUserConversations(userId, { ...pageQuery, cursor }, options),
      query.cursor,
      (page) => page.conversations,
    );
  }

  /** A user's whole history, oldest first, following `Chat-Store-Next-Cursor`. */
  iterExportUserMessages(
    userId: string,
    query: ExportQuery = {},
    options?: CallOptions,
  ): AsyncGenerator<Message, void, undefined> {
    return follow(
      (cursor) => this.exportUserMessages(userId, { ...query, cursor }, options),
      query.cursor,
      (page) => page.messages,
    );
  }

  /** A conversation's whole history, oldest first, following `Chat-Store-Next-Cursor`. */
  iterExportConversationMessages(
    conversationId: string,
    query: ExportQuery = {},
    options?: CallOptions,
  ): AsyncGenerator<Message, void, undefined> {
    return follow(
      (cursor) => this.exportConversationMessages(conversationId, { ...query, cursor }, options),
      query.cursor,
      (page) => page.messages,
    );
  }

  // -- plumbing ------------------------------------------------------------------------------

  async #erase(
    untilDone: boolean | undefined,
    chunk: () => Promise<EraseResult>,
  ): Promise<EraseResult> {
    let result = await chunk();
    let deleted = result.deleted;
    while (untilDone === true && result.remaining > 0) {
      result = await chunk();
      deleted += result.deleted;
    }
    return { deleted, remaining: result.remaining };
  }

  #withId<T extends MessageCreate>(message: T): T {
    if (message.id !== undefined || this.#generateId === undefined) {
      return message;
    }
    // Rest, not spread over it: an explicit `id: undefined` must not undo the new id.
    const { id: _unset, ...fields } = message;
    return { id: this.#generateId(), ...fields } as T;
  }

  async #authorization(): Promise<string | undefined> {
    const token = typeof this.#token === "function" ? await this.#token() : this.#token;
    return token === undefined || token === "" ? undefined : `Bearer ${token}`;
  }

  #request(
    method: string,
    url: string,
    body: string | undefined,
    authorization: string | undefined,
    signal: AbortSignal,
  ): Request {
    const headers = new Headers(this.#headers);
    headers.set("Accept", "application/json, application/problem+json, application/x-ndjson");
    if (authorization !== undefined) {
      headers.set("Authorization", authorization);
    }
    if (body !== undefined) {
      headers.set("Content-Type", "application/json");
    }
    return new Request(url, { method, headers, body, signal });
  }

  /** The delay before the next attempt, or undefined to give up. */
  #retryDelay(
    attempt: number,
    retryAfterMs: number | undefined,
    waitedMs: number,
  ): number | undefined {
    const policy = this.#retry;
    if (policy === undefined || attempt >= policy.maxAttempts) {
      return undefined;
    }
    const left = Math.max(0, policy.maxTotalDelayMs - waitedMs);
    if (retryAfterMs !== undefined) {
      // Never sooner than the server asked; and not at all if that is beyond the budget.
      return retryAfterMs <= left ? retryAfterMs : undefined;
    }
    const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
    return Math.min(Math.round(this.#random() * cap), left); // full jitter
  }

  async #call<K extends OperationId>(
    operationId: K,
    spec: CallSpec<K>,
    options: CallOptions | undefined,
  ): Promise<Response> {
    const [verb, template] = ROUTES[operationId];
    const method = verb.toUpperCase();
    const params = (spec.path ?? {}) as Readonly<Record<string, string>>;
    const url = this.#base + expandPath(template, params) + queryString(spec.query);
    const body = spec.body === undefined ? undefined : JSON.stringify(spec.body);
    const callerSignal = options?.signal;
    let waitedMs = 0;
    let uncertain = false; // an attempt got no answer: the server may have acted on it

    for (let attempt = 1; ; attempt += 1) {
      callerSignal?.throwIfAborted();
      // Per attempt, so a token function can refresh it; its own failure is the caller's.
      const authorization = await this.#authorization();
      const controller = new AbortController();
      const request = this.#request(method, url, body, authorization, controller.signal);
      const onAbort = (): void => controller.abort(callerSignal?.reason);
      callerSignal?.addEventListener("abort", onAbort, { once: true });
      let timedOut = false;
      const timer =
        this.#timeoutMs === undefined
          ? undefined
          : setTimeout(() => {
              timedOut = true;
              controller.abort();
            }, this.#timeoutMs);

      let response: Response;
      try {
        response = await this.#fetch(request);
      } catch (cause) {
        if (callerSignal?.aborted) {
          throw callerSignal.reason;
        }
        uncertain = true;
        const failure = new TransportError(
          timedOut
            ? `${method} ${url} timed out after ${this.#timeoutMs} ms`
            : `${method} ${url} failed: ${cause instanceof Error ? cause.message : String(cause)}`,
          cause,
        );
        const retry = spec.idempotent && this.#retry?.retryTransportErrors === true;
        const delay = retry ? this.#retryDelay(attempt, undefined, waitedMs) : undefined;
        if (delay === undefined) {
          throw failure;
        }
        waitedMs += delay;
        await this.#sleep(delay, callerSignal);
        continue;
      } finally {
        if (timer !== undefined) {
          clearTimeout(timer);
        }
        callerSignal?.removeEventListener("abort", onAbort);
      }

      this.#onResponse?.({ operationId, method, url, status: response.status, attempt });
      if (response.ok) {
        return response;
      }
      const retryAfterMs = parseRetryAfter(response.headers.get("Retry-After"), this.#now());
      const error = errorFromBody(response.status, await response.text(), retryAfterMs);
      if (error instanceof NotFound && spec.goneIsDone === true && uncertain) {
        return new Response(null, { status: 204 });
      }
      const delay = isRetryable(error)
        ? this.#retryDelay(attempt, retryAfterMs, waitedMs)
        : undefined;
      if (delay === undefined) {
        throw error;
      }
      waitedMs += delay;
      await this.#sleep(delay, callerSignal);
    }
  }
}

/** 429, and 503 unless it says auth is not configured (no wait changes that). */
function isRetryable(error: ChatStoreError): boolean {
  return error.status === 429 || (error.status === 503 && !(error instanceof AuthNotConfigured));
}

async function readExport(response: Response, limit: number | undefined): Promise<ExportPage> {
  const messages = parseNdjson(await response.text(), response.status);
  const nextCursor = response.headers.get("Chat-Store-Next-Cursor");
  // A cross-origin answer shows only the headers the server exposes through CORS; if the cursor
  // header is hidden, a full page would otherwise look like the last one and an export would
  // stop early without a word.
  const responseType: string = response.type; // Workers' type has no "cors"; browsers' has
  if (nextCursor === null && responseType === "cors" && messages.length >= (limit ?? 500)) {
    throw new ChatStoreError({
      status: response.status,
      code: "cursor_not_exposed",
      message:
        "the export's Chat-Store-Next-Cursor header is not readable cross-origin " +
        "(not in Access-Control-Expose-Headers): cannot tell whether more messages follow",
    });
  }
  return { messages, next_cursor: nextCursor };
}

async function* follow<P extends { next_cursor: string | null }, T>(
  fetchPage: (cursor: string | undefined) => Promise<P>,
  first: string | undefined,
  items: (page: P) => readonly T[],
): AsyncGenerator<T, void, undefined> {
  let cursor = first;
  for (;;) {
    const page = await fetchPage(cursor);
    yield* items(page);
    if (page.next_cursor === null) {
      return;
    }
    if (page.next_cursor === cursor) {
      // A server answering the cursor it was given would make this loop forever.
      throw new ChatStoreError({
        status: 200,
        code: "cursor_stuck",
        message: "the server answered the same cursor again",
      });
    }
    cursor = page.next_cursor;
  }
}

/**
 * A chat-store client over a service binding (`{binding: env.CHAT_STORE, token}`) or over
 * HTTP (`{baseUrl, token}`, with the global fetch or `fetch`).
 */
export function createChatStore(options: ChatStoreOptions): ChatStore {
  return new ChatStore(options);
}

// Every operationId of openapi.json has a method of that name: fails tsc otherwise.
type MissingMethods = Exclude<OperationId, keyof ChatStore>;
const everyOperationHasAMethod: [MissingMethods] extends [never] ? true : MissingMethods = true;
void everyOperationHasAMethod;
