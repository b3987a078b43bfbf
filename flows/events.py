"""Event names and resources emitted by the flows, so triggers and tests agree on them."""

from __future__ import annotations

from typing import Any

from prefect.events import emit_event

__all__ = [
    "CAMPAIGN_LAUNCHED",
    "LAUNCH_WANTED_LABEL",
    "LEADS_SYNCED",
    "STATUSES_WRITTEN",
    "campaign_resource",
    "emit_campaign_event",
    "lead_store_resource",
]

LEADS_SYNCED = "coldsend.leads.synced"
CAMPAIGN_LAUNCHED = "coldsend.campaign.launched"
STATUSES_WRITTEN = "coldsend.statuses.written"


# Resource label on `coldsend.leads.synced`: "true" when the campaign may need launching
# (the sync uploaded leads, or the campaign is still a DRAFT). The launch-on-sync trigger
# matches it, so a routine sync with nothing new does not start a launch run.
LAUNCH_WANTED_LABEL = "coldsend.launch-wanted"


def campaign_resource(
    campaign_id: str, name: str | None = None, labels: dict[str, str] | None = None
) -> dict[str, str]:
    """The Prefect event resource for a ColdSend campaign, with optional extra labels."""
    resource = {
        "prefect.resource.id": f"coldsend.campaign.{campaign_id}",
        "coldsend.campaign.id": campaign_id,
        **(labels or {}),
    }
    if name:
        resource["prefect.resource.name"] = name
    return resource


def lead_store_resource(lead_store: str, role: str = "lead-store") -> dict[str, str]:
    """A related resource naming the lead store, shown beside the campaign in the event feed."""
    return {
        "prefect.resource.id": f"coldsend.lead-store.{lead_store}",
        "prefect.resource.role": role,
        "prefect.resource.name": lead_store,
    }


def emit_campaign_event(
    event: str,
    campaign_id: str,
    *,
    name: str | None = None,
    payload: dict[str, Any],
    labels: dict[str, str] | None = None,
    lead_store: str | None = None,
) -> None:
    """Emit `event` about a campaign, named (the event feed shows the name, not the id), with
    the lead store as a related resource; the payload always carries the campaign id, and
    the name and store when known."""
    extra = dict(labels or {})
    if name:
        extra["coldsend.campaign.name"] = name
    if lead_store:
        extra["coldsend.lead-store"] = lead_store
    emit_event(
        event=event,
        resource=campaign_resource(campaign_id, name, extra),
        related=[lead_store_resource(lead_store)] if lead_store else None,
        payload={
            "campaign_id": campaign_id,
            **({"campaign_name": name} if name else {}),
            **({"lead_store": lead_store} if lead_store else {}),
            **payload,
        },
    )
