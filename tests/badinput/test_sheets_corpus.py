"""Bad Google Sheets: each gives a clear error or per-row rejects naming the sheet row."""

from __future__ import annotations

from typing import Any

import pytest

from connectors.leads import FieldMapping
from connectors.sheets import SheetsConnection, SheetsLeadSource
from sandbox.sheets.fixtures import SheetsSandbox

from ._corpus import Case, emails
from .test_csv_corpus import check_outcome

# Sheet row numbers as a person sees them: the header is row 1, the first data row is row 2.
SHEET_CASES: list[Case] = [
    Case(
        "sheet-no-email-column",
        [["Name", "Company"], ["Ann", "Acme"]],
        error=("MappingError", "'Email'"),
    ),
    Case("sheet-empty", [], error=("NoHeaderError", "is empty")),
    Case(
        "sheet-blank-header-row",
        [["", " "], ["a@x.com", "Acme"]],
        error=("NoHeaderError", "blank header row (row 1)"),
    ),
    Case("sheet-header-only", [["Email", "First Name", "Company"]]),
    Case(
        "sheet-unknown-mapping-column",
        [["Email", "Company"], ["a@x.com", "Acme"]],
        mapping=FieldMapping(email="Email", custom_fields={"industry": "Sector"}),
        error=("MappingError", "'Sector' (mapped to industry)"),
    ),
    Case(
        "sheet-unknown-worksheet",
        [["Email"], ["a@x.com"]],
        options={"worksheet": "Leads 2024"},
        error=("WorksheetNotFoundError", "Leads 2024"),
    ),
    Case(
        "sheet-invalid-and-internationalised",
        [
            ["Email"],
            ["not-an-email"],
            ["user@bücher.de"],
            ["josé@example.com"],
            ["a@x.123"],
            ["ok@x.com"],
        ],
        valid=emails("user@xn--bcher-kva.de", "ok@x.com"),
        rejects=((2, "no '@'"), (4, "non-ASCII"), (5, "no valid top-level part")),
    ),
    Case(
        "sheet-duplicates-differing-in-case-and-spaces",
        [["Email"], ["Ann@X.com "], [" ann@x.com"], ["ANN@x.COM"], ["bob@x.com"]],
        valid=emails("ann@x.com", "bob@x.com"),
        rejects=((3, "already read at row 2"), (4, "already read at row 2")),
    ),
    Case(
        "sheet-numbers-and-booleans-in-email-column",
        [["Email"], [12345], [True], [1.5], ["ok@x.com"]],
        valid=emails("ok@x.com"),
        rejects=((2, "no '@'"), (3, "no '@'"), (4, "no '@'")),
    ),
    Case(
        "sheet-formula-cells",
        [
            ["Email", "Company"],
            [{"formula": '=CONCAT("a","@x.com")'}, "Acme"],
            ["b@x.com", "=1+1"],
            ["c@x.com", {"formula": '=HYPERLINK("http://evil.example")'}],
        ],
        # The emulator does not compute formulas, so the first email reads as blank.
        valid=emails("b@x.com", "c@x.com"),
        rejects=((2, "missing email"),),
    ),
    Case(
        "sheet-blank-rows-keep-sheet-row-numbers",
        [["Email"], ["a@x.com"], [], [""], ["  "], ["bad"], ["b@x.com"]],
        valid=emails("a@x.com", "b@x.com"),
        rejects=((6, "no '@'"),),
    ),
    Case(
        "sheet-newlines-inside-cells",
        [["Email", "Company"], ["a@x.com\n", "Two\nlines"], ["b@x.com\nc@x.com", "x"]],
        valid=emails("a@x.com"),
        rejects=((3, "contains whitespace"),),
    ),
    Case(
        "sheet-huge-cell",
        [["Email", "Company"], ["a@x.com", "z" * 50_000], ["b@x.com", "ok"]],
        valid=emails("a@x.com", "b@x.com"),
    ),
    Case(
        "sheet-blank-and-repeated-headers",
        [["Email", "", "email"], ["a@x.com", "x", "b@x.com"]],
        valid=emails("a@x.com"),
    ),
]


@pytest.mark.parametrize("case", SHEET_CASES, ids=[c.id for c in SHEET_CASES])
def test_sheet_bad_input(case: Case, sheets_sandbox: SheetsSandbox) -> None:
    sid = sheets_sandbox.create_spreadsheet("Bad input", {"Sheet1": case.data})
    conn = SheetsConnection(api_base_url=sheets_sandbox.url, access_token="badinput")
    options: dict[str, Any] = {"worksheet": "Sheet1", **case.options}
    source = SheetsLeadSource(conn.client(), spreadsheet_id=sid, mapping=case.mapping, **options)
    if case.error is None:
        check_outcome(list(source.read()), case)
        return
    kind, fragment = case.error
    with pytest.raises(Exception) as info:
        list(source.read())
    assert type(info.value).__name__ == kind
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)
