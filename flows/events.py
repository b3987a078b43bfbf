"""Event names and resources emitted by the flows, so triggers and tests agree on them."""

from __future__ import annotations

from typing import Any

from prefect.events import emit_event

__all__ = [
    "CAMPAIGN_LAUNCHED",
    "LEADS_SYNCED",
    "STATUSES_WRITTEN",
    "campaign_resource",
    "emit_campaign_event",
]

LEADS_SYNCED = "coldsend.leads.synced"
CAMPAIGN_LAUNCHED = "coldsend.campaign.launched"
STATUSES_WRITTEN = "coldsend.statuses.written"


def campaign_resource(campaign_id: str, name: str | None = None) -> dict[str, str]:
    """The Prefect event resource for a ColdSend campaign."""
    resource = {
        "prefect.resource.id": f"coldsend.campaign.{campaign_id}",
        "coldsend.campaign.id": campaign_id,
    }
    if name:
        resource["prefect.resource.name"] = name
    return resource


def emit_campaign_event(
    event: str, campaign_id: str, *, name: str | None = None, payload: dict[str, Any]
) -> None:
    """Emit `event` about a campaign; the payload always carries the campaign id."""
    emit_event(
        event=event,
        resource=campaign_resource(campaign_id, name),
        payload={"campaign_id": campaign_id, **payload},
    )
