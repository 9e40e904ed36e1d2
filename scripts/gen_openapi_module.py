#!/usr/bin/env python3
"""Generate ``src/generated/openapi_spec.py`` from ``openapi.json`` (the source of truth).

The Worker bundle only carries Python modules under ``src/``, so the document is served from a
module holding it as one compact dict literal named ``OPENAPI``. Edit ``openapi.json``, then::

    .venv/bin/python scripts/gen_openapi_module.py          # rewrite the module
    .venv/bin/python scripts/gen_openapi_module.py --check  # exit 1 if it is out of date

``tests/test_openapi.py`` fails when the module and the JSON file differ. ``src/generated/`` is
excluded from ruff (its one long line is data, not code).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SOURCE = REPO_ROOT / "openapi.json"
TARGET = REPO_ROOT / "src" / "generated" / "openapi_spec.py"
HEADER = '''\
"""The OpenAPI 3.1 document served at ``GET /openapi.json``.

GENERATED from openapi.json by scripts/gen_openapi_module.py; do not edit by hand.
"""

from __future__ import annotations

from typing import Any

'''


def render(document: dict[str, object]) -> str:
    # JSON's scalars have Python literals (repr turns true/false/null into True/False/None).
    return f"{HEADER}OPENAPI: dict[str, Any] = {document!r}\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check; exit 1 if stale")
    args = parser.parse_args(argv)
    wanted = render(json.loads(SOURCE.read_text(encoding="utf-8")))
    current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else None
    if current == wanted:
        return 0
    if args.check:
        print(f"{TARGET.relative_to(REPO_ROOT)} is out of date: run {__file__}", file=sys.stderr)
        return 1
    TARGET.write_text(wanted, encoding="utf-8")
    print(f"wrote {TARGET.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
