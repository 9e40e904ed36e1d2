"""Many clients, several edge locations, the real ``ChatStore``: a seeded simulation and a checker.

The store's promise is "no acknowledged write is ever missing from a listing or a count". This
checks it where it is hard, at the edge, as ``edge_kv.EdgeWorld`` models it: per-location read
caches that keep misses, lagging listings, slow propagation, 429s and transient failures.

- **Time is virtual.** :class:`VirtualTimeLoop` is an asyncio loop whose clock jumps to the next
  timer whenever every task waits, so ``asyncio.sleep`` (retry backoff, the compaction pacer,
  clients thinking) costs no real time, and one seed replays one run exactly (the ``secrets``
  randomness in ULIDs and index versions is seeded for the run too).
- **Locations and isolates.** Each location is one ``LocationKV``; each isolate in it has its own
  ``ObjectCache`` and ``CompactionPacer`` and wraps the location's KV in ``RetryingKV``, with
  backoff sleeps in virtual time. Like ``entry.py``, every request builds its own ``ChatStore``;
  work handed to ``defer`` runs after the response as a background task (``ctx.waitUntil``).
- **Clients** (:class:`Client`) are asyncio tasks doing random operations; each message id is
  operated on by the client that made it (erases of users and conversations race everything).
  :class:`Oracle` keeps what was *acknowledged*: a 2xx means that state, a 503 means unknown.
- **The checker** (:meth:`Sim.settle` then :meth:`Sim.check`): faults off, a quiet period long
  enough for every location to see everything and for collection to be due, then rounds of
  reads at every location (compaction and read repair run as they would). Then, at every
  location, every index must list exactly the messages whose record exists (both orders, pages
  followed), at their record's timestamp, and its counts must agree; every acknowledged,
  not-later-deleted message must have its record (an erase may take it), no deleted one may come
  back; each stored index (root and segments) must hold the same entries. Violation kinds are
  either :data:`SELF_CONSISTENCY` (500s, broken pages, order, counts against listings) or
  :data:`AGREEMENT` (indexes against records against acknowledgements). Counts, orders and
  stored indexes that go wrong name the messages behind them (the index read whole from the
  authoritative state: entries with no record, twice, or away from their record).
- **Documented limits** (:data:`DOCUMENTED_LIMITS`): a violation is put down to one (its
  ``limit``) only when every message it names had a PATCH or a create replay act on a stale
  cached copy of its record (one that missed a delete or a move made elsewhere), or a PATCH
  write its record back after a delete that came after its read, or a create's entries be
  undone by a delete or erase acting on such a stale copy, in a way that produces exactly
  that kind of violation, and no other request wrote anything since that could have set it
  right. ``Report.unexplained`` is the rest: bugs until shown otherwise.
- **Read-your-writes** holds in the model where the newest write of a key is the reading
  location's own and visible there (``own_write_delay_ms`` after it; it replaces the cache
  entry). A ``get`` in that case is logged ``(read-your-writes)`` and must return that write.
  Nothing else is promised to a reader: listings lag even where they were written.

Violations come back in a :class:`Report` whose ``render()`` is a readable trace: the seed, the
settings, each violation, then the operations, KV writes and journal ops that touched the
messages involved. ``run_sim(SimSettings(seed=...))`` replays a seed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import random
import secrets
import selectors
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from unittest import mock

from chat_store import ChatStore, Message, RangeQuery, Scope
from config import Config
from errors import ChatStoreError, StorageUnavailable, problem_for
from index.object_cache import ObjectCache
from index.pacer import CompactionPacer
from index.sorted_index import MAX_COMPACTION_MS, IndexObjects, IndexStore, Layout
from index.zset import MAX_SCORE, MIN_SCORE
from kvformat import INTENT_PREFIX, JOURNAL_PREFIX, message_key
from storage.retrying import RetryingKV, RetryPolicy
from support.edge_kv import REQUEST_TAG, EdgeWorld, Read, Write
from support.fault_harness import settle_background
from support.memory_kv import MemoryKV
from validation import Validator

if TYPE_CHECKING:
    from _typeshed import FileDescriptorLike

T = TypeVar("T")
START_MS = 1_700_000_000_000
CURSOR_SECRET = "edge-sim-cursor-secret"
DEFAULT_CONFIG = Config(api_token="edge-sim")  # the store's defaults: settle 120 s, head 128
MAX_PAGES = 200
State = Literal["live", "gone", "unknown"]
Position = tuple[int, str]


# -- virtual time ----------------------------------------------------------------------------


class SimulationDeadlock(RuntimeError):
    """Every task waits on something that no timer will bring: the simulation cannot go on."""


class _JumpingSelector(selectors.BaseSelector):
    """Polls the loop's real file descriptors (its self-pipe) without blocking; where the loop
    would block until its next timer, moves the virtual clock there instead."""

    def __init__(self, loop: VirtualTimeLoop) -> None:
        self._inner = selectors.DefaultSelector()
        self._loop = loop

    def register(
        self, fileobj: FileDescriptorLike, events: int, data: Any = None
    ) -> selectors.SelectorKey:
        return self._inner.register(fileobj, events, data)

    def unregister(self, fileobj: FileDescriptorLike) -> selectors.SelectorKey:
        return self._inner.unregister(fileobj)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = self._inner.select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:
            raise SimulationDeadlock("every task is waiting and no timer is set")
        self._loop.jump(timeout)
        return []

    def close(self) -> None:
        self._inner.close()

    def get_map(self) -> Mapping[FileDescriptorLike, selectors.SelectorKey]:
        return self._inner.get_map()


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop on virtual time: sleeps end at once, in order, and deterministically."""

    def __init__(self) -> None:
        self._now = 0.0
        super().__init__(_JumpingSelector(self))

    def time(self) -> float:
        return self._now

    def jump(self, seconds: float) -> None:
        self._now += seconds


@contextlib.contextmanager
def _seeded_secrets(rng: random.Random) -> Iterator[None]:
    """ULIDs and index versions take ``secrets`` randomness: seed it, so a run replays."""
    with mock.patch.object(secrets, "randbits", rng.getrandbits), \
            mock.patch.object(secrets, "token_hex", lambda n=32: rng.randbytes(n).hex()):
        yield


# -- settings --------------------------------------------------------------------------------


@dataclass(frozen=True)
class EdgeSettings:
    """``EdgeWorld``'s knobs (see ``edge_kv``); defaults are the documented edge timings."""

    cache_ttl_ms: int = 60_000
    max_propagation_ms: int = 1_000
    min_propagation_ms: int = 0
    max_list_lag_ms: int = 60_000
    min_list_lag_ms: int = 0
    own_write_delay_ms: int = 0
    rate_limit_writes: bool = True
    rate_limit_deletes: bool = True
    failure_rate: float = 0.01
    latency_ms: tuple[int, int] = (1, 25)

    def world(self, seed: int, clock: Callable[[], int]) -> EdgeWorld:
        return EdgeWorld(seed, clock, **asdict(self))


@dataclass(frozen=True)
class SimSettings:
    seed: int = 0
    ops: int = 200  # client operations in all (a listing that follows cursors is one)
    locations: tuple[str, ...] = ("ams", "iad", "sin")
    isolates: int = 2  # per location
    clients: int = 6
    users: tuple[str, ...] = ("u1", "u2", "u3")
    conversations: tuple[str, ...] = ("c1", "c2", "c3")
    think_ms: tuple[int, int] = (0, 3_000)  # a client's pause between operations
    roam: float = 0.2  # how often a client's request lands away from its home location
    client_retries: int = 2  # a client sends a write that got 503 again, 1 s later
    edge: EdgeSettings = EdgeSettings()
    config: Config = DEFAULT_CONFIG
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    convergence_rounds: int = 3

    def describe(self) -> str:
        e, c = self.edge, self.config
        return (
            f"seed={self.seed} ops={self.ops} locations={len(self.locations)}x{self.isolates} "
            f"clients={self.clients}; store: settle={c.journal_settle_ms} ms, head "
            f"{c.index_head_max}/{c.index_head_keep}, segment {c.index_segment_max}; edge: "
            f"cache ttl={e.cache_ttl_ms} ms, propagation {e.min_propagation_ms}-"
            f"{e.max_propagation_ms} ms, list lag {e.min_list_lag_ms}-{e.max_list_lag_ms} ms, "
            f"own write delay {e.own_write_delay_ms} ms, 429s={e.rate_limit_writes} "
            f"(deletes {e.rate_limit_deletes}), failures={e.failure_rate}, "
            f"latency {e.latency_ms[0]}-{e.latency_ms[1]} ms"
        )


