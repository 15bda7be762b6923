"""Identifiers of the rows callbid creates on the hot path (reservations, calls, pixel
deliveries).

They are UUIDv7 (RFC 9562): 48 bits of milliseconds, then 74 random bits. Publishers see them
as opaque uuids, as Retreaver's, but time-ordered keys make every insert append to the end of
the primary-key index instead of touching a random page of it: with random (v4) keys each
group commit dirtied about one index page per row, which SQLite's WAL then wrote and
checkpointed in full. They are not secrets (every request that uses one also needs the key or
an admin token); RTB keys and tokens stay random.
"""

from __future__ import annotations

from uuid_utils import uuid7


def new_id() -> str:
    """A fresh time-ordered uuid, in canonical text form."""
    return str(uuid7())
