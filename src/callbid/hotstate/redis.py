"""The hot state in Redis, shared by every worker: one Lua script (one round trip) per call."""

from __future__ import annotations

from importlib.resources import files

from redis.asyncio import Redis

from callbid.domain.reserve import (
    EPSILON,
    CapSubject,
    HoldStatus,
    LiveReservation,
    ReserveOrder,
    ReserveResult,
)
from callbid.hotstate.redis_wire import (
    decode_hold,
    decode_live,
    decode_record,
    decode_result,
    encode_order,
    encode_subjects,
    prefix,
    record_key,
)


def _script_source(name: str) -> str:
    """`name`.lua with the shared helpers in front (Redis scripts cannot import)."""
    lua = files("callbid.hotstate") / "lua"
    return (lua / "common.lua").read_text() + "\n" + (lua / f"{name}.lua").read_text()


class RedisHotState:
    """`HotState` on one Redis server or Cluster. Every method is one EVALSHA (or GET), so
    Redis runs it atomically whichever worker sends it; each namespace's keys share one slot.
    Liveness is decided by the caller's `now` alone; key TTLs only collect garbage."""

    def __init__(self, client: Redis) -> None:
        self._client = client
        self._reserve = client.register_script(_script_source("reserve"))
        self._hold = client.register_script(_script_source("hold"))
        self._release = client.register_script(_script_source("release"))
        self._epsilon = repr(EPSILON)

    async def reserve(self, order: ReserveOrder) -> ReserveResult:
        keys = [prefix(order.namespace)]
        reply = await self._reserve(keys=keys, args=[encode_order(order), self._epsilon])
        return decode_result(reply)

    async def get(self, namespace: str, uuid: str, now: float) -> LiveReservation | None:
        return decode_live(await self._client.get(record_key(namespace, uuid)), now)

    async def hold(
        self, namespace: str, uuid: str, subjects: tuple[CapSubject, ...], now: float
    ) -> tuple[HoldStatus, str | None]:
        args: list[str | bytes] = [uuid, repr(now), encode_subjects(subjects)]
        return decode_hold(await self._hold(keys=[prefix(namespace)], args=args))

    async def release(self, namespace: str, uuid: str) -> LiveReservation | None:
        raw = await self._release(keys=[prefix(namespace)], args=[uuid])
        return decode_record(raw) if raw is not None else None

    async def close(self) -> None:
        await self._client.aclose()
