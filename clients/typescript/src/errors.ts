// Typed errors: one class per problem `code` of the API (RFC 9457 documents), all under
// ChatStoreError, so callers can `catch (e) { if (e instanceof NotFound) ... }` or switch on
// `e.code` without parsing anything themselves.
import type { components } from "./openapi.js";

export type Problem = components["schemas"]["Problem"];
export type ProblemCode = Problem["code"];

export interface ChatStoreErrorInit {
  status: number;
  code: string;
  message: string;
  problem?: Problem | undefined;
  retryAfterMs?: number | undefined;
  cause?: unknown;
}

/** Base class of every error the client throws on purpose. */
export class ChatStoreError extends Error {
  override name = "ChatStoreError";
  /** HTTP status of the answer; 0 when there was none (TransportError). */
  readonly status: number;
  /**
   * The problem `code` (`not_found`, ...); without a problem document `unexpected_response`,
   * `protocol_error` or `transport_error`; for an iterator the server led astray
   * `cursor_stuck` or `cursor_not_exposed`.
   */
  readonly code: string;
  /** The problem document the API answered, when it answered one. */
  readonly problem: Problem | undefined;
  /** The answer's `Retry-After`, in milliseconds, when it had one. */
  readonly retryAfterMs: number | undefined;

  constructor(init: ChatStoreErrorInit) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.status = init.status;
    this.code = init.code;
    this.problem = init.problem;
    this.retryAfterMs = init.retryAfterMs;
  }
}

/** An error answered as a problem document; `problem` is always there. */
export class ProblemError extends ChatStoreError {
  override name = "ProblemError";
  declare readonly problem: Problem;

  constructor(problem: Problem, status: number, retryAfterMs?: number) {
    super({
      status,
      code: problem.code,
      message: `${status} ${problem.code}: ${problem.detail}`,
      problem,
      retryAfterMs,
    });
  }
}

// One class per code. `name` is set explicitly so it survives minifying bundlers.
export class Unauthorized extends ProblemError {
  override name = "Unauthorized";
  declare readonly code: "unauthorized";
}
export class Forbidden extends ProblemError {
  override name = "Forbidden";
  declare readonly code: "forbidden";
}
export class NotFound extends ProblemError {
  override name = "NotFound";
  declare readonly code: "not_found";
}
export class MethodNotAllowed extends ProblemError {
  override name = "MethodNotAllowed";
  declare readonly code: "method_not_allowed";
}
export class Conflict extends ProblemError {
  override name = "Conflict";
  declare readonly code: "conflict";
}
export class PayloadTooLarge extends ProblemError {
  override name = "PayloadTooLarge";
  declare readonly code: "payload_too_large";
}
export class UnsupportedMediaType extends ProblemError {
  override name = "UnsupportedMediaType";
  declare readonly code: "unsupported_media_type";
}
/** 400, either code: the request was refused as malformed. */
export class BadRequest extends ProblemError {
  override name = "BadRequest";
  declare readonly code: "invalid_json" | "validation_error";
}
export class InvalidJson extends BadRequest {
  override name = "InvalidJson";
  declare readonly code: "invalid_json";
}
export class ValidationError extends BadRequest {
  override name = "ValidationError";
  declare readonly code: "validation_error";
}
export class RetentionExpired extends ProblemError {
  override name = "RetentionExpired";
  declare readonly code: "retention_expired";
}
export class RateLimited extends ProblemError {
  override name = "RateLimited";
  declare readonly code: "rate_limited";
}
/** 503, either code. */
export class ServiceUnavailable extends ProblemError {
  override name = "ServiceUnavailable";
  declare readonly code: "auth_not_configured" | "storage_unavailable";
}
export class AuthNotConfigured extends ServiceUnavailable {
  override name = "AuthNotConfigured";
  declare readonly code: "auth_not_configured";
}
export class StorageUnavailable extends ServiceUnavailable {
  override name = "StorageUnavailable";
  declare readonly code: "storage_unavailable";
}
export class InternalError extends ProblemError {
  override name = "InternalError";
  declare readonly code: "internal_error";
}

/** An error status without a problem document (a proxy's page, a restarting dev server's 503). */
export class UnexpectedResponse extends ChatStoreError {
  override name = "UnexpectedResponse";
  declare readonly code: "unexpected_response";
  /** The start of the body, for diagnosis. */
  readonly body: string;

  constructor(status: number, body: string, retryAfterMs?: number) {
    super({
      status,
      code: "unexpected_response",
      message: `${status} without a problem document: ${body.slice(0, 200)}`,
      retryAfterMs,
    });
    this.body = body.slice(0, 2000);
  }
}

/** A success answer the client cannot read (not the JSON or NDJSON the API documents). */
export class ProtocolError extends ChatStoreError {
  override name = "ProtocolError";
  declare readonly code: "protocol_error";
  /** The start of the body, for diagnosis. */
  readonly body: string;

  constructor(status: number, message: string, body: string) {
    super({ status, code: "protocol_error", message });
    this.body = body.slice(0, 2000);
  }
}

/** No answer: the network or the binding failed, or the attempt timed out (`cause` says). */
export class TransportError extends ChatStoreError {
  override name = "TransportError";
  declare readonly code: "transport_error";

  constructor(message: string, cause: unknown) {
    super({ status: 0, code: "transport_error", message, cause });
  }
}

type ProblemErrorClass = new (
  problem: Problem,
  status: number,
  retryAfterMs?: number,
) => ProblemError;

// Typed over the generated enum: a code added to openapi.json without a class fails tsc.
export const ERROR_CLASSES: { readonly [Code in ProblemCode]: ProblemErrorClass } = {
  unauthorized: Unauthorized,
  forbidden: Forbidden,
  not_found: NotFound,
  method_not_allowed: MethodNotAllowed,
  conflict: Conflict,
  payload_too_large: PayloadTooLarge,
  unsupported_media_type: UnsupportedMediaType,
  invalid_json: InvalidJson,
  validation_error: ValidationError,
  retention_expired: RetentionExpired,
  rate_limited: RateLimited,
  auth_not_configured: AuthNotConfigured,
  storage_unavailable: StorageUnavailable,
  internal_error: InternalError,
};

function isProblem(value: unknown): value is Problem {
  if (typeof value !== "object" || value === null) {
    return false;
  }
  const candidate = value as Record<string, unknown>;
  return (
    typeof candidate["code"] === "string" &&
    typeof candidate["status"] === "number" &&
    typeof candidate["title"] === "string" &&
    typeof candidate["detail"] === "string"
  );
}

/**
 * The error for a non-2xx answer: the class of its problem `code`; ChatStoreError itself for a
 * code this client does not know yet (a newer server); UnexpectedResponse without a problem
 * document (a proxy's page: unlike the Python client, which picks the class of the status, so
 * that a wrong base URL's 404 page never reads as "no such message").
 */
export function errorFromBody(status: number, body: string, retryAfterMs?: number): ChatStoreError {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return new UnexpectedResponse(status, body, retryAfterMs);
  }
  if (!isProblem(parsed)) {
    return new UnexpectedResponse(status, body, retryAfterMs);
  }
  const known = Object.prototype.hasOwnProperty.call(ERROR_CLASSES, parsed.code);
  if (known) {
    return new ERROR_CLASSES[parsed.code](parsed, status, retryAfterMs);
  }
  return new ChatStoreError({
    status,
    code: parsed.code,
    message: `${status} ${parsed.code}: ${parsed.detail}`,
    problem: parsed,
    retryAfterMs,
  });
}
