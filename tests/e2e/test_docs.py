"""The documentation pages load their assets from the service itself, and the OpenAPI document
describes the publisher endpoints (hand-written, merged into FastAPI's own)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.conftest import Service

ASSET = re.compile(r"""(?:src|href)=["']([^"']+)["']""")
PUBLISHER_PARAMETERS = {"key", "publisher_id", "caller_number", "inbound_number", "tags"}


def assets_of(html: str) -> list[str]:
    return ASSET.findall(html)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_a_docs_page_loads_nothing_from_elsewhere(service: Service, page: str) -> None:
    response = await service.client.get(page)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    found = assets_of(response.text)
    assert any(url.endswith(".js") for url in found)
    assert all(url.startswith("/static/docs/") for url in found), found
    for word in ("cdn", "jsdelivr", "http:", "https:", "fonts.googleapis"):
        assert word not in response.text.lower(), word
    assert "/openapi.json" in response.text


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_every_asset_a_docs_page_names_is_served(service: Service, page: str) -> None:
    html = (await service.client.get(page)).text

    for url in assets_of(html):
        asset = await service.client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 500, url
        if url.endswith(".js"):
            assert "javascript" in asset.headers["content-type"]
        if url.endswith(".css"):
            assert asset.headers["content-type"].startswith("text/css")


async def test_the_vendored_licences_are_served_beside_the_assets(service: Service) -> None:
    for url in ("/static/docs/swagger-ui/LICENSE", "/static/docs/redoc/LICENSE"):
        response = await service.client.get(url)
        assert response.status_code == 200, url
        assert "License" in response.text or "LICENSE" in response.text


async def spec_of(service: Service) -> dict[str, Any]:
    response = await service.client.get("/openapi.json")
    assert response.status_code == 200
    spec: dict[str, Any] = response.json()
    return spec


async def test_openapi_documents_the_creation_calls(service: Service) -> None:
    spec = await spec_of(service)

    rtbs = spec["paths"]["/rtbs.json"]
    legacy = spec["paths"]["/call_reservations.json"]

    assert set(rtbs) == set(legacy) == {"post", "get"}
    for operation in (*rtbs.values(), *legacy.values()):
        assert operation["summary"]
        names = {parameter["name"] for parameter in operation["parameters"]}
        assert names >= PUBLISHER_PARAMETERS
        assert "200" in operation["responses"]
        assert {"400", "401", "403", "429"} <= set(operation["responses"])
    assert all(operation.get("deprecated") is True for operation in legacy.values())
    assert not any(operation.get("deprecated") for operation in rtbs.values())
    assert "requestBody" in rtbs["post"]
    assert "requestBody" not in rtbs["get"]


async def test_openapi_documents_the_reservation_resource(service: Service) -> None:
    spec = await spec_of(service)

    resource = spec["paths"]["/rtbs/{uuid}.json"]

    assert set(resource) == {"get", "put", "patch", "delete"}
    for method, operation in resource.items():
        names = {parameter["name"] for parameter in operation["parameters"]}
        assert {"uuid", "key"} <= names, method
    assert "status" in {parameter["name"] for parameter in resource["put"]["parameters"]}


async def test_openapi_answers_name_schemas_it_defines(service: Service) -> None:
    spec = await spec_of(service)
    schemas = spec["components"]["schemas"]

    refs = re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', json.dumps(spec))

    assert refs
    assert set(refs) <= set(schemas)
    rtb = schemas["RtbAnswer"]["properties"]
    assert {"uuid", "status", "retreaver_payout", "expires_at", "retreaver_ping_shield"} <= set(rtb)
    assert "no-target" in rtb["status"]["enum"]
    assert "duplicate_caller" in rtb["reason_code"]["enum"]
    legacy = schemas["CallReservationAnswer"]["properties"]["call_reservation"]["properties"]
    assert {"uuid", "call", "matched_targets", "tag_values", "conversion_groups"} <= set(legacy)
    tags = {tag["name"] for tag in spec["tags"]}
    assert "publisher" in tags
