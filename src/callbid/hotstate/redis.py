"""The hot state in Redis, shared by every worker: one Lua script (one round trip) per call."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Mapping, Sequence
from functools import wraps
from importlib.resources import files
from typing import Any, ParamSpec, TypeVar

import orjson
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, SlotNotCoveredError

from callbid.adapters.outage import NotReplicated, OutageLog, is_outage
from callbid.domain.errors import Unavailable
from callbid.domain.reserve import (
    EPSILON,
    CallHold,
    CapSubject,
    HoldStatus,
    LiveReservation,
    ReserveOrder,
    ReserveResult,
    SubjectUsage,
    period_counters,
)
from callbid.hotstate.cluster import RedisClient, connect_cluster, is_cluster_url
from callbid.hotstate.pool import pool_options
from callbid.hotstate.redis_wire import (
    decode_hold,
    decode_hold_record,
    decode_live,
    decode_record,
    decode_result,
    encode_holds,
    encode_records,
    encode_subjects,
    prefix,
    record_key,
    reserve_args,
    script_keys,
)
from callbid.hotstate.sentinel import SENTINEL_SCHEME, connect_sentinel, follow_master

log = logging.getLogger(__name__)
report_outage = OutageLog(log)

P = ParamSpec("P")
R = TypeVar("R")

RETRY_AFTER_SECONDS = 1.0
#: Present while Redis holds the state of every live reservation; gone when Redis lost it.
RESTORED_KEY = "cb:restored:2"  # :2 since the caller hashes (who:): see the README
RESTORING_KEY = "cb:restoring"
#: Hash tags tried for a mark on every cluster master (16,384 slots: a master owns some).
MARK_TAGS_TRIED = 100_000
#: The scripts use EXPIRE ... NX, and a cluster's bus sharded pub/sub: both Redis 7.0.
MIN_REDIS_VERSION = (7, 0)
RESTORE_LOCK_MS = 60_000


def connect_redis(url: str, *, timeout: float, pool_size: int) -> RedisClient:
    """A client of one Redis or, for a `redis+cluster://` URL, of a Redis Cluster (see
    `callbid.hotstate.cluster`). The one-server client is on a bounded pool (hiredis parses
    replies): a burst of requests queues for one of `pool_size` connections instead of
    opening hundreds at once. It gives up after
    `timeout` seconds instead of hanging, and retries once on a fresh connection, so that a
    pooled connection broken by a Redis restart costs no request. Every script is safe to
    retry: a reserve whose uuid is already stored answers with the stored record.
    `redis+sentinel://` URLs get the same on the master their sentinels name;
    `redis+cluster://` URLs get redis-py's cluster client (see `hotstate.cluster`)."""
    if is_cluster_url(url):
        return connect_cluster(url, timeout=timeout, pool_size=pool_size)
    if url.startswith(f"{SENTINEL_SCHEME}://"):
        return connect_sentinel(url, timeout=timeout, pool_size=pool_size)
    pool = BlockingConnectionPool.from_url(url, max_connections=pool_size, **pool_options(timeout))
    return Redis.from_pool(pool)  # the client owns the pool: closing it closes the pool


def unavailable_when_down(
    method: Callable[P, Coroutine[Any, Any, R]],
) -> Callable[P, Coroutine[Any, Any, R]]:
    """Turn Redis being unreachable into `Unavailable` (HTTP 503 with Retry-After)."""

    @wraps(method)
    async def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await method(*args, **kwargs)
        except Exception as exc:
            if not is_outage(exc):
                raise
            report_outage("Redis", exc)
            raise Unavailable(
                "FAILED hot state unavailable, retry shortly", retry_after=RETRY_AFTER_SECONDS
            ) from exc

    return guarded


#: The shared parts each script starts with (Redis scripts cannot import); every part a
#: script carries costs Redis its definitions on each call, so the reserve takes only one.
SCRIPT_PARTS = {"reserve": ("common",)}
DEFAULT_PARTS = ("common", "calls")


def _script_source(name: str) -> str:
    """`name`.lua with the shared helpers it needs in front."""
    lua = files("callbid.hotstate") / "lua"
    parts = (*SCRIPT_PARTS.get(name, DEFAULT_PARTS), name)
    return "\n".join((lua / f"{part}.lua").read_text() for part in parts)


#: A script call waiting for its batch: script, keys, arguments, whether it writes, answer.
Call = tuple[AsyncScript, list[str], list[str | bytes], bool, "asyncio.Future[Any]"]


