"""The seeded send simulation behind /_sandbox/advance and /_sandbox/leads/status."""

from __future__ import annotations

from typing import Any

import httpx

from sandbox._server import serving
from sandbox.coldsend import create_app
from sandbox.coldsend.fixtures import ColdSendControl

from ._helpers import launch, make_campaign

EMAILS = [f"lead{i}@example.com" for i in range(400)]
FINAL = {"REPLIED", "BOUNCED", "UNSUBSCRIBED"}


def _statuses(api: httpx.Client, campaign_id: str) -> dict[str, str]:
    out: dict[str, str] = {}
    page = 1
    while True:
        body = api.get(
            f"/campaigns/{campaign_id}/leads", params={"page": page, "limit": 100}
        ).json()
        out.update({lead["email"]: lead["status"] for lead in body["leads"]})
        if not body["pagination"]["has_next"]:
            return out
        page += 1


def test_each_step_moves_leads_one_stage_until_the_campaign_completes(
    coldsend_sandbox: ColdSendControl, api: httpx.Client
) -> None:
    campaign_id = make_campaign(api)
    launch(api, campaign_id, EMAILS)
    draft = make_campaign(api, "Never launched")
    history: list[dict[str, int]] = []
    for _ in range(4):
        result = coldsend_sandbox.advance()
        assert draft not in result["campaigns"]
        history.append(result["campaigns"][campaign_id]["leads"])
    assert history[0]["QUEUED"] == 400
    assert history[1]["QUEUED"] == 0 and history[1]["SENT"] + history[1]["BOUNCED"] == 400
    assert 5 <= history[1]["BOUNCED"] <= 40  # ~5%
    assert 100 <= history[2]["OPENED"] <= 220  # ~40% of those sent
    assert history[3]["REPLIED"] > 0
    assert result["campaigns"][campaign_id]["status"] == "COMPLETED"
    final = history[-1]
    assert sum(final.values()) == 400 and final["PENDING"] == final["QUEUED"] == 0
    campaign = api.get(f"/campaigns/{campaign_id}").json()
    assert campaign["status"] == "COMPLETED"
    assert campaign["bounce_count"] == final["BOUNCED"]
    assert campaign["reply_count"] == final["REPLIED"]
    assert campaign["unsubscribe_count"] == final["UNSUBSCRIBED"]
    assert campaign["open_count"] == final["OPENED"] + final["REPLIED"]
    assert campaign["sent_count"] == 400  # every lead was attempted, bounces included
    # Nothing moves once the campaign is completed.
    assert coldsend_sandbox.advance(steps=3)["campaigns"] == {}


def test_outcomes_depend_only_on_seed_and_email(
    coldsend_sandbox: ColdSendControl, api: httpx.Client
) -> None:
    first = make_campaign(api, "First campaign")
    launch(api, first, EMAILS)
    coldsend_sandbox.advance(steps=4)
    outcome = _statuses(api, first)
    coldsend_sandbox.reset()
    second = make_campaign(api, "Second campaign")
    # Same leads in another order, stepped one at a time, with a pause in the middle.
    launch(api, second, list(reversed(EMAILS)))
    coldsend_sandbox.advance(steps=2)
    api.post(f"/campaigns/{second}/pause")
    coldsend_sandbox.advance(steps=3)
    api.post(f"/campaigns/{second}/activate")
    coldsend_sandbox.advance()
    coldsend_sandbox.advance()
    assert _statuses(api, second) == outcome
    with serving(create_app(seed=99)) as other:
        key = other_app_key(other.url)
        with httpx.Client(
            base_url=f"{other.url}/api/public/v1", headers={"X-API-Key": key}
        ) as client:
            campaign_id = make_campaign(client)
            launch(client, campaign_id, EMAILS)
            httpx.post(f"{other.url}/_sandbox/advance", json={"steps": 4})
            assert _statuses(client, campaign_id) != outcome


def other_app_key(root_url: str) -> str:
    response = httpx.post(f"{root_url}/_sandbox/keys", json={"scopes": ["*"]})
    key: str = response.json()["api_key"]
    return key


def test_lead_detail_shows_interactions_and_replies(
    coldsend_sandbox: ColdSendControl, api: httpx.Client
) -> None:
    campaign_id = make_campaign(api)
    launch(api, campaign_id, EMAILS[:200])
    coldsend_sandbox.advance(steps=4)
    leads = {}
    page = 1
    while True:
        body = api.get(
            f"/campaigns/{campaign_id}/leads", params={"page": page, "limit": 100}
        ).json()
        leads.update({lead["status"]: lead for lead in body["leads"]})
        if not body["pagination"]["has_next"]:
            break
        page += 1
    replied = api.get(f"/campaigns/{campaign_id}/leads/{leads['REPLIED']['lead_id']}").json()
    assert replied["email_replied"] and replied["email_opened"] and replied["replied_at"]
    assert replied["delivery_status"] == "DELIVERED" and replied["sequence_step"] == 1
    [interaction] = replied["email_interactions"]
    assert interaction["sent"] and interaction["opened"] and not interaction["bounced"]
    assert interaction["subject"] == "Hi {{first_name}}"
    assert interaction["inbox_email"].startswith("sender-")
    [reply] = replied["replies"]
    assert reply["subject"] == "Re: Hi {{first_name}}" and reply["is_unsubscribe"] is False
    bounced = api.get(f"/campaigns/{campaign_id}/leads/{leads['BOUNCED']['lead_id']}").json()
    assert bounced["delivery_status"] == "BOUNCED"
    assert bounced["email_interactions"][0]["bounced"] is True and bounced["replies"] == []


def test_set_lead_status_for_tests(coldsend_sandbox: ColdSendControl, api: httpx.Client) -> None:
    campaign_id = make_campaign(api)
    launch(api, campaign_id, ["a@example.com", "b@example.com"])
    lead: dict[str, Any] = coldsend_sandbox.set_lead_status(
        campaign_id, "A@example.com", "UNSUBSCRIBED"
    )
    assert lead["status"] == "UNSUBSCRIBED" and lead["unsubscribed"] is True
    # A final status set by hand is not moved by the simulation.
    coldsend_sandbox.advance(steps=4)
    assert _statuses(api, campaign_id)["a@example.com"] == "UNSUBSCRIBED"
    http = httpx.Client(base_url=f"{coldsend_sandbox.root_url}/_sandbox")
    body = {"campaign_id": campaign_id, "email": "zzz@example.com", "status": "SENT"}
    assert http.put("/leads/status", json=body).status_code == 404
    assert http.put("/leads/status", json={**body, "status": "WHATEVER"}).status_code == 422
    http.close()
