// AI SDK UIMessages through chat-store and back: store a conversation of every part type,
// load it, map the stored messages to UIMessages, and check that the SDK's own
// validateUIMessages accepts them and that they deep-equal the originals.
//
//   CHAT_STORE_URL=http://127.0.0.1:8787 CHAT_STORE_TOKEN=... \
//     node examples/ai-sdk/roundtrip.mjs <user_id> <conversation_id>
//
// The mapping (README, "Structured content"): id <-> id, role <-> sender.role,
// parts <-> parts, metadata <-> metadata.
import assert from "node:assert/strict";
import { tool, validateUIMessages } from "ai";
import { z } from "zod";

const baseUrl = process.env.CHAT_STORE_URL ?? "http://127.0.0.1:8787";
const token = process.env.CHAT_STORE_TOKEN ?? "";
const [userId = "ai-sdk-user", conversationId = "ai-sdk-conversation"] = process.argv.slice(2);

const metadataSchema = z.object({ model: z.string().optional(), createdAt: z.number() });
const dataSchemas = { weather: z.object({ city: z.string(), celsius: z.number() }) };
const tools = {
  weather: tool({
    description: "The weather in a city",
    inputSchema: z.object({ city: z.string() }),
    outputSchema: z.object({ celsius: z.number(), sky: z.string() }),
  }),
};

/** @type {import("ai").UIMessage[]} */
const originals = [
  {
    id: `${conversationId}-0`,
    role: "system",
    metadata: { createdAt: 1 },
    parts: [{ type: "text", text: "You are a weather assistant." }],
  },
  {
    id: `${conversationId}-1`,
    role: "user",
    metadata: { createdAt: 2 },
    parts: [
      { type: "text", text: "What is the weather in Paris? Here is a photo." },
      { type: "file", mediaType: "image/png", filename: "sky.png", url: "https://example.com/sky.png" },
    ],
  },
  {
    id: `${conversationId}-2`,
    role: "assistant",
    metadata: { model: "fake-model", createdAt: 3 },
    parts: [
      { type: "step-start" },
      { type: "reasoning", text: "I should call the weather tool.", state: "done" },
      {
        type: "tool-weather",
        toolCallId: "call-1",
        state: "output-available",
        input: { city: "Paris" },
        output: { celsius: 21, sky: "clear" },
      },
      { type: "step-start" },
      { type: "source-url", sourceId: "src-1", url: "https://weather.example.com/paris", title: "Paris weather" },
      { type: "data-weather", id: "w-1", data: { city: "Paris", celsius: 21 } },
      { type: "text", text: "It is 21 °C and clear in Paris ☀️.", state: "done" },
    ],
  },
];

async function call(method, path, body) {
  const response = await fetch(baseUrl + path, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

/** A UIMessage as a chat-store message (content is left to the store: the text parts). */
function toStored(message, timestamp) {
  const stored = {
    id: message.id,
    user_id: userId,
    conversation_id: conversationId,
    sender: { id: message.role === "user" ? userId : message.role, role: message.role },
    parts: message.parts,
    timestamp,
  };
  if (message.metadata !== undefined) stored.metadata = message.metadata;
  return stored;
}

/** A chat-store message as a UIMessage. */
function toUIMessage(stored) {
  const message = { id: stored.id, role: stored.sender.role, parts: stored.parts };
  if (stored.metadata !== undefined) message.metadata = stored.metadata;
  return message;
}

const base = 1_700_000_000_000;
const created = await call("POST", "/v1/messages/batch", {
  messages: originals.map((m, i) => toStored(m, base + i)),
});
assert.equal(created.status, 201, JSON.stringify(created.body));

const listed = await call(
  "GET", `/v1/conversations/${encodeURIComponent(conversationId)}/messages?order=asc&limit=100`,
);
assert.equal(listed.status, 200, JSON.stringify(listed.body));
const stored = listed.body.messages;
assert.equal(stored[2].content, "It is 21 °C and clear in Paris ☀️.");

const loaded = stored.map(toUIMessage);
const validated = await validateUIMessages({ messages: loaded, metadataSchema, dataSchemas, tools });
assert.deepStrictEqual(validated, originals);
assert.deepStrictEqual(loaded, originals);

// The SDK refuses what it should: the check above is not vacuous.
const broken = structuredClone(loaded);
broken[2].parts[2].output = { celsius: "warm" };
await assert.rejects(validateUIMessages({ messages: broken, metadataSchema, dataSchemas, tools }));

console.log(JSON.stringify({ ok: true, messages: validated.length }));
