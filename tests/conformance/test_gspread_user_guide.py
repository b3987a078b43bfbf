"""gspread's user guide, call by call, against the Google Sheets sandbox.

The guide's calls run as written; the answers' shapes are checked against the Sheets v4 and
Drive v3 references: UpdateValuesResponse (updatedRange spanning the block written,
updatedRows/Columns/Cells counting cells written), ClearValuesResponse (clearedRange),
AppendValuesResponse (tableRange only when a table was found, updates), batchUpdate totals
counting distinct rows and columns. Not emulated (a 400 naming the request): named ranges,
data validation, merges, sorting, filters, protected ranges, copyTo.
"""

from __future__ import annotations

import re

import gspread
import pytest
from gspread.utils import ValueRenderOption

from sandbox.sheets.fixtures import SheetsSandbox

_UPDATE_KEYS = {"spreadsheetId", "updatedRange", "updatedRows", "updatedColumns", "updatedCells"}


def test_opening_creating_and_sharing(gc: gspread.Client, sheets_sandbox: SheetsSandbox) -> None:
    sh = gc.create("A new spreadsheet")
    assert gc.open("A new spreadsheet").id == sh.id
    assert gc.open_by_key(sh.id).title == "A new spreadsheet"
    assert gc.open_by_url(f"https://docs.google.com/spreadsheets/d/{sh.id}/edit").id == sh.id
    seeded = sheets_sandbox.create_spreadsheet("My poor gym results")
    assert gc.open("My poor gym results").id == seeded
    assert {s.title for s in gc.openall()} == {"A new spreadsheet", "My poor gym results"}
    with pytest.raises(gspread.SpreadsheetNotFound):
        gc.open("No such spreadsheet")

    sh.share("otto@example.com", perm_type="user", role="writer")
    (permission,) = sh.list_permissions()
    assert (permission["type"], permission["role"], permission["emailAddress"]) == (
        "user",
        "writer",
        "otto@example.com",
    )
    sh.remove_permissions("otto@example.com")
    assert sh.list_permissions() == []

    gc.del_spreadsheet(seeded)
    assert [s.id for s in gc.openall()] == [sh.id]


def test_worksheets(gc: gspread.Client) -> None:
    sh = gc.create("Worksheets")
    assert sh.get_worksheet(0).title == sh.sheet1.title == "Sheet1"
    worksheet = sh.add_worksheet(title="A worksheet", rows=100, cols=20)
    assert (worksheet.row_count, worksheet.col_count) == (100, 20)
    assert [w.title for w in sh.worksheets()] == ["Sheet1", "A worksheet"]
    assert sh.worksheet("A worksheet").id == worksheet.id

    worksheet.update_title("December Transactions")
    worksheet.update_tab_color("#FF0000")
    fetched = sh.worksheet("December Transactions")
    assert fetched.tab_color == "#FF0000"
    worksheet.freeze(rows=1)
    assert sh.worksheet("December Transactions").frozen_row_count == 1

    sh.del_worksheet(worksheet)
    assert [w.title for w in sh.worksheets()] == ["Sheet1"]
    with pytest.raises(gspread.exceptions.APIError, match="can't remove all the sheets"):
        sh.del_worksheet(sh.sheet1)


