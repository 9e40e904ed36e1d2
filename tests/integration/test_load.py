"""Load check, CI size (issue 9): the full run is `make load` (bench/load.py).

Concurrent appends then concurrent newest-50 reads against the session Worker: every request
must succeed the first time, every count must be exact, and the Worker must still answer.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from support.worker_harness import REPO_ROOT, LocalWorker

APPENDS = 300
READS = 200
CONCURRENCY = 20


def _load_module() -> ModuleType:
    # bench/ is not a package nor on the test path; load the tool from its file so the test
    # runs exactly what `make load` runs.
    name = "chat_store_load"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "bench" / "load.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def test_concurrent_appends_then_reads_all_succeed_with_exact_counts(
    worker: LocalWorker, api_token: str, capsys: pytest.CaptureFixture[str]
) -> None:
    load = _load_module()
    report = load.run_load(
        worker.base_url, api_token, appends=APPENDS, reads=READS, concurrency=CONCURRENCY,
        log_path=Path(worker.log_path),
    )
    with capsys.disabled():  # the latency summary belongs in the CI log, pass or fail
        print("\n" + report.summary())
    assert [(p.name, p.requests, p.failed) for p in report.phases] == [
        ("appends", APPENDS, 0), ("reads", READS, 0)
    ], report.summary()
    assert [c.name for c in report.checks if not c.ok] == [], report.summary()
    assert report.ok
    assert worker.running, "wrangler dev exited under load"
