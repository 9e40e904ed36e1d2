"""The OpenAPI 3.1 document served at ``GET /openapi.json``.

GENERATED from openapi.json by scripts/gen_openapi_module.py; do not edit by hand (edit
openapi.json and rerun the script). tests/test_openapi.py checks that the two agree.
"""

from __future__ import annotations

from typing import Any

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
    "info": {
        "title": "chat-store",
        "version": "0.1.0",
        "summary": "Chat-history store: a Python Cloudflare Worker over Workers KV",
        "description": (
            "A chat-history store: a Python Cloudflare Worker over Workers KV.\n"
            "\n"
            "**Authentication** (every `/v1` route; `/health` and `/openapi.json` are open):\n"
            "\n"
            "* `Authorization: Bearer <API_TOKEN>`: the service token, full access.\n"
            "* `Authorization: Bearer <JWT>`: a user token, HS256-signed with `JWT_SECRET` (when "
            "set), whose `sub` is the user id and whose `conversations` claim lists the "
            "conversations it may reach. A user token only reaches its own user's messages "
            "(another user's message is a 404, as if missing; creating for another `user_id` is a "
            "403), only the conversations it lists, and no service-only operation (403).\n"
            "* `Cf-Access-Jwt-Assertion: <JWT>`: a Cloudflare Access RS256 assertion (when Access "
            "is configured), used only when there is no `Authorization` header; the user id is its "
            "`sub`.\n"
            "\n"
            "An `Authorization` header, once sent, decides: a wrong one fails even if an Access "
            "assertion is also present. Under `/v1` credentials are checked before routing, so an "
            "unknown path or a wrong method without a valid credential is a 401, not a 404 or "
            "405.\n"
            "\n"
            "**Errors** are RFC 9457 problem documents (`application/problem+json`) with a stable "
            "`code`. Unknown paths are `not_found` (404); a known path under another method is "
            "`method_not_allowed` (405) with `Allow`. `HEAD` is answered wherever `GET` is, with "
            "the same status and headers and no body.\n"
            "\n"
            "**Caching**: every `/v1` response carries `Cache-Control: no-store`.\n"
            "\n"
            "**CORS**: browsers from the origins in `CORS_ORIGINS` (none by default) are allowed. "
            "A preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) is answered "
            "`204` on any path, before authentication; for an allowlisted origin it carries "
            "`Access-Control-Allow-Origin`, `-Methods` (GET, POST, PATCH, DELETE), `-Headers` "
            "(authorization, content-type) and `-Max-Age`, and otherwise no CORS headers. "
            "Responses to allowlisted origins carry `Access-Control-Allow-Origin` and expose "
            "`Retry-After`; once any origin is configured, every response carries `Vary: Origin`.\n"
            "\n"
            "**Request bodies** are strict JSON sent as `application/json` (any `+json` type is "
            "accepted): unknown fields, wrong types and out-of-range values are refused, and "
            "nothing is coerced."
        ),
    },
    "servers": [
        {
            "url": "http://localhost:8787",
            "description": "wrangler dev",
        },
    ],
    "security": [
        {
            "bearerAuth": [],
        },
        {
            "cloudflareAccess": [],
        },
    ],
    "tags": [
        {
            "name": "Messages",
        },
        {
            "name": "Users",
        },
        {
            "name": "Conversations",
        },
        {
            "name": "Admin",
        },
        {
            "name": "Service",
        },
    ],
    "paths": {
        "/health": {
            "get": {
                "operationId": "getHealth",
                "summary": "Liveness",
                "description": "Always 200 while the Worker runs; no credentials.",
                "tags": [
                    "Service",
                ],
                "security": [],
                "responses": {
                    "200": {
                        "description": "Alive.",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "$ref": "#/components/schemas/Health",
                                },
                            },
                        },
                    },
                    "413": {
                        "$ref": "#/components/responses/PayloadTooLargeUnversioned",
                    },
                    "500": {
                        "$ref": "#/components/responses/InternalErrorUnversioned",
                    },
                },
            },
        },
        "/openapi.json": {
            "get": {
                "operationId": "getOpenAPI",
                "summary": "This document",
                "description": "The OpenAPI 3.1 description of this API; no credentials.",
                "tags": [
                    "Service",
                ],
                "security": [],
                "responses": {
                    "200": {
                        "description": "The document.",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "$ref": "#/components/schemas/OpenAPIDocument",
                                },
                            },
                        },
                    },
                    "413": {
                        "$ref": "#/components/responses/PayloadTooLargeUnversioned",
                    },
                    "500": {
                        "$ref": "#/components/responses/InternalErrorUnversioned",
                    },
                },
            },
        },
        "/v1/messages": {
            "post": {
                "operationId": "createMessage",
                "summary": "Create a message",
                "description": (
                    "Stores one message. With a client-chosen `id` the create is idempotent: an "
                    "identical replay returns the stored message with 200. A user token may create "
                    "messages only for its own `user_id`, in conversations its `conversations` "
                    "claim lists."
                ),
                "tags": [
                    "Messages",
                ],
                "requestBody": {
                    "required": True,
                    "description": (
                        "The message. Strict JSON: duplicate member names, NaN/Infinity, numbers "
                        "out of range, a byte order mark, invalid UTF-8 and nesting deeper than 32 "
                        "levels are `invalid_json`."
                    ),
                    "content": {
                        "application/json": {
                            "schema": {
                                "$ref": "#/components/schemas/MessageCreate",
                            },
                        },
                    },
                },
                "responses": {
                    "200": {
                        "description": "Identical replay: the stored message, unchanged.",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "$ref": "#/components/schemas/MessageEnvelope",
                                },
                            },
                        },
                        "headers": {
                            "Cache-Control": {
                                "$ref": "#/components/headers/CacheControlNoStore",
                            },
                        },
                    },
                    "201": {
                        "description": "Created.",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "$ref": "#/components/schemas/MessageEnvelope",
                                },
                            },
                        },
                        "headers": {
                            "Cache-Control": {
                                "$ref": "#/components/headers/CacheControlNoStore",
                            },
                        },
                    },
                    "400": {
                        "$ref": "#/components/responses/BadRequest",
                    },
                    "401": {
                        "$ref": "#/components/responses/Unauthorized",
                    },
                    "403": {
                        "$ref": "#/components/responses/Forbidden",
                    },
                    "409": {
                        "$ref": "#/components/responses/Conflict",
                    },
                    "413": {
                        "$ref": "#/components/responses/PayloadTooLarge",
                    },
                    "415": {
                        "$ref": "#/components/responses/UnsupportedMediaType",
                    },
                    "429": {
                        "$ref": "#/components/responses/RateLimited",
                    },
                    "500": {
                        "$ref": "#/components/responses/InternalError",
                    },
                    "503": {
                        "$ref": "#/components/responses/ServiceUnavailable",
                    },
                },
            },
        },
        "/v1/messages/batch": {
            "post": {
                "operationId": "createMessages",
                "summary": "Create up to 100 messages at once",
                "description": (
                    "All or nothing: every item is validated and checked for conflicts before "
                    "anything is written. 201 if any message was new, 200 if all were identical "
                    "replays. Errors about one item carry its position in `index`. A user token "
                    "may create messages only for its own `user_id`, in conversations its "
                    "`conversations` claim lists."
                ),
                "tags": [
                    "Messages",
                ],
                "requestBody": {
                    "required": True,
                    "description": (
                        "The messages. Strict JSON: duplicate member names, NaN/Infinity, numbers "
                        "out of range, a byte order mark, invalid UTF-8 and nesting deeper than 32 "
                        "levels are `invalid_json`."
                    ),
                    "content": {
                        "application/json": {
                            "schema": {
                                "$ref": "#/components/schemas/BatchCreate",
                            },
                        },
                    },
                },
                "responses": {
                    "200": {
                        "description": "All were identical replays.",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "$ref": "#/components/schemas/MessageList",
                                },
                            },
                        },
                        "headers": {
                            "Cache-Control": {
                                "$ref": "#/components/headers/CacheControlNoStore",
                            },
                        },
                    },
                    "201": {
                        "description": (
                            "At least one message was created; all are returned in request order."
                        ),
                        "content": {
                            "application/json": {
                                "schema": {
                                    "$ref": "#/components/schemas/MessageList",
                                },
                            },
                        },
                        "headers": {
                            "Cache-Control": {
                                "$ref": "#/components/headers/CacheControlNoStore",
                            },
                        },
                    },
                    "400": {
                        "$ref": "#/components/responses/BadRequest",
                    },
                    "401": {
                        "$ref": "#/components/responses/Unauthorized",
                    },
                    "403": {
                        "$ref": "#/components/responses/Forbidden",
                    },
                    "409": {
                        "$ref": "#/components/responses/Conflict",
                    },
                    "413": {
                        "$ref": "#/components/responses/PayloadTooLarge",
                    },
                    "415": {
                        "$ref": "#/components/responses/UnsupportedMediaType",
                    },
                    "429": {
                        "$ref": "#/components/responses/RateLimited",
                    },
                    "500": {
                        "$ref": "#/components/responses/InternalError",
                    },
                    "503": {
                        "$ref": "#/components/responses/ServiceUnavailable",
                    },
                },
            },
        },
        "/v1/messages/{id}": {
            "parameters": [
                {
                    "$ref": "#/components/parameters/MessageId",
                },
            ],
            "get": {
                "operationId": "getMessage",
                "summary": "Get a message",
                "description": (
                    "A user token sees only its own user's messages; any other is a 404."
                ),
                "tags": [
                    "Messages",
                ],
                "responses": {
                    "200": {
                        "description": "The message.",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "$ref": "#/components/schemas/MessageEnvelope",
                                },
                            },
                        },
                        "headers": {
                            "Cache-Control": {
                                "$ref": "#/components/headers/CacheControlNoStore",
                            },
                        },
                    },
                    "401": {
                        "$ref": "#/components/responses/Unauthorized",
                    },
                    "404": {
                        "$ref": "#/components/responses/MessageNotFound",
                    },
                    "413": {
                        "$ref": "#/components/responses/PayloadTooLarge",
                    },
                    "429": {
                        "$ref": "#/components/responses/RateLimited",
                    },
                    "500": {
                        "$ref": "#/components/responses/InternalError",
                    },
                    "503": {
                        "$ref": "#/components/responses/ServiceUnavailable",
                    },
                },
            },
            "patch": {
                "operationId": "patchMessage",
                "summary": "Edit a message",
                "description": (
                    "Replaces the given fields and sets `edited_at` (unless nothing changed). A "
                    "user token may edit only its own user's messages; any other is a 404."
                ),
                "tags": [
                    "Messages",
                ],
                "requestBody": {
                    "required": True,
                    "description": (
                        "The fields to change. Strict JSON: duplicate member names, NaN/Infinity, "
                        "numbers out of range, a byte order mark, invalid UTF-8 and nesting deeper "
                        "than 32 levels are `invalid_json`."
                    ),
                    "content": {
                        "application/json": {
                            "schema": {
                                "$ref": "#/components/schemas/MessagePatch",
                            },
                        },
                    },
                },
                "responses": {
                    "200": {
                        "description": "The updated message.",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "$ref": "#/components/schemas/MessageEnvelope",
                                },
                            },
                        },
                        "headers": {
                            "Cache-Control": {
                                "$ref": "#/components/headers/CacheControlNoStore",
                            },
                        },
                    },
                    "400": {
                        "$ref": "#/components/responses/BadRequest",
                    },
                    "401": {
                        "$ref": "#/components/responses/Unauthorized",
                    },
                    "404": {
                        "$ref": "#/components/responses/MessageNotFound",
                    },
                    "413": {
                        "$ref": "#/components/responses/PayloadTooLarge",
                    },
                    "415": {
                        "$ref": "#/components/responses/UnsupportedMediaType",
                    },
                    "429": {
                        "$ref": "#/components/responses/RateLimited",
                    },
                    "500": {
                        "$ref": "#/components/responses/InternalError",
                    },
                    "503": {
                        "$ref": "#/components/responses/ServiceUnavailable",
                    },
                },
            },
            "delete": {
                "operationId": "deleteMessage",
                "summary": "Delete a message",
                "description": (
                    "A user token may delete only its own user's messages; any other is a 404."
                ),
                "tags": [
                    "Messages",
                ],
                "responses": {
                    "204": {
                        "description": "Deleted.",
                        "headers": {
                            "Cache-Control": {
                                "$ref": "#/components/headers/CacheControlNoStore",
                            },
                        },
                    },
                    "401": {
                        "$ref": "#/components/responses/Unauthorized",
                    },
                    "404": {
                        "$ref": "#/components/responses/MessageNotFound",
                    },
                    "413": {
                        "$ref": "#/components/responses/PayloadTooLarge",
                    },
                    "429": {
                        "$ref": "#/components/responses/RateLimited",
                    },
                    "500": {
                        "$ref": "#/components/responses/InternalError",
                    },
                    "503": {
                        "$ref": "#/components/responses/ServiceUnavailable",
                    },
                },
            },
        },
        "/v1/users/{user_id}/messages": {
            "get": {
                "operationId": "listUserMessages",
                "summary": "List a user's messages",
                "description": (
                    "One page of the user's messages ordered by `timestamp`, then id. Follow "
                    "`next_cursor` (with the same query) until it is null. Unknown query "
                    "parameters and a parameter given twice are refused (400). A user token may "
                    "list only its own user."
                ),
                "tags": [
                    "Users",
                ],
                "parameters": [
                    {
                        "$ref": "#/components/parameters/UserId",
                    },
                    {
                        "$ref": "#/components/parameters/Limit",
                    },
                    {
                        "$ref": "#/components/parameters/Order",
                    },
                    {
                        "$ref": "#/components/parameters/Start",
                    },
                    {
                        "$ref": "#/components/parameters/End",
                    },
                    {
                        "$ref": "#/components/parameters/Cursor",
                    },
                ],
                "responses": {
                    "200": {
                        "description": "A page of messages.",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "$ref": "#/components/schemas/Page",
                                },
                            },
                        },
                        "headers": {
                            "Cache-Control": {
                                "$ref": "#/components/headers/CacheControlNoStore",
                            },
                        },
                    },
                    "400": {
                        "$ref": "#/components/responses/InvalidQuery",
                    },
                    "401": {
                        "$ref": "#/components/responses/Unauthorized",
                    },
                    "403": {
                        "$ref": "#/components/responses/Forbidden",
                    },
                    "404": {
                        "$ref": "#/components/responses/RouteNotFound",
                    },
                    "413": {
                        "$ref": "#/components/responses/PayloadTooLarge",
                    },
                    "429": {
                        "$ref": "#/components/responses/RateLimited",
                    },
                    "500": {
                        "$ref": "#/components/responses/InternalError",
                    },
                    "503": {
                        "$ref": "#/components/responses/ServiceUnavailable",
                    },
                },
            },
            "delete": {
                "operationId": "eraseUserMessages",
                "summary": "Erase a user's messages",
                "description": (
                    "Deletes up to 400 of the user's messages (from every index they are in) and "
                    "says how many remain; repeat until `remaining` is 0. A user token may erase "
                    "only its own user's messages."
                ),
                "tags": [
                    "Users",
                ],
                "parameters": [
                    {
                        "$ref": "#/components/parameters/UserId",
                    },
                ],
                "responses": {
                    "200": {
                        "description": "What was deleted and what remains.",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "$ref": "#/components/schemas/EraseResult",
                                },
                            },
                        },
                        "headers": {
                            "Cache-Control": {
                                "$ref": "#/components/headers/CacheControlNoStore",
                            },
                        },
                    },
                    "400": {
                        "$ref": "#/components/responses/InvalidQuery",
                    },
                    "401": {
                        "$ref": "#/components/responses/Unauthorized",
                    },
                    "403": {
                        "$ref": "#/components/responses/Forbidden",
                    },
                    "404": {
                        "$ref": "#/components/responses/RouteNotFound",
                    },
                    "413": {
                        "$ref": "#/components/responses/PayloadTooLarge",
                    },
                    "429": {
                        "$ref": "#/components/responses/RateLimited",
                    },
                    "500": {
                        "$ref": "#/components/responses/InternalError",
                    },
                    "503": {
                        "$ref": "#/components/responses/ServiceUnavailable",
                    },
                },
            },
        },
        "/v1/users/{user_id}/messages/count": {
            "get": {
                "operationId": "countUserMessages",
                "summary": "Count a user's messages",
                "description": (
                    "How many of the user's messages have `start` <= `timestamp` <= `end`. Only "
                    "`start` and `end` are accepted. Unknown query parameters and a parameter "
                    "given twice are refused (400)."
                ),
                "tags": [
                    "Users",
                ],
                "parameters": [
                    {
                        "$ref": "#/components/parameters/UserId",
                    },
                    {
                        "$ref": "#/components/parameters/Start",
                    },
                    {
                        "$ref": "#/components/parameters/End",
                    },
                ],
                "responses": {
                    "200": {
                        "description": "The count.",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "$ref": "#/components/schemas/Count",
                                },
                            },
                        },
                        "headers": {
                            "Cache-Control": {
                                "$ref": "#/components/headers/CacheControlNoStore",
                            },
                        },
                    },
                    "400": {
                        "$ref": "#/components/responses/InvalidQuery",
                    },
                    "401": {
                        "$ref": "#/components/responses/Unauthorized",
                    },
                    "403": {
                        "$ref": "#/components/responses/Forbidden",
                    },
                    "404": {
                        "$ref": "#/components/responses/RouteNotFound",
                    },
                    "413": {
                        "$ref": "#/components/responses/PayloadTooLarge",
                    },
                    "429": {
                        "$ref": "#/components/responses/RateLimited",
                    },
                    "500": {
                        "$ref": "#/components/responses/InternalError",
                    },
                    "503": {
                        "$ref": "#/components/responses/ServiceUnavailable",
                    },
                },
            },
        },
        "/v1/conversations/{conversation_id}/messages": {
            "get": {
                "operationId": "listConversationMessages",
                "summary": "List a conversation's messages",
                "description": (
                    "One page of the conversation's messages ordered by `timestamp`, then id. "
                    "Follow `next_cursor` (with the same query) until it is null. Unknown query "
                    "parameters and a parameter given twice are refused (400). A user token may "
                    "list only conversations in its `conversations` claim."
                ),
                "tags": [
                    "Conversations",
                ],
                "parameters": [
                    {
                        "$ref": "#/components/parameters/ConversationId",
                    },
                    {
                        "$ref": "#/components/parameters/Limit",
                    },
                    {
                        "$ref": "#/components/parameters/Order",
                    },
                    {
                        "$ref": "#/components/parameters/Start",
                    },
                    {
                        "$ref": "#/components/parameters/End",
                    },
                    {
                        "$ref": "#/components/parameters/Cursor",
                    },
                ],
                "responses": {
                    "200": {
                        "description": "A page of messages.",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "$ref": "#/components/schemas/Page",
                                },
                            },
                        },
                        "headers": {
                            "Cache-Control": {
                                "$ref": "#/components/headers/CacheControlNoStore",
                            },
                        },
                    },
                    "400": {
                        "$ref": "#/components/responses/InvalidQuery",
                    },
                    "401": {
                        "$ref": "#/components/responses/Unauthorized",
                    },
                    "403": {
                        "$ref": "#/components/responses/Forbidden",
                    },
                    "404": {
                        "$ref": "#/components/responses/RouteNotFound",
                    },
                    "413": {
                        "$ref": "#/components/responses/PayloadTooLarge",
                    },
                    "429": {
                        "$ref": "#/components/responses/RateLimited",
                    },
                    "500": {
                        "$ref": "#/components/responses/InternalError",
                    },
                    "503": {
                        "$ref": "#/components/responses/ServiceUnavailable",
                    },
                },
            },
            "delete": {
                "operationId": "eraseConversationMessages",
                "summary": "Erase a conversation's messages",
                "description": (
                    "Deletes up to 400 of the conversation's messages (from every index they are "
                    "in) and says how many remain; repeat until `remaining` is 0. Service token "
                    "only: a conversation holds other users' messages."
                ),
                "tags": [
                    "Conversations",
                ],
                "parameters": [
                    {
                        "$ref": "#/components/parameters/ConversationId",
                    },
                ],
                "responses": {
                    "200": {
                        "description": "What was deleted and what remains.",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "$ref": "#/components/schemas/EraseResult",
                                },
                            },
                        },
                        "headers": {
                            "Cache-Control": {
                                "$ref": "#/components/headers/CacheControlNoStore",
                            },
                        },
                    },
                    "400": {
                        "$ref": "#/components/responses/InvalidQuery",
                    },
                    "401": {
                        "$ref": "#/components/responses/Unauthorized",
                    },
                    "403": {
                        "$ref": "#/components/responses/Forbidden",
                    },
                    "404": {
                        "$ref": "#/components/responses/RouteNotFound",
                    },
                    "413": {
                        "$ref": "#/components/responses/PayloadTooLarge",
                    },
                    "429": {
                        "$ref": "#/components/responses/RateLimited",
                    },
                    "500": {
                        "$ref": "#/components/responses/InternalError",
                    },
                    "503": {
                        "$ref": "#/components/responses/ServiceUnavailable",
                    },
                },
            },
        },
        "/v1/conversations/{conversation_id}/messages/count": {
            "get": {
                "operationId": "countConversationMessages",
                "summary": "Count a conversation's messages",
                "description": (
                    "How many of the conversation's messages have `start` <= `timestamp` <= `end`. "
                    "Only `start` and `end` are accepted. Unknown query parameters and a parameter "
                    "given twice are refused (400)."
                ),
                "tags": [
                    "Conversations",
                ],
                "parameters": [
                    {
                        "$ref": "#/components/parameters/ConversationId",
                    },
                    {
                        "$ref": "#/components/parameters/Start",
                    },
                    {
                        "$ref": "#/components/parameters/End",
                    },
                ],
                "responses": {
                    "200": {
                        "description": "The count.",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "$ref": "#/components/schemas/Count",
                                },
                            },
                        },
                        "headers": {
                            "Cache-Control": {
                                "$ref": "#/components/headers/CacheControlNoStore",
                            },
                        },
                    },
                    "400": {
                        "$ref": "#/components/responses/InvalidQuery",
                    },
                    "401": {
                        "$ref": "#/components/responses/Unauthorized",
                    },
                    "403": {
                        "$ref": "#/components/responses/Forbidden",
                    },
                    "404": {
                        "$ref": "#/components/responses/RouteNotFound",
                    },
                    "413": {
                        "$ref": "#/components/responses/PayloadTooLarge",
                    },
                    "429": {
                        "$ref": "#/components/responses/RateLimited",
                    },
                    "500": {
                        "$ref": "#/components/responses/InternalError",
                    },
                    "503": {
                        "$ref": "#/components/responses/ServiceUnavailable",
                    },
                },
            },
        },
        "/v1/admin/reindex": {
            "post": {
                "operationId": "reindex",
                "summary": "Rebuild a user's or conversation's index",
                "description": (
                    "Rebuilds the index from the message records' KV metadata (repair after a "
                    "partial failure). Service token only."
                ),
                "tags": [
                    "Admin",
                ],
                "requestBody": {
                    "required": True,
                    "description": (
                        "Which index to rebuild. Strict JSON: duplicate member names, "
                        "NaN/Infinity, numbers out of range, a byte order mark, invalid UTF-8 and "
                        "nesting deeper than 32 levels are `invalid_json`."
                    ),
                    "content": {
                        "application/json": {
                            "schema": {
                                "$ref": "#/components/schemas/ReindexRequest",
                            },
                        },
                    },
                },
                "responses": {
                    "200": {
                        "description": "The rebuilt index.",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "$ref": "#/components/schemas/ReindexResult",
                                },
                            },
                        },
                        "headers": {
                            "Cache-Control": {
                                "$ref": "#/components/headers/CacheControlNoStore",
                            },
                        },
                    },
                    "400": {
                        "$ref": "#/components/responses/BadRequest",
                    },
                    "401": {
                        "$ref": "#/components/responses/Unauthorized",
                    },
                    "403": {
                        "$ref": "#/components/responses/Forbidden",
                    },
                    "413": {
                        "$ref": "#/components/responses/PayloadTooLarge",
                    },
                    "415": {
                        "$ref": "#/components/responses/UnsupportedMediaType",
                    },
                    "429": {
                        "$ref": "#/components/responses/RateLimited",
                    },
                    "500": {
                        "$ref": "#/components/responses/InternalError",
                    },
                    "503": {
                        "$ref": "#/components/responses/ServiceUnavailable",
                    },
                },
            },
        },
    },
    "components": {
        "schemas": {
            "Id": {
                "type": "string",
                "pattern": "^(?!\\.\\.?$)[A-Za-z0-9._~-]{1,128}$",
                "description": (
                    "1-128 characters of `[A-Za-z0-9._~-]`, except `.` and `..` (URL dot segments, "
                    "which could never be addressed in a path)."
                ),
            },
            "Timestamp": {
                "type": "integer",
                "minimum": 0,
                "maximum": 9007199254740991,
                "description": (
                    "Unix milliseconds, 0..2^53-1, written as a JSON integer: `1.0`, `1e3` and "
                    "`\"5\"` are refused (nothing is coerced)."
                ),
            },
            "Sender": {
                "type": "object",
                "additionalProperties": False,
                "required": [
                    "id",
                ],
                "properties": {
                    "id": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": 128,
                        "description": (
                            "Any string of 1-128 characters (not restricted to the id grammar)."
                        ),
                    },
                    "name": {
                        "type": "string",
                    },
                    "role": {
                        "type": "string",
                    },
                },
                "description": (
                    "Who wrote the message. Its compact UTF-8 JSON encoding must fit in "
                    "`MAX_SENDER_BYTES` (4096 bytes by default), else 413."
                ),
            },
            "Content": {
                "type": "string",
                "description": (
                    "The message text. Limited in UTF-8 bytes, not characters: `MAX_CONTENT_BYTES` "
                    "(65536 by default), else 413. Strings must be valid Unicode (a lone surrogate "
                    "escape such as `\\ud800` is refused)."
                ),
            },
            "Metadata": {
                "type": "object",
                "description": (
                    "Free-form JSON object stored as given. Its compact UTF-8 JSON encoding must "
                    "fit in `MAX_METADATA_BYTES` (16384 bytes by default), else 413."
                ),
            },
            "MessageCreate": {
                "type": "object",
                "additionalProperties": False,
                "required": [
                    "user_id",
                    "sender",
                    "content",
                ],
                "properties": {
                    "id": {
                        "allOf": [
                            {
                                "$ref": "#/components/schemas/Id",
                            },
                        ],
                        "description": (
                            "Client-chosen id, which makes the create idempotent: resending "
                            "identical fields returns the stored message with 200, different "
                            "fields are a 409. Omitted: the server assigns a ULID."
                        ),
                    },
                    "user_id": {
                        "$ref": "#/components/schemas/Id",
                    },
                    "conversation_id": {
                        "$ref": "#/components/schemas/Id",
                    },
                    "sender": {
                        "$ref": "#/components/schemas/Sender",
                    },
                    "content": {
                        "$ref": "#/components/schemas/Content",
                    },
                    "timestamp": {
                        "allOf": [
                            {
                                "$ref": "#/components/schemas/Timestamp",
                            },
                        ],
                        "description": (
                            "When the message was sent; defaults to the server's clock. Listings "
                            "are ordered by it."
                        ),
                    },
                    "metadata": {
                        "$ref": "#/components/schemas/Metadata",
                    },
                },
            },
            "MessagePatch": {
                "type": "object",
                "additionalProperties": False,
                "minProperties": 1,
                "properties": {
                    "content": {
                        "$ref": "#/components/schemas/Content",
                    },
                    "sender": {
                        "$ref": "#/components/schemas/Sender",
                    },
                    "metadata": {
                        "$ref": "#/components/schemas/Metadata",
                    },
                    "timestamp": {
                        "$ref": "#/components/schemas/Timestamp",
                    },
                },
                "description": (
                    "The fields to replace (each replaced whole). `id`, `user_id` and "
                    "`conversation_id` cannot change (400)."
                ),
            },
            "BatchCreate": {
                "type": "object",
                "additionalProperties": False,
                "required": [
                    "messages",
                ],
                "properties": {
                    "messages": {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": 100,
                        "items": {
                            "$ref": "#/components/schemas/MessageCreate",
                        },
                        "description": (
                            "1-100 messages; client-chosen ids must be distinct within the batch "
                            "(400 otherwise)."
                        ),
                    },
                },
            },
            "ReindexRequest": {
                "description": "Exactly one of `user_id` or `conversation_id`.",
                "oneOf": [
                    {
                        "type": "object",
                        "additionalProperties": False,
                        "required": [
                            "user_id",
                        ],
                        "properties": {
                            "user_id": {
                                "$ref": "#/components/schemas/Id",
                            },
                        },
                    },
                    {
                        "type": "object",
                        "additionalProperties": False,
                        "required": [
                            "conversation_id",
                        ],
                        "properties": {
                            "conversation_id": {
                                "$ref": "#/components/schemas/Id",
                            },
                        },
                    },
                ],
            },
            "Message": {
                "type": "object",
                "additionalProperties": False,
                "required": [
                    "id",
                    "user_id",
                    "sender",
                    "content",
                    "timestamp",
                    "created_at",
                ],
                "properties": {
                    "id": {
                        "$ref": "#/components/schemas/Id",
                    },
                    "user_id": {
                        "$ref": "#/components/schemas/Id",
                    },
                    "conversation_id": {
                        "$ref": "#/components/schemas/Id",
                    },
                    "sender": {
                        "$ref": "#/components/schemas/Sender",
                    },
                    "content": {
                        "$ref": "#/components/schemas/Content",
                    },
                    "timestamp": {
                        "$ref": "#/components/schemas/Timestamp",
                    },
                    "metadata": {
                        "$ref": "#/components/schemas/Metadata",
                    },
                    "created_at": {
                        "type": "integer",
                        "minimum": 0,
                        "description": "Server time of the first create, Unix milliseconds.",
                    },
                    "edited_at": {
                        "type": "integer",
                        "minimum": 0,
                        "description": (
                            "Server time of the last PATCH that changed something; absent if never "
                            "edited."
                        ),
                    },
                },
            },
            "MessageEnvelope": {
                "type": "object",
                "additionalProperties": False,
                "required": [
                    "message",
                ],
                "properties": {
                    "message": {
                        "$ref": "#/components/schemas/Message",
                    },
                },
            },
            "MessageList": {
                "type": "object",
                "additionalProperties": False,
                "required": [
                    "messages",
                ],
                "properties": {
                    "messages": {
                        "type": "array",
                        "items": {
                            "$ref": "#/components/schemas/Message",
                        },
                    },
                },
            },
            "Page": {
                "type": "object",
                "additionalProperties": False,
                "required": [
                    "messages",
                    "next_cursor",
                ],
                "properties": {
                    "messages": {
                        "type": "array",
                        "maxItems": 100,
                        "items": {
                            "$ref": "#/components/schemas/Message",
                        },
                    },
                    "next_cursor": {
                        "type": [
                            "string",
                            "null",
                        ],
                        "description": (
                            "Pass as `cursor` (with the same `order`, `start` and `end`) for the "
                            "next page; null on the last page."
                        ),
                    },
                },
            },
            "Count": {
                "type": "object",
                "additionalProperties": False,
                "required": [
                    "count",
                ],
                "properties": {
                    "count": {
                        "type": "integer",
                        "minimum": 0,
                    },
                },
            },
            "EraseResult": {
                "type": "object",
                "additionalProperties": False,
                "required": [
                    "deleted",
                    "remaining",
                ],
                "properties": {
                    "deleted": {
                        "type": "integer",
                        "minimum": 0,
                        "maximum": 400,
                        "description": "Messages deleted by this request (at most 400).",
                    },
                    "remaining": {
                        "type": "integer",
                        "minimum": 0,
                        "description": "Messages still indexed; repeat the request until it is 0.",
                    },
                },
            },
            "ReindexResult": {
                "type": "object",
                "additionalProperties": False,
                "required": [
                    "index",
                    "entries",
                    "scanned",
                ],
                "properties": {
                    "index": {
                        "type": "string",
                        "pattern": "^(user|conversation):chat:(?!\\.\\.?$)[A-Za-z0-9._~-]{1,128}$",
                        "description": "The KV name of the rebuilt index.",
                    },
                    "entries": {
                        "type": "integer",
                        "minimum": 0,
                        "description": "Entries it now holds.",
                    },
                    "scanned": {
                        "type": "integer",
                        "minimum": 0,
                        "description": "Message records scanned to rebuild it.",
                    },
                },
            },
            "Health": {
                "type": "object",
                "additionalProperties": False,
                "required": [
                    "status",
                ],
                "properties": {
                    "status": {
                        "const": "ok",
                    },
                },
            },
            "OpenAPIDocument": {
                "type": "object",
                "required": [
                    "openapi",
                    "info",
                    "paths",
                ],
                "properties": {
                    "openapi": {
                        "type": "string",
                        "pattern": "^3\\.1\\.[0-9]+$",
                    },
                    "info": {
                        "type": "object",
                    },
                    "paths": {
                        "type": "object",
                    },
                },
                "description": "This document.",
            },
            "Problem": {
                "type": "object",
                "additionalProperties": False,
                "required": [
                    "type",
                    "title",
                    "status",
                    "detail",
                    "code",
                ],
                "properties": {
                    "type": {
                        "type": "string",
                        "pattern": "^https://chat-store\\.dev/problems/[a-z_]+$",
                        "description": "`https://chat-store.dev/problems/{code}`.",
                    },
                    "title": {
                        "type": "string",
                        "minLength": 1,
                    },
                    "status": {
                        "type": "integer",
                        "minimum": 400,
                        "maximum": 599,
                    },
                    "detail": {
                        "type": "string",
                        "minLength": 1,
                    },
                    "code": {
                        "type": "string",
                        "enum": [
                            "unauthorized",
                            "forbidden",
                            "not_found",
                            "method_not_allowed",
                            "conflict",
                            "payload_too_large",
                            "unsupported_media_type",
                            "invalid_json",
                            "validation_error",
                            "rate_limited",
                            "auth_not_configured",
                            "storage_unavailable",
                            "internal_error",
                        ],
                        "description": "Stable machine-readable error code; branch on this.",
                    },
                    "instance": {
                        "type": "string",
                        "description": "The request path.",
                    },
                    "index": {
                        "type": "integer",
                        "minimum": 0,
                        "description": (
                            "For batch errors (and a create's conflict): the position of the "
                            "offending message."
                        ),
                    },
                },
                "description": "An RFC 9457 problem document.",
            },
        },
        "parameters": {
            "MessageId": {
                "name": "id",
                "in": "path",
                "required": True,
                "schema": {
                    "$ref": "#/components/schemas/Id",
                },
                "description": (
                    "The message id. A value outside the id grammar is a 404, not a 400. "
                    "`/v1/messages/batch` is also this path: GET, PATCH and DELETE on it address "
                    "the message whose id is `batch`."
                ),
            },
            "UserId": {
                "name": "user_id",
                "in": "path",
                "required": True,
                "schema": {
                    "$ref": "#/components/schemas/Id",
                },
                "description": "The user; invalid ids are a 400.",
            },
            "ConversationId": {
                "name": "conversation_id",
                "in": "path",
                "required": True,
                "schema": {
                    "$ref": "#/components/schemas/Id",
                },
                "description": "The conversation; invalid ids are a 400.",
            },
            "Limit": {
                "name": "limit",
                "in": "query",
                "required": False,
                "schema": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 100,
                    "default": 50,
                },
                "description": "Page size, 1-100 (ASCII digits only).",
            },
            "Order": {
                "name": "order",
                "in": "query",
                "required": False,
                "schema": {
                    "type": "string",
                    "enum": [
                        "asc",
                        "desc",
                    ],
                    "default": "desc",
                },
                "description": "By `timestamp`: `desc` (newest first, the default) or `asc`.",
            },
            "Start": {
                "name": "start",
                "in": "query",
                "required": False,
                "schema": {
                    "type": "integer",
                    "minimum": 0,
                    "maximum": 9007199254740991,
                    "default": 0,
                },
                "description": (
                    "Inclusive lower bound on `timestamp` (ASCII digits only, at most 16); must "
                    "not exceed `end`."
                ),
            },
            "End": {
                "name": "end",
                "in": "query",
                "required": False,
                "schema": {
                    "type": "integer",
                    "minimum": 0,
                    "maximum": 9007199254740991,
                    "default": 9007199254740991,
                },
                "description": (
                    "Inclusive upper bound on `timestamp` (ASCII digits only, at most 16)."
                ),
            },
            "Cursor": {
                "name": "cursor",
                "in": "query",
                "required": False,
                "schema": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 1024,
                },
                "description": (
                    "`next_cursor` from the previous page of the same query (same scope, `order`, "
                    "`start`, `end`); anything else is a 400."
                ),
            },
        },
        "headers": {
            "CacheControlNoStore": {
                "description": "Every response under `/v1` is private and must not be cached.",
                "required": True,
                "schema": {
                    "type": "string",
                    "const": "no-store",
                },
            },
            "WWWAuthenticate": {
                "description": "The bearer challenge.",
                "required": True,
                "schema": {
                    "type": "string",
                    "const": "Bearer realm=\"chat-store\"",
                },
            },
            "Allow": {
                "description": (
                    "Comma-separated methods the path supports, HEAD included wherever GET is."
                ),
                "required": True,
                "schema": {
                    "type": "string",
                    "pattern": "^[A-Z]+(, [A-Z]+)*$",
                },
            },
            "RetryAfter": {
                "description": "Seconds to wait before retrying.",
                "required": True,
                "schema": {
                    "type": "integer",
                    "minimum": 0,
                },
            },
            "RetryAfterOptional": {
                "description": (
                    "Seconds to wait before retrying; sent with `storage_unavailable` only."
                ),
                "required": False,
                "schema": {
                    "type": "integer",
                    "minimum": 0,
                },
            },
        },
        "responses": {
            "BadRequest": {
                "description": (
                    "The body is not strict JSON (`invalid_json`) or breaks a validation rule "
                    "(`validation_error`); `detail` says which. In a batch, `index` names the "
                    "first offending item."
                ),
                "content": {
                    "application/problem+json": {
                        "schema": {
                            "allOf": [
                                {
                                    "$ref": "#/components/schemas/Problem",
                                },
                                {
                                    "properties": {
                                        "status": {
                                            "const": 400,
                                        },
                                        "code": {
                                            "enum": [
                                                "invalid_json",
                                                "validation_error",
                                            ],
                                        },
                                    },
                                },
                            ],
                        },
                    },
                },
                "headers": {
                    "Cache-Control": {
                        "$ref": "#/components/headers/CacheControlNoStore",
                    },
                },
            },
            "InvalidQuery": {
                "description": (
                    "A path or query parameter breaks a validation rule: an invalid id, an unknown "
                    "or repeated query parameter, an out-of-range or non-decimal integer, `start` "
                    "> `end`, or a cursor that is empty, tampered with, or issued for another "
                    "query."
                ),
                "content": {
                    "application/problem+json": {
                        "schema": {
                            "allOf": [
                                {
                                    "$ref": "#/components/schemas/Problem",
                                },
                                {
                                    "properties": {
                                        "status": {
                                            "const": 400,
                                        },
                                        "code": {
                                            "const": "validation_error",
                                        },
                                    },
                                },
                            ],
                        },
                    },
                },
                "headers": {
                    "Cache-Control": {
                        "$ref": "#/components/headers/CacheControlNoStore",
                    },
                },
            },
            "Unauthorized": {
                "description": (
                    "No usable credential: missing, malformed, wrong, expired or badly signed. The "
                    "`detail` is the same whatever the reason."
                ),
                "content": {
                    "application/problem+json": {
                        "schema": {
                            "allOf": [
                                {
                                    "$ref": "#/components/schemas/Problem",
                                },
                                {
                                    "properties": {
                                        "status": {
                                            "const": 401,
                                        },
                                        "code": {
                                            "const": "unauthorized",
                                        },
                                    },
                                },
                            ],
                        },
                    },
                },
                "headers": {
                    "WWW-Authenticate": {
                        "$ref": "#/components/headers/WWWAuthenticate",
                    },
                    "Cache-Control": {
                        "$ref": "#/components/headers/CacheControlNoStore",
                    },
                },
            },
            "Forbidden": {
                "description": (
                    "The credential is valid but may not do this: a user token acting on another "
                    "user or on a conversation missing from its `conversations` claim, or a user "
                    "token on a service-only operation."
                ),
                "content": {
                    "application/problem+json": {
                        "schema": {
                            "allOf": [
                                {
                                    "$ref": "#/components/schemas/Problem",
                                },
                                {
                                    "properties": {
                                        "status": {
                                            "const": 403,
                                        },
                                        "code": {
                                            "const": "forbidden",
                                        },
                                    },
                                },
                            ],
                        },
                    },
                },
                "headers": {
                    "Cache-Control": {
                        "$ref": "#/components/headers/CacheControlNoStore",
                    },
                },
            },
            "MessageNotFound": {
                "description": (
                    "No such message. A user token asking for another user's message gets exactly "
                    "this answer too; an id outside the id grammar is reported the same way (no "
                    "such message can exist). Also the answer when no route matches the path at "
                    "all."
                ),
                "content": {
                    "application/problem+json": {
                        "schema": {
                            "allOf": [
                                {
                                    "$ref": "#/components/schemas/Problem",
                                },
                                {
                                    "properties": {
                                        "status": {
                                            "const": 404,
                                        },
                                        "code": {
                                            "const": "not_found",
                                        },
                                    },
                                },
                            ],
                        },
                    },
                },
                "headers": {
                    "Cache-Control": {
                        "$ref": "#/components/headers/CacheControlNoStore",
                    },
                },
            },
            "RouteNotFound": {
                "description": (
                    "No route matches the path. For these routes this happens only when URL "
                    "normalization removes a path parameter: ids `.` and `..` (also spelled `%2e`) "
                    "are dot segments, so `/v1/users/./messages` reaches the server as "
                    "`/v1/users/messages`."
                ),
                "content": {
                    "application/problem+json": {
                        "schema": {
                            "allOf": [
                                {
                                    "$ref": "#/components/schemas/Problem",
                                },
                                {
                                    "properties": {
                                        "status": {
                                            "const": 404,
                                        },
                                        "code": {
                                            "const": "not_found",
                                        },
                                    },
                                },
                            ],
                        },
                    },
                },
                "headers": {
                    "Cache-Control": {
                        "$ref": "#/components/headers/CacheControlNoStore",
                    },
                },
            },
            "MethodNotAllowed": {
                "description": (
                    "The path exists but not under this method; `Allow` lists the methods it has. "
                    "Under `/v1` credentials are checked first, so an unauthenticated request gets "
                    "401 instead."
                ),
                "content": {
                    "application/problem+json": {
                        "schema": {
                            "allOf": [
                                {
                                    "$ref": "#/components/schemas/Problem",
                                },
                                {
                                    "properties": {
                                        "status": {
                                            "const": 405,
                                        },
                                        "code": {
                                            "const": "method_not_allowed",
                                        },
                                    },
                                },
                            ],
                        },
                    },
                },
                "headers": {
                    "Allow": {
                        "$ref": "#/components/headers/Allow",
                    },
                    "Cache-Control": {
                        "$ref": "#/components/headers/CacheControlNoStore",
                    },
                },
            },
            "Conflict": {
                "description": (
                    "A message with this `id` already exists with different fields (an identical "
                    "replay is not a conflict). `index` names the offending item (0 for a single "
                    "create)."
                ),
                "content": {
                    "application/problem+json": {
                        "schema": {
                            "allOf": [
                                {
                                    "$ref": "#/components/schemas/Problem",
                                },
                                {
                                    "properties": {
                                        "status": {
                                            "const": 409,
                                        },
                                        "code": {
                                            "const": "conflict",
                                        },
                                    },
                                },
                            ],
                        },
                    },
                },
                "headers": {
                    "Cache-Control": {
                        "$ref": "#/components/headers/CacheControlNoStore",
                    },
                },
            },
            "PayloadTooLarge": {
                "description": (
                    "Too large: the request body (by its declared `Content-Length` or actual size) "
                    "is over `MAX_BODY_BYTES` (8 MiB by default), or a message's `content`, "
                    "`metadata` or `sender` is over its own byte limit (`MAX_CONTENT_BYTES`, 64 "
                    "KiB; `MAX_METADATA_BYTES`, 16 KiB; `MAX_SENDER_BYTES`, 4 KiB; sizes of the "
                    "compact UTF-8 JSON encoding). In a batch, `index` names the offending item."
                ),
                "content": {
                    "application/problem+json": {
                        "schema": {
                            "allOf": [
                                {
                                    "$ref": "#/components/schemas/Problem",
                                },
                                {
                                    "properties": {
                                        "status": {
                                            "const": 413,
                                        },
                                        "code": {
                                            "const": "payload_too_large",
                                        },
                                    },
                                },
                            ],
                        },
                    },
                },
                "headers": {
                    "Cache-Control": {
                        "$ref": "#/components/headers/CacheControlNoStore",
                    },
                },
            },
            "PayloadTooLargeUnversioned": {
                "description": (
                    "The declared `Content-Length` is over `MAX_BODY_BYTES` (8 MiB by default); "
                    "checked on every path before routing."
                ),
                "content": {
                    "application/problem+json": {
                        "schema": {
                            "allOf": [
                                {
                                    "$ref": "#/components/schemas/Problem",
                                },
                                {
                                    "properties": {
                                        "status": {
                                            "const": 413,
                                        },
                                        "code": {
                                            "const": "payload_too_large",
                                        },
                                    },
                                },
                            ],
                        },
                    },
                },
            },
            "UnsupportedMediaType": {
                "description": (
                    "The body must be sent as `application/json` (or any `+json` media type)."
                ),
                "content": {
                    "application/problem+json": {
                        "schema": {
                            "allOf": [
                                {
                                    "$ref": "#/components/schemas/Problem",
                                },
                                {
                                    "properties": {
                                        "status": {
                                            "const": 415,
                                        },
                                        "code": {
                                            "const": "unsupported_media_type",
                                        },
                                    },
                                },
                            ],
                        },
                    },
                },
                "headers": {
                    "Cache-Control": {
                        "$ref": "#/components/headers/CacheControlNoStore",
                    },
                },
            },
            "RateLimited": {
                "description": (
                    "Too many requests from this end user (a user token or Access identity) or, "
                    "for requests that failed authentication, from this client address. The "
                    "service token is never limited. Only when a rate limiter is bound "
                    "(`RATE_LIMITER`)."
                ),
                "content": {
                    "application/problem+json": {
                        "schema": {
                            "allOf": [
                                {
                                    "$ref": "#/components/schemas/Problem",
                                },
                                {
                                    "properties": {
                                        "status": {
                                            "const": 429,
                                        },
                                        "code": {
                                            "const": "rate_limited",
                                        },
                                    },
                                },
                            ],
                        },
                    },
                },
                "headers": {
                    "Retry-After": {
                        "$ref": "#/components/headers/RetryAfter",
                    },
                    "Cache-Control": {
                        "$ref": "#/components/headers/CacheControlNoStore",
                    },
                },
            },
            "InternalError": {
                "description": (
                    "An unexpected error or a misconfigured deployment; nothing internal is "
                    "disclosed."
                ),
                "content": {
                    "application/problem+json": {
                        "schema": {
                            "allOf": [
                                {
                                    "$ref": "#/components/schemas/Problem",
                                },
                                {
                                    "properties": {
                                        "status": {
                                            "const": 500,
                                        },
                                        "code": {
                                            "const": "internal_error",
                                        },
                                    },
                                },
                            ],
                        },
                    },
                },
                "headers": {
                    "Cache-Control": {
                        "$ref": "#/components/headers/CacheControlNoStore",
                    },
                },
            },
            "InternalErrorUnversioned": {
                "description": (
                    "An unexpected error or a misconfigured deployment; nothing internal is "
                    "disclosed."
                ),
                "content": {
                    "application/problem+json": {
                        "schema": {
                            "allOf": [
                                {
                                    "$ref": "#/components/schemas/Problem",
                                },
                                {
                                    "properties": {
                                        "status": {
                                            "const": 500,
                                        },
                                        "code": {
                                            "const": "internal_error",
                                        },
                                    },
                                },
                            ],
                        },
                    },
                },
            },
            "ServiceUnavailable": {
                "description": (
                    "`auth_not_configured`: no credential kind is configured (no `API_TOKEN`, "
                    "`JWT_SECRET` or Cloudflare Access) and auth is not disabled. "
                    "`storage_unavailable`: Workers KV failed after retries; comes with "
                    "`Retry-After`."
                ),
                "content": {
                    "application/problem+json": {
                        "schema": {
                            "allOf": [
                                {
                                    "$ref": "#/components/schemas/Problem",
                                },
                                {
                                    "properties": {
                                        "status": {
                                            "const": 503,
                                        },
                                        "code": {
                                            "enum": [
                                                "auth_not_configured",
                                                "storage_unavailable",
                                            ],
                                        },
                                    },
                                },
                            ],
                        },
                    },
                },
                "headers": {
                    "Retry-After": {
                        "$ref": "#/components/headers/RetryAfterOptional",
                    },
                    "Cache-Control": {
                        "$ref": "#/components/headers/CacheControlNoStore",
                    },
                },
            },
        },
        "securitySchemes": {
            "bearerAuth": {
                "type": "http",
                "scheme": "bearer",
                "description": (
                    "The service token (`API_TOKEN`), or a user JWT (HS256, `JWT_SECRET`) whose "
                    "`sub` is the user id and whose `conversations` claim lists reachable "
                    "conversations."
                ),
            },
            "cloudflareAccess": {
                "type": "apiKey",
                "in": "header",
                "name": "Cf-Access-Jwt-Assertion",
                "description": (
                    "A Cloudflare Access RS256 JWT (when Access is configured); its `sub` is the "
                    "user id. Ignored when `Authorization` is present."
                ),
            },
        },
    },
}
