"""The Sheets emulator itself: A1 ranges, value rendering, errors in Google's envelope, quotas."""

from __future__ import annotations

import time

import gspread
import pytest
import requests

from sandbox.sheets.a1 import A1Range, RangeError, parse_range
from sandbox.sheets.fixtures import SheetsSandbox


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A1", A1Range(None, 0, 0, 0, 0, single=True)),
        ("Sheet1!A1:C10", A1Range("Sheet1", 0, 0, 9, 2)),
        ("'My Sheet'!B2:A1", A1Range("My Sheet", 0, 0, 1, 1)),
        ("'It''s here'!A:C", A1Range("It's here", None, 0, None, 2)),
        ("'a!b'!2:5", A1Range("a!b", 1, None, 4, None)),
        ("Data!A2:C", A1Range("Data", 1, 0, None, 2)),
        ("Leads", A1Range("Leads")),
        ("'Leads 2024'", A1Range("Leads 2024")),
        ("AA10", A1Range(None, 9, 26, 9, 26, single=True)),
    ],
)
def test_parse_range(text: str, expected: A1Range) -> None:
    assert parse_range(text) == expected


@pytest.mark.parametrize("text", ["", "'unclosed!A1", "Sheet1!A0", "Sheet1!1A:B2", "!A1"])
def test_parse_range_rejects(text: str) -> None:
    with pytest.raises(RangeError):
        parse_range(text)


def test_values_roundtrip_through_gspread(sheets_sandbox: SheetsSandbox) -> None:
    sid = sheets_sandbox.create_spreadsheet(
        "S", {"My Sheet": [["Email", "Zip", "Score"], ["a@example.com", "00123", 5.0]]}
    )
    ws = sheets_sandbox.client().open_by_key(sid).worksheet("My Sheet")
    assert ws.get("A1:C2") == [["Email", "Zip", "Score"], ["a@example.com", "00123", "5"]]
    assert ws.get("C2", value_render_option="UNFORMATTED_VALUE") == [[5]]
    assert ws.get("A:A", major_dimension="COLUMNS") == [["Email", "a@example.com"]]
    ws.update([["=1+1", "007"]], "D2", raw=True)
    ws.update([["=2+2", "007", "'=3"]], "D3", raw=False)
    ws.append_rows([["b@example.com"]], value_input_option="RAW")
    stored = sheets_sandbox.values(sid, "My Sheet")
    assert stored[1][3:] == ["=1+1", "007"]
    assert stored[2][3:] == [{"formula": "=2+2"}, 7, "=3"]
    assert stored[3] == ["b@example.com"]
    assert ws.get("D3", value_render_option="FORMULA") == [["=2+2"]]
    options = [(w["api"], w["valueInputOption"]) for w in sheets_sandbox.writes()]
    assert options == [
        ("values.update", "RAW"),
        ("values.update", "USER_ENTERED"),
        ("values.append", "RAW"),
    ]


def test_errors_use_googles_envelope(sheets_sandbox: SheetsSandbox) -> None:
    sid = sheets_sandbox.create_spreadsheet("S", {"Sheet1": [["x"]]})
    http = requests.Session()
    http.trust_env = False
    base = f"{sheets_sandbox.url}/v4/spreadsheets"
    r = http.get(f"{base}/nope")
    assert r.status_code == 404
    assert r.json() == {
        "error": {"code": 404, "message": "Requested entity was not found.", "status": "NOT_FOUND"}
    }
    r = http.get(f"{base}/{sid}/values/Nope!A1")
    assert r.status_code == 400 and r.json()["error"]["status"] == "INVALID_ARGUMENT"
    r = http.put(f"{base}/{sid}/values/A1", json={"values": [["x"]]})
    assert r.status_code == 400 and "valueInputOption" in r.json()["error"]["message"]
    r = http.put(
        f"{base}/{sid}/values/Sheet1!A1001",
        params={"valueInputOption": "RAW"},
        json={"values": [["x"]]},
    )
    assert r.status_code == 400 and "exceeds grid limits" in r.json()["error"]["message"]


