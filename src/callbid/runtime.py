"""The running service's parts, built once per app by `create_app` and closed on shutdown."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from random import Random

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from callbid.adapters.buyers.guard import AddressGuard, OutboundCheck
from callbid.adapters.config_bus import RedisConfigBus
from callbid.adapters.leases import RedisLeases
from callbid.adapters.storage.calls import CallWrites
from callbid.adapters.storage.reservations import ReservationWrites
from callbid.adapters.storage.writer import GroupWriter
from callbid.hotstate.protocol import HotState
from callbid.locks import KeyedLocks
from callbid.metrics import Metrics
from callbid.service.buyers import BuyerPinger, OverheadMeter
from callbid.service.configs import ConfigCache
from callbid.settings import Settings


@dataclass(slots=True)
class Runtime:
    """Everything a request handler may use; one per app, shared by its requests."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    store: HotState
    writer: GroupWriter
    writes: ReservationWrites
    configs: ConfigCache
    clock: Callable[[], datetime]
    rng: Random
    bus: RedisConfigBus | None = None
    leases: RedisLeases | None = None
    buyers: BuyerPinger | None = None
    metrics: Metrics = field(default_factory=Metrics)
    #: Outbound URLs (passthroughs, pixels) checked when configured; the buyers' allow-list.
    outbound: OutboundCheck = field(default_factory=lambda: OutboundCheck(AddressGuard()))
    overhead: OverheadMeter = field(default_factory=OverheadMeter)
    token_cache: dict[str, tuple[int, float]] = field(default_factory=dict)
    call_writes: CallWrites = field(default_factory=lambda: CallWrites("sqlite"))
    call_locks: KeyedLocks = field(default_factory=KeyedLocks)
    #: Signs the console's session cookies (`service.users.console_secret`).
    console_secret: str = ""

    async def invalidate(self, company_id: int) -> None:
        """Forget cached configuration of `company_id` after an admin change, here and, when
        several workers share Redis, in every other worker."""
        self.configs.invalidate(company_id)
        if self.bus is not None:
            await self.bus.publish(company_id)