# -- what happened ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    status: int  # what the HTTP API would answer
    value: Any = None
    error: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class LogLine:
    n: int
    start_ms: int
    who: str
    location: str
    where: str
    text: str
    end_ms: int = 0
    status: int = 0
    result: str = ""
    ids: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()

    @property
    def housekeeping(self) -> bool:
        return self.who.startswith("~")

    def render(self) -> str:
        return (f"[{self.n:>4}] {_t(self.start_ms)}..{_t(self.end_ms)} {self.who:<7} "
                f"{self.where:<6} {self.text} -> {self.status} {self.result}").rstrip()


def _t(ms: int) -> str:
    return f"{(ms - START_MS) / 1000:+.3f}s"


# What a store must never do, whatever the edge: answer 500, break a page, list out of order,
# count other than it lists, or not read a write the model guarantees visible.
SELF_CONSISTENCY = frozenset({"INTERNAL", "PAGE", "PAGES", "ORDER", "COUNT", "RANGE", "RYW"})
# Agreement of indexes and records with each other and with what was acknowledged.
AGREEMENT = frozenset({"MISSING", "EXTRA", "POSITION", "STALE", "LOST", "RESURRECTED", "STORED"})


@dataclass(frozen=True)
class Violation:
    kind: str  # one of SELF_CONSISTENCY or AGREEMENT
    detail: str
    ids: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()
    # What each of ``ids`` is to it, where a kind covers several ("ghost": indexed, no record;
    # "doubled": indexed twice; "moved": indexed away from its record's timestamp; "missing",
    # "extra": as stored). Empty: the kind says it.
    roles: tuple[str, ...] = ()
    # The documented edge limit (a key of DOCUMENTED_LIMITS) that wholly explains it, if any.
    limit: str = ""

    def role(self, message_id: str) -> str:
        return dict(zip(self.ids, self.roles, strict=True)).get(message_id, "") if self.roles \
            else ""

    def render(self) -> str:
        tail = f" [documented limit: {self.limit}]" if self.limit else ""
        return f"{self.kind}: {self.detail}{tail}"


# Documented edge limits (README, consistency model): without a consistent read, a request at
# one location may act on a record its location still has cached after another location
# changed it. Each limit, with the (violation kind, role) pairs it produces about the messages
# it touched. A violation is put down to one only when every message it names was touched by
# it, and no later write could have set the index right (see ``Sim._classify``).
PATCH_AFTER_DELETE = "patch-after-delete"
PATCH_UNDOES_MOVE = "patch-undoes-move"
REPLAY_AFTER_DELETE = "replay-after-delete"
PATCH_RACING_DELETE = "patch-racing-delete"
ERASE_AFTER_DELETE = "erase-after-delete"
UNLISTED = frozenset({("MISSING", ""), ("STORED", "missing")})
GHOSTS = frozenset({("COUNT", "ghost"), ("RANGE", "ghost"), ("STORED", "extra")})
DOCUMENTED_LIMITS: dict[str, tuple[str, frozenset[tuple[str, str]]]] = {
    PATCH_AFTER_DELETE: (
        "a PATCH read a cached copy of a message deleted or erased elsewhere and acted on it: "
        "wrote the record back (no index lists it, also when it journaled a move that the "
        "delete's removal, journaled later, undid) or journaled its position again and answered "
        "200 without writing (an entry with no record: counted, never listed; acknowledged with "
        "no record)", UNLISTED | GHOSTS | frozenset({("LOST", "")})),
    PATCH_UNDOES_MOVE: (
        "a PATCH (content only) read a cached copy from before a move made elsewhere and wrote "
        "the old timestamp back: the index keeps the move, the record does not",
        frozenset({("ORDER", "moved"), ("RANGE", "moved"), ("STORED", "moved")})),
    REPLAY_AFTER_DELETE: (
        "a create read a cached copy of a message deleted elsewhere, answered 200 'replay' and "
        "journaled its entries again: acknowledged with no record, counted, never listed",
        frozenset({("LOST", "")}) | GHOSTS),
    # No stale read: the README's "a PATCH racing a delete can also do [this] on one KV".
    PATCH_RACING_DELETE: (
        "a PATCH read the record before a delete or erase (anywhere) took it, and wrote it back "
        "after: no index lists it where that delete's removal was journaled after the PATCH's "
        "own index ops, if any", UNLISTED),
    ERASE_AFTER_DELETE: (
        "a delete or erase read a cached copy of a message deleted elsewhere and deleted it "
        "again: a create of that id racing it, its entries journaled before that removal and "
        "its record written after that delete (a 429 from it, say), is listed nowhere the "
        "removal reached", UNLISTED),
}


@dataclass
class Expected:
    """What the acknowledged operations on one message id say its record must be."""

    state: State
    fields: dict[str, Any] | None = None  # the client fields the last acked write stored
    line: int = 0
    location: str = ""

    def describe(self) -> str:
        return f"{self.state} since [{self.line}]" + (f" at {self.location}" if self.location
                                                       else "")


def client_fields(message: Mapping[str, Any]) -> dict[str, Any]:
    return {k: message.get(k) for k in ("user_id", "conversation_id", "sender", "content",
                                        "timestamp", "metadata")}


class Oracle:
    """Acknowledged outcomes per message id: a 2xx is what must hold, a 503 leaves it open."""

    def __init__(self) -> None:
        self.messages: dict[str, Expected] = {}

    def acked(self, message: Message, *, wrote: bool, line: int, location: str) -> None:
        before = self.messages.get(message["id"])
        fields = client_fields(message) if wrote else None
        if not wrote and before is not None and before.state == "live":
            fields = before.fields  # a replay writes nothing: the record is as it was
        self.messages[message["id"]] = Expected("live", fields, line, location)

    def gone(self, message_id: str, *, line: int, location: str) -> None:
        self.messages[message_id] = Expected("gone", None, line, location)

    def doubt(self, message_id: str, *, line: int) -> None:
        self.messages[message_id] = Expected("unknown", None, line)

    def describe(self, message_id: str) -> str:
        known = self.messages.get(message_id)
        return known.describe() if known else "never acknowledged (a failed server-id create?)"


@dataclass
class Isolate:
    location: str
    number: int
    kv: RetryingKV
    objects: IndexObjects
    pacer: CompactionPacer

    @property
    def name(self) -> str:
        return f"{self.location}/{self.number}"


Work = Callable[[ChatStore], Awaitable[Outcome]]


class _WaitUntil:
    """A request's ``defer`` (``ctx.waitUntil``): work handed over before the response starts
    with it, work handed over later (deferred work deferring more) starts at once. Observing
    requests drop it all, so that checking does not repair."""

    def __init__(self, start: Callable[[Awaitable[object]], None], observe: bool) -> None:
        self._start = start
        self._observe = observe
        self._held: list[Awaitable[object]] | None = []

    def __call__(self, work: Awaitable[object]) -> None:
        if self._held is not None:
            self._held.append(work)
        elif self._observe:
            _drop(work)
        else:
            self._start(work)

    def respond(self) -> None:
        held, self._held = self._held or [], None
        for work in held:
            self(work)


def _drop(work: Awaitable[object]) -> None:
    if isinstance(work, Coroutine):
        work.close()


def _member(message_id: str) -> str:
    return message_key(message_id)


def _id_of(member: str) -> str:
    return member.removeprefix("chat:")


def _scope_of(index: str) -> Scope:
    kind, _, scope_id = index.partition(":chat:")
    return Scope("user" if kind == "user" else "conversation", scope_id)


def _scopes_of(message: Mapping[str, Any]) -> tuple[str, ...]:
    found = [Scope("user", message["user_id"]).index]
    if message.get("conversation_id") is not None:
        found.append(Scope("conversation", message["conversation_id"]).index)
    return tuple(found)


def _describe_body(body: Mapping[str, Any]) -> str:
    where = body["user_id"] + (f"/{body['conversation_id']}" if "conversation_id" in body else "")
    ts = f" ts={_t(body['timestamp'])}" if "timestamp" in body else ""
    return f"{body.get('id', '<server id>')} {where}{ts}"


# -- the simulation --------------------------------------------------------------------------


