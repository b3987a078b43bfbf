"""Replies in the ColdSend emulator: simulated replies carry text; the control surface adds more."""

from __future__ import annotations

import httpx
import pytest

from sandbox.coldsend.fixtures import ColdSendControl
from sandbox.coldsend.simulate import REPLY_TEXTS

from ._helpers import import_leads, launch, make_campaign


def _lead(api: httpx.Client, campaign_id: str, email: str) -> dict[str, object]:
    listed = api.get(f"/campaigns/{campaign_id}/leads", params={"search": email}).json()
    lead_id = listed["leads"][0]["lead_id"]
    detail: dict[str, object] = api.get(f"/campaigns/{campaign_id}/leads/{lead_id}").json()
    return detail


def test_a_reply_arrives_with_text_and_moves_replied_at_to_the_newest(
    coldsend_sandbox: ColdSendControl, api: httpx.Client
) -> None:
    campaign_id = make_campaign(api)
    import_leads(api, campaign_id, ["ada@example.com"])
    coldsend_sandbox.add_reply(
        campaign_id, "ada@example.com", '=HYPERLINK("x")', received_at="2026-01-02T10:00:00Z"
    )
    detail = coldsend_sandbox.add_reply(
        campaign_id, "ADA@example.com", "Second thought: yes.", received_at="2026-01-03T10:00:00Z"
    )
    assert detail["status"] == "REPLIED" and detail["email_replied"] is True
    assert detail["replied_at"] == "2026-01-03T10:00:00.000Z"
    bodies = [r["body_preview"] for r in detail["replies"]]
    assert bodies == ['=HYPERLINK("x")', "Second thought: yes."]
    assert len({r["reply_id"] for r in detail["replies"]}) == 2
    # An older reply arriving late never moves replied_at backwards.
    late = coldsend_sandbox.add_reply(
        campaign_id, "ada@example.com", "late", received_at="2026-01-01T00:00:00Z"
    )
    assert late["replied_at"] == "2026-01-03T10:00:00.000Z"
    assert _lead(api, campaign_id, "ada@example.com")["replies"] == late["replies"]


def test_a_reply_for_an_unknown_lead_is_404(
    coldsend_sandbox: ColdSendControl, api: httpx.Client
) -> None:
    campaign_id = make_campaign(api)
    with pytest.raises(httpx.HTTPStatusError) as caught:
        coldsend_sandbox.add_reply(campaign_id, "nobody@example.com", "hi")
    assert caught.value.response.status_code == 404


def test_simulated_replies_carry_text_and_the_email_they_answer(
    coldsend_sandbox: ColdSendControl, api: httpx.Client
) -> None:
    campaign_id = make_campaign(api)
    launch(api, campaign_id, [f"lead{i}@example.com" for i in range(60)])
    coldsend_sandbox.advance(steps=6)
    replied = api.get(
        f"/campaigns/{campaign_id}/leads", params={"status": "REPLIED", "limit": 100}
    ).json()["leads"]
    assert replied, "the seeded simulation replies for some of 60 leads"
    texts = set()
    for lead in replied:
        detail = api.get(f"/campaigns/{campaign_id}/leads/{lead['lead_id']}").json()
        (reply,) = detail["replies"]
        assert reply["body_preview"] in REPLY_TEXTS and reply["subject"].startswith("Re:")
        assert detail["email_interactions"][-1]["replied_at"] == reply["received_at"]
        texts.add(reply["body_preview"])
    assert len(texts) > 1
