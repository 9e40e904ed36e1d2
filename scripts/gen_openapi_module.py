#!/usr/bin/env python3
"""Generate ``src/openapi_spec.py`` from ``openapi.json`` (the source of truth).

The Worker bundle only carries ``src/*.py``, so the document is served from a Python module
holding it as a dict literal named ``OPENAPI``. Edit ``openapi.json``, then run::

    .venv/bin/python scripts/gen_openapi_module.py          # rewrite the module
    .venv/bin/python scripts/gen_openapi_module.py --check  # exit 1 if it is out of date

``tests/test_openapi.py`` fails when the module and the JSON file differ, so they cannot drift.
The output is deterministic and ruff-clean (lines within 100 characters, long strings split
into implicitly concatenated pieces).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
SOURCE = REPO_ROOT / "openapi.json"
TARGET = REPO_ROOT / "src" / "openapi_spec.py"
MAX_LINE = 100
INDENT = "    "

HEADER = '''\
"""The OpenAPI 3.1 document served at ``GET /openapi.json``.

GENERATED from openapi.json by scripts/gen_openapi_module.py; do not edit by hand (edit
openapi.json and rerun the script). tests/test_openapi.py checks that the two agree.
"""

from __future__ import annotations

from typing import Any

'''


def _string(value: str) -> str:
    # A JSON string literal is a valid Python literal (same escapes; non-ASCII kept as is).
    return json.dumps(value, ensure_ascii=False)


def _split_string(value: str, width: int) -> list[str]:
    """Literal pieces of ``value``, each at most ``width`` characters where possible."""
    pieces: list[str] = []
    rest = value
    while rest:
        newline = rest.find("\n")
        cut = len(rest) if newline < 0 else newline + 1  # a piece never spans a line break
        while cut > 1 and len(_string(rest[:cut])) > width:
            # Prefer to break after a space so words stay whole.
            space = rest.rfind(" ", 0, cut - 1)
            cut = space + 1 if space > 0 else cut - 1
        pieces.append(_string(rest[:cut]))
        rest = rest[cut:]
    return pieces


def _scalar(value: Any) -> str:
    if value is None:
        return "None"
    if value is True:
        return "True"
    if value is False:
        return "False"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    raise TypeError(f"not a JSON scalar: {value!r}")


def _render(value: Any, prefix: str, suffix: str, depth: int) -> list[str]:
    """Lines for ``prefix + value + suffix`` at ``depth`` levels of indentation."""
    pad = INDENT * depth
    if isinstance(value, dict):
        if not value:
            return [f"{pad}{prefix}{{}}{suffix}"]
        lines = [f"{pad}{prefix}{{"]
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"non-string key {key!r}")
            lines += _render(item, f"{_string(key)}: ", ",", depth + 1)
        return [*lines, f"{pad}}}{suffix}"]
    if isinstance(value, list):
        if not value:
            return [f"{pad}{prefix}[]{suffix}"]
        lines = [f"{pad}{prefix}["]
        for item in value:
            lines += _render(item, "", ",", depth + 1)
        return [*lines, f"{pad}]{suffix}"]
    one_line = f"{pad}{prefix}{_scalar(value)}{suffix}"
    if len(one_line) <= MAX_LINE or not isinstance(value, str):
        return [one_line]
    inner = INDENT * (depth + 1)
    pieces = _split_string(value, MAX_LINE - len(inner))
    return [f"{pad}{prefix}(", *(f"{inner}{p}" for p in pieces), f"{pad}){suffix}"]


def render(document: dict[str, Any]) -> str:
    """The full source of ``src/openapi_spec.py`` for ``document``."""
    body = _render(document, "OPENAPI: dict[str, Any] = ", "", 0)
    return HEADER + "\n".join(body) + "\n"


def load_source(path: Path = SOURCE) -> dict[str, Any]:
    document = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(document, dict):
        raise SystemExit(f"{path}: the document must be a JSON object")
    return document


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check; exit 1 if stale")
    args = parser.parse_args(argv)
    wanted = render(load_source())
    current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else None
    if args.check:
        if current != wanted:
            print(f"{TARGET.relative_to(REPO_ROOT)} is out of date: run {__file__}",
                  file=sys.stderr)
            return 1
        return 0
    if current != wanted:
        TARGET.write_text(wanted, encoding="utf-8")
        print(f"wrote {TARGET.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
