// Generated from openapi.json by clients/typescript/scripts/generate-types.mjs
// (openapi-typescript). Do not edit: change openapi.json and regenerate; check.sh fails on drift.
export interface paths {
    "/health": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Liveness
         * @description Always 200 while the Worker runs; no credentials.
         */
        get: operations["getHealth"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/openapi.json": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * This document
         * @description The OpenAPI 3.1 description of this API; no credentials.
         */
        get: operations["getOpenAPI"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/messages": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Create a message
         * @description Stores one message. With a client-chosen `id` the create is idempotent: an identical replay returns the stored message with 200. A user token may create messages only for its own `user_id`, in conversations its `conversations` claim lists.
         */
        post: operations["createMessage"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/messages/batch": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Create up to 100 messages at once
         * @description All or nothing: every item is validated and checked for conflicts before anything is written. 201 if any message was new, 200 if all were identical replays. Errors about one item carry its position in `index`. A user token may create messages only for its own `user_id`, in conversations its `conversations` claim lists.
         */
        post: operations["createMessages"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/messages/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description The message id. A value outside the id grammar is a 404, not a 400. `/v1/messages/batch` is also this path: GET, PATCH and DELETE on it address the message whose id is `batch`. */
                id: components["parameters"]["MessageId"];
            };
            cookie?: never;
        };
        /**
         * Get a message
         * @description A user token sees only its own user's messages; any other is a 404.
         */
        get: operations["getMessage"];
        put?: never;
        post?: never;
        /**
         * Delete a message
         * @description A user token may delete only its own user's messages; any other is a 404.
         */
        delete: operations["deleteMessage"];
        options?: never;
        head?: never;
        /**
         * Edit a message
         * @description Replaces the given fields and sets `edited_at` (unless nothing changed). A user token may edit only its own user's messages; any other is a 404.
         */
        patch: operations["patchMessage"];
        trace?: never;
    };
    "/v1/messages/{id}/context": {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description The message id. A value outside the id grammar is a 404, not a 400. `/v1/messages/batch` is also this path: GET, PATCH and DELETE on it address the message whose id is `batch`. */
                id: components["parameters"]["MessageId"];
            };
            cookie?: never;
        };
        /**
         * Messages around a message
         * @description The `before` messages listed just before this one and the `after` listed just after it in its conversation (or, with `scope=user`, its user's) listing order, ties in `timestamp` ordered exactly as listings order them, both lists oldest first, with cursors that continue the ordinary listing in each direction. A user token sees only its own user's messages (any other is a 404, as for GET), and `scope=conversation` needs the conversation in its claim, as listing it does (403).
         */
        get: operations["getMessageContext"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/users/{user_id}/messages": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * List a user's messages
         * @description One page of the user's messages ordered by `timestamp`, then id. Follow `next_cursor` (with the same query) until it is null. Unknown query parameters and a parameter given twice are refused (400). A user token may list only its own user.
         */
        get: operations["listUserMessages"];
        put?: never;
        post?: never;
        /**
         * Erase a user's messages
         * @description Deletes up to 300 of the user's messages (from every index they are in, at most 8 conversations' worth) and says how many remain; once they are gone, takes the conversations still in the user's list off it; repeat until `remaining` is 0. A user token may erase only its own user's messages.
         */
        delete: operations["eraseUserMessages"];
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/users/{user_id}/messages/count": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Count a user's messages
         * @description How many of the user's messages have `start` <= `timestamp` <= `end`. Only `start` and `end` are accepted. Unknown query parameters and a parameter given twice are refused (400).
         */
        get: operations["countUserMessages"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/users/{user_id}/export": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Export a user's messages
         * @description The user's messages as NDJSON: one message per line, oldest first, the full stored JSON of each, up to `limit` per response. Follow `Link: rel="next"` (or pass `Chat-Store-Next-Cursor` as `cursor`) until there is none: every message exactly once, also while messages are appended. A user token may export only its own user.
         */
        get: operations["exportUserMessages"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/conversations/{conversation_id}/messages": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * List a conversation's messages
         * @description One page of the conversation's messages ordered by `timestamp`, then id. Follow `next_cursor` (with the same query) until it is null. Unknown query parameters and a parameter given twice are refused (400). A user token may list only conversations in its `conversations` claim.
         */
        get: operations["listConversationMessages"];
        put?: never;
        post?: never;
        /**
         * Erase a conversation's messages, or truncate it after a message
         * @description Without `after`: deletes up to 300 of the conversation's messages (from every index they are in) and says how many remain; repeat until `remaining` is 0. Service token only: a conversation holds other users' messages.
         *
         *     With `after={message_id}` (edit and regenerate flows): deletes every message listed after that one (exclusive, listing order, ties included), up to 300 per request, crash-safe the same way (a retry finishes the job); repeat until `remaining` is 0. A user token may truncate a conversation it has a message in or whose id its `conversations` claim lists (else 403), and only when every message to delete is its own or has `sender.role` `assistant`, `system` or `tool`, and they are at most 300 (else 403, nothing deleted). An `after` message that does not exist or is not in this conversation is a 404.
         */
        delete: operations["eraseConversationMessages"];
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/conversations/{conversation_id}/messages/count": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Count a conversation's messages
         * @description How many of the conversation's messages have `start` <= `timestamp` <= `end`. Only `start` and `end` are accepted. Unknown query parameters and a parameter given twice are refused (400).
         */
        get: operations["countConversationMessages"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/conversations/{conversation_id}/export": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Export a conversation's messages
         * @description The conversation's messages as NDJSON: one message per line, oldest first, the full stored JSON of each, up to `limit` per response. Follow `Link: rel="next"` (or pass `Chat-Store-Next-Cursor` as `cursor`) until there is none: every message exactly once, also while messages are appended. A user token needs the conversation in its claim.
         */
        get: operations["exportConversationMessages"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/users/{user_id}/conversations": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * List a user's conversations
         * @description The conversations the user has a message in, most recent activity first (`order=asc` for oldest first): ordered by `last_message_at`, the `timestamp` of each conversation's newest message, then by that message's id. `start`/`end` bound `last_message_at`. Counts and previews are read from the conversations at once, so they follow every edit, delete and erase. Follow `next_cursor` until it is null. A user token may list only its own user.
         */
        get: operations["listUserConversations"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/conversations/{conversation_id}": {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description The conversation; invalid ids are a 400. */
                conversation_id: components["parameters"]["ConversationId"];
            };
            cookie?: never;
        };
        /**
         * Get a conversation
         * @description Its title and metadata (if set), counts and newest message.
         */
        get: operations["getConversation"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        /**
         * Rename a conversation or set its metadata
         * @description Sets `title` and/or `metadata`. A conversation exists from its first message on: one with no message is a 404.
         */
        patch: operations["patchConversation"];
        trace?: never;
    };
    "/v1/admin/reindex": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Rebuild a user's or conversation's index
         * @description Rebuilds the index from the message records' KV metadata (repair after a partial failure). Service token only.
         */
        post: operations["reindex"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
}
export type webhooks = Record<string, never>;
export interface components {
    schemas: {
        /** @description 1-128 characters of `[A-Za-z0-9._~-]`, except `.` and `..` (URL dot segments, which could never be addressed in a path). */
        Id: string;
        /** @description Unix milliseconds, 0..2^53-1, written as a JSON integer: `1.0`, `1e3` and `"5"` are refused (nothing is coerced). */
        Timestamp: number;
        /** @description Who wrote the message. Its compact UTF-8 JSON encoding must fit in `MAX_SENDER_BYTES` (4096 bytes by default), else 413. */
        Sender: {
            /** @description Any string of 1-128 characters (not restricted to the id grammar). */
            id: string;
            name?: string;
            role?: string;
        };
        /** @description The message text. Limited in UTF-8 bytes, not characters: `MAX_CONTENT_BYTES` (65536 by default), else 413. Strings must be valid Unicode (a lone surrogate escape such as `\ud800` is refused). */
        Content: string;
        /** @description Free-form JSON object stored as given. Its compact UTF-8 JSON encoding must fit in `MAX_METADATA_BYTES` (16384 bytes by default), else 413. */
        Metadata: Record<string, unknown>;
        MessageCreate: {
            /** @description Client-chosen id, which makes the create idempotent: resending identical fields returns the stored message with 200, different fields are a 409. Omitted: the server assigns a ULID. */
            id?: components["schemas"]["Id"];
            user_id: components["schemas"]["Id"];
            conversation_id?: components["schemas"]["Id"];
            sender: components["schemas"]["Sender"];
            content: components["schemas"]["Content"];
            parts?: components["schemas"]["Parts"];
            /** @description When the message was sent; defaults to the server's clock. Listings are ordered by it. */
            timestamp?: components["schemas"]["Timestamp"];
            metadata?: components["schemas"]["Metadata"];
        } | {
            /** @description Client-chosen id, which makes the create idempotent: resending identical fields returns the stored message with 200, different fields are a 409. Omitted: the server assigns a ULID. */
            id?: components["schemas"]["Id"];
            user_id: components["schemas"]["Id"];
            conversation_id?: components["schemas"]["Id"];
            sender: components["schemas"]["Sender"];
            content?: components["schemas"]["Content"];
            parts: components["schemas"]["Parts"];
            /** @description When the message was sent; defaults to the server's clock. Listings are ordered by it. */
            timestamp?: components["schemas"]["Timestamp"];
            metadata?: components["schemas"]["Metadata"];
        };
        /** @description The fields to replace (each replaced whole). `id`, `user_id` and `conversation_id` cannot change (400). */
        MessagePatch: {
            content?: components["schemas"]["Content"];
            parts?: components["schemas"]["Parts"];
            sender?: components["schemas"]["Sender"];
            metadata?: components["schemas"]["Metadata"];
            timestamp?: components["schemas"]["Timestamp"];
        };
        BatchCreate: {
            /** @description 1-100 messages; client-chosen ids must be distinct within the batch (400 otherwise). */
            messages: components["schemas"]["MessageCreate"][];
        };
        /** @description Exactly one of `user_id` or `conversation_id`. */
        ReindexRequest: {
            user_id: components["schemas"]["Id"];
        } | {
            conversation_id: components["schemas"]["Id"];
        };
        Message: {
            id: components["schemas"]["Id"];
            user_id: components["schemas"]["Id"];
            conversation_id?: components["schemas"]["Id"];
            sender: components["schemas"]["Sender"];
            /** @description The message text: as sent, or (when only `parts` were sent) the text of its `text` parts. */
            content: components["schemas"]["Content"];
            parts?: components["schemas"]["Parts"];
            timestamp: components["schemas"]["Timestamp"];
            metadata?: components["schemas"]["Metadata"];
            /** @description Server time of the first create, Unix milliseconds. */
            created_at: number;
            /** @description Server time of the last PATCH that changed something; absent if never edited. */
            edited_at?: number;
        };
        MessageEnvelope: {
            message: components["schemas"]["Message"];
        };
        MessageList: {
            messages: components["schemas"]["Message"][];
        };
        Page: {
            messages: components["schemas"]["Message"][];
            /** @description Pass as `cursor` (with the same `order`, `start` and `end`) for the next page; null on the last page. */
            next_cursor: string | null;
        };
        Count: {
            count: number;
        };
        EraseResult: {
            /** @description Messages deleted by this request (at most 300, of at most 8 conversations). */
            deleted: number;
            /** @description Messages still indexed (and, erasing a user, entries still in the user's conversation list); repeat the request until it is 0. */
            remaining: number;
        };
        ReindexResult: {
            /** @description The KV name of the rebuilt index. */
            index: string;
            /** @description Entries it now holds. */
            entries: number;
            /** @description Message records scanned to rebuild it. */
            scanned: number;
        };
        Health: {
            /** @constant */
            status: "ok";
        };
        /** @description This document. */
        OpenAPIDocument: {
            openapi: string;
            info: Record<string, unknown>;
            paths: Record<string, unknown>;
        };
        /** @description An RFC 9457 problem document. */
        Problem: {
            /** @description `https://chat-store.dev/problems/{code}`. */
            type: string;
            title: string;
            status: number;
            detail: string;
            /**
             * @description Stable machine-readable error code; branch on this.
             * @enum {string}
             */
            code: "unauthorized" | "forbidden" | "not_found" | "method_not_allowed" | "conflict" | "payload_too_large" | "unsupported_media_type" | "invalid_json" | "validation_error" | "retention_expired" | "rate_limited" | "auth_not_configured" | "storage_unavailable" | "internal_error";
            /** @description The request path. */
            instance?: string;
            /** @description For batch errors (and a create's conflict): the position of the offending message. */
            index?: number;
        };
        /** @description Structured content, stored and returned verbatim: the `parts` of an AI SDK `UIMessage` (`text`, `reasoning`, `file`, `source-url`, `step-start`, `tool-*`, `dynamic-tool`, `data-*`, or any other `type`). Only a string `type` on every part, and a string `text` on `text` parts, are required. Limited to `MAX_PARTS_BYTES` (1048576 by default) of JSON, else 413. A create or PATCH that gives `parts` but no `content` sets `content` to the text of the `text` parts, concatenated. */
        Parts: ({
            type: string;
        } & {
            [key: string]: unknown;
        })[];
        /** @description The fields to set (each replaced whole). */
        ConversationPatch: {
            /** @description 1-200 characters. */
            title?: string;
            metadata?: components["schemas"]["Metadata"];
        };
        LastMessage: {
            id: components["schemas"]["Id"];
            sender: components["schemas"]["Sender"];
            timestamp: components["schemas"]["Timestamp"];
            /** @description The message's `content`, cut to its first 200 characters (code points). */
            preview: string;
        };
        /** @description A conversation, from its messages (it exists from its first message on) and the fields a PATCH set. */
        Conversation: {
            id: components["schemas"]["Id"];
            title?: string;
            metadata?: components["schemas"]["Metadata"];
            /** @description The `timestamp` of its oldest message. */
            created_at: number;
            /** @description The `timestamp` of its newest message: the list's order. */
            last_message_at: number;
            message_count: number;
            last_message: components["schemas"]["LastMessage"];
        };
        ConversationEnvelope: {
            conversation: components["schemas"]["Conversation"];
        };
        ConversationPage: {
            conversations: components["schemas"]["Conversation"][];
            /** @description Pass as `cursor` (with the same `order`, `start` and `end`) for the next page; null on the last page. */
            next_cursor: string | null;
        };
        MessageContext: {
            /** @description The messages listed just before it, oldest first. */
            before: components["schemas"]["Message"][];
            message: components["schemas"]["Message"];
            /** @description The messages listed just after it, oldest first. */
            after: components["schemas"]["Message"][];
            /** @description Pass as `cursor` with `order=desc` to the scope's message listing for the messages before `before` (newest first); null when there are none. */
            before_cursor: string | null;
            /** @description Pass as `cursor` with `order=asc` to the scope's message listing for the messages after `after`; null when there are none. */
            after_cursor: string | null;
        };
    };
    responses: {
        /** @description The body is not strict JSON (`invalid_json`) or breaks a validation rule (`validation_error`); `detail` says which. In a batch, `index` names the first offending item. */
        BadRequest: {
            headers: {
                "Cache-Control": components["headers"]["CacheControlNoStore"];
                [name: string]: unknown;
            };
            content: {
                "application/problem+json": components["schemas"]["Problem"] & {
                    /** @constant */
                    status?: 400;
                    /** @enum {unknown} */
                    code?: "invalid_json" | "validation_error";
                };
            };
        };
        /** @description A path or query parameter breaks a validation rule: an invalid id, an unknown or repeated query parameter, an out-of-range or non-decimal integer, `start` > `end`, or a cursor that is empty, tampered with, or issued for another query. */
        InvalidQuery: {
            headers: {
                "Cache-Control": components["headers"]["CacheControlNoStore"];
                [name: string]: unknown;
            };
            content: {
                "application/problem+json": components["schemas"]["Problem"] & {
                    /** @constant */
                    status?: 400;
                    /** @constant */
                    code?: "validation_error";
                };
            };
        };
        /** @description No usable credential: missing, malformed, wrong, expired or badly signed. The `detail` is the same whatever the reason. */
        Unauthorized: {
            headers: {
                "WWW-Authenticate": components["headers"]["WWWAuthenticate"];
                "Cache-Control": components["headers"]["CacheControlNoStore"];
                [name: string]: unknown;
            };
            content: {
                "application/problem+json": components["schemas"]["Problem"] & {
                    /** @constant */
                    status?: 401;
                    /** @constant */
                    code?: "unauthorized";
                };
            };
        };
        /** @description The credential is valid but may not do this: a user token acting on another user or on a conversation missing from its `conversations` claim, or a user token on a service-only operation. */
        Forbidden: {
            headers: {
                "Cache-Control": components["headers"]["CacheControlNoStore"];
                [name: string]: unknown;
            };
            content: {
                "application/problem+json": components["schemas"]["Problem"] & {
                    /** @constant */
                    status?: 403;
                    /** @constant */
                    code?: "forbidden";
                };
            };
        };
        /** @description No such message. A user token asking for another user's message gets exactly this answer too; an id outside the id grammar is reported the same way (no such message can exist). Also the answer when no route matches the path at all. */
        MessageNotFound: {
            headers: {
                "Cache-Control": components["headers"]["CacheControlNoStore"];
                [name: string]: unknown;
            };
            content: {
                "application/problem+json": components["schemas"]["Problem"] & {
                    /** @constant */
                    status?: 404;
                    /** @constant */
                    code?: "not_found";
                };
            };
        };
        /** @description No route matches the path. For these routes this happens only when URL normalization removes a path parameter: ids `.` and `..` (also spelled `%2e`) are dot segments, so `/v1/users/./messages` reaches the server as `/v1/users/messages`. */
        RouteNotFound: {
            headers: {
                "Cache-Control": components["headers"]["CacheControlNoStore"];
                [name: string]: unknown;
            };
            content: {
                "application/problem+json": components["schemas"]["Problem"] & {
                    /** @constant */
                    status?: 404;
                    /** @constant */
                    code?: "not_found";
                };
            };
        };
        /** @description The path exists but not under this method; `Allow` lists the methods it has. Under `/v1` credentials are checked first, so an unauthenticated request gets 401 instead. */
        MethodNotAllowed: {
            headers: {
                Allow: components["headers"]["Allow"];
                "Cache-Control": components["headers"]["CacheControlNoStore"];
                [name: string]: unknown;
            };
            content: {
                "application/problem+json": components["schemas"]["Problem"] & {
                    /** @constant */
                    status?: 405;
                    /** @constant */
                    code?: "method_not_allowed";
                };
            };
        };
        /** @description A message with this `id` already exists with different fields (an identical replay is not a conflict). `index` names the offending item (0 for a single create). */
        Conflict: {
            headers: {
                "Cache-Control": components["headers"]["CacheControlNoStore"];
                [name: string]: unknown;
            };
            content: {
                "application/problem+json": components["schemas"]["Problem"] & {
                    /** @constant */
                    status?: 409;
                    /** @constant */
                    code?: "conflict";
                };
            };
        };
        /** @description With `RETENTION_DAYS` set: the message's `timestamp` is already older than the retention period (now minus `RETENTION_DAYS`), so it would be gone at once; nothing is written. In a batch, `index` names the offending item. */
        RetentionExpired: {
            headers: {
                "Cache-Control": components["headers"]["CacheControlNoStore"];
                [name: string]: unknown;
            };
            content: {
                "application/problem+json": components["schemas"]["Problem"] & {
                    /** @constant */
                    status?: 422;
                    /** @constant */
                    code?: "retention_expired";
                };
            };
        };
        /** @description Too large: the request body (by its declared `Content-Length` or actual size) is over `MAX_BODY_BYTES` (8 MiB by default), or a message's `content`, `metadata` or `sender` is over its own byte limit (`MAX_CONTENT_BYTES`, 64 KiB; `MAX_METADATA_BYTES`, 16 KiB; `MAX_SENDER_BYTES`, 4 KiB; sizes of the compact UTF-8 JSON encoding). In a batch, `index` names the offending item. */
        PayloadTooLarge: {
            headers: {
                "Cache-Control": components["headers"]["CacheControlNoStore"];
                [name: string]: unknown;
            };
            content: {
                "application/problem+json": components["schemas"]["Problem"] & {
                    /** @constant */
                    status?: 413;
                    /** @constant */
                    code?: "payload_too_large";
                };
            };
        };
        /** @description The declared `Content-Length` is over `MAX_BODY_BYTES` (8 MiB by default); checked on every path before routing. */
        PayloadTooLargeUnversioned: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                "application/problem+json": components["schemas"]["Problem"] & {
                    /** @constant */
                    status?: 413;
                    /** @constant */
                    code?: "payload_too_large";
                };
            };
        };
        /** @description The body must be sent as `application/json` (or any `+json` media type). */
        UnsupportedMediaType: {
            headers: {
                "Cache-Control": components["headers"]["CacheControlNoStore"];
                [name: string]: unknown;
            };
            content: {
                "application/problem+json": components["schemas"]["Problem"] & {
                    /** @constant */
                    status?: 415;
                    /** @constant */
                    code?: "unsupported_media_type";
                };
            };
        };
        /** @description Too many requests from this end user (a user token or Access identity) or, for requests that failed authentication, from this client address. The service token is never limited. Only when a rate limiter is bound (`RATE_LIMITER`). */
        RateLimited: {
            headers: {
                "Retry-After": components["headers"]["RetryAfter"];
                "Cache-Control": components["headers"]["CacheControlNoStore"];
                [name: string]: unknown;
            };
            content: {
                "application/problem+json": components["schemas"]["Problem"] & {
                    /** @constant */
                    status?: 429;
                    /** @constant */
                    code?: "rate_limited";
                };
            };
        };
        /** @description An unexpected error or a misconfigured deployment; nothing internal is disclosed. */
        InternalError: {
            headers: {
                "Cache-Control": components["headers"]["CacheControlNoStore"];
                [name: string]: unknown;
            };
            content: {
                "application/problem+json": components["schemas"]["Problem"] & {
                    /** @constant */
                    status?: 500;
                    /** @constant */
                    code?: "internal_error";
                };
            };
        };
        /** @description An unexpected error or a misconfigured deployment; nothing internal is disclosed. */
        InternalErrorUnversioned: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                "application/problem+json": components["schemas"]["Problem"] & {
                    /** @constant */
                    status?: 500;
                    /** @constant */
                    code?: "internal_error";
                };
            };
        };
        /** @description `auth_not_configured`: no credential kind is configured (no `API_TOKEN`, `JWT_SECRET` or Cloudflare Access) and auth is not disabled. `storage_unavailable`: Workers KV failed after retries; comes with `Retry-After`. */
        ServiceUnavailable: {
            headers: {
                "Retry-After": components["headers"]["RetryAfterOptional"];
                "Cache-Control": components["headers"]["CacheControlNoStore"];
                [name: string]: unknown;
            };
            content: {
                "application/problem+json": components["schemas"]["Problem"] & {
                    /** @constant */
                    status?: 503;
                    /** @enum {unknown} */
                    code?: "auth_not_configured" | "storage_unavailable";
                };
            };
        };
        /** @description No such conversation (none with a message). A user token asking for a conversation it has no message in, and that its `conversations` claim does not list, gets exactly this answer too. */
        ConversationNotFound: {
            headers: {
                "Cache-Control": components["headers"]["CacheControlNoStore"];
                [name: string]: unknown;
            };
            content: {
                "application/problem+json": components["schemas"]["Problem"] & {
                    /** @constant */
                    status?: 404;
                    /** @constant */
                    code?: "not_found";
                };
            };
        };
    };
    parameters: {
        /** @description The message id. A value outside the id grammar is a 404, not a 400. `/v1/messages/batch` is also this path: GET, PATCH and DELETE on it address the message whose id is `batch`. */
        MessageId: components["schemas"]["Id"];
        /** @description The user; invalid ids are a 400. */
        UserId: components["schemas"]["Id"];
        /** @description The conversation; invalid ids are a 400. */
        ConversationId: components["schemas"]["Id"];
        /** @description Page size, 1-100 (ASCII digits only). */
        Limit: number;
        /** @description By `timestamp`: `desc` (newest first, the default) or `asc`. */
        Order: "asc" | "desc";
        /** @description Inclusive lower bound on `timestamp` (ASCII digits only, at most 16); must not exceed `end`. */
        Start: number;
        /** @description Inclusive upper bound on `timestamp` (ASCII digits only, at most 16). */
        End: number;
        /** @description `next_cursor` from the previous page of the same query (same scope, `order`, `start`, `end`); anything else is a 400. */
        Cursor: string;
        /** @description Page size, 1-100 (ASCII digits only). */
        ConversationLimit: number;
    };
    requestBodies: never;
    headers: {
        /** @description Every response under `/v1` is private and must not be cached. */
        CacheControlNoStore: "no-store";
        /** @description The bearer challenge. */
        WWWAuthenticate: "Bearer realm=\"chat-store\"";
        /** @description Comma-separated methods the path supports, HEAD included wherever GET is. */
        Allow: string;
        /** @description Seconds to wait before retrying. */
        RetryAfter: number;
        /** @description Seconds to wait before retrying; sent with `storage_unavailable` only. */
        RetryAfterOptional: number;
    };
    pathItems: never;
}
export type $defs = Record<string, never>;
export interface operations {
    getHealth: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Alive. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Health"];
                };
            };
            413: components["responses"]["PayloadTooLargeUnversioned"];
            500: components["responses"]["InternalErrorUnversioned"];
        };
    };
    getOpenAPI: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The document. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["OpenAPIDocument"];
                };
            };
            413: components["responses"]["PayloadTooLargeUnversioned"];
            500: components["responses"]["InternalErrorUnversioned"];
        };
    };
    createMessage: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** @description The message. Strict JSON: duplicate member names, NaN/Infinity, numbers out of range, a byte order mark, invalid UTF-8 and nesting deeper than 32 levels are `invalid_json`. */
        requestBody: {
            content: {
                "application/json": components["schemas"]["MessageCreate"];
            };
        };
        responses: {
            /** @description Identical replay: the stored message, unchanged. */
            200: {
                headers: {
                    "Cache-Control": components["headers"]["CacheControlNoStore"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["MessageEnvelope"];
                };
            };
            /** @description Created. */
            201: {
                headers: {
                    "Cache-Control": components["headers"]["CacheControlNoStore"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["MessageEnvelope"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            409: components["responses"]["Conflict"];
            413: components["responses"]["PayloadTooLarge"];
            415: components["responses"]["UnsupportedMediaType"];
            422: components["responses"]["RetentionExpired"];
            429: components["responses"]["RateLimited"];
            500: components["responses"]["InternalError"];
            503: components["responses"]["ServiceUnavailable"];
        };
    };
    createMessages: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** @description The messages. Strict JSON: duplicate member names, NaN/Infinity, numbers out of range, a byte order mark, invalid UTF-8 and nesting deeper than 32 levels are `invalid_json`. */
        requestBody: {
            content: {
                "application/json": components["schemas"]["BatchCreate"];
            };
        };
        responses: {
            /** @description All were identical replays. */
            200: {
                headers: {
                    "Cache-Control": components["headers"]["CacheControlNoStore"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["MessageList"];
                };
            };
            /** @description At least one message was created; all are returned in request order. */
            201: {
                headers: {
                    "Cache-Control": components["headers"]["CacheControlNoStore"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["MessageList"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            409: components["responses"]["Conflict"];
            413: components["responses"]["PayloadTooLarge"];
            415: components["responses"]["UnsupportedMediaType"];
            422: components["responses"]["RetentionExpired"];
            429: components["responses"]["RateLimited"];
            500: components["responses"]["InternalError"];
            503: components["responses"]["ServiceUnavailable"];
        };
    };
    getMessage: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description The message id. A value outside the id grammar is a 404, not a 400. `/v1/messages/batch` is also this path: GET, PATCH and DELETE on it address the message whose id is `batch`. */
                id: components["parameters"]["MessageId"];
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The message. */
            200: {
                headers: {
                    "Cache-Control": components["headers"]["CacheControlNoStore"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["MessageEnvelope"];
                };
            };
            401: components["responses"]["Unauthorized"];
            404: components["responses"]["MessageNotFound"];
            413: components["responses"]["PayloadTooLarge"];
            429: components["responses"]["RateLimited"];
            500: components["responses"]["InternalError"];
            503: components["responses"]["ServiceUnavailable"];
        };
    };
    deleteMessage: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description The message id. A value outside the id grammar is a 404, not a 400. `/v1/messages/batch` is also this path: GET, PATCH and DELETE on it address the message whose id is `batch`. */
                id: components["parameters"]["MessageId"];
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Deleted. */
            204: {
                headers: {
                    "Cache-Control": components["headers"]["CacheControlNoStore"];
                    [name: string]: unknown;
                };
                content?: never;
            };
            401: components["responses"]["Unauthorized"];
            404: components["responses"]["MessageNotFound"];
            413: components["responses"]["PayloadTooLarge"];
            429: components["responses"]["RateLimited"];
            500: components["responses"]["InternalError"];
            503: components["responses"]["ServiceUnavailable"];
        };
    };
    patchMessage: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description The message id. A value outside the id grammar is a 404, not a 400. `/v1/messages/batch` is also this path: GET, PATCH and DELETE on it address the message whose id is `batch`. */
                id: components["parameters"]["MessageId"];
            };
            cookie?: never;
        };
        /** @description The fields to change. Strict JSON: duplicate member names, NaN/Infinity, numbers out of range, a byte order mark, invalid UTF-8 and nesting deeper than 32 levels are `invalid_json`. */
        requestBody: {
            content: {
                "application/json": components["schemas"]["MessagePatch"];
            };
        };
        responses: {
            /** @description The updated message. */
            200: {
                headers: {
                    "Cache-Control": components["headers"]["CacheControlNoStore"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["MessageEnvelope"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            404: components["responses"]["MessageNotFound"];
            413: components["responses"]["PayloadTooLarge"];
            415: components["responses"]["UnsupportedMediaType"];
            422: components["responses"]["RetentionExpired"];
            429: components["responses"]["RateLimited"];
            500: components["responses"]["InternalError"];
            503: components["responses"]["ServiceUnavailable"];
        };
    };
    getMessageContext: {
        parameters: {
            query?: {
                /** @description Whose listing: default the message's conversation if it has one, else its user's. `conversation` for a message without one is a 400. */
                scope?: "conversation" | "user";
                /** @description Messages before it, 0-100. */
                before?: number;
                /** @description Messages after it, 0-100. */
                after?: number;
            };
            header?: never;
            path: {
                /** @description The message id. A value outside the id grammar is a 404, not a 400. `/v1/messages/batch` is also this path: GET, PATCH and DELETE on it address the message whose id is `batch`. */
                id: components["parameters"]["MessageId"];
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The message and its neighbours. */
            200: {
                headers: {
                    "Cache-Control": components["headers"]["CacheControlNoStore"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["MessageContext"];
                };
            };
            400: components["responses"]["InvalidQuery"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["MessageNotFound"];
            413: components["responses"]["PayloadTooLarge"];
            429: components["responses"]["RateLimited"];
            500: components["responses"]["InternalError"];
            503: components["responses"]["ServiceUnavailable"];
        };
    };
    listUserMessages: {
        parameters: {
            query?: {
                /** @description Page size, 1-100 (ASCII digits only). */
                limit?: components["parameters"]["Limit"];
                /** @description By `timestamp`: `desc` (newest first, the default) or `asc`. */
                order?: components["parameters"]["Order"];
                /** @description Inclusive lower bound on `timestamp` (ASCII digits only, at most 16); must not exceed `end`. */
                start?: components["parameters"]["Start"];
                /** @description Inclusive upper bound on `timestamp` (ASCII digits only, at most 16). */
                end?: components["parameters"]["End"];
                /** @description `next_cursor` from the previous page of the same query (same scope, `order`, `start`, `end`); anything else is a 400. */
                cursor?: components["parameters"]["Cursor"];
            };
            header?: never;
            path: {
                /** @description The user; invalid ids are a 400. */
                user_id: components["parameters"]["UserId"];
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description A page of messages. */
            200: {
                headers: {
                    "Cache-Control": components["headers"]["CacheControlNoStore"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Page"];
                };
            };
            400: components["responses"]["InvalidQuery"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["RouteNotFound"];
            413: components["responses"]["PayloadTooLarge"];
            429: components["responses"]["RateLimited"];
            500: components["responses"]["InternalError"];
            503: components["responses"]["ServiceUnavailable"];
        };
    };
    eraseUserMessages: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description The user; invalid ids are a 400. */
                user_id: components["parameters"]["UserId"];
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description What was deleted and what remains. */
            200: {
                headers: {
                    "Cache-Control": components["headers"]["CacheControlNoStore"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["EraseResult"];
                };
            };
            400: components["responses"]["InvalidQuery"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["RouteNotFound"];
            413: components["responses"]["PayloadTooLarge"];
            429: components["responses"]["RateLimited"];
            500: components["responses"]["InternalError"];
            503: components["responses"]["ServiceUnavailable"];
        };
    };
    countUserMessages: {
        parameters: {
            query?: {
                /** @description Inclusive lower bound on `timestamp` (ASCII digits only, at most 16); must not exceed `end`. */
                start?: components["parameters"]["Start"];
                /** @description Inclusive upper bound on `timestamp` (ASCII digits only, at most 16). */
                end?: components["parameters"]["End"];
            };
            header?: never;
            path: {
                /** @description The user; invalid ids are a 400. */
                user_id: components["parameters"]["UserId"];
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The count. */
            200: {
                headers: {
                    "Cache-Control": components["headers"]["CacheControlNoStore"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Count"];
                };
            };
            400: components["responses"]["InvalidQuery"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["RouteNotFound"];
            413: components["responses"]["PayloadTooLarge"];
            429: components["responses"]["RateLimited"];
            500: components["responses"]["InternalError"];
            503: components["responses"]["ServiceUnavailable"];
        };
    };
    exportUserMessages: {
        parameters: {
            query?: {
                /** @description Messages per response, 1-500 (ASCII digits only). */
                limit?: number;
                /** @description `next_cursor` from the previous page of the same query (same scope, `order`, `start`, `end`); anything else is a 400. */
                cursor?: components["parameters"]["Cursor"];
            };
            header?: never;
            path: {
                /** @description The user; invalid ids are a 400. */
                user_id: components["parameters"]["UserId"];
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Messages, one JSON document per line. */
            200: {
                headers: {
                    "Cache-Control": components["headers"]["CacheControlNoStore"];
                    /** @description `<{path}?limit={limit}&cursor={cursor}>; rel="next"` while more messages follow. */
                    Link?: string;
                    /** @description The same cursor, while more messages follow. */
                    "Chat-Store-Next-Cursor"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/x-ndjson": string;
                };
            };
            400: components["responses"]["InvalidQuery"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["RouteNotFound"];
            413: components["responses"]["PayloadTooLarge"];
            429: components["responses"]["RateLimited"];
            500: components["responses"]["InternalError"];
            503: components["responses"]["ServiceUnavailable"];
        };
    };
    listConversationMessages: {
        parameters: {
            query?: {
                /** @description Page size, 1-100 (ASCII digits only). */
                limit?: components["parameters"]["Limit"];
                /** @description By `timestamp`: `desc` (newest first, the default) or `asc`. */
                order?: components["parameters"]["Order"];
                /** @description Inclusive lower bound on `timestamp` (ASCII digits only, at most 16); must not exceed `end`. */
                start?: components["parameters"]["Start"];
                /** @description Inclusive upper bound on `timestamp` (ASCII digits only, at most 16). */
                end?: components["parameters"]["End"];
                /** @description `next_cursor` from the previous page of the same query (same scope, `order`, `start`, `end`); anything else is a 400. */
                cursor?: components["parameters"]["Cursor"];
            };
            header?: never;
            path: {
                /** @description The conversation; invalid ids are a 400. */
                conversation_id: components["parameters"]["ConversationId"];
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description A page of messages. */
            200: {
                headers: {
                    "Cache-Control": components["headers"]["CacheControlNoStore"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Page"];
                };
            };
            400: components["responses"]["InvalidQuery"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["RouteNotFound"];
            413: components["responses"]["PayloadTooLarge"];
            429: components["responses"]["RateLimited"];
            500: components["responses"]["InternalError"];
            503: components["responses"]["ServiceUnavailable"];
        };
    };
    eraseConversationMessages: {
        parameters: {
            query?: {
                /** @description Truncate after this message (exclusive) instead of erasing everything. */
                after?: components["schemas"]["Id"];
            };
            header?: never;
            path: {
                /** @description The conversation; invalid ids are a 400. */
                conversation_id: components["parameters"]["ConversationId"];
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description What was deleted and what remains. */
            200: {
                headers: {
                    "Cache-Control": components["headers"]["CacheControlNoStore"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["EraseResult"];
                };
            };
            400: components["responses"]["InvalidQuery"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["MessageNotFound"];
            413: components["responses"]["PayloadTooLarge"];
            429: components["responses"]["RateLimited"];
            500: components["responses"]["InternalError"];
            503: components["responses"]["ServiceUnavailable"];
        };
    };
    countConversationMessages: {
        parameters: {
            query?: {
                /** @description Inclusive lower bound on `timestamp` (ASCII digits only, at most 16); must not exceed `end`. */
                start?: components["parameters"]["Start"];
                /** @description Inclusive upper bound on `timestamp` (ASCII digits only, at most 16). */
                end?: components["parameters"]["End"];
            };
            header?: never;
            path: {
                /** @description The conversation; invalid ids are a 400. */
                conversation_id: components["parameters"]["ConversationId"];
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The count. */
            200: {
                headers: {
                    "Cache-Control": components["headers"]["CacheControlNoStore"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Count"];
                };
            };
            400: components["responses"]["InvalidQuery"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["RouteNotFound"];
            413: components["responses"]["PayloadTooLarge"];
            429: components["responses"]["RateLimited"];
            500: components["responses"]["InternalError"];
            503: components["responses"]["ServiceUnavailable"];
        };
    };
    exportConversationMessages: {
        parameters: {
            query?: {
                /** @description Messages per response, 1-500 (ASCII digits only). */
                limit?: number;
                /** @description `next_cursor` from the previous page of the same query (same scope, `order`, `start`, `end`); anything else is a 400. */
                cursor?: components["parameters"]["Cursor"];
            };
            header?: never;
            path: {
                /** @description The conversation; invalid ids are a 400. */
                conversation_id: components["parameters"]["ConversationId"];
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Messages, one JSON document per line. */
            200: {
                headers: {
                    "Cache-Control": components["headers"]["CacheControlNoStore"];
                    /** @description `<{path}?limit={limit}&cursor={cursor}>; rel="next"` while more messages follow. */
                    Link?: string;
                    /** @description The same cursor, while more messages follow. */
                    "Chat-Store-Next-Cursor"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/x-ndjson": string;
                };
            };
            400: components["responses"]["InvalidQuery"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["RouteNotFound"];
            413: components["responses"]["PayloadTooLarge"];
            429: components["responses"]["RateLimited"];
            500: components["responses"]["InternalError"];
            503: components["responses"]["ServiceUnavailable"];
        };
    };
    listUserConversations: {
        parameters: {
            query?: {
                /** @description Page size, 1-100 (ASCII digits only). */
                limit?: components["parameters"]["ConversationLimit"];
                /** @description By `timestamp`: `desc` (newest first, the default) or `asc`. */
                order?: components["parameters"]["Order"];
                /** @description Inclusive lower bound on `timestamp` (ASCII digits only, at most 16); must not exceed `end`. */
                start?: components["parameters"]["Start"];
                /** @description Inclusive upper bound on `timestamp` (ASCII digits only, at most 16). */
                end?: components["parameters"]["End"];
                /** @description `next_cursor` from the previous page of the same query (same scope, `order`, `start`, `end`); anything else is a 400. */
                cursor?: components["parameters"]["Cursor"];
            };
            header?: never;
            path: {
                /** @description The user; invalid ids are a 400. */
                user_id: components["parameters"]["UserId"];
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description A page of conversations. */
            200: {
                headers: {
                    "Cache-Control": components["headers"]["CacheControlNoStore"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ConversationPage"];
                };
            };
            400: components["responses"]["InvalidQuery"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["RouteNotFound"];
            413: components["responses"]["PayloadTooLarge"];
            429: components["responses"]["RateLimited"];
            500: components["responses"]["InternalError"];
            503: components["responses"]["ServiceUnavailable"];
        };
    };
    getConversation: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description The conversation; invalid ids are a 400. */
                conversation_id: components["parameters"]["ConversationId"];
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The conversation. */
            200: {
                headers: {
                    "Cache-Control": components["headers"]["CacheControlNoStore"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ConversationEnvelope"];
                };
            };
            401: components["responses"]["Unauthorized"];
            404: components["responses"]["ConversationNotFound"];
            413: components["responses"]["PayloadTooLarge"];
            429: components["responses"]["RateLimited"];
            500: components["responses"]["InternalError"];
            503: components["responses"]["ServiceUnavailable"];
        };
    };
    patchConversation: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description The conversation; invalid ids are a 400. */
                conversation_id: components["parameters"]["ConversationId"];
            };
            cookie?: never;
        };
        /** @description The fields to set. Strict JSON: duplicate member names, NaN/Infinity, numbers out of range, a byte order mark, invalid UTF-8 and nesting deeper than 32 levels are `invalid_json`. */
        requestBody: {
            content: {
                "application/json": components["schemas"]["ConversationPatch"];
            };
        };
        responses: {
            /** @description The conversation. */
            200: {
                headers: {
                    "Cache-Control": components["headers"]["CacheControlNoStore"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ConversationEnvelope"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            404: components["responses"]["ConversationNotFound"];
            413: components["responses"]["PayloadTooLarge"];
            415: components["responses"]["UnsupportedMediaType"];
            429: components["responses"]["RateLimited"];
            500: components["responses"]["InternalError"];
            503: components["responses"]["ServiceUnavailable"];
        };
    };
    reindex: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** @description Which index to rebuild. Strict JSON: duplicate member names, NaN/Infinity, numbers out of range, a byte order mark, invalid UTF-8 and nesting deeper than 32 levels are `invalid_json`. */
        requestBody: {
            content: {
                "application/json": components["schemas"]["ReindexRequest"];
            };
        };
        responses: {
            /** @description The rebuilt index. */
            200: {
                headers: {
                    "Cache-Control": components["headers"]["CacheControlNoStore"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ReindexResult"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            413: components["responses"]["PayloadTooLarge"];
            415: components["responses"]["UnsupportedMediaType"];
            429: components["responses"]["RateLimited"];
            500: components["responses"]["InternalError"];
            503: components["responses"]["ServiceUnavailable"];
        };
    };
}
