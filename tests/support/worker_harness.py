"""Run a Worker under the local Workers runtime (`wrangler dev`) for tests.

One ``LocalWorker`` is one ``wrangler dev`` process (node + workerd) in its own process group,
listening on free loopback ports, with its KV simulated under ``persist_dir``::

    w = LocalWorker(persist_dir=tmp / "state", vars={"API_TOKEN": "t"}).start()
    httpx.get(w.base_url + "/health")
    w.kv_get("some-key")            # read KV straight from the simulator's files
    w.stop()

Several processes can run side by side:

* the same ``persist_dir`` is shared safely (each process gets its own inspector port), so a
  second instance of the same Worker sees the same KV;
* Workers started with the same ``registry_dir`` find each other through wrangler's file-based
  dev registry, which is how a service binding (``services = [...]`` in wrangler.toml) reaches
  another ``wrangler dev`` process. wrangler 3.91 cannot run two configs in one process
  (``-c a -c b`` is rejected), so a binding pair is always two processes. ``sibling()`` makes a
  worker sharing both directories.

The registry defaults to a private directory, never ``~/.config/.wrangler/registry``, so tests
cannot connect to (or hijack the name of) a worker a developer runs with ``scripts/dev.sh``.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
WRANGLER = REPO_ROOT / "node_modules" / ".bin" / "wrangler"
DEFAULT_CONFIG = REPO_ROOT / "wrangler.toml"

# What `wrangler kv key get` prints on stdout (exit code 0) when the key does not exist.
# A stored value is written raw, without a trailing newline, so only a value that is exactly
# this text would be mistaken for a missing key.
_KV_NOT_FOUND = b"Value not found\n"
KV_CLI_ATTEMPTS = 5  # the CLI can hit a busy SQLite file while the Worker writes it
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def snapshot_app(dest: Path) -> dict[str, str]:
    """Copy wrangler.toml and src/ to ``dest``; returns provenance: the git commit, whether src/
    had uncommitted changes, and a hash of the copy.

    wrangler dev hot-reloads on any change under src/, answering in-flight requests with 503;
    a long run (benchmark, load check) runs a copy, so concurrent edits of the repo cannot
    break it.
    """
    dest.mkdir(parents=True)
    shutil.copy2(DEFAULT_CONFIG, dest / "wrangler.toml")
    shutil.copytree(REPO_ROOT / "src", dest / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    digest = hashlib.sha256()
    for path in sorted((dest / "src").rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(dest).as_posix().encode() + b"\0")
            digest.update(path.read_bytes())

    def git(*args: str) -> str:
        try:
            done = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                                  timeout=20, check=False, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return done.stdout.strip()

    dirty = git("status", "--porcelain", "--", "src", "wrangler.toml")
    return {"git_commit": git("rev-parse", "--short", "HEAD") or "unknown",
            "src_dirty": "yes" if dirty else "no", "src_sha256": digest.hexdigest()[:16]}


def free_port() -> int:
    """A port that was free a moment ago (the OS picks it; tiny race, retried on start)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wrangler_env(registry_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        WRANGLER_SEND_METRICS="false",  # no internet: metrics would only time out
        WRANGLER_REGISTRY_PATH=str(registry_dir),
    )
    return env


