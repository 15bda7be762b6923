"""Who a configuration use case acts for, on which session, announcing changes to which runtime."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from callbid.runtime import Runtime


@dataclass(frozen=True, slots=True)
class Admin:
    """A use case's context: it reads and writes `company_id`'s configuration on `session`,
    checks outbound URLs with `runtime.outbound` and drops `runtime`'s cached configuration
    after each change it commits."""

    session: AsyncSession
    runtime: Runtime
    company_id: int
