"""`POST /api/v1/passthrough-trials`: a buyer's API pinged once, as a real ping would ping it,
with nothing reserved and no real buyer's breaker touched."""

from __future__ import annotations

from typing import Any

from callbid.metrics import buyer_label
from tests.builders import build_campaign
from tests.conftest import Service
from tests.e2e.test_buyer_pings import LOOPBACK, buyers, passthrough

__all__ = ["buyers"]


async def trial(svc: Service, token: str, body: dict[str, Any]) -> Any:
    return await svc.client.post(
        "/api/v1/passthrough-trials", json=body, headers={"Authorization": f"Bearer {token}"}
    )


async def test_a_trial_shows_the_request_the_answer_and_what_it_means(
    make_service: Any, buyers: str
) -> None:
    async with make_service(buyer_allow_networks=LOOPBACK) as svc:
        built = await build_campaign(svc.runtime.sessions)
        answer = await trial(svc, built.token, {"passthrough": passthrough(f"{buyers}/rich")})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["request"]["url"] == f"{buyers}/rich"
        assert body["request"]["body"] == '{"caller": "+12125550123", "zip": "10001"}'
        assert (body["outcome"], body["accepted"], body["bid"], body["seconds"]) == (
            "accepted",
            True,
            30.0,
            120,
        )
        assert body["http_status"] == 200
        assert body["latency_ms"] > 0

        failed = await trial(
            svc,
            built.token,
            {"passthrough": passthrough(f"{buyers}/error"), "tags": {"caller_zip": "94105"}},
        )
        assert failed.json()["outcome"] == "error"
        assert failed.json()["detail"] == "http 500"
        assert '"zip": "94105"' in failed.json()["request"]["body"]
        assert svc.runtime.buyers is not None
        assert svc.runtime.buyers.breaker_states() == {}  # trials keep no breaker
        assert buyer_label(None, built.campaign_id) not in svc.runtime.buyers.breaker_states()


async def test_a_trial_refuses_what_a_real_ping_would(make_service: Any) -> None:
    async with make_service() as svc:  # no allow-list: loopback buyers are refused
        built = await build_campaign(svc.runtime.sessions)
        refused = await trial(
            svc, built.token, {"passthrough": passthrough("http://127.0.0.1:9/x")}
        )
        assert refused.status_code == 400
        assert refused.json()["info"].startswith("passthrough.url: ")
        bad = await trial(svc, built.token, {"passthrough": {"template": "nope", "url": "x"}})
        assert bad.status_code == 422
        anonymous = await svc.client.post("/api/v1/passthrough-trials", json={})
        assert anonymous.status_code == 401