def test_reading_cells(gc: gspread.Client) -> None:
    worksheet = gc.create("Reading").sheet1
    worksheet.update(
        [["Name", "Bingo"], ["Dough", "=1/1024"], ["Big dough", "12"]],
        "A1",
        value_input_option="USER_ENTERED",
    )
    assert worksheet.acell("B1").value == "Bingo"
    assert worksheet.cell(1, 2).value == "Bingo"
    assert worksheet.acell("B2", value_render_option="FORMULA").value == "=1/1024"
    assert worksheet.cell(2, 2, value_render_option="FORMULA").value == "=1/1024"
    assert worksheet.get("B3", value_render_option=ValueRenderOption.unformatted) == [[12]]
    assert worksheet.get("B2", value_render_option=ValueRenderOption.formula) == [["=1/1024"]]
    assert worksheet.row_values(1) == ["Name", "Bingo"]
    assert worksheet.col_values(1) == ["Name", "Dough", "Big dough"]
    assert worksheet.get_all_values()[0] == ["Name", "Bingo"]
    assert worksheet.get_all_records()[1] == {"Name": "Big dough", "Bingo": 12}

    cell = worksheet.find("Dough")
    assert cell is not None and (cell.row, cell.col) == (2, 1)
    amount_re = re.compile(r"(Big|Enormous) dough")
    big = worksheet.find(amount_re)
    assert big is not None and big.row == 3
    assert worksheet.find("Nothing") is None
    assert [c.row for c in worksheet.findall(re.compile(r"dough", re.I))] == [2, 3]


def test_updating_and_clearing_cells_answer_googles_shapes(gc: gspread.Client) -> None:
    worksheet = gc.create("Writing").sheet1
    answer = worksheet.update([[1, 2], [3, 4]], "A1:B2")
    assert answer == {
        "spreadsheetId": worksheet.spreadsheet_id,
        "updatedRange": "Sheet1!A1:B2",
        "updatedRows": 2,
        "updatedColumns": 2,
        "updatedCells": 4,
    }
    # A 4x4 block anchored at one cell: updatedRange spans the block, not the anchor.
    block = worksheet.update([["x"] * 4] * 4, "A1")
    assert (block["updatedRange"], block["updatedCells"]) == ("Sheet1!A1:D4", 16)
    echoed = worksheet.update(
        [["12", "=1+1"]], "C1", value_input_option="USER_ENTERED", include_values_in_response=True
    )
    assert echoed["updatedData"] == {
        "range": "Sheet1!C1:D1",
        "majorDimension": "ROWS",
        "values": [["12"]],  # a formula is stored, not computed: it reads as empty
    }
    assert set(worksheet.update_acell("B1", "Bingo!")) == _UPDATE_KEYS
    worksheet.update_cell(1, 2, "Bingo!")
    assert worksheet.acell("B1").value == "Bingo!"

    batch = worksheet.batch_update(
        [{"range": "A1:B1", "values": [["a", "b"]]}, {"range": "A3:B3", "values": [["c", "d"]]}]
    )
    assert (batch["totalUpdatedRows"], batch["totalUpdatedColumns"]) == (2, 2)
    assert (batch["totalUpdatedCells"], batch["totalUpdatedSheets"]) == (4, 1)
    assert [set(r) for r in batch["responses"]] == [_UPDATE_KEYS] * 2

    cleared = worksheet.batch_clear(["A1:B1", "C2:E2"])
    assert cleared == {
        "spreadsheetId": worksheet.spreadsheet_id,
        "clearedRanges": ["Sheet1!A1:B1", "Sheet1!C2:E2"],
    }
    assert worksheet.clear() == {
        "spreadsheetId": worksheet.spreadsheet_id,
        "clearedRange": "Sheet1!A1:Z1000",
    }
    assert worksheet.get_all_values() == [[]]  # gspread's answer for an empty sheet


