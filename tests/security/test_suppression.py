"""Suppression across campaigns and sources: unsubscribed or bounced anywhere is never uploaded again."""

from __future__ import annotations

from pathlib import Path

from flows.sync import sync_leads_to_campaign
from tests._stack import Stack
from tests.badinput.test_salesforce_corpus import _records


def test_unsubscribed_or_bounced_anywhere_is_never_uploaded_again(
    stack: Stack, tmp_path: Path
) -> None:
    cs = stack.coldsend_block
    stack.salesforce.insert(_records(*({"Email": f"sup{i}@x.com"} for i in range(1, 5))))
    first = stack.new_campaign("First campaign")
    sync_leads_to_campaign(campaign_id=first, lead_store=stack.salesforce_store(), coldsend=cs)
    stack.coldsend.set_lead_status(first, "sup1@x.com", "UNSUBSCRIBED")
    stack.coldsend.set_lead_status(first, "sup2@x.com", "BOUNCED")

    # A second campaign, fed from a sheet that spells the suppressed emails differently.
    second = stack.new_campaign("Second campaign")
    sid = stack.sheets.create_spreadsheet(
        "Other source",
        {"Sheet1": [["Email"], [" SUP1@X.com"], ["Sup2@x.com "], ["sup3@x.com"], ["new1@x.com"]]},
    )
    from_sheet = sync_leads_to_campaign(
        campaign_id=second, lead_store=stack.sheet_store(sid), coldsend=cs
    )
    assert sorted(stack.campaign_emails(second)) == ["new1@x.com", "sup3@x.com"]
    assert from_sheet.suppressed == 2 and from_sheet.balanced

    # Then someone unsubscribes in the second campaign itself; a CSV brings everyone back.
    stack.coldsend.set_lead_status(second, "new1@x.com", "UNSUBSCRIBED")
    path = tmp_path / "again.csv"
    path.write_text(
        "Email\r\nsup1@x.com\r\nSUP2@X.COM\r\nnew1@x.com\r\nnew2@x.com\r\nsup4@x.com\r\n"
    )
    from_csv = sync_leads_to_campaign(
        campaign_id=second, lead_store=stack.csv_store(path), coldsend=cs
    )

    assert sorted(stack.campaign_emails(second)) == [
        "new1@x.com",
        "new2@x.com",
        "sup3@x.com",
        "sup4@x.com",
    ]
    assert from_csv.uploaded == 2 and from_csv.suppressed == 3 and from_csv.balanced
    # And a full re-sync of the first source into the first campaign uploads nothing again.
    again = sync_leads_to_campaign(
        campaign_id=first, lead_store=stack.salesforce_store(), coldsend=cs, incremental=False
    )
    assert again.uploaded == 0 and again.suppressed == 2
    assert sorted(stack.campaign_emails(first)) == [f"sup{i}@x.com" for i in range(1, 5)]
