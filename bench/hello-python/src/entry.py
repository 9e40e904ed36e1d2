"""Hello world: the least a Python Worker can do, for comparing cold starts."""

from js import Response


async def on_fetch(request, env, ctx):  # type: ignore[no-untyped-def]
    return Response.new("ok")
