"""The exact ColdSend API scopes each flow needs (least privilege), in one place for code and docs."""

from __future__ import annotations

__all__ = ["FLOW_SCOPES", "scopes_for"]

FLOW_SCOPES: dict[str, frozenset[str]] = {
    # get the campaign, export it (reconcile + suppression), list campaigns and their
    # unsubscribed/bounced leads (suppression), upload and poll jobs.
    "sync": frozenset({"campaigns:read", "leads:read", "leads:create"}),
    # find by name, create, update settings/variants/sequences/inboxes, resolve inbox emails.
    "ensure": frozenset(
        {"campaigns:read", "campaigns:create", "campaigns:update", "sender_accounts:read"}
    ),
    # poll upload jobs, read the campaign, PUT launch: true.
    "launch": frozenset({"campaigns:read", "campaigns:update", "leads:read"}),
    # one export.
    "write-back": frozenset({"leads:read"}),
}
FLOW_SCOPES["pipeline"] = FLOW_SCOPES["ensure"] | FLOW_SCOPES["sync"] | FLOW_SCOPES["launch"]
# The demo also registers its fake sender inbox, and its sheet repeats Salesforce leads with
# other names: the two-way sync updates them (leads:update; leads:delete for opt-outs).
FLOW_SCOPES["demo"] = (
    FLOW_SCOPES["pipeline"]
    | FLOW_SCOPES["write-back"]
    | {"sender_accounts:create", "leads:update", "leads:delete"}
)


def scopes_for(flow: str) -> frozenset[str]:
    """The scopes a flow needs: ``sync``, ``ensure``, ``launch``, ``write-back``, ``pipeline``."""
    try:
        return FLOW_SCOPES[flow]
    except KeyError:
        raise ValueError(
            f"unknown flow {flow!r}; known: {', '.join(sorted(FLOW_SCOPES))}"
        ) from None