class ScriptPipeline:
    """Script calls made during one turn of the event loop leave together, as one pipeline:
    one connection checkout, one write and one read for the lot, instead of one each. Every
    script is atomic on its own, so pipelining changes nothing of what each one does; under
    load it cuts the client's and Redis's cost per call, at no latency cost when idle.

    With `replicas_ack` > 0, a batch that writes ends with `WAIT replicas_ack wait_ms` on the
    same connection, which covers every write before it: when fewer replicas confirm in time,
    each write of the batch fails with `NotReplicated` (a failover could lose it), so no
    caller is told of a write only the master has. On a cluster the batch leaves as one
    connection per master, so each master its calls went to gets a WAIT of its own after
    them; a call whose slot changed masters meanwhile (MOVED, a failover) was not covered by
    its master's WAIT and fails the same way. Retrying is safe: every script answers a
    repeat of a call (same uuid, same call key) with what it stored the first time."""

    def __init__(self, client: RedisClient, *, replicas_ack: int = 0, wait_ms: int = 500) -> None:
        self._client = client
        self._replicas_ack = replicas_ack
        self._wait_ms = wait_ms
        self._pending: list[Call] = []
        self._sending: set[asyncio.Task[None]] = set()

    async def call(
        self,
        script: AsyncScript,
        keys: list[str],
        args: list[str | bytes],
        *,
        writes: bool = True,
    ) -> Any:
        """The script's reply; its error, or an outage error, as an exception. `writes=False`
        marks a call that changes nothing, which needs no replica's confirmation."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if not self._pending:
            loop.call_soon(self._flush)
        self._pending.append((script, keys, args, writes, future))
        return await future

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        task = asyncio.get_running_loop().create_task(self._send(batch))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[Call]) -> None:
        try:
            replies = await self._run(batch)
            lost = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
            if lost:  # Redis restarted, or failed over to a replica, and lost its scripts
                again = await self._run([batch[i] for i in lost], load=True)
                for i, reply in zip(lost, again, strict=True):
                    replies[i] = reply
        except Exception as exc:
            replies = [exc] * len(batch)
        for (*_, future), reply in zip(batch, replies, strict=True):
            if future.done():  # its caller was cancelled
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    async def _run(self, calls: list[Call], *, load: bool = False) -> list[Any]:
        """One reply (or error) per call, confirmed by replicas when asked to. `load` sends
        each script's source (EVAL, which caches it again) instead of its digest."""
        confirm = self._replicas_ack > 0 and any(writes for *_, writes, _ in calls)
        if len(calls) == 1 and not confirm and not load:  # the idle path: no pipeline
            script, keys, args, *_ = calls[0]
            return [await script(keys=keys, args=args)]
        groups = await self._masters(calls) if confirm else []
        pipe = self._client.pipeline(transaction=False)
        for script, keys, args, *_ in calls:
            if load:
                pipe.execute_command("EVAL", script.script, len(keys), *keys, *args)
            else:
                pipe.evalsha(script.sha, len(keys), *keys, *args)
        for master, _ in groups:  # after the calls: each covers its connection's writes
            target = {} if master is None else {"target_nodes": master}
            pipe.execute_command("WAIT", self._replicas_ack, self._wait_ms, **target)
        replies: list[Any] = await pipe.execute(raise_on_error=False)
        if not confirm:
            return replies
        answers = replies[: len(calls)]
        refused: dict[int, Any] = {}  # call index: what its master's WAIT answered
        for (master, members), acked in zip(groups, replies[len(calls) :], strict=True):
            confirmed = isinstance(acked, int) and acked >= self._replicas_ack
            if confirmed and master is not None and self._moved(master, calls, members):
                confirmed, acked = False, f"a slot moved off {master.name}"
            if not confirmed:
                refused |= dict.fromkeys(members, acked)
        if refused and isinstance(self._client, Redis):
            await follow_master(self._client)  # this master may have been replaced
        for i, acked in refused.items():
            if calls[i][3] and not isinstance(answers[i], Exception):  # a write, answered
                answers[i] = self._refusal(acked)
        return answers

    async def _masters(self, calls: list[Call]) -> list[tuple[Any, list[int]]]:
        """The connections a batch leaves on, each with the indexes of its calls: one (None)
        on a single server; on a cluster, the master of each call's slot as the client's map
        has it now, which is where the pipeline sends it."""
        if not isinstance(self._client, RedisCluster):
            return [(None, list(range(len(calls))))]
        await self._client.initialize()  # at once unless the map is missing or stale
        groups: dict[str, tuple[Any, list[int]]] = {}
        for i, (_, keys, *_) in enumerate(calls):
            master = self._client.get_node_from_key(keys[0])
            if master is None:  # no master serves the slot: an outage, as the call would be
                raise SlotNotCoveredError(f"no master serves the slot of {keys[0]!r}")
            groups.setdefault(master.name, (master, []))[1].append(i)
        return list(groups.values())

    def _moved(self, master: Any, calls: list[Call], members: list[int]) -> bool:
        """Whether a call's slot now has another master than the one its WAIT ran on: the
        pipeline followed a redirection, so that WAIT did not cover the call's write."""
        assert isinstance(self._client, RedisCluster)
        owners = (self._client.get_node_from_key(calls[i][1][0]) for i in members)
        return any(owner is None or owner.name != master.name for owner in owners)

    def _refusal(self, acked: Any) -> NotReplicated:
        """For a write WAIT did not confirm: it answered `acked`, fewer replicas than asked
        for, or an error."""
        return NotReplicated(
            f"{acked!r} of {self._replicas_ack} replicas confirmed within {self._wait_ms} ms"
        )


