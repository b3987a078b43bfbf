"""How the Sheets sandbox finds the table values.append appends to (Google's detection)."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.sheets.store import Sheet


def _sheet(rows: list[list[Any]]) -> Sheet:
    return Sheet(sheet_id=0, title="Sheet1", index=0, row_count=1000, col_count=26, rows=rows)


#      A    B    C    D    E
# 1    x    y    z
# 2    x    y    z
# 3
# 4         x    y
# 5              x    y    z
# 6         x    y    z
# 7
GRID = [
    ["x", "y", "z"],
    ["x", "y", "z"],
    [],
    ["", "x", "y"],
    ["", "", "x", "y", "z"],
    ["", "x", "y", "z"],
]


@pytest.mark.parametrize(
    ("area", "table"),
    [
        ((0, 0, 999, 25), (0, 0, 1, 2)),  # the whole sheet: the first table, A1:C2
        ((0, 0, 0, 4), (0, 0, 1, 2)),  # A1:E1 finds the same table and follows it down
        ((3, 1, 3, 1), (3, 1, 5, 4)),  # B4: rows that overlap the table extend and widen it
        ((2, 0, 2, 4), None),  # a blank row holds no table
        ((2, 0, 999, 25), (3, 1, 5, 4)),  # from row 3 on, the second table
        ((4, 4, 4, 4), (4, 1, 5, 4)),  # E5: widened along its row, then by row 6
    ],
)
def test_find_table(
    area: tuple[int, int, int, int], table: tuple[int, int, int, int] | None
) -> None:
    assert _sheet([list(r) for r in GRID]).find_table(*area) == table


def test_a_row_with_blank_leading_cells_stays_in_the_table() -> None:
    sheet = _sheet([["Email", "Name", "Company"], ["", "", "Acme"], ["a@x.io", "A", ""]])
    assert sheet.find_table(0, 0, 999, 25) == (0, 0, 2, 2)


def test_dimensions_move_cells_formats_and_notes_together() -> None:
    sheet = _sheet([["a", "b"], ["c", "d"]])
    sheet.cell_extras[(1, 1)] = {"note": "d's note"}
    sheet.insert_dimension(True, 1, 2)
    assert sheet.rows == [["a", "b"], [], [], ["c", "d"]] and sheet.row_count == 1002
    assert sheet.cell_extras == {(3, 1): {"note": "d's note"}}
    sheet.insert_dimension(False, 0, 1)
    assert sheet.rows[3] == ["", "c", "d"] and sheet.cell_extras == {(3, 2): {"note": "d's note"}}
    sheet.delete_dimension(True, 0, 3)
    assert sheet.rows == [["", "c", "d"]] and sheet.cell_extras == {(0, 2): {"note": "d's note"}}
    sheet.delete_dimension(False, 2, 3)
    assert sheet.rows == [["", "c"]] and sheet.cell_extras == {}
    assert (sheet.row_count, sheet.col_count) == (999, 26)
