"""What each configuration form edits: its fields, its commands and use cases (the REST API's
own, `service.admin`), and how a stored row reads back into the form."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from callbid.console.forms import Field, filters_text, hours_text
from callbid.service.admin import (
    caller_lists,
    campaigns,
    criteria,
    groups,
    numbers,
    pixel_schemas,
    publishers,
    rtb_keys,
    targets,
    webhooks,
)
from callbid.service.admin import schemas as s
from callbid.service.admin.common import Linked
from callbid.service.admin.context import Admin

CAPS = (
    Field("concurrency_cap", "Concurrent calls at most", "number", "empty: no limit"),
    Field("hourly_cap", "Calls per hour at most", "number", "empty: no limit"),
    Field("daily_cap", "Calls per day at most", "number", "empty: no limit"),
    Field("monthly_cap", "Calls per month at most", "number", "empty: no limit"),
    Field("lifetime_cap", "Calls in all at most", "number", "empty: no limit"),
)
HOURS_HELP = (
    "one block per line, days then times in its time zone: mon-fri 09:00-17:00, "
    "sat 10:00-14:00, every day 18:00-06:00 (overnight); empty: open around the clock"
)
FILTERS_HELP = (
    "one rule per line, all must pass: caller_state in NY, NJ · caller_zip begins_with 100 · "
    "age greater_than 30 · caller_city exists (operators: equals, not_equals, in, not_in, "
    "begins_with, contains, exists, not_exists, greater_than, less_than)"
)
TIMEZONE = Field("timezone", "Time zone", help="IANA name, e.g. America/New_York", required=True)


def _choices(*names: str) -> tuple[tuple[str, str], ...]:
    return tuple((name, name) for name in names)


@dataclass(frozen=True, slots=True)
class Entity:
    """One kind of configuration row and its form."""

    slug: str
    title: str
    fields: tuple[Field, ...]
    create_command: type[BaseModel]
    update_command: type[BaseModel]
    create: Callable[[Admin, Any], Awaitable[Any]]
    read: Callable[[Admin, Any], Awaitable[Any]]
    update: Callable[[Admin, Any, Any], Awaitable[Any]]
    delete: Callable[[Admin, Any], Awaitable[None]]
    #: Whether its rows belong to one campaign (a `campaign_id` set from the page).
    in_campaign: bool = True

    def values_of(self, found: Any) -> dict[str, Any]:
        """The form's values of a stored row (or a row with its links)."""
        row = found.row if isinstance(found, Linked) else found
        values: dict[str, Any] = {}
        for f in self.fields:
            value = getattr(row, f.name, None)
            if f.kind == "hours":
                values[f.name] = hours_text(value or [])
            elif f.kind == "filters":
                values[f.name] = filters_text(value or [])
            elif f.kind == "check":
                values[f.name] = bool(value)
            elif f.kind == "multi":
                ids = found.ids if isinstance(found, Linked) else (value or [])
                values[f.name] = [str(i) for i in ids]
            elif f.kind == "lines":
                values[f.name] = "\n".join(value or [])
            elif f.kind == "headers":
                values[f.name] = "\n".join(f"{k}: {v}" for k, v in (value or {}).items())
            else:
                values[f.name] = "" if value is None else str(value)
        return values

    def defaults(self) -> dict[str, Any]:
        """A new row's form: each field's default in the create command."""
        values: dict[str, Any] = {}
        for f in self.fields:
            info = self.create_command.model_fields.get(f.name)
            default = (
                None
                if info is None or info.is_required()
                else info.get_default(call_default_factory=True)
            )
            if f.kind == "check":
                values[f.name] = bool(default)
            elif f.kind == "multi":
                values[f.name] = [str(i) for i in default or []]
            elif f.kind in ("hours", "filters", "lines", "headers") or default is None:
                values[f.name] = ""
            else:
                values[f.name] = str(getattr(default, "value", default))
        return values


