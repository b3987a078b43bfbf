"""Injected faults (only under /api/) and the request counters benchmarks rely on."""

from __future__ import annotations

import httpx
import pytest

from sandbox.coldsend.fixtures import ColdSendControl

from ._helpers import make_campaign


def test_faults_hit_only_the_api_and_reset_clears_them(
    coldsend_sandbox: ColdSendControl, api: httpx.Client
) -> None:
    config = coldsend_sandbox.set_faults(error_rate=1.0, error_statuses=[503])
    assert config["path_prefix"] == "/api/"
    response = api.get("/campaigns")
    assert response.status_code == 503
    assert response.json() == {"detail": "Injected fault: HTTP 503"}
    assert httpx.get(f"{coldsend_sandbox.root_url}/_sandbox/faults").json()["error_rate"] == 1.0
    assert httpx.get(f"{coldsend_sandbox.root_url}/openapi.json").status_code == 200
    coldsend_sandbox.reset()
    assert api.get("/campaigns").status_code == 200


@pytest.mark.parametrize(("share", "created"), [(0.0, 0), (1.0, 1)])
def test_dropped_connections_surface_as_transport_errors(
    coldsend_sandbox: ColdSendControl, api: httpx.Client, share: float, created: int
) -> None:
    coldsend_sandbox.set_faults(drop_rate=1.0, drop_after_processing_share=share)
    with pytest.raises(httpx.TransportError):
        api.post("/campaigns", json={"name": "Maybe created"})
    coldsend_sandbox.set_faults()
    # A drop after processing loses only the response: the campaign exists.
    assert api.get("/campaigns").json()["pagination"]["total"] == created


def test_latency_is_added(coldsend_sandbox: ColdSendControl, api: httpx.Client) -> None:
    coldsend_sandbox.set_faults(latency_ms=150)
    assert api.get("/campaigns").elapsed.total_seconds() >= 0.15


def test_stats_count_every_api_request_by_route_template(
    coldsend_sandbox: ColdSendControl, api: httpx.Client
) -> None:
    campaign_id = make_campaign(api)
    api.get(f"/campaigns/{campaign_id}")
    api.get("/campaigns/missing")
    httpx.get(f"{coldsend_sandbox.base_url}/campaigns")  # 401s are received requests too
    coldsend_sandbox.set_faults(error_rate=1.0)
    api.get(f"/campaigns/{campaign_id}/leads")  # so are the ones answered by an injected fault
    coldsend_sandbox.set_faults()
    coldsend_sandbox.advance()
    assert coldsend_sandbox.stats() == {
        "requests": {
            "GET /api/public/v1/campaigns": 1,
            "GET /api/public/v1/campaigns/{campaign_id}": 2,
            "GET /api/public/v1/campaigns/{campaign_id}/leads": 1,
            "POST /api/public/v1/campaigns": 1,
        },
        "total": 5,
        "rate_limited": 0,
    }
    coldsend_sandbox.reset_stats()
    assert coldsend_sandbox.stats() == {"requests": {}, "total": 0, "rate_limited": 0}


def test_stats_count_answers_of_429(coldsend_sandbox: ColdSendControl) -> None:
    key = coldsend_sandbox.new_key(["campaigns:read"])
    coldsend_sandbox.set_limits(per_minute=2)
    coldsend_sandbox.reset_stats()
    try:
        with httpx.Client(base_url=coldsend_sandbox.base_url, headers={"X-API-Key": key}) as api:
            codes = [api.get("/campaigns").status_code for _ in range(4)]
        rate_limited = coldsend_sandbox.stats()["rate_limited"]
    finally:
        coldsend_sandbox.reset()
    assert codes == [200, 200, 429, 429]
    assert rate_limited == 2