def test_append_finds_googles_table_around_blank_cells(gc: gspread.Client) -> None:
    worksheet = gc.create("Appending").sheet1
    first = worksheet.append_row(["Email", "Name", "Company"])
    assert "tableRange" not in first  # an empty sheet has no table
    assert first["updates"]["updatedRange"] == "Sheet1!A1:C1"
    # A row whose first cells are blank still belongs to the table.
    worksheet.append_row(["", "", "Acme"])
    answer = worksheet.append_row(["ada@example.com", "Ada"])
    assert answer["tableRange"] == "Sheet1!A1:C2"
    assert answer["updates"] == {
        "spreadsheetId": worksheet.spreadsheet_id,
        "updatedRange": "Sheet1!A3:B3",
        "updatedRows": 1,
        "updatedColumns": 2,
        "updatedCells": 2,
    }
    # A blank row ends the first table: the next append fills the gap, as Google's does.
    worksheet.update([["after the gap"]], "A6")
    gap = worksheet.append_rows([["x"]])
    assert (gap["tableRange"], gap["updates"]["updatedRange"]) == ("Sheet1!A1:C3", "Sheet1!A4:A4")
    # A table that starts away from column A is appended from its own first column.
    other = gc.create("Offset").sheet1
    other.update([["h1", "h2"], ["a", "b"]], "C3")
    offset = other.append_row(["c", "d"], table_range="C3")
    assert (offset["tableRange"], offset["updates"]["updatedRange"]) == (
        "Sheet1!C3:D4",
        "Sheet1!C5:D5",
    )


def test_insert_delete_and_format(gc: gspread.Client) -> None:
    worksheet = gc.create("Structure").sheet1
    worksheet.update([["h1", "h2"], ["a", "b"], ["c", "d"]], "A1")
    worksheet.insert_rows([["i1", "i2"]], row=2)
    assert worksheet.get_all_values() == [["h1", "h2"], ["i1", "i2"], ["a", "b"], ["c", "d"]]
    worksheet.delete_rows(3)
    assert worksheet.get_all_values() == [["h1", "h2"], ["i1", "i2"], ["c", "d"]]
    worksheet.insert_cols([["X", "Y"]], col=1)
    assert worksheet.row_values(1) == ["X", "h1", "h2"]
    worksheet.delete_columns(1)
    assert worksheet.row_values(1) == ["h1", "h2"]
    assert (worksheet.row_count, worksheet.col_count) == (1000, 26)

    worksheet.format("A1:B1", {"textFormat": {"bold": True}})
    worksheet.format(
        "A2:B2",
        {
            "backgroundColor": {"red": 0.0, "green": 0.0, "blue": 0.0},
            "horizontalAlignment": "CENTER",
            "textFormat": {
                "foregroundColor": {"red": 1.0, "green": 1.0, "blue": 1.0},
                "fontSize": 12,
                "bold": True,
            },
        },
    )
    worksheet.update_note("A1", "the header")
    assert worksheet.get_note("A1") == "the header"
    grid = worksheet.client.spreadsheets_get(
        worksheet.spreadsheet_id, params={"includeGridData": "true", "ranges": "Sheet1!A1:B2"}
    )
    rows = grid["sheets"][0]["data"][0]["rowData"]
    assert rows[0]["values"][0]["userEnteredFormat"] == {"textFormat": {"bold": True}}
    assert rows[0]["values"][0]["note"] == "the header"
    assert rows[1]["values"][1]["userEnteredFormat"]["horizontalAlignment"] == "CENTER"
    assert rows[0]["values"][0]["formattedValue"] == "h1"
    # Formats move with their rows.
    worksheet.insert_row(["new"], index=1)
    assert worksheet.get_note("A2") == "the header"


@pytest.mark.parametrize(
    ("call", "request_name"),
    [
        (lambda ws: ws.merge_cells("A1:B2"), "mergeCells"),
        (lambda ws: ws.sort((1, "asc")), "sortRange"),
        (lambda ws: ws.set_basic_filter(), "setBasicFilter"),
        (lambda ws: ws.define_named_range("A1:B2", "my_named_range"), "addNamedRange"),
    ],
)
def test_requests_not_emulated_answer_a_400_naming_them(
    gc: gspread.Client, call: object, request_name: str
) -> None:
    worksheet = gc.create("Unsupported").sheet1
    worksheet.update([["a"]], "A1")
    with pytest.raises(gspread.exceptions.APIError, match=f"requests\\[0\\].{request_name}") as err:
        call(worksheet)  # type: ignore[operator]
    assert err.value.response.status_code == 400
    assert "does not emulate" in str(err.value)
