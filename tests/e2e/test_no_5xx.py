"""Whatever a client sends, the publisher endpoints answer a 2xx or a clear 4xx, never a 5xx."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.builders import build_campaign

PATHS = ["/rtbs.json", "/call_reservations.json", "/rtbs/{uuid}.json", "/call_reservations/{uuid}"]
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]
CONTENT_TYPES = [
    "application/x-www-form-urlencoded",
    "application/json",
    "multipart/form-data; boundary=x",
    "text/plain",
    "application/xml",
    "",
]
FIELDS = st.sampled_from(
    ["key", "publisher_id", "caller_number", "inbound_number", "status", "caller_zip", "x"]
)
VALUES = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["+12125550123", "10001", "confirmed", "' OR 1=1 --", "%00", "\x00", "9" * 40]),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    method=st.sampled_from(METHODS),
    path=st.sampled_from(PATHS),
    uuid=st.one_of(st.text(max_size=40), st.uuids().map(str)),
    query=st.dictionaries(FIELDS, VALUES, max_size=5),
    body=st.one_of(
        st.binary(max_size=300),
        st.dictionaries(FIELDS, VALUES, max_size=5).map(str).map(str.encode),
    ),
    content_type=st.sampled_from(CONTENT_TYPES),
    use_key=st.booleans(),
)
async def test_never_a_server_error(
    service: Any,
    method: str,
    path: str,
    uuid: str,
    query: dict[str, str],
    body: bytes,
    content_type: str,
    use_key: bool,
) -> None:
    if not hasattr(service, "built"):
        service.built = await build_campaign(service.runtime.sessions)
    if use_key:
        query = {**query, "key": service.built.key}
    url = path.replace("{uuid}", quote(uuid, safe=""))
    headers = {"content-type": content_type} if content_type else {}
    response = await service.client.request(
        method, url, params=query, content=body, headers=headers
    )
    assert response.status_code < 500, (method, url, query, body, response.text)
    if method != "HEAD":
        assert response.headers["content-type"].startswith("application/json")
