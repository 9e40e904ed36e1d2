"""``entry.py`` at cold start: what loading the Worker imports.

Every module imported at start-up is compiled on every cold start (Pyodide compiles the
Worker's sources), so what most isolates never use is imported on first use. The runtime's
``js`` and ``pyodide`` modules are stood in for by empty ones: only the import graph is tested.
"""

from __future__ import annotations

import json
import subprocess
import sys

from support.openapi_support import REPO_ROOT

LOADER = """
import json, sys, types
js = types.ModuleType("js")
for name in ("JSON", "Function", "Headers", "Object", "Promise", "Response", "WritableStream",
             "crypto", "fetch"):
    setattr(js, name, None)
ffi = types.ModuleType("pyodide.ffi")
ffi.JsException, ffi.create_proxy, ffi.to_js = Exception, None, None
sys.modules.update({"js": js, "pyodide": types.ModuleType("pyodide"), "pyodide.ffi": ffi})
import entry
print(json.dumps(sorted(sys.modules)))
"""


def modules_loaded_by_entry() -> set[str]:
    done = subprocess.run(
        [sys.executable, "-B", "-c", LOADER], cwd=REPO_ROOT / "src", capture_output=True,
        text=True, check=True,
    )
    return set(json.loads(done.stdout))


def test_a_cold_start_leaves_the_openapi_document_and_access_verification_unloaded() -> None:
    loaded = modules_loaded_by_entry()
    assert "web.app" in loaded  # the Worker itself was loaded
    assert {"generated.openapi_spec", "auth.access"}.isdisjoint(loaded)
