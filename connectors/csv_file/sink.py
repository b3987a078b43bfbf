"""Statuses written back into a CSV file in place, atomically; and the rejects file people open."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Literal

from connectors._tabular import StatusColumns, UpdateIndex, email_column, find_column, plan_row
from connectors.csv_file.format import CsvFormat, CsvFormatError, atomic_replace, detect_format
from connectors.csv_file.source import read_header
from connectors.leads import FieldMapping, MappingError, Reject, StatusUpdate, WriteResult

__all__ = ["CsvStatusSink", "neutralize_cell", "write_rejects_csv"]

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralize_cell(value: str) -> str:
    """A cell safe to open in a spreadsheet program: formula-like text gets a leading ``'``.

    Spreadsheet programs run a cell starting with ``= + - @`` (or a tab / carriage return
    before one) as a formula: CSV injection. The quote makes it plain text.
    """
    return "'" + value if value.startswith(_FORMULA_START) else value


def write_rejects_csv(path: str | os.PathLike[str], rejects: Iterable[Reject]) -> int:
    """Write rejected rows to a CSV file for people to open in Excel or Sheets.

    Columns: ``row``, ``source_id``, ``email``, ``reason``. Every cell is neutralised against
    CSV injection (`neutralize_cell`). UTF-8 with a BOM so Excel shows accents correctly. The
    file is replaced atomically.

    Returns:
        The number of rejects written.
    """
    target = Path(path)
    count = 0
    with atomic_replace(target, encoding="utf-8-sig") as fh:
        writer = csv.writer(fh, lineterminator="\r\n")
        writer.writerow(["row", "source_id", "email", "reason"])
        for reject in rejects:
            writer.writerow(
                [
                    "" if reject.row_number is None else str(reject.row_number),
                    neutralize_cell(reject.source_id or ""),
                    neutralize_cell(reject.email),
                    neutralize_cell(reject.reason),
                ]
            )
            count += 1
    return count


class CsvStatusSink:
    """Writes ColdSend statuses into a CSV file's status columns (implements `StatusSink`).

    The file is read twice as a stream (memory depends on the number of updates, not the
    file): once to work out what changes, once to write the new version to a temporary file
    in the same directory, which then atomically replaces the original. Other columns, their
    order, the delimiter, the encoding (BOM included) and the line ending are kept; missing
    status columns are added at the right. Statuses never move backwards and flags only move
    from FALSE to TRUE (see `StatusColumns`). When nothing changes the file is not touched
    (its modification time stays).

    Args:
        path: The CSV file.
        match_by: Header of the column rows are matched on; None means the column the
            source reads emails from under `mapping` (the sync's match key), so the sync and
            the write-back of a store always agree on it.
        mapping: The store's field mapping (None: the default, recognising the headers).
        match_value: ``"email"`` to match `StatusUpdate.email`, ``"source_id"`` to match
            `StatusUpdate.source_id` against a key column.
        columns: Status and flag column names.
        encoding: A codec name; None detects it like `CsvLeadSource`.
        delimiter: One of ``, ; TAB |``; None detects it.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        match_by: str | None = None,
        mapping: FieldMapping | None = None,
        match_value: Literal["email", "source_id"] = "email",
        columns: StatusColumns | None = None,
        encoding: str | None = None,
        delimiter: str | None = None,
    ) -> None:
        if match_value not in ("email", "source_id"):
            raise ValueError(f"match_value must be 'email' or 'source_id', got {match_value!r}")
        self.path = Path(path)
        if match_by is None and match_value != "email":
            raise ValueError("match_value 'source_id' needs match_by: the key column's header")
        self.match_by = match_by
        self.mapping = mapping
        self.match_value = match_value
        self.columns = columns or StatusColumns()
        self.encoding = encoding
        self.delimiter = delimiter

    def __repr__(self) -> str:
        return f"CsvStatusSink(path={str(self.path)!r}, match_by={self.match_by!r})"

    def write_statuses(self, updates: Iterable[StatusUpdate]) -> WriteResult:
        """Apply `updates` to the file.

        Returns:
            Counts per outcome (``requests`` stays 0). Keys no row holds are in ``not_found``;
            updates without a usable key (invalid email, no source id) in ``failures``.

        Raises:
            NoHeaderError: the file is empty.
            MappingError: the `match_by` column is not in the header.
            CsvFormatError: the file is not readable CSV.
        """
        index = UpdateIndex(updates, match_value=self.match_value)
        result = index.new_result()
        if not index.by_key:
            return result
        fmt = detect_format(self.path, encoding=self.encoding, delimiter=self.delimiter)
        changed = self._apply(fmt, index, result, out=None)
        if changed:
            # Second pass: the counters were settled by the first one.
            with atomic_replace(self.path, encoding=fmt.encoding) as out:
                self._apply(fmt, index, WriteResult(), out=out)
        return result

    def _apply(
        self, fmt: CsvFormat, index: UpdateIndex, result: WriteResult, *, out: IO[str] | None
    ) -> bool:
        """One pass over the file; writes the new version to `out` when it is a text file."""
        where = f"CSV file {self.path.name}"
        writer = (
            csv.writer(out, delimiter=fmt.delimiter, lineterminator=fmt.newline)
            if out is not None
            else None
        )
        record_no = 0
        with self.path.open("r", encoding=fmt.encoding, newline="") as fh:
            # strict: an unclosed quote would otherwise swallow every later row into one
            # field without a word (rows lost; a rewrite would merge them for good).
            reader = csv.reader(fh, delimiter=fmt.delimiter, strict=True)
            try:
                raw_header, header, skipped = read_header(reader, where=where)
                match_col = (
                    find_column(header, self.match_by, source=where)
                    if self.match_by
                    else email_column(header, self.mapping, source=where)
                )
                new_header = list(raw_header)
                col_of: dict[str, int] = {}
                for name in self.columns.names():
                    try:
                        col_of[name] = find_column(header, name, source=where)
                    except MappingError:
                        col_of[name] = len(new_header)
                        new_header.append(name)
                cols = self.columns
                status_col = col_of[cols.status]
                flag_cols = (
                    col_of[cols.opened] if cols.opened else None,
                    col_of[cols.replied] if cols.replied else None,
                    col_of[cols.unsubscribed] if cols.unsubscribed else None,
                    col_of[cols.bounced] if cols.bounced else None,
                )
                if writer is not None:
                    writer.writerows(skipped)
                    writer.writerow(new_header)
                by_key = index.by_key
                key_of = index.key_of
                matched: set[str] = set()
                changed = False
                for row in reader:
                    record_no += 1
                    key = key_of(row[match_col]) if match_col < len(row) else None
                    statuses = by_key.get(key) if key is not None else None
                    if key is not None and statuses is not None:
                        first = key not in matched
                        matched.add(key)
                        changes = plan_row(
                            row,
                            statuses,
                            status_col=status_col,
                            flag_cols=flag_cols,
                            result=result,
                            count=first,
                        )
                        if changes:
                            changed = True
                            if writer is not None:
                                row = list(row)
                                width = max(c for c, _ in changes) + 1
                                if len(row) < width:
                                    row.extend([""] * (width - len(row)))
                                for col, value in changes:
                                    row[col] = value
                    if writer is not None:
                        writer.writerow(row)
            except UnicodeDecodeError:
                raise CsvFormatError(
                    f"{where}: text near data row {record_no + 1} is not valid {fmt.encoding}"
                ) from None
            except csv.Error as exc:
                raise CsvFormatError(f"{where}: data row {record_no + 1}: {exc}") from None
        for key, statuses in by_key.items():
            if key not in matched:
                result.not_found.extend([key] * len(statuses))
        return changed
