"""A1 notation as the Sheets API reads it: quoted sheet names, cells, whole rows and columns."""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "A1Range",
    "RangeError",
    "col_letters",
    "format_range",
    "parse_range",
    "quote_sheet",
]

_CELL_RE = re.compile(r"^([A-Za-z]{0,3})(\d{0,7})$")
_SINGLE_CELL_RE = re.compile(r"^[A-Za-z]{1,3}\d{1,7}$")


class RangeError(ValueError):
    """A range that cannot be parsed (the API answers 400 INVALID_ARGUMENT)."""


@dataclass(frozen=True, slots=True)
class A1Range:
    """A parsed range; indexes are 0-based and inclusive, None meaning open on that side.

    `sheet` is None when the range names no sheet (the API then uses the first one).
    `single` marks a one-cell reference like ``A2``: a write there may fill a larger block.
    """

    sheet: str | None
    row1: int | None = None
    col1: int | None = None
    row2: int | None = None
    col2: int | None = None
    single: bool = False


def col_letters(index: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA."""
    letters = ""
    n = index + 1
    while n:
        n, rem = divmod(n - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def _col_index(letters: str) -> int:
    n = 0
    for ch in letters.upper():
        n = n * 26 + (ord(ch) - 64)
    return n - 1


def _split_sheet(text: str) -> tuple[str | None, str | None]:
    """(sheet name or None, cell part or None)."""
    if text.startswith("'"):
        i = 1
        name: list[str] = []
        while i < len(text):
            ch = text[i]
            if ch == "'":
                if i + 1 < len(text) and text[i + 1] == "'":
                    name.append("'")
                    i += 2
                    continue
                rest = text[i + 1 :]
                if not rest:
                    return "".join(name), None
                if rest.startswith("!"):
                    return "".join(name), rest[1:]
                raise RangeError(text)
            name.append(ch)
            i += 1
        raise RangeError(text)
    if "!" in text:
        sheet, _, cells = text.rpartition("!")
        if not sheet:
            raise RangeError(text)
        return sheet, cells
    if _SINGLE_CELL_RE.match(text) or ":" in text:
        return None, text
    return text, None


def _cell(token: str) -> tuple[int | None, int | None]:
    m = _CELL_RE.match(token)
    if not m or not token:
        raise RangeError(token)
    letters, digits = m.groups()
    col = _col_index(letters) if letters else None
    if digits:
        if int(digits) < 1:
            raise RangeError(token)
        row: int | None = int(digits) - 1
    else:
        row = None
    return row, col


def parse_range(text: str) -> A1Range:
    """Parse ``'My Sheet'!A1:C10``, ``Sheet1!A:C``, ``2:5``, ``A2:C``, ``A1`` or a bare sheet name.

    Raises:
        RangeError: the text is not a range.
    """
    text = text.strip()
    if not text:
        raise RangeError(text)
    sheet, cells = _split_sheet(text)
    if cells is None:
        return A1Range(sheet)
    first, sep, second = cells.partition(":")
    row1, col1 = _cell(first)
    if not sep:
        if row1 is None or col1 is None:
            raise RangeError(text)
        return A1Range(sheet, row1, col1, row1, col1, single=True)
    row2, col2 = _cell(second)
    # "A:C" leaves rows open, "2:5" leaves columns open; "A2:C" is open at the bottom.
    if row1 is not None and row2 is not None and row2 < row1:
        row1, row2 = row2, row1
    if col1 is not None and col2 is not None and col2 < col1:
        col1, col2 = col2, col1
    return A1Range(sheet, row1, col1, row2, col2)


def quote_sheet(title: str) -> str:
    """The sheet name as the API writes it in ranges: quoted when it is not a plain word."""
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", title) and not _SINGLE_CELL_RE.match(title):
        return title
    return "'" + title.replace("'", "''") + "'"


def format_range(title: str, row1: int, col1: int, row2: int, col2: int) -> str:
    """``Sheet1!A1:C10`` from 0-based inclusive bounds."""
    return f"{quote_sheet(title)}!{col_letters(col1)}{row1 + 1}:{col_letters(col2)}{row2 + 1}"
