"""In-memory cache of RTB keys and their campaigns; a ping reads no configuration from the
database once its key is warm."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callbid.adapters.storage.config_repo import load_key, load_line
from callbid.domain.memo import PlanMemo
from callbid.domain.model import Campaign, RtbKey

NEGATIVE_TTL = 5.0
NEGATIVE_MAX = 10_000


@dataclass(frozen=True, slots=True)
class KeyConfig:
    """A key and its campaign as loaded; `memo` caches derived data for this snapshot only."""

    key: RtbKey
    campaign: Campaign
    memo: PlanMemo


@dataclass(frozen=True, slots=True)
class LineConfig:
    """A tracking number's campaign, as calls to it need: the campaign, the company's carrier
    auth token (signing its webhooks) and the campaign's RTB keys (strict routing)."""

    number: str
    campaign: Campaign
    carrier_token: str | None
    keys: dict[str, RtbKey]


class ConfigCache:
    """Keys and campaigns by key string; `invalidate` drops a company's entries at once.

    Unknown keys are remembered for a few seconds so that junk keys cannot make every ping a
    database query; concurrent misses on one key share one load.
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._keys: dict[str, KeyConfig] = {}
        self._unknown: dict[str, float] = {}
        self._loading: dict[str, asyncio.Future[KeyConfig | None]] = {}
        self._generation = 0
        self._lines: dict[str, LineConfig] = {}

    async def get(self, key: str) -> KeyConfig | None:
        found = self._keys.get(key)
        if found is not None:
            return found
        unknown_until = self._unknown.get(key)
        if unknown_until is not None and unknown_until > time.monotonic():
            return None
        pending = self._loading.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[KeyConfig | None] = asyncio.get_running_loop().create_future()
        self._loading[key] = future
        try:
            config = await self._load(key)
            future.set_result(config)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()
            raise
        finally:
            del self._loading[key]
        return config

    def cached(self, key: str) -> KeyConfig | None:
        """The key's configuration when it is loaded already (no I/O), else None."""
        return self._keys.get(key)

    async def _load(self, key: str) -> KeyConfig | None:
        generation = self._generation
        async with self._sessions() as session:
            loaded = await load_key(session, key)
        if generation != self._generation:
            return await self._load(key)
        if loaded is None:
            if len(self._unknown) >= NEGATIVE_MAX:
                self._unknown.clear()
            self._unknown[key] = time.monotonic() + NEGATIVE_TTL
            return None
        config = KeyConfig(*loaded, memo=PlanMemo(loaded[1]))
        self._keys[key] = config
        return config

    async def line(self, number: str) -> LineConfig | None:
        """The configuration of calls to tracking number `number` (cached; None unknown)."""
        found = self._lines.get(number)
        if found is not None:
            return found
        generation = self._generation
        async with self._sessions() as session:
            loaded = await load_line(session, number)
        if loaded is None:
            return None
        line = LineConfig(number, *loaded)
        if generation == self._generation:
            self._lines[number] = line
        return line

    def invalidate(self, company_id: int | None = None) -> None:
        """Drop cached entries of `company_id` (all when None) and every negative entry."""
        self._generation += 1
        self._unknown.clear()
        if company_id is None:
            self._keys.clear()
            self._lines.clear()
            return
        self._lines = {n: v for n, v in self._lines.items() if v.campaign.company_id != company_id}
        self._keys = {k: v for k, v in self._keys.items() if v.key.company_id != company_id}
