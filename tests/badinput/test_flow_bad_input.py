"""Bad input through the sync flow: the exact valid leads reach the campaign, the rest is named."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from connectors.leads import FieldMapping
from flows.sync import sync_leads_to_campaign
from tests._stack import Stack

from .test_csv_corpus import CSV_CASES, _write
from .test_salesforce_corpus import _records

# Every per-row problem of the corpus in one file, plus emails the campaign already holds.
MIXED_CSV = (
    "\ufeffEmail,First Name,Company,Sector\r\n"
    "ok1@x.com,Ann,Acme,Retail\r\n"  # 1
    ",Blank,Acme,\r\n"  # 2 missing email
    "not-an-email,Bad,Acme,\r\n"  # 3 invalid
    "josé@example.com,Idn,Acme,\r\n"  # 4 non-ASCII local part
    "user@bücher.de,Idn,Acme,\r\n"  # 5 valid (IDNA domain)
    " OK1@X.com ,Dup,Acme,\r\n"  # 6 duplicate of row 1
    'ok2@x.com,"Multi\r\nLine","Acme, Inc",\r\n'  # 7 quoted newline and delimiter
    "=cmd@x.com,=1+1,@SUM(A1),-2\r\n"  # 8 formula-looking values, a valid address
    "Existing@X.com,Old,Acme,\r\n"  # 9 already in the campaign (other case)
    "a b@x.com,Space,Acme,\r\n"  # 10 whitespace
    "\r\n"  # blank record: skipped, not a row of its own
    "ok3@x.com,Last,Acme,Tech\r\n"  # 12
)
MIXED_VALID = {"ok1@x.com", "user@xn--bcher-kva.de", "ok2@x.com", "=cmd@x.com", "ok3@x.com"}
MIXED_REJECTED_ROWS = {2, 3, 4, 6, 10}


def _upload_requests(stack: Stack) -> int:
    requests = stack.coldsend.stats()["requests"]
    return int(requests.get("POST /api/public/v1/campaigns/{campaign_id}/leads", 0))


def test_mixed_bad_csv_uploads_exactly_the_valid_rows_and_names_the_rest(
    stack: Stack, tmp_path: Path
) -> None:
    path = tmp_path / "mixed.csv"
    path.write_bytes(MIXED_CSV.encode())
    campaign_id = stack.new_campaign()
    with stack.client() as client:
        # As the file has it (other case), so nothing about it needs updating.
        client.add_lead(campaign_id, email="existing@x.com", first_name="Old", company="Acme")
    store = stack.csv_store(
        path,
        FieldMapping(
            email="Email",
            first_name="First Name",
            company="Company",
            custom_fields={"sector": "Sector"},
        ),
    )

    report = sync_leads_to_campaign(
        campaign_id=campaign_id, lead_store=store, coldsend=stack.coldsend_block
    )

    assert set(stack.campaign_emails(campaign_id)) == MIXED_VALID | {"existing@x.com"}
    assert report.uploaded == len(MIXED_VALID)
    assert report.already_in_campaign == 1
    # Row 6 repeats row 1: a duplicate in the source, listed with the rejected rows.
    assert report.rejected == len(MIXED_REJECTED_ROWS) - 1 and report.duplicate_in_source == 1
    assert report.balanced and report.unaccounted == 0
    assert report.rejects_csv is not None
    with open(report.rejects_csv, newline="", encoding="utf-8") as fh:
        rejects = list(csv.DictReader(fh))
    assert {int(r["row"]) for r in rejects} == MIXED_REJECTED_ROWS
    assert all(r["reason"].strip() for r in rejects)


FLOW_ERRORS = [
    "no-email-column",
    "unknown-custom-mapping-column",
    "xlsx-renamed-to-csv",
    "empty-file",
    "unclosed-quote",
    "huge-field",
    "row-over-50-mb",
]


@pytest.mark.parametrize("case_id", FLOW_ERRORS)
def test_unreadable_csv_fails_the_sync_with_one_clear_line_and_uploads_nothing(
    case_id: str, stack: Stack, tmp_path: Path
) -> None:
    case = next(c for c in CSV_CASES if c.id == case_id)
    assert case.error is not None
    store = stack.csv_store(_write(tmp_path, case), case.mapping)
    campaign_id = stack.new_campaign()
    stack.coldsend.reset_stats()

    with pytest.raises(Exception) as info:
        sync_leads_to_campaign(
            campaign_id=campaign_id, lead_store=store, coldsend=stack.coldsend_block
        )

    kind, fragment = case.error
    assert type(info.value).__name__ == kind
    assert fragment in str(info.value) and "\n" not in str(info.value)
    assert _upload_requests(stack) == 0, stack.coldsend.stats()
    assert stack.campaign_emails(campaign_id) == []


def test_over_10000_rows_go_up_in_several_parts_and_none_is_lost(
    stack: Stack, tmp_path: Path
) -> None:
    count = 10_050
    path = tmp_path / "big.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        fh.write("Email,First Name\r\n")
        fh.writelines(f"lead{i}@big.example,N{i}\r\n" for i in range(count))
        fh.write("broken-row,x\r\n")
    campaign_id = stack.new_campaign()

    report = sync_leads_to_campaign(
        campaign_id=campaign_id, lead_store=stack.csv_store(path), coldsend=stack.coldsend_block
    )

    assert report.parts == 2 and len(report.job_ids) == 2
    assert report.uploaded == count and report.rejected == 1 and report.balanced
    in_campaign = stack.campaign_emails(campaign_id)
    assert len(in_campaign) == count
    assert set(in_campaign) == {f"lead{i}@big.example" for i in range(count)}


def test_bad_sheet_rows_through_the_flow(stack: Stack) -> None:
    sid = stack.sheets.create_spreadsheet(
        "Bad rows",
        {
            "Sheet1": [
                ["Email", "Company"],
                ["Ann@X.com ", "Acme"],
                ["ann@x.com", "Dup"],
                [12345, "Number"],
                [{"formula": "=A2"}, "Formula"],
                [],
                ["bob@x.com", "=1+1"],
            ]
        },
    )
    campaign_id = stack.new_campaign()
    report = sync_leads_to_campaign(
        campaign_id=campaign_id, lead_store=stack.sheet_store(sid), coldsend=stack.coldsend_block
    )
    assert set(stack.campaign_emails(campaign_id)) == {"ann@x.com", "bob@x.com"}
    assert report.rejected == 2 and report.duplicate_in_source == 1 and report.balanced


def test_soql_injection_in_a_saved_filter_reads_only_the_literal_match(stack: Stack) -> None:
    payload = "Web' OR LeadSource != 'x"
    stack.salesforce.insert(
        _records(
            {"Email": "web@x.com", "LeadSource": "Web"},
            {"Email": "other@x.com", "LeadSource": "Phone"},
            {"Email": "target@x.com", "LeadSource": payload},
        )
    )
    campaign_id = stack.new_campaign()
    store = stack.salesforce_store(filters=[("LeadSource", "=", payload)])
    report = sync_leads_to_campaign(
        campaign_id=campaign_id, lead_store=store, coldsend=stack.coldsend_block
    )
    assert stack.campaign_emails(campaign_id) == ["target@x.com"]
    assert report.read == 1