def group_processes(pgid: int) -> Iterator[tuple[Path, list[str], str]]:
    """The processes of one ``wrangler dev`` process group, from Linux's /proc: each one's /proc
    folder, its stat fields after the command name, and its role: ``runtime`` (the workerd that
    runs the Worker and the KV simulator, the one with an inspector), ``proxy`` (wrangler's
    second workerd, in front of it), ``node`` (wrangler itself) or ``other``."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            cmd = (proc / "cmdline").read_bytes()
        except OSError:
            continue  # gone since the listing
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[2]) != pgid:  # the process group (field 5 of stat)
            continue
        if b"workerd" in cmd:
            role = "runtime" if b"--inspector-addr" in cmd else "proxy"
        else:
            role = "node" if b"node" in cmd else "other"
        yield proc, fields, role


class WorkerStartError(RuntimeError):
    pass


class LocalWorker:
    """A ``wrangler dev`` process for ``config``; see the module docstring."""

    def __init__(
        self,
        *,
        persist_dir: Path,
        config: Path = DEFAULT_CONFIG,
        vars: Mapping[str, str] | None = None,
        registry_dir: Path | None = None,
        log_dir: Path | None = None,
        ready_path: str = "/health",
        startup_timeout: float = 90.0,
    ) -> None:
        self.config = Path(config).resolve()
        with self.config.open("rb") as f:
            self.name: str = tomllib.load(f)["name"]  # the Worker name bindings refer to
        self.persist_dir = Path(persist_dir).resolve()
        self.vars = dict(vars or {})
        self._owns_registry = registry_dir is None  # a private one is removed by stop()
        self.registry_dir = (
            Path(registry_dir).resolve()
            if registry_dir is not None
            else Path(tempfile.mkdtemp(prefix="wrangler-registry-"))
        )
        self.log_dir = Path(log_dir).resolve() if log_dir is not None else self.persist_dir.parent
        self.ready_path = ready_path
        self.startup_timeout = startup_timeout
        self.port = 0
        self.inspector_port = 0
        self.log_path = self.log_dir / f"wrangler-{self.name}.log"
        self._proc: subprocess.Popen[bytes] | None = None

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def sibling(
        self,
        *,
        config: Path | None = None,
        vars: Mapping[str, str] | None = None,
        ready_path: str | None = None,
        share_registry: bool | None = None,
    ) -> LocalWorker:
        """A new (not started) worker sharing this one's KV state (``persist_dir``).

        It also shares the dev registry when it runs another config (default), so service
        bindings between the two resolve. A second instance of the *same* Worker gets its own
        registry: the registry is keyed by Worker name, and the second instance would replace
        the first one's entry, then delete it on stop, cutting off the first one's callers.
        """
        config = Path(config).resolve() if config is not None else self.config
        if share_registry is None:
            share_registry = config != self.config
        return LocalWorker(
            persist_dir=self.persist_dir,
            config=config,
            vars=self.vars if vars is None else vars,
            registry_dir=self.registry_dir if share_registry else None,
            log_dir=self.log_dir,
            ready_path=self.ready_path if ready_path is None else ready_path,
            startup_timeout=self.startup_timeout,
        )

    def start(self) -> LocalWorker:
        """Start wrangler dev and wait until ``GET ready_path`` answers 200. Returns self."""
        if not WRANGLER.exists():
            raise WorkerStartError(f"{WRANGLER} missing: run `npm ci` (scripts/test.sh does)")
        cf = REPO_ROOT / "node_modules" / ".mf" / "cf.json"
        if not cf.exists():  # keeps miniflare from trying to download Request.cf data
            cf.parent.mkdir(parents=True, exist_ok=True)
            cf.write_text("{}")
        self.persist_dir.mkdir(parents=True, exist_ok=True)
        self.registry_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for attempt in range(3):  # a port picked by free_port() may be taken meanwhile
            self._launch()
            atexit.register(self.stop)  # never leave workerd behind, even if teardown is skipped
            try:
                self._wait_ready()
                return self
            except WorkerStartError:
                in_use = "already in use" in self._log_tail().lower()
                self.stop()
                if attempt == 2 or not in_use:
                    raise
        raise AssertionError("unreachable")

    def _launch(self) -> None:
        self.port = free_port()
        while (inspector := free_port()) == self.port:
            pass
        self.inspector_port = inspector
        self.log_path = self.log_dir / f"wrangler-{self.name}-{self.port}.log"
        cmd = [
            str(WRANGLER), "dev",
            "--config", str(self.config),
            "--ip", "127.0.0.1",
            "--port", str(self.port),
            "--inspector-port", str(self.inspector_port),
            "--persist-to", str(self.persist_dir),
            "--show-interactive-dev-session=false",
        ]  # fmt: skip
        for name, value in self.vars.items():
            cmd += ["--var", f"{name}:{value}"]
        with self.log_path.open("wb") as log:
            # Own process group: wrangler (node) spawns workerd, and only killing the whole
            # group stops both. cwd = repo root so node_modules/.mf/cf.json is found.
            self._proc = subprocess.Popen(
                cmd,
                cwd=REPO_ROOT,
                env=_wrangler_env(self.registry_dir),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        last = "no answer yet"
        with httpx.Client(timeout=10) as http:
            while time.monotonic() < deadline:
                if not self.running:
                    raise WorkerStartError(self._failure(f"wrangler exited ({last})"))
                try:
                    r = http.get(self.base_url + self.ready_path)
                    if r.status_code == 200:
                        return
                    last = f"GET {self.ready_path} -> {r.status_code}"
                except httpx.HTTPError as e:
                    last = f"GET {self.ready_path} -> {type(e).__name__}"
                time.sleep(0.3)
        raise WorkerStartError(
            self._failure(f"not ready after {self.startup_timeout:.0f}s ({last})")
        )

    def _log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        text = _ANSI.sub("", text)  # wrangler colours its messages even when piped
        return "\n".join(text.splitlines()[-lines:])

    def _failure(self, why: str) -> str:
        return f"{self.config}: {why}; last lines of {self.log_path}:\n{self._log_tail()}"

    def stop(self) -> None:
        """Stop wrangler and workerd (the whole process group) and wait for them."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout=grace)
                break
            except subprocess.TimeoutExpired:
                continue
        # node may exit before workerd does; make sure nothing of the group survives.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        if self._owns_registry:
            shutil.rmtree(self.registry_dir, ignore_errors=True)

    @property
    def pgid(self) -> int | None:
        """The process group of wrangler and its workerds (wrangler leads it), while running."""
        return self._proc.pid if self._proc is not None else None

    def runtime_peak_rss(self) -> int | None:
        """The peak resident memory, in bytes, of the workerd that runs the Worker, from Linux's
        /proc; None where that cannot be read."""
        pgid = self.pgid
        for proc, _, role in group_processes(pgid) if pgid is not None else ():
            if role != "runtime":
                continue
            try:
                status = (proc / "status").read_text()
            except OSError:
                return None
            peak = re.search(r"^VmHWM:\s+(\d+) kB$", status, re.MULTILINE)
            return int(peak.group(1)) * 1024 if peak else None
        return None

    def __enter__(self) -> LocalWorker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- KV inspection (reads the simulator's files; works while the worker runs) ---------

    def _kv(self, *args: str, binding: str) -> bytes:
        cmd = [
            str(WRANGLER), "kv", "key", *args,
            "--binding", binding,
            "--local",
            "--persist-to", str(self.persist_dir),
            "--config", str(self.config),
        ]  # fmt: skip
        for attempt in range(KV_CLI_ATTEMPTS):
            done = subprocess.run(
                cmd,
                cwd=REPO_ROOT,
                env=_wrangler_env(self.registry_dir),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=60,
                check=False,
            )
            # The CLI reads the simulator's SQLite file while the Worker writes it, and then
            # sometimes fails with a 500 (SQLITE_BUSY inside): that is the tool, not the store.
            output = done.stdout + done.stderr
            if done.returncode == 0 or b"500 Internal Server Error" not in output:
                break
            time.sleep(0.2 * (attempt + 1))
        if done.returncode != 0:
            raise RuntimeError(
                f"wrangler kv key {args[0]} failed ({done.returncode}): "
                f"{done.stderr.decode(errors='replace')}{done.stdout.decode(errors='replace')}"
            )
        return done.stdout

    def kv_get(self, key: str, *, binding: str = "CHAT_KV") -> str | None:
        """The stored value of ``key`` (UTF-8 text), or None when the key does not exist."""
        out = self._kv("get", key, binding=binding)
        return None if out == _KV_NOT_FOUND else out.decode()

    def kv_list(self, prefix: str = "", *, binding: str = "CHAT_KV") -> list[str]:
        """Names of the stored keys starting with ``prefix``, in KV order."""
        return [k["name"] for k in self.kv_list_keys(prefix, binding=binding)]

    def kv_list_keys(self, prefix: str = "", *, binding: str = "CHAT_KV") -> list[dict[str, Any]]:
        """The stored keys starting with ``prefix`` as KV lists them: name, metadata if any."""
        args = ["list", *(["--prefix", prefix] if prefix else [])]
        keys: list[dict[str, Any]] = json.loads(self._kv(*args, binding=binding))
        return keys
