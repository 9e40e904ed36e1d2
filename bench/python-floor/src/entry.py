"""The JS floor (bench/floor-worker) in Python, its KV calls made the way chat-store's entry.py
makes them, to show what Pyodide and its FFI add to the same KV work:

POST /append?user=U&n=N     put a ~300-byte message record with its metadata, then one small
                            index key, one after the other.
GET  /read?user=U&list=P    get the index key, list prefix P, then the 50 newest records with
                            getWithMetadata, mapped in JS over [[key], ...] and crossing back as
                            one JSON text; answer them as one JSON body. (The listing is only
                            counted, as the JS floor counts it.)
"""

import json
import time
from urllib.parse import parse_qs, urlsplit

from js import JSON, Function, Object, Promise, Response
from pyodide.ffi import to_js

PAGE = 50


def _options(metadata):  # type: ignore[no-untyped-def]
    return JSON.parse(json.dumps({"metadata": metadata}))


def _record_key(user, n):  # type: ignore[no-untyped-def]
    return f"pyfloor:chat:{user}:{n}"


async def _append(env, user, query):  # type: ignore[no-untyped-def]
    now = int(time.time() * 1000)
    n = int(query.get("n", [str(now)])[0])
    record = json.dumps({
        "id": f"{n:026d}", "user_id": user, "sender": {"id": user, "role": "user"},
        "content": "x" * 130, "timestamp": now, "created_at": now,
    }, separators=(",", ":"))
    await env.CHAT_KV.put(_record_key(user, n), record, _options({"u": user, "s": now}))
    await env.CHAT_KV.put(f"pyfloor:index:{user}", json.dumps({"newest": n}))
    return Response.new(json.dumps({"id": n}), status=201)


async def _read(env, user, query):  # type: ignore[no-untyped-def]
    index = await env.CHAT_KV.get(f"pyfloor:index:{user}")
    prefix = query.get("list", ["pyfloor:none:"])[0]
    # Only counted, as the JS floor does: the keys never cross into Python.
    listed = await env.CHAT_KV.list(to_js({"prefix": prefix}, dict_converter=Object.fromEntries))
    newest = json.loads(str(index))["newest"] if index is not None else 0
    keys = [[_record_key(user, n)] for n in range(newest, newest - PAGE, -1)]
    get_each = Function.prototype.apply.bind(env.CHAT_KV.getWithMetadata, env.CHAT_KV)
    results = json.loads(str(JSON.stringify(
        await Promise.all(JSON.parse(json.dumps(keys)).map(get_each)))))
    texts = [r["value"] for r in results if r.get("value") is not None]
    body = f'{{"messages":[{",".join(texts)}],"listed":{int(listed.keys.length)}}}'
    headers = to_js({"content-type": "application/json"}, dict_converter=Object.fromEntries)
    return Response.new(body, headers=headers)


async def on_fetch(request, env, ctx):  # type: ignore[no-untyped-def]
    url = urlsplit(str(request.url))
    query = parse_qs(url.query)
    user = query.get("user", ["floor"])[0]
    if url.path == "/append":
        return await _append(env, user, query)
    if url.path == "/read":
        return await _read(env, user, query)
    return Response.new("ok")
