"""Turns at periodic jobs among workers that share Redis: one worker runs each round."""

from __future__ import annotations

from callbid.hotstate.cluster import RedisClient


class RedisLeases:
    """`take(job, seconds)` is true for exactly one caller per `seconds`, across processes.
    Each lease is one key (SET NX PX), so on a Redis Cluster it lives on one master."""

    def __init__(self, client: RedisClient, holder: str) -> None:
        self._client = client
        self._holder = holder

    async def take(self, job: str, seconds: float) -> bool:
        # A lease a little shorter than the period, so the next round is never locked out.
        millis = max(1, int(seconds * 900))
        taken = await self._client.set(f"cb:lease:{job}", self._holder, nx=True, px=millis)
        return bool(taken)
