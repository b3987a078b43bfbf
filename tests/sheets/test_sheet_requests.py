"""spreadsheets.batchUpdate in the Sheets sandbox: all requests or none, kept across restarts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sandbox.sheets.app import ApiError, SheetsEmulator, create_app


def _emulator(db: Path | None = None) -> SheetsEmulator:
    return create_app(db_path=db, reads_per_minute=None, writes_per_minute=None).emulator


def _batch(emu: SheetsEmulator, sid: str, *requests: dict[str, Any]) -> Any:
    with emu.store.lock:
        return emu.handle(
            "POST", f"/v4/spreadsheets/{sid}:batchUpdate", {}, {"requests": list(requests)}, "u"
        )


def _rows(emu: SheetsEmulator, sid: str) -> list[list[Any]]:
    return [list(r) for r in emu.store.spreadsheets[sid].sheets[0].rows]


INSERT_ROW_1 = {
    "insertDimension": {
        "range": {"sheetId": 0, "dimension": "ROWS", "startIndex": 1, "endIndex": 2}
    }
}


def test_a_failing_request_undoes_the_ones_before_it() -> None:
    emu = _emulator()
    sid = emu.store.create("b", {"Sheet1": [["a"], ["b"]], "Other": []}).spreadsheet_id
    with pytest.raises(ApiError) as err:
        _batch(
            emu,
            sid,
            INSERT_ROW_1,
            {"deleteSheet": {"sheetId": 1001}},
            {"mergeCells": {"range": {"sheetId": 0}, "mergeType": "MERGE_ALL"}},
        )
    assert err.value.code == 400 and "requests[2].mergeCells" in err.value.message
    book = emu.store.spreadsheets[sid]
    assert [s.title for s in book.sheets] == ["Sheet1", "Other"]
    assert _rows(emu, sid) == [["a"], ["b"]] and book.sheets[0].row_count == 1000


@pytest.mark.parametrize(
    ("request_body", "message"),
    [
        (
            {"deleteDimension": {"range": {"sheetId": 0, "dimension": "ROWS", "startIndex": 0}}},
            "can't delete all the rows",
        ),
        (
            {
                "insertDimension": {
                    "range": {
                        "sheetId": 0,
                        "dimension": "ROWS",
                        "startIndex": 2000,
                        "endIndex": 2001,
                    }
                }
            },
            "does not fit",
        ),
        ({"deleteSheet": {"sheetId": 0}}, "can't remove all the sheets"),
        ({"repeatCell": {"range": {"sheetId": 0}, "cell": {}}}, "fields is required"),
        ({"updateSheetProperties": {"properties": {"sheetId": 0}, "fields": "nope"}}, "nope"),
    ],
)
def test_bad_requests_are_named(request_body: dict[str, Any], message: str) -> None:
    emu = _emulator()
    sid = emu.store.create("b", {"Sheet1": [["a"]]}).spreadsheet_id
    with pytest.raises(ApiError, match=message) as err:
        _batch(emu, sid, request_body)
    assert f"requests[0].{next(iter(request_body))}" in err.value.message


def test_moved_rows_formats_and_properties_survive_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "sheets.db"
    emu = _emulator(db)
    sid = emu.store.create("b", {"Sheet1": [["a"], ["b"], ["c"]], "Gone": [["x"]]}).spreadsheet_id
    _batch(
        emu,
        sid,
        INSERT_ROW_1,
        {"deleteSheet": {"sheetId": 1001}},
        {
            "repeatCell": {
                "range": {"sheetId": 0, "startRowIndex": 0, "endRowIndex": 1},
                "cell": {"userEnteredFormat": {"textFormat": {"bold": True}}},
                "fields": "userEnteredFormat.textFormat.bold",
            }
        },
        {
            "updateSheetProperties": {
                "properties": {"sheetId": 0, "gridProperties": {"frozenRowCount": 1}},
                "fields": "gridProperties.frozenRowCount",
            }
        },
    )
    again = _emulator(db)
    book = again.store.spreadsheets[sid]
    assert [s.title for s in book.sheets] == ["Sheet1"]
    assert _rows(again, sid) == [["a"], [], ["b"], ["c"]]
    sheet = book.sheets[0]
    assert sheet.cell_extras[(0, 0)] == {"userEnteredFormat": {"textFormat": {"bold": True}}}
    assert sheet.properties()["gridProperties"]["frozenRowCount"] == 1
    assert sheet.row_count == 1001
