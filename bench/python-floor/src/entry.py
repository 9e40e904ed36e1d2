"""POST /append?user=U&n=N: put a ~300-byte message record with its metadata, then one small
index key, one after the other, as bench/floor-worker does in JavaScript."""

import json
import time
from urllib.parse import parse_qs, urlsplit

from js import JSON, Object, Response
from pyodide.ffi import to_js


def _options(metadata):  # type: ignore[no-untyped-def]
    options = to_js({}, dict_converter=Object.fromEntries)
    options.metadata = JSON.parse(json.dumps(metadata))
    return options


async def on_fetch(request, env, ctx):  # type: ignore[no-untyped-def]
    url = urlsplit(str(request.url))
    if url.path != "/append":
        return Response.new("ok")
    query = parse_qs(url.query)
    user = query.get("user", ["floor"])[0]
    now = int(time.time() * 1000)
    n = int(query.get("n", [str(now)])[0])
    record = json.dumps({
        "id": f"{n:026d}", "user_id": user, "sender": {"id": user, "role": "user"},
        "content": "x" * 130, "timestamp": now, "created_at": now,
    }, separators=(",", ":"))
    await env.CHAT_KV.put(f"pyfloor:chat:{user}:{n}", record, _options({"u": user, "s": now}))
    await env.CHAT_KV.put(f"pyfloor:index:{user}", json.dumps({"newest": n}))
    return Response.new(json.dumps({"id": n}), status=201)
