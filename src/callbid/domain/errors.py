"""Errors a request can end in, each carrying the HTTP status it maps to.

Expected outcomes ("no buyer", "duplicate caller") are answers, not errors; these are for input
the service refuses to act on.
"""

from __future__ import annotations


class CallbidError(Exception):
    """Base of every refusal; `status` is the HTTP status, `info` the public message."""

    status = 400

    def __init__(self, info: str, *, retry_after: float | None = None) -> None:
        super().__init__(info)
        self.info = info
        self.retry_after = retry_after


class InvalidInput(CallbidError):
    status = 400


class Unauthorized(CallbidError):
    status = 401


class Forbidden(CallbidError):
    status = 403


class NotFound(CallbidError):
    status = 404


class MethodNotAllowed(CallbidError):
    status = 405


class Conflict(CallbidError):
    status = 409


class PayloadTooLarge(CallbidError):
    status = 413


class UnsupportedMediaType(CallbidError):
    status = 415


class RateLimited(CallbidError):
    status = 429


class Unavailable(CallbidError):
    """The service cannot answer right now (storage down); the client should retry."""

    status = 503

    def __init__(self, info: str, *, retry_after: float | None = 1.0) -> None:
        super().__init__(info, retry_after=retry_after)


#: Where a problem stands in the input: field names, and indexes into lists.
Loc = tuple[str | int, ...]


class InvalidField(InvalidInput):
    """Fields of the input that a business rule refuses; `problems` lists every one found as
    (`loc`, message), `loc` being the field's path in the input (`("passthrough", "url")`)."""

    status = 422

    def __init__(self, loc: Loc, message: str, *more: tuple[Loc, str]) -> None:
        self.loc = loc
        self.message = message
        self.problems: tuple[tuple[Loc, str], ...] = ((loc, message), *more)
        super().__init__("; ".join(f"{'.'.join(map(str, p))}: {m}" for p, m in self.problems))