class Sim:
    """One simulated deployment. Scripted tests call the operations directly inside
    :meth:`run`; :meth:`simulate` runs random clients, then settles and checks."""

    def __init__(self, settings: SimSettings) -> None:
        self.settings = settings
        self.loop = VirtualTimeLoop()
        self.world = settings.edge.world(settings.seed, self.now_ms)
        self.rng = random.Random(f"{settings.seed}/sim")
        self._secrets = random.Random(f"{settings.seed}/secrets")
        self._validator = Validator(settings.config)
        self.isolates = {
            loc: [self._isolate(loc, n) for n in range(settings.isolates)]
            for loc in settings.locations
        }
        self.oracle = Oracle()
        self.log: list[LogLine] = []
        self.violations: list[Violation] = []
        self.notes: list[str] = []
        self.stats: Counter[str] = Counter()
        self._background: set[asyncio.Task[None]] = set()
        self._truth: dict[str, list[Position]] = {}  # each index read whole, for the checks

    def _isolate(self, location: str, number: int) -> Isolate:
        rng = random.Random(f"{self.settings.seed}/{location}/{number}")
        kv = RetryingKV(self.world.location(location), asyncio.sleep, self.settings.retry, rng)
        return Isolate(location, number, kv, ObjectCache(), CompactionPacer())

    def __enter__(self) -> Sim:
        return self

    def __exit__(self, *exc: object) -> None:
        # A script that stopped half-way leaves tasks behind: cancel them before closing.
        pending = [t for t in asyncio.all_tasks(self.loop) if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.close()

    def now_ms(self) -> int:
        return START_MS + round(self.loop.time() * 1000)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        with _seeded_secrets(self._secrets):
            return self.loop.run_until_complete(coro)

    async def at(self, offset_ms: int) -> None:
        """Sleep until ``START_MS + offset_ms`` (no-op if that is past)."""
        await asyncio.sleep(max(0, START_MS + offset_ms - self.now_ms()) / 1000)

    async def drain(self) -> None:
        """Wait for every other task: deferred work, calls a failed request left running."""
        await settle_background()

    def violate(self, kind: str, detail: str, ids: tuple[str, ...] = (),
                scopes: tuple[str, ...] = (), roles: tuple[str, ...] = ()) -> None:
        self.violations.append(Violation(kind, detail, ids, scopes, roles))

    # -- requests ---------------------------------------------------------------------------

    def _pick(self, location: str, isolate: int | None) -> Isolate:
        choices = self.isolates[location]
        return choices[isolate] if isolate is not None else self.rng.choice(choices)

    async def _op(
        self, who: str, location: str, isolate: int | None, text: str,
        run: Callable[[Isolate, str], Awaitable[Outcome]],
    ) -> tuple[Outcome, LogLine]:
        """One logged client operation (one request, or several for a paginated listing)."""
        where = self._pick(location, isolate)
        line = LogLine(len(self.log) + 1, self.now_ms(), who, location, where.name, text)
        self.log.append(line)
        outcome = await run(where, f"#{line.n}")
        line.end_ms, line.status = self.now_ms(), outcome.status
        if outcome.error:
            line.result = outcome.error
        if not line.housekeeping:
            self.stats[f"{text.split()[0]} {outcome.status}"] += 1
        return outcome, line

    async def _call(self, where: Isolate, tag: str, work: Work, *, observe: bool) -> Outcome:
        """One request at ``where``: a fresh ChatStore over the isolate's pieces, errors as the
        API maps them, deferred work started after the response (dropped when observing)."""
        deferred = _WaitUntil(lambda item: self._after_response(item, tag), observe)
        config = self.settings.config
        store = ChatStore(where.kv, self.now_ms, deferred, settle_ms=config.journal_settle_ms,
                          cursor_secret=CURSOR_SECRET, index_objects=where.objects,
                          pacer=where.pacer,
                          layout=Layout(config.index_head_max, config.index_head_keep,
                                        config.index_segment_max))
        token = REQUEST_TAG.set(tag)
        try:
            outcome = await work(store)
        except ChatStoreError as exc:
            outcome = Outcome(problem_for(exc).status, error=f"{type(exc).__name__}")
        except Exception as exc:  # the API would answer 500: always a bug
            outcome = Outcome(500, error=repr(exc))
        finally:
            REQUEST_TAG.reset(token)
        if outcome.status == 500:
            self.violate("INTERNAL", f"{tag} at {where.name}: {outcome.error}")
        deferred.respond()
        return outcome

    def _after_response(self, work: Awaitable[object], tag: str) -> None:
        async def guarded() -> None:
            REQUEST_TAG.set(f"{tag}+waitUntil")
            try:
                await work
            except StorageUnavailable:
                self.stats["waitUntil gave up (KV)"] += 1
            except Exception as exc:  # entry._guarded logs these: here they are bugs
                self.violate("INTERNAL", f"waitUntil work of {tag} raised {exc!r}")

        task = asyncio.ensure_future(guarded())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _single(self, work: Work, observe: bool = False
                ) -> Callable[[Isolate, str], Awaitable[Outcome]]:
        return lambda where, tag: self._call(where, tag, work, observe=observe)

    # -- operations (each updates the oracle from its outcome) ------------------------------

    async def create(
        self, location: str, bodies: list[dict[str, Any]], *, who: str = "script",
        batch: bool | None = None, isolate: int | None = None,
    ) -> Outcome:
        drafts = [self._validator.message(body) for body in bodies]
        many = len(bodies) > 1 if batch is None else batch

        async def work(store: ChatStore) -> Outcome:
            if many:
                messages, created = await store.create_many(drafts)
            else:
                message, new = await store.create(drafts[0])
                messages, created = [message], [new]
            return Outcome(201 if any(created) else 200, (messages, created))

        text = ("batch " if many else "create ") + ", ".join(_describe_body(b) for b in bodies)
        outcome, line = await self._op(who, location, isolate, text, self._single(work))
        line.scopes = tuple(sorted({s for b in bodies for s in _scopes_of(b)}))
        line.ids = tuple(b["id"] for b in bodies if "id" in b)
        if outcome.ok:
            messages, created = outcome.value
            line.ids = tuple(m["id"] for m in messages)
            line.result = " ".join(f"{m['id']}{'' if new else '(replay)'}"
                                   for m, new in zip(messages, created, strict=True))
            for message, new in zip(messages, created, strict=True):
                self.oracle.acked(message, wrote=new, line=line.n, location=location)
        elif outcome.status >= 500:
            for body in bodies:
                if "id" in body:
                    self.oracle.doubt(body["id"], line=line.n)
        return outcome

    async def patch(
        self, location: str, message_id: str, changes: dict[str, Any], *, who: str = "script",
        isolate: int | None = None,
    ) -> Outcome:
        patch = self._validator.patch(changes)

        async def work(store: ChatStore) -> Outcome:
            return Outcome(200, await store.patch(message_id, patch))

        shown = {k: (_t(v) if k == "timestamp" else v) for k, v in changes.items()}
        outcome, line = await self._op(who, location, isolate, f"patch {message_id} {shown}",
                                       self._single(work))
        line.ids = (message_id,)
        if outcome.ok:
            message = outcome.value
            line.scopes = _scopes_of(message)
            self._note_stale_patch(message, changes, line)
            self.oracle.acked(message, wrote=True, line=line.n, location=location)
        elif outcome.status >= 500:
            self.oracle.doubt(message_id, line=line.n)
        return outcome

    def _note_stale_patch(self, message: Message, changes: dict[str, Any], line: LogLine) -> None:
        """A patch merges into the record it read: from a stale cache, it undoes earlier
        acknowledged edits (a lost update, not a lost message: noted, not a violation)."""
        known = self.oracle.messages.get(message["id"])
        if known is None or known.state != "live" or known.fields is None:
            return
        fields = client_fields(message)
        undone = [k for k, v in known.fields.items() if k not in changes and fields[k] != v]
        if undone:
            self.notes.append(f"[{line.n}] patch of {message['id']} at {line.where} merged into "
                              f"a stale record: undid {undone} acknowledged at [{known.line}]")

    async def delete(
        self, location: str, message_id: str, *, who: str = "script", isolate: int | None = None,
    ) -> Outcome:
        async def work(store: ChatStore) -> Outcome:
            await store.delete(message_id)
            return Outcome(204)

        outcome, line = await self._op(who, location, isolate, f"delete {message_id}",
                                       self._single(work))
        line.ids = (message_id,)
        if outcome.ok:
            self.oracle.gone(message_id, line=line.n, location=location)
        elif outcome.status >= 500:
            self.oracle.doubt(message_id, line=line.n)
        return outcome

    async def get(
        self, location: str, message_id: str, *, who: str = "script", isolate: int | None = None,
    ) -> Outcome:
        key = _member(message_id)
        ryw = self.world.reads_own_write(location, key)
        newest = self.world.history(key)[-1] if ryw else None

        async def work(store: ChatStore) -> Outcome:
            return Outcome(200, await store.get(message_id))

        outcome, line = await self._op(who, location, isolate, f"get {message_id}",
                                       self._single(work))
        line.ids = (message_id,)
        if newest is not None:
            # The newest write of the record is this location's own and visible here: the model
            # gives read-your-writes, so the answer is that write, or one accepted while the get
            # was under way (a concurrent erase, say).
            line.result = (line.result + " (read-your-writes)").strip()
            since = [w for w in self.world.history(key) if w.seq >= newest.seq]
            wants = [None if w.value is None else json.loads(w.value) for w in since]
            got = outcome.value if outcome.status == 200 else None
            if outcome.status in (200, 404) and got not in wants:
                self.violate("RYW", f"[{line.n}] get {message_id} at {line.where} answered "
                             f"{outcome.status}, but {location} wrote {newest.describe(START_MS)}",
                             (message_id,))
        return outcome

    async def list_all(
        self, location: str, scope: Scope, *, order: Literal["asc", "desc"] = "desc",
        start: int = MIN_SCORE, end: int = MAX_SCORE, limit: int = 50, who: str = "script",
        isolate: int | None = None, observe: bool = False,
    ) -> Outcome:
        """Every page of a listing, following ``next_cursor``; ``value`` is the list of pages."""
        pages: list[list[Message]] = []

        async def run(where: Isolate, tag: str) -> Outcome:
            cursor: str | None = None
            for number in range(MAX_PAGES):
                query = RangeQuery(limit, order, start, end, cursor)

                async def work(store: ChatStore, query: RangeQuery = query) -> Outcome:
                    return Outcome(200, await store.list_page(scope, query))

                got = await self._call(where, f"{tag}.{number}", work, observe=observe)
                if not got.ok:
                    return got
                pages.append(got.value.messages)
                cursor = got.value.next_cursor
                if cursor is None:
                    return Outcome(200, pages)
            self.violate("PAGES", f"{tag}: {scope.index} needed more than {MAX_PAGES} pages")
            return Outcome(200, pages)

        bounds = "" if (start, end) == (MIN_SCORE, MAX_SCORE) else f" [{_t(start)}, {_t(end)}]"
        text = f"list {scope.index} {order} limit={limit}{bounds}"
        outcome, line = await self._op(who, location, isolate, text, run)
        line.scopes = (scope.index,)
        ids = [m["id"] for page in pages for m in page]
        line.ids = tuple(ids)
        line.result = f"{len(pages)} pages: {' '.join(ids)}" if outcome.ok else line.result
        for page in pages:
            self._check_page(page, scope, limit, line)
        return outcome

    def _check_page(self, page: list[Message], scope: Scope, limit: int, line: LogLine) -> None:
        """What holds for any page, even mid-run: the limit, no message twice, only the
        scope's messages."""
        ids = [m["id"] for m in page]
        field_name = "user_id" if scope.kind == "user" else "conversation_id"
        if len(page) > limit or len(set(ids)) != len(ids):
            self.violate("PAGE", f"[{line.n}] a page of {len(page)} (limit {limit}): {ids}",
                         tuple(ids), (scope.index,))
        strangers = [m["id"] for m in page if m.get(field_name) != scope.id]
        if strangers:
            self.violate("PAGE", f"[{line.n}] {scope.index} listed {strangers}",
                         tuple(strangers), (scope.index,))

    async def count(
        self, location: str, scope: Scope, *, start: int = MIN_SCORE, end: int = MAX_SCORE,
        who: str = "script", isolate: int | None = None, observe: bool = False,
    ) -> Outcome:
        async def work(store: ChatStore) -> Outcome:
            return Outcome(200, await store.count(scope, start, end))

        bounds = "" if (start, end) == (MIN_SCORE, MAX_SCORE) else f" [{_t(start)}, {_t(end)}]"
        outcome, line = await self._op(who, location, isolate, f"count {scope.index}{bounds}",
                                       self._single(work, observe))
        line.scopes = (scope.index,)
        if outcome.ok:
            line.result = str(outcome.value)
        return outcome

    async def erase(
        self, location: str, scope: Scope, *, who: str = "script", isolate: int | None = None,
    ) -> Outcome:
        """One erase request (``remaining`` says whether to send another)."""

        async def work(store: ChatStore) -> Outcome:
            return Outcome(200, await store.erase(scope))

        outcome, line = await self._op(who, location, isolate, f"erase {scope.index}",
                                       self._single(work))
        line.scopes = (scope.index,)
        if outcome.ok:
            line.result = f"deleted={outcome.value.deleted} remaining={outcome.value.remaining}"
        # Failed or not, the records it deleted are gone: the trace names them.
        erased = [_id_of(w.key) for w in self._writes_of(f"#{line.n}")
                  if w.key.startswith("chat:") and w.value is None]
        line.ids = tuple(sorted(set(erased)))
        return outcome

    def _writes_of(self, tag: str) -> list[Write]:
        return [w for key in self.world.keys_with_prefix("chat:") for w in self.world.history(key)
                if _line_number(w.tag) == _line_number(tag)]

    # -- random clients, then settle and check ----------------------------------------------

    async def simulate(self) -> None:
        per_client = math.ceil(self.settings.ops / self.settings.clients)
        clients = [Client(self, n) for n in range(self.settings.clients)]
        budgets = [min(per_client, max(0, self.settings.ops - n * per_client))
                   for n in range(len(clients))]
        await asyncio.gather(*(c.run(b) for c, b in zip(clients, budgets, strict=True)))
        await self.settle()
        await self.check()

    def scopes(self) -> list[Scope]:
        """Every index the run may have touched."""
        found = {Scope("user", u).index for u in self.settings.users}
        found |= {Scope("conversation", c).index for c in self.settings.conversations}
        for _, metadata in self._records().values():
            found.add(Scope("user", metadata["u"]).index)
            if "c" in metadata:
                found.add(Scope("conversation", metadata["c"]).index)
        return [_scope_of(index) for index in sorted(found)]

    async def settle(self) -> None:
        """Quiet period and convergence: no faults, everything visible everywhere and due for
        collection, then reads of every index at every location (compaction and repair run),
        a few rounds over."""
        await self.drain()
        self.world.failure_rate = 0.0
        settle_ms = self.settings.config.journal_settle_ms
        gc_wait = self.world.quiet_ms() + 2 * (settle_ms + MAX_COMPACTION_MS) + 1_000
        for _ in range(self.settings.convergence_rounds):
            await asyncio.sleep(gc_wait / 1000)
            for location in self.settings.locations:
                for scope in self.scopes():
                    await self.list_all(location, scope, who="~settle", limit=100)
                    await self.count(location, scope, who="~settle")
                await self.drain()
        await asyncio.sleep(self.world.quiet_ms() / 1000)

    def _records(self) -> dict[str, tuple[Message, dict[str, Any]]]:
        records: dict[str, tuple[Message, dict[str, Any]]] = {}
        for key, (value, metadata) in self.world.settled_view().items():
            if key.startswith("chat:"):
                records[_id_of(key)] = (json.loads(value), metadata or {})
        return records

    def _expected(self) -> dict[str, list[Position]]:
        """Each index as the records say it must be: (timestamp, member), sorted."""
        want: dict[str, list[Position]] = {s.index: [] for s in self.scopes()}
        for message_id, (message, _) in self._records().items():
            for index in _scopes_of(message):
                want[index].append((message["timestamp"], _member(message_id)))
        return {index: sorted(entries) for index, entries in want.items()}

    async def check(self) -> None:
        expected = self._expected()
        records = {i: m for i, (m, _) in self._records().items()}
        self._truth = await self._index_truth()
        for location in self.settings.locations:
            for scope in self.scopes():
                await self._check_index(location, scope, expected[scope.index], records)
        self._check_records(records)
        self._check_stored(expected)
        self._classify()

    async def _index_truth(self) -> dict[str, list[Position]]:
        """Every index entry as a reader takes the index apart once everything is visible (root,
        segments, unfolded journal ops), whether its record exists or not: what names the
        messages behind a count or an order gone wrong. Read from a snapshot of the
        authoritative state, so that checking draws nothing from the model's randomness."""
        kv = MemoryKV(clock=lambda: self.now_ms() / 1000)
        for key, (value, metadata) in self.world.settled_view().items():
            await kv.put(key, value, metadata=metadata)
        c = self.settings.config
        store = IndexStore(kv, self.now_ms, c.journal_settle_ms,
                           Layout(c.index_head_max, c.index_head_keep, c.index_segment_max))
        truth: dict[str, list[Position]] = {}
        for scope in self.scopes():
            view = await store.read(scope.index, trust=False, cap=False)
            truth[scope.index] = [(e.score, e.member) for e in await view.zrange_by_score()]
        return truth

    def _anomalies(
        self, index: str, records: dict[str, Message], lo: int = MIN_SCORE, hi: int = MAX_SCORE,
    ) -> dict[str, list[str]]:
        """The index's entries (within ``[lo, hi]``) that no record backs, by role: "ghost"
        (no record), "doubled" (indexed twice), "moved" (away from its record's timestamp)."""
        found: dict[str, list[str]] = {"ghost": [], "doubled": [], "moved": []}
        entries = self._truth.get(index, [])
        seen: Counter[str] = Counter(m for _, m in entries)
        for score, member in entries:
            message_id = _id_of(member)
            record = records.get(message_id)
            at = None if record is None else record["timestamp"]
            if not (lo <= score <= hi or (at is not None and lo <= at <= hi)):
                continue
            role = ("ghost" if record is None else "doubled" if seen[member] > 1
                    else "moved" if at != score else "")
            if role and message_id not in found[role]:
                found[role].append(message_id)
        return found

    def _naming(self, anomalies: dict[str, list[str]], *roles: str
                ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        pairs = [(i, role) for role in roles for i in anomalies[role]]
        return tuple(i for i, _ in pairs), tuple(role for _, role in pairs)

    async def _check_index(
        self, location: str, scope: Scope, want: list[Position], records: dict[str, Message],
    ) -> None:
        asc = await self._positions(location, scope, "asc", records)
        desc = await self._positions(location, scope, "desc", records)
        where = f"{scope.index} at {location}"
        anomalies = self._anomalies(scope.index, records)
        misplaced = self._naming(anomalies, "moved", "doubled")
        if asc != sorted(set(asc)):
            self.violate("ORDER", f"{where}: ascending listing out of order or repeating: "
                         f"{[_id_of(m) for _, m in asc][:40]}; indexed apart from their "
                         f"records: {list(misplaced[0])}", misplaced[0], (scope.index,),
                         misplaced[1])
        if desc != asc[::-1]:
            self.violate("ORDER", f"{where}: descending listing is not the ascending one "
                         f"reversed; indexed apart from their records: {list(misplaced[0])}",
                         misplaced[0], (scope.index,), misplaced[1])
        self._compare(where, scope, asc, want)
        total = await self.count(location, scope, who="~check", observe=True)
        if total.value != len(asc):
            counted = self._naming(anomalies, "ghost", "doubled")
            self.violate("COUNT", f"{where}: count {total.value}, listed {len(asc)} (records "
                         f"{len(want)}); indexed without a record or twice: "
                         f"{list(counted[0])}", counted[0], (scope.index,), counted[1])
        if asc:  # a range between two listed timestamps, ends included
            lo, hi = sorted(self.rng.choice(asc)[0] for _ in range(2))
            inside = [p for p in asc if lo <= p[0] <= hi]
            ranged = await self.count(location, scope, start=lo, end=hi, who="~check",
                                      observe=True)
            listed = await self._positions(location, scope, "asc", records, lo, hi)
            if ranged.value != len(inside) or listed != inside:
                named = self._naming(self._anomalies(scope.index, records, lo, hi),
                                     "ghost", "doubled", "moved")
                self.violate("RANGE", f"{where} [{_t(lo)}, {_t(hi)}]: count {ranged.value}, "
                             f"listed {len(listed)}, in the full listing {len(inside)}; "
                             f"entries in range not backed by a record: {list(named[0])}",
                             named[0], (scope.index,), named[1])

    async def _positions(
        self, location: str, scope: Scope, order: Literal["asc", "desc"],
        records: dict[str, Message], start: int = MIN_SCORE, end: int = MAX_SCORE,
    ) -> list[Position]:
        got = await self.list_all(location, scope, order=order, start=start, end=end, limit=7,
                                  who="~check", observe=True)
        listed = [m for page in got.value or [] for m in page]
        for message in listed:
            if records.get(message["id"]) not in (None, message):
                self.violate("STALE", f"{scope.index} at {location} listed {message['id']} "
                             "unlike its record", (message["id"],), (scope.index,))
        return [(m["timestamp"], _member(m["id"])) for m in listed]

    def _compare(self, where: str, scope: Scope, listed: list[Position],
                 want: list[Position]) -> None:
        have = {member: score for score, member in listed}
        need = {member: score for score, member in want}
        for member in sorted(need.keys() - have.keys()):
            message_id = _id_of(member)
            self.violate("MISSING", f"{where}: {message_id} has a record but is not listed; "
                         f"oracle: {self.oracle.describe(message_id)}", (message_id,),
                         (scope.index,))
        for member in sorted(have.keys() - need.keys()):
            message_id = _id_of(member)
            self.violate("EXTRA", f"{where}: {message_id} is listed but has no record; oracle: "
                         f"{self.oracle.describe(message_id)}", (message_id,), (scope.index,))
        for member in sorted(have.keys() & need.keys()):
            if have[member] != need[member]:
                self.violate("POSITION", f"{where}: {_id_of(member)} listed at "
                             f"{_t(have[member])}, its record says {_t(need[member])}",
                             (_id_of(member),), (scope.index,))

    def _check_records(self, records: dict[str, Message]) -> None:
        """Acknowledged outcomes against the records."""
        for message_id, known in sorted(self.oracle.messages.items()):
            record = records.get(message_id)
            if known.state == "gone" and record is not None:
                self.violate("RESURRECTED", f"{message_id} was deleted at [{known.line}] but "
                             "its record is back", (message_id,), _scopes_of(record))
            if known.state != "live":
                continue
            if record is None and not self._erased(message_id, known.line):
                self.violate("LOST", f"{message_id} acknowledged at [{known.line}] has no record "
                             "and no erase took it", (message_id,))
            elif record is not None and known.fields not in (None, client_fields(record)):
                self.violate("STALE", f"{message_id}: record differs from what [{known.line}] "
                             "acknowledged", (message_id,), _scopes_of(record))

    def _erased(self, message_id: str, acked_at: int) -> bool:
        """Whether the record's last write is a delete made by an erase, and made after the
        request acknowledged at line ``acked_at`` began (an erase that was over before then
        cannot have taken what that request acknowledged)."""
        history = self.world.history(_member(message_id))
        if not history or history[-1].value is not None:
            return False
        line = self._line_of(history[-1].tag)
        acked = self.log[acked_at - 1] if 0 < acked_at <= len(self.log) else None
        began = acked.start_ms if acked is not None else 0
        return line is not None and line.text.startswith("erase") and history[-1].at_ms >= began

    def _line_of(self, tag: str) -> LogLine | None:
        n = _line_number(tag)
        return self.log[n - 1] if 0 < n <= len(self.log) else None

    def _check_stored(self, expected: dict[str, list[Position]]) -> None:
        """The stored index (root head, then the manifest's segments) once everything folded:
        what a reader of the seed's layout sees."""
        view = self.world.settled_view()
        for index, want in expected.items():
            stored: list[Position] = []
            root = view.get(index)
            if root is not None:
                manifest_key = (root[1] or {}).get("m")
                if manifest_key is not None and manifest_key in view:
                    for segment in json.loads(view[manifest_key][0])["segments"]:
                        stored += _entries(view.get(segment[0], ("[]", None))[0])
                stored += _entries(root[0])
            if sorted(stored) != want:
                extra = sorted({m for _, m in stored} - {m for _, m in want})
                missing = sorted({m for _, m in want} - {m for _, m in stored})
                at = {m: s for s, m in want}
                times = Counter(m for _, m in stored)
                doubled = sorted(m for m, n in times.items() if n > 1)
                moved = sorted({m for s, m in stored if m in at and s != at[m]} - set(doubled))
                named = missing + extra + moved + doubled
                self.violate("STORED", f"{index} as stored: {len(stored)} entries, records "
                             f"{len(want)}; missing {missing}, extra {extra}, moved {moved}, "
                             f"doubled {doubled}", tuple(_id_of(m) for m in named), (index,),
                             ("missing",) * len(missing) + ("extra",) * len(extra)
                             + ("moved",) * len(moved) + ("doubled",) * len(doubled))

    # -- documented limits ------------------------------------------------------------------

    def _classify(self) -> None:
        """Mark each violation wholly explained by documented edge limits (``limit``): every
        message it names ran into one that produces this kind of violation (in this role), and
        nothing written about that message since could have set it right."""
        limits = self._limits_met()
        for n, violation in enumerate(self.violations):
            if not violation.ids:
                continue
            found: set[str] = set()
            for message_id in violation.ids:
                role = violation.role(message_id)
                which = [met.name for met in limits.get(message_id, ())
                         if self._produces(met, violation, message_id, role)
                         and not self._set_right_since(met, violation, role)]
                if not which:
                    break
                found.add(which[0])
            else:
                self.violations[n] = replace(violation, limit=", ".join(sorted(found)))

    def _produces(self, met: _Met, violation: Violation, message_id: str, role: str) -> bool:
        """Whether ``met`` produces this violation about ``message_id``: its kind and role, in
        the indexes where it can, and (a message lost) as the acknowledgement the oracle holds."""
        if (violation.kind, role) not in met.produces:
            return False
        if (violation.kind, role) in UNLISTED and met.unlisted_in is not None \
                and not set(violation.scopes) <= met.unlisted_in:
            return False
        known = self.oracle.messages.get(message_id)
        return violation.kind != "LOST" or (known is not None and known.line == met.request)

    def _limits_met(self) -> dict[str, list[_Met]]:
        """Per message id, the documented limits an acknowledged request ran into with it: the
        request's first read of the record was answered from a location's cache after another
        write of it had been accepted (a delete, or a move), and it acted on that copy; or (a
        PATCH) a delete was accepted between its read and its write of the record."""
        first: dict[tuple[int, str], Read] = {}
        for read in self.world.reads:
            if read.key.startswith("chat:") and read.tag == f"#{_line_number(read.tag)}":
                first.setdefault((_line_number(read.tag), read.key), read)
        journaled = self._journal_writes()
        finishers = self._plan_finishers()
        met: dict[str, list[_Met]] = {}
        for line in self.log:
            verb = line.text.split()[0]
            # A PATCH that KV failed (503) after its record write landed acted all the same.
            acted = 200 <= line.status < 300 or (verb == "patch" and line.status >= 500)
            if line.housekeeping or not acted or verb not in ("patch", "create", "batch"):
                continue
            for message_id in line.ids:
                key = _member(message_id)
                got = first.get((line.n, key))
                if got is None or got.seq is None:
                    continue
                history = self.world.history(key)
                missed = [w for w in history if got.seq < w.seq <= got.upto_seq]
                raced = False
                if not missed and verb == "patch":
                    # Not a stale read: then what another request wrote between this read and
                    # this request's own write of the record (a PATCH racing a delete).
                    wrote = [w for w in history if _line_number(w.tag) == line.n]
                    missed = [w for w in history if wrote and got.seq < w.seq < wrote[0].seq
                              and _line_number(w.tag) != line.n]
                    raced = bool(missed)
                if not missed:
                    continue
                seen = next(w for w in history if w.seq == got.seq)
                newest = missed[-1]
                name = ""
                produces = frozenset[tuple[str, str]]()
                unlisted_in: frozenset[str] | None = None
                # The request whose write the read missed may still be journaling it, or a
                # later delete or erase finishing its plan.
                missed_lines = {_line_number(w.tag) for w in missed}
                lines = frozenset({line.n, *missed_lines,
                                   *(f for n in missed_lines for f in finishers.get(n, ()))})
                if verb == "patch":
                    wrote = [w for w in history if _line_number(w.tag) == line.n]
                    mine = [w for w in journaled.get(key, ()) if _line_number(w.tag) == line.n]
                    if raced:
                        # Read before the delete, wrote the record back after it: unlisted where
                        # the delete's removal was journaled after this request's own ops (all
                        # of them, for a PATCH that journaled none).
                        others = lines - {line.n}
                        unlisted_in = (_undone_in(mine, journaled.get(key, ()), key, others)
                                       if mine else
                                       _removed_in(journaled.get(key, ()), key, others))
                        if newest.value is None and unlisted_in:
                            name = PATCH_RACING_DELETE
                    elif newest.value is None and (wrote or mine):
                        name = PATCH_AFTER_DELETE
                        if not mine:  # wrote the record back, unindexed
                            produces = UNLISTED
                        elif not wrote:  # journaled an entry for it, answered 200: no record
                            produces = GHOSTS | {("LOST", "")}
                        else:
                            # Wrote it back with a move, journaled; unlisted only where the
                            # removal of the delete it missed was journaled after that move.
                            unlisted_in = _undone_in(mine, journaled.get(key, ()), key,
                                                     lines - {line.n})
                            produces = GHOSTS | (UNLISTED if unlisted_in else frozenset())
                    elif (wrote and not mine and newest.value is not None
                          and _timestamp(newest) != _timestamp(seen)):
                        name = PATCH_UNDOES_MOVE
                elif f"{message_id}(replay)" in line.result.split() and newest.value is None:
                    name = REPLAY_AFTER_DELETE
                if name:
                    met.setdefault(message_id, []).append(_Met(
                        name, produces or DOCUMENTED_LIMITS[name][1], key, got.at_ms, line.n,
                        lines, unlisted_in))
        for found in self._stale_deletes(first, journaled, finishers):
            met.setdefault(_id_of(found.key), []).append(found)
        return met

    def _stale_deletes(self, first: dict[tuple[int, str], Read],
                       journaled: dict[str, list[Write]], finishers: dict[int, set[int]]
                       ) -> list[_Met]:
        """ERASE_AFTER_DELETE: a delete or erase read a stale copy of a record deleted
        elsewhere and deleted it again; an acknowledged create of that id wrote the record after
        that delete, its entries journaled before that request's removal (where it is unlisted).
        """
        found: list[_Met] = []
        creates = [line for line in self.log if not line.housekeeping and line.text.split()[0]
                   in ("create", "batch") and 200 <= line.status < 300]
        for (n, key), got in first.items():
            line = self._line_of(f"#{n}")
            if line is None or line.text.split()[0] not in ("delete", "erase") or got.seq is None:
                continue
            history = self.world.history(key)
            missed = [w for w in history if got.seq < w.seq <= got.upto_seq]
            mine = [w for w in history if _line_number(w.tag) == n and w.value is None]
            if not missed or missed[-1].value is not None or not mine:
                continue
            lines = frozenset({n, *finishers.get(n, ())})
            for create in creates:
                message_id = _id_of(key)
                if message_id not in create.result.split():  # new there, not a replay
                    continue
                puts = [w for w in history if _line_number(w.tag) == create.n
                        and w.value is not None and w.seq > mine[0].seq]
                ops = [w for w in journaled.get(key, ()) if _line_number(w.tag) == create.n]
                unlisted_in = _undone_in(ops, journaled.get(key, ()), key, lines) \
                    if puts and ops else frozenset()
                if unlisted_in:
                    found.append(_Met(ERASE_AFTER_DELETE, UNLISTED, key, got.at_ms, create.n,
                                      lines | {create.n}, unlisted_in))
        return found

    def _plan_finishers(self) -> dict[int, set[int]]:
        """Per request, the deletes and erases that read a plan it wrote (``idx:intent:``) and
        so carried out its writes."""
        found: dict[int, set[int]] = {}
        for read in self.world.reads:
            if not read.key.startswith(INTENT_PREFIX) or read.seq is None:
                continue
            writer = next(w for w in self.world.history(read.key) if w.seq == read.seq)
            reader = self._line_of(read.tag)
            if reader is not None and reader.text.split()[0] in ("delete", "erase"):
                found.setdefault(_line_number(writer.tag), set()).add(reader.n)
        return found

    def _journal_writes(self) -> dict[str, list[Write]]:
        """Every journal put, by the members its ops name."""
        found: dict[str, list[Write]] = {}
        for key in self.world.keys_with_prefix(JOURNAL_PREFIX):
            for write in self.world.history(key):
                for op in json.loads(write.value) if write.value is not None else ():
                    for member in {m for m in op[1:3] if isinstance(m, str)}:
                        found.setdefault(member, []).append(write)
        return found

    def _set_right_since(self, met: _Met, violation: Violation, role: str) -> bool:
        """Whether another request could have set the index right after ``met``: journaled an
        op naming the message in the violation's indexes or, where the violation is about an
        entry without a record (or a record missing), wrote the record. Later PATCHes of a
        record written back merely keep it, so for an unlisted record only journal ops count."""
        ghostly = role in ("ghost", "extra") or violation.kind == "LOST"
        history = self.world.history(met.key)
        for before, write in zip([None, *history], history, strict=False):
            # Another request made the record exist, or stop existing, after the stale read;
            # unless it did so blind to the record ``met`` wrote back (its own read of it a
            # cached miss): it cannot have known the entries that record's request journaled.
            present = before is not None and before.value is not None
            if (ghostly and write.at_ms >= met.since_ms and _line_number(write.tag) != met.request
                    and present != (write.value is not None)
                    and not self._blind_to(met, write)):
                return True
        # Journal ops of the requests whose writes the stale read missed finish those writes.
        for scope in violation.scopes:
            for key in self.world.keys_with_prefix(f"{JOURNAL_PREFIX}{scope}:"):
                if any(w.at_ms >= met.since_ms and _line_number(w.tag) not in met.lines
                       and _ops_about(w, met.key) for w in self.world.history(key)):
                    return True
        return False

    def _blind_to(self, met: _Met, write: Write) -> bool:
        """Whether the request that made ``write`` last read ``met``'s record, before making
        it, without seeing the record ``met``'s request had written by then (a cached copy or
        a cached miss)."""
        line = _line_number(write.tag)
        reads = [r for r in self.world.reads if r.key == met.key
                 and _line_number(r.tag) == line and r.upto_seq < write.seq]
        if not reads:
            return False
        last = reads[-1]
        newest = next((w for w in reversed(self.world.history(met.key))
                       if w.seq <= last.upto_seq), None)
        return (newest is not None and newest.value is not None
                and _line_number(newest.tag) == met.request and last.seq != newest.seq)

    def report(self) -> Report:
        return Report(self.settings, list(self.violations), list(self.notes), list(self.log),
                      dict(self.stats), self.world)


@dataclass(frozen=True)
class _Met:
    """A documented limit one request ran into with one message (``key``, its record), after
    its stale read at ``since_ms``; ``lines``: that request and those whose writes it missed."""

    name: str
    produces: frozenset[tuple[str, str]]  # (kind, role) pairs, within the limit's
    key: str
    since_ms: int
    request: int
    lines: frozenset[int]
    # The indexes where it leaves the record unlisted (None: wherever the message is indexed).
    unlisted_in: frozenset[str] | None = None


def _index_of(journal_key: str) -> str:
    return journal_key.removeprefix(JOURNAL_PREFIX).rpartition(":")[0]


def _undone_in(mine: list[Write], journaled: Sequence[Write], member: str,
               lines: frozenset[int]) -> frozenset[str]:
    """The indexes where a removal of ``member`` journaled by one of ``lines`` comes after
    every op of ``mine`` (journal puts of one request): readers apply it last, so that request's
    entries are gone there. Journal keys count down, so the later entry has the lower key."""
    undone: set[str] = set()
    for index in {_index_of(w.key) for w in mine}:
        last = min(w.key for w in mine if _index_of(w.key) == index)  # applied last
        if any(_index_of(w.key) == index and w.key < last and _line_number(w.tag) in lines
               and any(op[0] == "r" for op in _ops_about(w, member)) for w in journaled):
            undone.add(index)
    return frozenset(undone)


def _removed_in(journaled: Sequence[Write], member: str, lines: frozenset[int]
                ) -> frozenset[str]:
    """The indexes where one of ``lines`` journaled a removal of ``member``."""
    return frozenset(_index_of(w.key) for w in journaled if _line_number(w.tag) in lines
                     and any(op[0] == "r" for op in _ops_about(w, member)))


def _timestamp(write: Write) -> int | None:
    return None if write.value is None else json.loads(write.value).get("timestamp")


def _line_number(tag: str) -> int:
    """``#41``, ``#41.2`` (a page), ``#41+waitUntil``: 41 (0 for no tag)."""
    digits = tag.removeprefix("#").split(".")[0].split("+")[0]
    return int(digits) if digits.isdigit() else 0


def _entries(raw: str) -> list[Position]:
    return [(item["score"], item["member"]) for item in json.loads(raw)]


# -- clients ---------------------------------------------------------------------------------


@dataclass
class Owned:
    """A message a client made, as the client knows it."""

    body: dict[str, Any] | None  # the create body (None for a server-made id)
    state: State = "live"


@dataclass
class Client:
    """One client: random operations, one at a time, mostly at its home location."""

    sim: Sim
    number: int
    owned: dict[str, Owned] = field(default_factory=dict)
    unresolved: list[tuple[str, Any]] = field(default_factory=list)  # failed writes to resend
    made: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(f"{self.sim.settings.seed}/client{self.number}")
        self.who = f"c{self.number}"
        locations = self.sim.settings.locations
        self.home = locations[self.number % len(locations)]

    async def run(self, ops: int) -> None:
        for _ in range(ops):
            await asyncio.sleep(self.rng.randint(*self.sim.settings.think_ms) / 1000)
            await self.step()

    def where(self) -> str:
        if self.rng.random() < self.sim.settings.roam:
            return self.rng.choice(self.sim.settings.locations)
        return self.home

    async def step(self) -> None:
        live = [i for i, o in self.owned.items() if o.state == "live"]
        gone = [i for i, o in self.owned.items() if o.state == "gone" and o.body is not None]
        actions: list[tuple[float, Callable[[], Awaitable[None]]]] = [
            (24, self.create_one), (6, self.create_batch), (16, self.list_some),
            (8, self.count_some), (1, self.erase_user), (0.6, self.erase_conversation),
        ]
        if live:
            actions += [(7, self.patch_content), (7, self.patch_move), (8, self.delete_one),
                        (6, self.get_one)]
        if gone:
            actions.append((4, self.recreate))
        if self.unresolved:
            actions.append((4, self.resend))
        weights, moves = zip(*actions, strict=True)
        await self.rng.choices(moves, weights)[0]()

    # -- writes -----------------------------------------------------------------------------

    async def send(self, request: Callable[[], Awaitable[Outcome]]) -> Outcome:
        """A write, sent again after ``Retry-After`` (1 s) while it answers 503."""
        outcome = await request()
        for _ in range(self.sim.settings.client_retries):
            if outcome.status != 503:
                break
            await asyncio.sleep(1.0)
            outcome = await request()
        return outcome

    def body(self, *, with_id: bool) -> dict[str, Any]:
        s, rng = self.sim.settings, self.rng
        self.made += 1
        body: dict[str, Any] = {"user_id": rng.choice(s.users), "sender": {"id": self.who},
                                "content": f"{self.who} says {self.made}"}
        if with_id:
            body["id"] = f"{self.who}m{self.made}"
        if rng.random() < 0.6:
            body["conversation_id"] = rng.choice(s.conversations)
        if rng.random() < 0.7:
            body["timestamp"] = self.timestamp()
        if rng.random() < 0.2:
            body["metadata"] = {"n": self.made}
        return body

    def timestamp(self) -> int:
        return START_MS + self.rng.randrange(-120, 600) * 500  # ties happen

    async def create_one(self) -> None:
        await self.create([self.body(with_id=self.rng.random() < 0.7)])

    async def create_batch(self) -> None:
        bodies = [self.body(with_id=self.rng.random() < 0.8) for _ in range(self.rng.randint(2, 5))]
        await self.create(bodies)

    async def create(self, bodies: list[dict[str, Any]]) -> None:
        location = self.where()
        outcome = await self.send(lambda: self.sim.create(location, bodies, who=self.who))
        if outcome.ok:
            for message, _ in zip(*outcome.value, strict=True):
                body = next((b for b in bodies if b.get("id") == message["id"]), None)
                self.owned[message["id"]] = Owned(body)
        elif outcome.status == 503 and any("id" in b for b in bodies):
            with_ids = [b for b in bodies if "id" in b]
            for body in with_ids:
                self.owned[body["id"]] = Owned(body, "unknown")
            self.unresolved.append(("create", with_ids))

    async def patch_content(self) -> None:
        changes: dict[str, Any] = {"content": f"{self.who} edits {self.rng.randint(0, 999)}"}
        if self.rng.random() < 0.2:
            changes["metadata"] = {"edited": True}
        await self.patch(changes)

    async def patch_move(self) -> None:
        await self.patch({"timestamp": self.timestamp()})

    async def patch(self, changes: dict[str, Any]) -> None:
        message_id = self.rng.choice([i for i, o in self.owned.items() if o.state == "live"])
        location = self.where()
        outcome = await self.send(
            lambda: self.sim.patch(location, message_id, changes, who=self.who))
        if outcome.status == 404:
            self.owned[message_id].state = "gone"  # erased, or so this location believes
        elif outcome.status == 503:
            self.owned[message_id].state = "unknown"

    async def delete_one(self) -> None:
        message_id = self.rng.choice([i for i, o in self.owned.items() if o.state == "live"])
        await self.delete(message_id)

    async def delete(self, message_id: str) -> None:
        location = self.where()
        outcome = await self.send(lambda: self.sim.delete(location, message_id, who=self.who))
        if outcome.status in (204, 404):
            self.owned[message_id].state = "gone"
        elif outcome.status == 503:
            self.owned[message_id].state = "unknown"
            self.unresolved.append(("delete", message_id))

    async def recreate(self) -> None:
        """The same client id again: the same body, or new content (a conflict where the old
        record is still seen)."""
        choices = [i for i, o in self.owned.items() if o.state == "gone" and o.body is not None]
        body = dict(self.owned[self.rng.choice(choices)].body or {})
        if self.rng.random() < 0.4:
            body["content"] = f"{self.who} again {self.rng.randint(0, 999)}"
        await self.create([body])

    async def resend(self) -> None:
        kind, what = self.unresolved.pop(self.rng.randrange(len(self.unresolved)))
        if kind == "create":
            await self.create(what)
        else:
            await self.delete(what)

    async def erase_user(self) -> None:
        await self.erase(Scope("user", self.rng.choice(self.sim.settings.users)))

    async def erase_conversation(self) -> None:
        await self.erase(Scope("conversation", self.rng.choice(self.sim.settings.conversations)))

    async def erase(self, scope: Scope) -> None:
        location = self.where()
        for _ in range(8):  # repeat while the store says some remain
            outcome = await self.send(lambda: self.sim.erase(location, scope, who=self.who))
            if not outcome.ok or outcome.value.remaining == 0:
                return

    # -- reads ------------------------------------------------------------------------------

    async def get_one(self) -> None:
        message_id = self.rng.choice(list(self.owned))
        await self.sim.get(self.where(), message_id, who=self.who)

    def scope(self) -> Scope:
        s = self.sim.settings
        if self.rng.random() < 0.5:
            return Scope("user", self.rng.choice(s.users))
        return Scope("conversation", self.rng.choice(s.conversations))

    def bounds(self) -> tuple[int, int]:
        if self.rng.random() < 0.7:
            return MIN_SCORE, MAX_SCORE
        lo, hi = sorted((self.timestamp(), self.timestamp()))
        return lo, hi

    async def list_some(self) -> None:
        start, end = self.bounds()
        order: Literal["asc", "desc"] = self.rng.choice(["asc", "desc"])
        await self.sim.list_all(self.where(), self.scope(), order=order, start=start, end=end,
                                limit=self.rng.randint(1, 20), who=self.who)

    async def count_some(self) -> None:
        start, end = self.bounds()
        await self.sim.count(self.where(), self.scope(), start=start, end=end, who=self.who)


# -- reports ---------------------------------------------------------------------------------


@dataclass(repr=False)
class Report:
    settings: SimSettings
    violations: list[Violation]
    notes: list[str]
    log: list[LogLine]
    stats: dict[str, int]
    world: EdgeWorld

    def __repr__(self) -> str:  # short, for assertion rewriting: render() has the story
        return f"Report(seed={self.settings.seed}, violations={len(self.violations)})"

    @property
    def ok(self) -> bool:
        return not self.violations

    @property
    def unexplained(self) -> list[Violation]:
        """The violations no documented edge limit explains: bugs, until shown otherwise."""
        return [v for v in self.violations if not v.limit]

    @property
    def documented(self) -> list[Violation]:
        return [v for v in self.violations if v.limit]

    def of_kinds(self, kinds: frozenset[str]) -> list[Violation]:
        return [v for v in self.violations if v.kind in kinds]

    def full_log(self, *, housekeeping: bool = False) -> str:
        """Every operation of the run (with the settle and check reads if asked)."""
        return "\n".join(line.render() for line in self.log
                         if housekeeping or not line.housekeeping)

    def render(self, *, max_violations: int = 25, max_lines: int = 150) -> str:
        limits = Counter(v.limit for v in self.documented)
        out = [f"edge simulation: {len(self.violations)} violation(s), "
               f"{len(self.unexplained)} not explained by a documented edge limit"
               + (f" (documented: {dict(sorted(limits.items()))})" if limits else ""),
               f"settings: {self.settings.describe()}",
               f"model: worst staleness {self.world.worst_staleness_ms} ms (after the put is "
               f"accepted; add the put's own time, retries included) vs settle "
               f"{self.settings.config.journal_settle_ms} ms; replay with "
               f"run_sim(SimSettings(seed={self.settings.seed}, ...))",
               f"outcomes (operation status: count): {dict(sorted(self.stats.items()))}",
               "kv ops: " + ", ".join(
                   f"{name} {kv.counters.ops} ({kv.counters.rate_limited} x 429, "
                   f"{kv.counters.transient} failed)" for name, kv in self.world.locations.items()),
               f"429s by key kind: {_by_kind(self.world.rate_limited)}, of which deletes: "
               f"{_by_kind(self.world.rate_limited_deletes)}"]
        out += ["", "violations:"] + [f"  {v.render()}" for v in self.violations[:max_violations]]
        if len(self.violations) > max_violations:
            out.append(f"  ... and {len(self.violations) - max_violations} more")
        if self.notes:
            out += ["", "notes:"] + [f"  {note}" for note in self.notes[:20]]
        shown = self.violations[:max_violations]
        ids = sorted({i for v in shown for i in v.ids})
        scopes = sorted({s for v in shown for s in v.scopes})
        if ids or scopes:
            out += ["", f"operations on {ids[:12]}, or writing about them:"]
            out += self._trace(set(ids[:12]), scopes, max_lines)
            for message_id in ids[:6]:
                out += ["", *self._kv_story(message_id, scopes)]
        return "\n".join(out)

    def _trace(self, ids: set[str], scopes: list[str], max_lines: int) -> list[str]:
        """The client operations on ``ids``, and every operation that wrote about them."""
        writers = {_line_number(w.tag) for message_id in ids
                   for w in self._writes_about(message_id, scopes)}
        writers |= {_line_number(r.tag) for r in self.world.reads
                    if r.stale and _id_of(r.key) in ids}
        picked = [line for line in self.log
                  if line.n in writers or (ids & set(line.ids) and not line.housekeeping)]
        lines = [f"  {line.render()}" for line in picked[:max_lines]]
        if len(picked) > max_lines:
            lines.append(f"  ... {len(picked) - max_lines} more")
        return lines

    def _writes_about(self, message_id: str, scopes: list[str]) -> list[Write]:
        member = _member(message_id)
        found = self.world.history(member)
        for index in scopes:
            for key in self.world.keys_with_prefix(f"{JOURNAL_PREFIX}{index}:"):
                found += [w for w in self.world.history(key) if _ops_about(w, member)]
        return found

    def _kv_story(self, message_id: str, scopes: list[str]) -> list[str]:
        """Every write of the record, and every journal op and root write about it."""
        member = _member(message_id)
        out = [f"KV writes about {message_id}:"]
        out += [f"  {w.describe(START_MS)}" for w in self.world.history(member)]
        stale = [r for r in self.world.reads if r.key == member and r.stale]
        out += [f"  stale read: {r.describe(START_MS)}" for r in stale[:20]]
        for index in scopes:
            for key in self.world.keys_with_prefix(f"{JOURNAL_PREFIX}{index}:"):
                for write in self.world.history(key):
                    ops = _ops_about(write, member)
                    if ops:
                        out.append(f"  journal {index}: {_describe(write, ops)}")
            out += [f"  root {index}: {_describe_root(w, member)}"
                    for w in _flips(self.world.history(index), member)]
        return out


def _kind(key: str) -> str:
    for prefix, kind in (("chat:", "record"), ("idx:intent:", "intent"), ("idx:log:", "journal"),
                         ("idx:seg:", "segment"), ("idx:man:", "manifest")):
        if key.startswith(prefix):
            return kind
    return "root"


def _by_kind(per_key: Counter[str]) -> dict[str, int]:
    kinds: Counter[str] = Counter()
    for key, n in per_key.items():
        kinds[_kind(key)] += n
    return dict(sorted(kinds.items()))


def _ops_about(write: Write, member: str) -> list[Any]:
    """The ops of a journal entry's put that name ``member``."""
    if write.value is None:
        return []
    return [op for op in json.loads(write.value)
            if isinstance(op, list) and member in op[1:3]]


def _describe(write: Write, ops: list[Any]) -> str:
    return (f"#{write.seq} {_t(write.at_ms)} {write.origin} [{write.tag}] "
            f"{json.dumps(ops)}")


def _holds(write: Write, member: str) -> bool:
    return write.value is not None and any(
        item["member"] == member for item in json.loads(write.value))


def _flips(writes: list[Write], member: str) -> list[Write]:
    """The root writes that put ``member`` in its head or took it out, and the last one."""
    picked = [w for n, w in enumerate(writes)
              if _holds(w, member) != (n > 0 and _holds(writes[n - 1], member))]
    if writes and (not picked or picked[-1] is not writes[-1]):
        picked.append(writes[-1])
    return picked


def _describe_root(write: Write, member: str) -> str:
    if write.value is None:
        return f"#{write.seq} {_t(write.at_ms)} {write.origin} [{write.tag}] deleted"
    meta = json.loads(write.metadata_json or "{}")
    held = _holds(write, member)
    at = meta.get("at")
    return (f"#{write.seq} {_t(write.at_ms)} {write.origin} [{write.tag}] at="
            f"{_t(at) if isinstance(at, int) else at} head {'holds' if held else 'lacks'} "
            f"{member}{' (+segments)' if meta.get('m') else ''}")


def run_sim(settings: SimSettings) -> Report:
    """One seeded run: random clients, quiet period, convergence, checks."""
    with Sim(settings) as sim:
        sim.run(sim.simulate())
        return sim.report()
