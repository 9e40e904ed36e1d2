"""Integration fixtures: one real `wrangler dev` (local Workers runtime + simulated KV) per session.

Every test in this folder is marked ``integration`` automatically, so ``-m "not integration"``
runs the unit tests alone. The runtime takes a few seconds to start and the machine is small,
so tests share one worker; keep them independent by using fresh ids (e.g. ``unique_id``).
Under pytest-xdist each xdist process starts its own worker.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support.worker_harness import LocalWorker

HERE = Path(__file__).resolve().parent
API_TOKEN = "test-token"


@pytest.hookimpl(tryfirst=True)  # before `-m` deselection reads the markers
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalWorker]:
    """chat-store (the repo's wrangler.toml) on a free port, with empty KV under a tmp dir."""
    base = tmp_path_factory.mktemp("wrangler")
    # AUTH_DISABLED is pinned too: a developer's .dev.vars is read by wrangler dev and must not
    # change what the tests see (--var wins over .dev.vars).
    w = LocalWorker(
        persist_dir=base / "state",
        registry_dir=base / "registry",
        # JOURNAL_SETTLE_MS: short enough that journal garbage collection is observable.
        vars={"API_TOKEN": API_TOKEN, "AUTH_DISABLED": "false", "JOURNAL_SETTLE_MS": "2000"},
    )
    with w:
        yield w


@pytest.fixture(scope="session")
def api_token() -> str:
    """The bearer token the session worker accepts."""
    return API_TOKEN


@pytest.fixture
def client(worker: LocalWorker) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=worker.base_url,
        headers={"Authorization": f"Bearer {API_TOKEN}"},
        timeout=30,
    ) as c:
        yield c


@pytest.fixture
def anon_client(worker: LocalWorker) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=worker.base_url, timeout=30) as c:
        yield c


@pytest.fixture
def unique_id(request: pytest.FixtureRequest) -> str:
    """An id no other test uses (tests share one KV): test name + random suffix."""
    name = "".join(ch if ch.isalnum() else "-" for ch in request.node.name)[:80]
    return f"{name}-{uuid.uuid4().hex[:8]}"
