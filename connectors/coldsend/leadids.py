"""Finding the lead ids of known emails: the export carries none, while PUT and DELETE need them.

Two ways, priced in requests: search one email at a time (``GET .../leads?search=<email>``, one
request each) or list the campaign's leads, optionally of one status, 100 a page. `lookup_plan`
picks the cheaper from counts the caller knows from the export; `find_lead_ids` runs it.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal

from connectors.coldsend.client import ColdSendClient
from connectors.coldsend.models import MAX_PAGE_SIZE, CampaignLead

__all__ = ["LookupPlan", "find_lead_ids", "lookup_plan"]


@dataclass(frozen=True, slots=True)
class LookupPlan:
    """How lead ids will be found and what it costs.

    Attributes:
        how: ``"search"`` (one request per email) or ``"list"`` (one per page of the listing).
        requests: Requests it takes when every page or search is read (an upper bound for
            ``"list"``, which stops once every email is found).
    """

    how: Literal["search", "list"]
    requests: int


def lookup_plan(wanted: int, listed: int, *, page_size: int = MAX_PAGE_SIZE) -> LookupPlan:
    """The cheaper way to find `wanted` emails among `listed` leads (the listing's size).

    Args:
        wanted: How many emails need their lead id.
        listed: How many leads the listing holds (all of the campaign, or those of the status
            the listing filters on), known from the export.
        page_size: Leads per listing page (at most 100).
    """
    if wanted <= 0:
        return LookupPlan("search", 0)
    pages = max(1, math.ceil(listed / page_size))
    return LookupPlan("search", wanted) if wanted <= pages else LookupPlan("list", pages)


def _norm(email: str) -> str:
    return email.strip().lower()


def find_lead_ids(
    client: ColdSendClient,
    campaign_id: str,
    emails: Collection[str],
    *,
    listed: int,
    status: str | None = None,
) -> dict[str, CampaignLead]:
    """The campaign's leads for `emails` (normalised), by the cheaper of search and listing.

    Emails not found (deleted meanwhile, or of another status when `status` is given) are
    simply absent from the result.

    Args:
        client: The client (its pacing keeps the requests within the rate limits).
        campaign_id: The campaign.
        emails: Normalised emails (trimmed, lower-case).
        listed: Leads in the listing (of `status` when given), from the export.
        status: Only leads of this status (e.g. ``"PENDING"`` for deletes).
    """
    wanted = {_norm(e) for e in emails}
    found: dict[str, CampaignLead] = {}
    plan = lookup_plan(len(wanted), listed)
    if plan.requests == 0:
        return found
    if plan.how == "search":
        for email in sorted(wanted):
            # search matches substrings of emails and names: keep only the exact address.
            for lead in client.iter_leads(campaign_id, status=status, search=email):
                if _norm(lead.email) == email:
                    found[email] = lead
                    break
        return found
    for lead in client.iter_leads(campaign_id, status=status):
        email = _norm(lead.email)
        if email in wanted:
            found[email] = lead
            if len(found) == len(wanted):
                break
    return found