class RedisHotState:
    """`HotState` on one Redis server or Cluster. Every method is one EVALSHA (or GET), so
    Redis runs it atomically whichever worker sends it; each namespace's keys share one slot.
    Liveness is decided by the caller's `now` alone; key TTLs only collect garbage."""

    rebuilt_from_database = False  # Redis keeps its own state (with AOF: see the README)

    def __init__(self, client: RedisClient, *, replicas_ack: int = 0, wait_ms: int = 500) -> None:
        """`replicas_ack`: replicas that must confirm each write before it is answered (see
        `ScriptPipeline`), waiting at most `wait_ms` for them."""
        self._client = client
        self._reserve = client.register_script(_script_source("reserve"))
        self._hold = client.register_script(_script_source("hold"))
        self._release = client.register_script(_script_source("release"))
        self._load = client.register_script(_script_source("load"))
        self._claim = client.register_script(_script_source("claim"))
        self._dial = client.register_script(_script_source("dial"))
        self._count = client.register_script(_script_source("count"))
        self._end = client.register_script(_script_source("end"))
        self._load_calls = client.register_script(_script_source("load_calls"))
        self._pipeline = ScriptPipeline(client, replicas_ack=replicas_ack, wait_ms=wait_ms)

    @unavailable_when_down
    async def reserve(self, order: ReserveOrder) -> ReserveResult:
        keys = script_keys(order.namespace)
        reply = await self._pipeline.call(self._reserve, keys, reserve_args(order, EPSILON))
        return decode_result(reply)

    @unavailable_when_down
    async def preview(self, order: ReserveOrder) -> ReserveResult:
        keys = script_keys(order.namespace)
        args = reserve_args(order, EPSILON, dry=True)
        reply = await self._pipeline.call(self._reserve, keys, args, writes=False)
        return decode_result(reply)

    @unavailable_when_down
    async def usage(
        self, namespace: str, subjects: Sequence[CapSubject], now: float
    ) -> tuple[SubjectUsage, ...]:
        # Plain reads in one round trip (not one script: the console can wait for nothing).
        keys, since = prefix(namespace), f"({now!r}"
        async with self._client.pipeline(transaction=False) as pipe:
            for subject in subjects:
                pipe.zcount(f"{keys}live:{subject.key}", since, "+inf")
                pipe.zcount(f"{keys}pending:{subject.key}", since, "+inf")
                for cap in subject.periods:
                    pipe.get(f"{keys}cnt:{cap.counter}")
            replies = iter(await pipe.execute())
        found = []
        for subject in subjects:
            in_use, pending = int(next(replies)), int(next(replies))
            counts = {cap.counter: int(next(replies) or 0) for cap in subject.periods}
            found.append(SubjectUsage(subject.key, in_use, pending, counts))
        return tuple(found)

    @unavailable_when_down
    async def get(self, namespace: str, uuid: str, now: float) -> LiveReservation | None:
        return decode_live(await self._client.get(record_key(namespace, uuid)), now)

    @unavailable_when_down
    async def hold(
        self, namespace: str, uuid: str, subjects: tuple[CapSubject, ...], now: float
    ) -> tuple[HoldStatus, str | None]:
        args: list[str | bytes] = [uuid, repr(now), encode_subjects(subjects)]
        return decode_hold(await self._pipeline.call(self._hold, script_keys(namespace), args))

    @unavailable_when_down
    async def release(self, namespace: str, uuid: str) -> LiveReservation | None:
        raw = await self._pipeline.call(self._release, script_keys(namespace), [uuid])
        return decode_record(raw) if raw is not None else None

    @unavailable_when_down
    async def claim(
        self,
        namespace: str,
        call_key: str,
        dialled: str,
        caller: str | None,
        now: float,
        until: float,
    ) -> LiveReservation | None:
        args: list[str | bytes] = [call_key, dialled, caller or "", repr(now), repr(until)]
        raw = await self._pipeline.call(self._claim, script_keys(namespace), args)
        return decode_record(raw) if raw is not None else None

    @unavailable_when_down
    async def dial(
        self,
        namespace: str,
        call_key: str,
        target_id: int,
        subjects: tuple[CapSubject, ...],
        now: float,
        until: float,
    ) -> tuple[HoldStatus, str | None]:
        counters = orjson.dumps(list(period_counters(subjects)))
        args: list[str | bytes] = [
            call_key,
            str(target_id),
            encode_subjects(subjects),
            repr(now),
            repr(until),
            counters,
        ]
        return decode_hold(await self._pipeline.call(self._dial, script_keys(namespace), args))

    @unavailable_when_down
    async def count_call(self, namespace: str, call_key: str, now: float) -> bool:
        args: list[str | bytes] = [call_key, repr(now)]
        return bool(await self._pipeline.call(self._count, script_keys(namespace), args))

    @unavailable_when_down
    async def end_call(
        self, namespace: str, call_key: str, count: bool, now: float
    ) -> CallHold | None:
        args: list[str | bytes] = [call_key, "1" if count else "0", repr(now)]
        raw = await self._pipeline.call(self._end, script_keys(namespace), args)
        return decode_hold_record(raw) if raw is not None else None

    @unavailable_when_down
    async def restore_calls(
        self, namespace: str, holds: Sequence[CallHold], counts: Mapping[str, int], now: float
    ) -> int:
        args: list[str | bytes] = [encode_holds(list(holds)), orjson.dumps(dict(counts)), repr(now)]
        return int(await self._load_calls(keys=script_keys(namespace), args=args))

    async def version_problem(self) -> str | None:
        """What is wrong with the Redis server's version for these scripts; None when it
        will do. A cluster is not asked: its configuration bus needs 7.0 to subscribe."""
        if not isinstance(self._client, Redis):
            return None
        version = str((await self._client.info("server")).get("redis_version", ""))
        found = tuple(int(part) for part in version.split(".")[:2] if part.isdigit())
        if not found or found >= MIN_REDIS_VERSION:
            return None  # a server that does not say cannot be judged
        need = ".".join(map(str, MIN_REDIS_VERSION))
        return f"Redis {version} is too old: callbid needs Redis {need} or newer"

    async def claim_restore(self) -> bool:
        """True when Redis lacks a mark of a completed restore (it lost its data, or this is
        the first start) and no other worker is restoring: the caller must then `restore`
        the live reservations and call `restore_done`. A cluster has a mark on each master,
        so a master that came back empty is noticed whichever it is."""
        marks = await self._restored_marks()
        if await self._client.exists(*marks) == len(marks):  # a cluster asks each master
            return False
        return bool(await self._client.set(RESTORING_KEY, "1", nx=True, px=RESTORE_LOCK_MS))

    async def _restored_marks(self) -> list[str]:
        """The restore marks: RESTORED_KEY on one server; on a cluster, one key per master
        (`RESTORED_KEY:{m<n>}`, the first n whose slot that master owns), the same for every
        worker that has the same map of slots. A mark moved with its slot is missed by the
        master it was for, which costs one refill (a restore skips what Redis still has)."""
        if not isinstance(self._client, RedisCluster):
            return [RESTORED_KEY]
        await self._client.initialize()
        masters = {node.name for node in self._client.get_primaries()}
        marks: dict[str, str] = {}
        n = 0
        while len(marks) < len(masters) and n < MARK_TAGS_TRIED:
            mark = f"{RESTORED_KEY}:{{m{n}}}"
            owner = self._client.get_node_from_key(mark)
            if owner is not None:
                marks.setdefault(owner.name, mark)
            n += 1
        return list(marks.values())

    async def restore(self, namespace: str, records: Sequence[LiveReservation], now: float) -> int:
        """Put back live reservations Redis no longer has; returns how many."""
        args: list[str | bytes] = [encode_records(list(records)), repr(now)]
        return int(await self._load(keys=script_keys(namespace), args=args))

    async def restore_abandoned(self) -> None:
        with contextlib.suppress(Exception):
            await self._client.delete(RESTORING_KEY)

    async def restore_done(self) -> None:
        for mark in await self._restored_marks():
            await self._client.set(mark, "1")
        await self._client.delete(RESTORING_KEY)

    async def close(self) -> None:
        await self._client.aclose()
