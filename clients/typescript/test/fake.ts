// A scripted fetch for unit tests: answers from a queue and records what the client sent.
export interface Sent {
  method: string;
  url: URL;
  headers: Headers;
  body: string;
}

export type Answer = Response | Error | ((request: Request) => Response | Promise<Response>);

export interface FakeFetch {
  fetch: (request: Request) => Promise<Response>;
  sent: Sent[];
}

export function fakeFetch(...answers: Answer[]): FakeFetch {
  const queue = [...answers];
  const sent: Sent[] = [];
  return {
    sent,
    fetch: async (request) => {
      const forAnswer = request.clone();
      sent.push({
        method: request.method,
        url: new URL(request.url),
        headers: request.headers,
        body: await request.text(),
      });
      const answer = queue.shift();
      if (answer === undefined) {
        throw new Error(`unexpected request ${request.method} ${request.url}`);
      }
      if (answer instanceof Error) {
        throw answer;
      }
      return typeof answer === "function" ? answer(forAnswer) : answer;
    },
  };
}

export function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

export function problem(
  code: string,
  status: number,
  headers: Record<string, string> = {},
  extra: Record<string, unknown> = {},
): Response {
  return new Response(
    JSON.stringify({
      type: `https://chat-store.dev/problems/${code}`,
      title: code,
      status,
      detail: `detail of ${code}`,
      code,
      instance: "/v1/x",
      ...extra,
    }),
    { status, headers: { "content-type": "application/problem+json", ...headers } },
  );
}

export function message(id: string, timestamp = 1, extra: Record<string, unknown> = {}) {
  return {
    id,
    user_id: "u1",
    sender: { id: "u1" },
    content: `content of ${id}`,
    timestamp,
    created_at: timestamp,
    ...extra,
  };
}

/** A sleep that records its delays and returns at once. */
export function recordingSleep(): { sleep: (ms: number) => Promise<void>; delays: number[] } {
  const delays: number[] = [];
  return {
    delays,
    sleep: async (ms) => {
      delays.push(ms);
    },
  };
}
