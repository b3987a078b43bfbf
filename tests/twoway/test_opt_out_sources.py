"""Every lead store reads its opt-out signal into `Lead.opted_out` (real clients, loopback sandboxes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from blocks.leads import CsvFileLeads, SalesforceLeads
from connectors.csv_file import CsvLeadSource
from connectors.leads import (
    OPT_OUT_COLUMN_NAMES,
    FieldMapping,
    Lead,
    MappingError,
    Reject,
    is_opted_out,
    opt_out_columns,
)
from connectors.salesforce import SalesforceConnection, SalesforceLeadSource
from connectors.sheets import SheetsConnection, SheetsLeadSource
from sandbox.salesforce.fixtures import SalesforceSandbox
from sandbox.sheets.fixtures import SheetsSandbox


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        ("TRUE", True),
        (" yes ", True),
        ("x", True),
        ("1", True),
        (1, True),
        ("UNSUBSCRIBED", True),
        ("Opted out", True),
        ("\u2713", True),
        (False, False),
        ("FALSE", False),
        ("", False),
        (None, False),
        ("SENT", False),
        ("no", False),
        (0, False),
    ],
)
def test_opt_out_values(value: object, expected: bool) -> None:
    assert is_opted_out(value) is expected


def test_opt_out_columns_recognise_common_names_and_require_a_configured_one() -> None:
    header = ["Email", "Do-Not_Contact", "email opt out", "Notes"]
    assert opt_out_columns(header, configured=None, source="S") == (
        "Do-Not_Contact",
        "email opt out",
    )
    assert opt_out_columns(header, configured="notes", source="S")[0] == "Notes"
    assert opt_out_columns(header, configured=None, recognised=(), source="S") == ()
    with pytest.raises(MappingError, match="no opt-out column 'Stop'"):
        opt_out_columns(header, configured="Stop", source="S")
    assert "Unsubscribed" in OPT_OUT_COLUMN_NAMES


def _by_email(items: list[Lead | Reject]) -> dict[str, Lead]:
    return {i.email: i for i in items if isinstance(i, Lead)}


def test_salesforce_reads_has_opted_out_of_email_and_a_configured_field(
    salesforce_sandbox: SalesforceSandbox, sf_conn: SalesforceConnection
) -> None:
    salesforce_sandbox.insert(
        [
            {"Email": "in@example.com", "LastName": "In", "Company": "A"},
            {
                "Email": "out@example.com",
                "LastName": "Out",
                "Company": "A",
                "HasOptedOutOfEmail": True,
            },
            {"Email": "dnc@example.com", "LastName": "Dnc", "Company": "A", "Country": "yes"},
        ]
    )
    leads = _by_email(list(SalesforceLeadSource(sf_conn).read()))
    assert {e for e, lead in leads.items() if lead.opted_out} == {"out@example.com"}
    # A store-configured field (a text field stands in for a custom checkbox here).
    source = SalesforceLeadSource(sf_conn, opt_out_fields=("HasOptedOutOfEmail", "Country"))
    leads = _by_email(list(source.read()))
    assert {e for e, lead in leads.items() if lead.opted_out} == {
        "out@example.com",
        "dnc@example.com",
    }
    # The explicit override reads no opt-out at all.
    leads = _by_email(list(SalesforceLeadSource(sf_conn, opt_out_fields=()).read()))
    assert not any(lead.opted_out for lead in leads.values())


def test_salesforce_refuses_to_read_without_a_readable_opt_out_field(
    sf_conn: SalesforceConnection,
) -> None:
    source = SalesforceLeadSource(sf_conn, opt_out_fields=("Do_Not_Contact__c",))
    with pytest.raises(MappingError, match="ignore_store_opt_outs"):
        list(source.read())


def test_salesforce_block_settings_name_the_fields_read() -> None:
    store = SalesforceLeads.model_construct(opt_out_field="Do_Not_Contact__c")  # type: ignore[call-arg]
    assert store.opt_out_fields() == ("HasOptedOutOfEmail", "Do_Not_Contact__c")
    store = SalesforceLeads.model_construct(ignore_store_opt_outs=True)  # type: ignore[call-arg]
    assert store.opt_out_fields() == ()


def test_sheet_recognises_opt_out_columns_and_the_write_back_status(
    sheets_sandbox: SheetsSandbox, sheets_conn: SheetsConnection
) -> None:
    sid = sheets_sandbox.create_spreadsheet(
        "CRM",
        {
            "Sheet1": [
                ["Email", "Unsubscribed", "ColdSend Status"],
                ["a@example.com", "", "SENT"],
                ["b@example.com", "TRUE", ""],
                ["c@example.com", "", "UNSUBSCRIBED"],
            ]
        },
    )
    source = SheetsLeadSource(
        sheets_conn.client(),
        spreadsheet_id=sid,
        recognised_opt_out_columns=(*OPT_OUT_COLUMN_NAMES, "ColdSend Status"),
    )
    leads = _by_email(list(source.read()))
    assert {e for e, lead in leads.items() if lead.opted_out} == {"b@example.com", "c@example.com"}


def test_csv_configured_column_and_duplicates_keep_the_signal(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    path.write_text(
        "Email,Stop Mail,Company\n"
        "a@example.com,,A\n"
        "b@example.com,yes,B\n"
        "a@example.com,x,A\n"  # a repeat of a, opted out
    )
    items = list(CsvLeadSource(path, opt_out_column="stop mail").read())
    leads = _by_email(items)
    assert [lead.opted_out for lead in leads.values()] == [False, True]
    (repeat,) = [i for i in items if isinstance(i, Reject)]
    assert repeat.duplicate and repeat.opted_out
    with pytest.raises(MappingError, match="opt-out column"):
        list(CsvLeadSource(path, opt_out_column="Unsubscribed").read())


def test_csv_block_passes_its_write_back_columns_unless_overridden(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    path.write_text("Email,ColdSend Unsubscribed\na@example.com,TRUE\nb@example.com,FALSE\n")
    store = CsvFileLeads(path=str(path), mapping=FieldMapping(email="Email"))
    leads = _by_email(list(store.lead_source().read()))
    assert leads["a@example.com"].opted_out and not leads["b@example.com"].opted_out
    store = CsvFileLeads(path=str(path), ignore_store_opt_outs=True)
    assert not any(lead.opted_out for lead in _by_email(list(store.lead_source().read())).values())