TARGETS = Entity(
    "targets",
    "target",
    (
        Field("name", "Name", required=True),
        Field(
            "destination",
            "Destination",
            help="E.164 number (+12125550150) or sip: URI",
            required=True,
        ),
        Field("priority", "Priority", "number", "lower is tried first"),
        Field("weight", "Weight", "number", "share among targets of the same priority"),
        TIMEZONE,
        Field("hours", "Hours", "hours", HOURS_HELP),
        *CAPS,
        Field(
            "cap_trigger",
            "Caps count a call when",
            "select",
            choices=(("connect", "it connects"), ("conversion", "it converts")),
        ),
        Field("filters", "Tag filters", "filters", FILTERS_HELP),
        Field(
            "caller_list_id",
            "Caller list",
            "select",
            "block or allow these callers",
            empty=None,
            source="caller_lists",
        ),
        Field("group_ids", "Target groups", "multi", "their caps are shared", source="groups"),
        Field("ring_timeout", "Ring timeout (seconds)", "number"),
        Field("dedupe_seconds", "Refuse a repeat caller within (seconds)", "number"),
        Field("paused", "Paused", "check"),
    ),
    s.TargetCreate,
    s.TargetUpdate,
    targets.create_target,
    targets.read_target,
    targets.update_target,
    targets.delete_target,
    in_campaign=False,
)
CAMPAIGNS = Entity(
    "campaigns",
    "campaign",
    (
        Field("name", "Name", required=True),
        Field(
            "routing_strategy",
            "Routing",
            "select",
            choices=(("priority", "by priority and weight"), ("bid", "by highest bid")),
        ),
    ),
    s.CampaignCreate,
    s.CampaignUpdate,
    campaigns.create_campaign,
    campaigns.read_campaign,
    campaigns.update_campaign,
    campaigns.delete_campaign,
    in_campaign=False,
)
NUMBERS = Entity(
    "numbers",
    "tracking number",
    (Field("number", "Number", help="E.164, e.g. +18885550100", required=True),),
    s.TrackingNumberCreate,
    s.TrackingNumberUpdate,
    numbers.create_number,
    numbers.read_number,
    numbers.update_number,
    numbers.delete_number,
)
PUBLISHERS = Entity(
    "publishers",
    "publisher",
    (
        Field(
            "publisher_id",
            "Publisher id",
            help="what its pings send as publisher_id",
            required=True,
        ),
        Field("name", "Name"),
        TIMEZONE,
        Field("hours", "Hours", "hours", HOURS_HELP),
        *CAPS,
        Field("blocked", "Blocked (refuse every ping)", "check"),
    ),
    s.PublisherCreate,
    s.PublisherUpdate,
    publishers.create_publisher,
    publishers.read_publisher,
    publishers.update_publisher,
    publishers.delete_publisher,
    in_campaign=False,
)
CRITERIA = Entity(
    "criteria",
    "conversion criterion",
    (
        Field("name", "Name"),
        Field("publisher_id", "Publisher id", help="empty: every publisher", empty=None),
        Field(
            "payout_kind",
            "Payout kind",
            "select",
            choices=(("fixed", "a fixed amount"), ("revshare", "a share of the bid (%)")),
        ),
        Field("payout", "Payout to the publisher", "number"),
        Field("revenue", "Revenue from the buyer", "number"),
        Field("buffer_seconds", "Converts after (connected seconds)", "number"),
        Field("conditions", "Only when", "filters", FILTERS_HELP),
        Field("position", "Order", "number", "lowest is evaluated first"),
        Field("dedupe_seconds", "No second payout for a repeat caller within (seconds)", "number"),
    ),
    s.CriterionCreate,
    s.CriterionUpdate,
    criteria.create_criterion,
    criteria.read_criterion,
    criteria.update_criterion,
    criteria.delete_criterion,
)
KEYS = Entity(
    "keys",
    "RTB key",
    (
        Field("name", "Name"),
        Field("ttl_seconds", "TTL (seconds a reservation holds)", "number"),
        Field("timeout_seconds", "Timeout (seconds buyers may take)", "number"),
        Field(
            "inbound_number",
            "Transfer number",
            help="empty: the campaign's numbers or pool",
            empty=None,
        ),
        Field("allow_no_caller", "Accept pings without a caller number", "check"),
        Field("count_on_reserved", "Count against caps when reserved", "check"),
        Field("strict_target", "Send the call only to the reserved target", "check"),
        Field("shield_scope", "Ping shield", "select", choices=_choices("key", "campaign", "off")),
        Field("rate_per_second", "Pings per second at most", "number", "empty: no limit"),
        Field("rate_burst", "Burst above that rate", "number"),
        Field("paused", "Paused", "check"),
    ),
    s.RtbKeyCreate,
    s.RtbKeyUpdate,
    rtb_keys.create_key,
    rtb_keys.read_key,
    rtb_keys.update_key,
    rtb_keys.delete_key,
)
GROUPS = Entity(
    "groups",
    "target group",
    (
        Field("name", "Name", required=True),
        TIMEZONE,
        *CAPS,
        Field("target_ids", "Members", "multi", source="targets"),
    ),
    s.TargetGroupCreate,
    s.TargetGroupUpdate,
    groups.create_group,
    groups.read_group,
    groups.update_group,
    groups.delete_group,
    in_campaign=False,
)
LISTS = Entity(
    "lists",
    "caller list",
    (
        Field("name", "Name", required=True),
        Field(
            "kind",
            "Kind",
            "select",
            choices=(("block", "block: refuse these callers"), ("allow", "allow: only these")),
        ),
        Field(
            "numbers",
            "Numbers",
            "lines",
            "one per line, or upload a CSV below (each cell that is a phone number is taken)",
        ),
    ),
    s.CallerListCreate,
    s.CallerListUpdate,
    caller_lists.create_list,
    caller_lists.read_list,
    caller_lists.update_list,
    caller_lists.delete_list,
    in_campaign=False,
)
PIXELS = Entity(
    "pixels",
    "pixel",
    (
        Field("name", "Name"),
        Field(
            "event",
            "When",
            "select",
            choices=(
                ("reserved", "a ping is reserved"),
                ("call_started", "a call arrives"),
                ("answered", "the buyer answers"),
                ("converted", "a call converts"),
                ("expired", "a reservation expires unused"),
            ),
        ),
        Field("method", "Method", "select", choices=_choices("POST", "GET", "PUT", "PATCH")),
        Field(
            "url",
            "URL",
            help="[tokens] are replaced: [caller_number], [payout], "
            "[reservation_uuid], [publisher_id], …",
            required=True,
        ),
        Field("headers", "Headers", "headers", "one per line: Name: value"),
        Field("content_type", "Content type"),
        Field("body", "Body", "textarea", empty=None),
        Field("conditions", "Only when", "filters", FILTERS_HELP),
        Field("enabled", "Enabled", "check"),
    ),
    pixel_schemas.WebhookCreate,
    pixel_schemas.WebhookUpdate,
    webhooks.create_webhook,
    webhooks.read_webhook,
    webhooks.update_webhook,
    webhooks.delete_webhook,
)
ENTITIES = {
    e.slug: e
    for e in (CAMPAIGNS, TARGETS, NUMBERS, PUBLISHERS, CRITERIA, KEYS, GROUPS, LISTS, PIXELS)
}