def test_reads_past_the_grid_are_cut_at_its_edge_and_reads_outside_it_refused(
    sheets_sandbox: SheetsSandbox,
) -> None:
    # Google answers a read running past the grid for the part inside it, and refuses one that
    # starts outside it ("Range (Mass!151154:151354) exceeds grid limits. Max rows: 151000,
    # max columns: 26", airbytehq/airbyte#1740).
    sid = sheets_sandbox.create_spreadsheet("S", {"Sheet1": [["a"], [], ["c"]]})
    sh = sheets_sandbox.client().open_by_key(sid)
    assert sheets_sandbox.sheet_info(sid)["rowCount"] == 1000
    past = sh.values_get("Sheet1!1:10000")
    assert past["range"] == "Sheet1!A1:Z1000"
    assert past["values"] == [["a"], [], ["c"]]
    assert sh.values_get("Sheet1!2:1000")["range"] == "Sheet1!A2:Z1000"
    assert sh.values_get("Sheet1!990:2000") == {
        "range": "Sheet1!A990:Z1000",
        "majorDimension": "ROWS",
    }
    for outside in ("Sheet1!1001:1100", "Sheet1!AA1:AB2"):
        with pytest.raises(gspread.exceptions.APIError) as info:
            sh.values_get(outside)
        assert info.value.code == 400
        assert info.value.error["status"] == "INVALID_ARGUMENT"
        assert info.value.error["message"] == (
            f"Range ({outside}) exceeds grid limits. Max rows: 1000, max columns: 26"
        )
    with pytest.raises(gspread.exceptions.APIError, match="exceeds grid limits"):
        sh.values_batch_get(["Sheet1!1:2", "Sheet1!1001:1002"])


def test_quota_answers_429_resource_exhausted_and_window_rolls(
    sheets_sandbox: SheetsSandbox,
) -> None:
    sid = sheets_sandbox.create_spreadsheet("S", {"Sheet1": [["x"]]})
    sheets_sandbox.reset_stats()
    sheets_sandbox.set_limits(reads_per_minute=2, writes_per_minute=1, window_seconds=0.3)
    sh = sheets_sandbox.client("u").open_by_key(sid)  # one read
    sh.values_get("A1")  # second read
    with pytest.raises(gspread.exceptions.APIError) as info:
        sh.values_get("A1")
    assert info.value.code == 429
    assert info.value.error["status"] == "RESOURCE_EXHAUSTED"
    assert sheets_sandbox.stats()["rate_limited"] == 1  # counted, so suites can assert none
    sh.values_update("A1", params={"valueInputOption": "RAW"}, body={"values": [["y"]]})
    time.sleep(0.35)
    assert sh.values_get("A1")["values"] == [["y"]]


def test_hundred_thousand_row_sheet(sheets_sandbox: SheetsSandbox) -> None:
    rows = [["Email", "Name", "Company"]] + [
        [f"user{i}@example.com", f"N{i}", "Acme"] for i in range(100_000)
    ]
    sid = sheets_sandbox.create_spreadsheet("Big", {"Sheet1": rows})
    ws = sheets_sandbox.client().open_by_key(sid).sheet1
    assert ws.row_count == 100_001
    assert len(ws.get_all_values()) == 100_001
    ws.batch_update([{"range": "D100001", "values": [["SENT"]]}])
    assert ws.get("A100001:D100001") == [["user99999@example.com", "N99999", "Acme", "SENT"]]


def test_sqlite_state_survives_restart(tmp_path: object) -> None:
    from pathlib import Path

    from sandbox._server import serving
    from sandbox.sheets import create_app

    db = Path(str(tmp_path)) / "sheets.db"
    with serving(create_app(db_path=db)) as server:
        box = SheetsSandbox(server.url)
        sid = box.create_spreadsheet("S", {"Sheet1": [["Email"], ["a@example.com"]]})
        box.client().open_by_key(sid).sheet1.update([["=1"]], "B2", raw=False)
    with serving(create_app(db_path=db)) as server:
        box = SheetsSandbox(server.url)
        assert box.values(sid) == [["Email"], ["a@example.com", {"formula": "=1"}]]
