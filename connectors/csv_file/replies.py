"""A lead's newest reply written into a CSV file's "Last reply" columns, in place, atomically."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Literal

from connectors._tabular import (
    ReplyColumns,
    email_column,
    find_column,
    latest_replies,
    plan_reply,
)
from connectors.activities import Activity, ActivityResult, LoggedActivity
from connectors.csv_file.format import CsvFormatError, atomic_replace, detect_format
from connectors.csv_file.sink import neutralize_cell
from connectors.csv_file.source import read_header
from connectors.leads import FieldMapping, MappingError, normalize_email

__all__ = ["CsvReplySink"]


class CsvReplySink:
    """Shows each row's newest reply in its "Last reply" / "Last reply at" columns (implements
    `ActivitySink`).

    The reply text is neutralised against formulas (`neutralize_cell`: a leading ``= + - @``
    gets a ``'``) because people open these files in spreadsheet programs. A row whose "Last
    reply at" already shows the reply, or a newer one, is left alone, so a repeated or crashed
    run writes nothing twice; when nothing changes the file is not touched. Missing columns
    are added at the right. Like `CsvStatusSink`, the file is read as a stream twice and
    replaced atomically.

    Args:
        path: The CSV file.
        match_by: Header of the column rows are matched on; None: the column the store's
            `mapping` reads emails from (as for `CsvStatusSink`).
        mapping: The store's field mapping.
        match_value: ``"email"`` or ``"source_id"`` (the key column the sync stored).
        columns: The two column names.
        encoding / delimiter: As for `CsvStatusSink` (detected when None).
        store_ids: The store has a key column (the sync uploads it as the lead's record id).
            Without one, a reply whose lead carries a record id came from another store and
            is left to that store (skipped), not reported as a reply without a record.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        match_by: str | None = None,
        mapping: FieldMapping | None = None,
        match_value: Literal["email", "source_id"] = "email",
        columns: ReplyColumns | None = None,
        encoding: str | None = None,
        delimiter: str | None = None,
        store_ids: bool = False,
    ) -> None:
        if match_value not in ("email", "source_id"):
            raise ValueError(f"match_value must be 'email' or 'source_id', got {match_value!r}")
        if match_by is None and match_value != "email":
            raise ValueError("match_value 'source_id' needs match_by: the key column's header")
        self.path = Path(path)
        self.match_by = match_by
        self.mapping = mapping
        self.match_value = match_value
        self.columns = columns or ReplyColumns()
        self.encoding = encoding
        self.delimiter = delimiter
        self.store_ids = store_ids or match_value == "source_id"

    def __repr__(self) -> str:
        return f"CsvReplySink(path={str(self.path)!r}, match_by={self.match_by!r})"

    def write_activities(self, activities: Sequence[Activity]) -> ActivityResult:
        """Write each row's newest reply.

        Raises:
            NoHeaderError: the file is empty.
            MappingError: the `match_by` column is not in the header.
            CsvFormatError: the file is not readable CSV.
        """
        latest, result = latest_replies(activities, match_value=self.match_value)
        if not latest:
            return result
        fmt = detect_format(self.path, encoding=self.encoding, delimiter=self.delimiter)
        where = f"CSV file {self.path.name}"
        by_email = self.match_value == "email"
        matched: set[str] = set()
        changed: set[str] = set()

        def apply(out: IO[str] | None) -> None:
            # One pass; with `out`, the new version is written to it as rows are read, so
            # memory does not grow with the file.
            writer = (
                csv.writer(out, delimiter=fmt.delimiter, lineterminator=fmt.newline)
                if out is not None
                else None
            )
            record_no = 0
            with self.path.open("r", encoding=fmt.encoding, newline="") as fh:
                reader = csv.reader(fh, delimiter=fmt.delimiter, strict=True)
                try:
                    raw_header, header, skipped = read_header(reader, where=where)
                    match_col = (
                        find_column(header, self.match_by, source=where)
                        if self.match_by
                        else email_column(header, self.mapping, source=where)
                    )
                    new_header = list(raw_header)
                    cols: list[int] = []
                    for name in self.columns.names():
                        try:
                            cols.append(find_column(header, name, source=where))
                        except MappingError:
                            cols.append(len(new_header))
                            new_header.append(name)
                    text_col, at_col = cols
                    if writer is not None:
                        writer.writerows(skipped)
                        writer.writerow(new_header)
                    for row in reader:
                        record_no += 1
                        cell = row[match_col] if match_col < len(row) else ""
                        key = normalize_email(cell)[0] if by_email else (cell.strip() or None)
                        reply = latest.get(key) if key is not None else None
                        if key is not None and reply is not None:
                            matched.add(key)
                            changes = plan_reply(row, reply, text_col=text_col, at_col=at_col)
                            if changes:
                                changed.add(key)
                                row = list(row)
                                width = max(c for c, _ in changes) + 1
                                if len(row) < width:
                                    row.extend([""] * (width - len(row)))
                                for col, value in changes:
                                    row[col] = neutralize_cell(value) if col == text_col else value
                        if writer is not None:
                            writer.writerow(row)
                except UnicodeDecodeError:
                    raise CsvFormatError(
                        f"{where}: text near data row {record_no + 1} is not valid {fmt.encoding}"
                    ) from None
                except csv.Error as exc:
                    raise CsvFormatError(f"{where}: data row {record_no + 1}: {exc}") from None

        apply(None)
        if changed:
            with atomic_replace(self.path, encoding=fmt.encoding) as fh:
                apply(fh)
        for key, reply in latest.items():
            if key in changed:
                result.created.append(LoggedActivity(reply.key, key))
            elif key in matched:
                result.already_logged.append(LoggedActivity(reply.key, key))
            elif reply.source_id and not self.store_ids:
                # Rows here carry no record id, so a lead with one came from another store
                # (Salesforce, HubSpot): that store's write-back logs the reply.
                result.skipped.append(LoggedActivity(reply.key, reply.source_id))
            else:
                result.no_record.append(reply)
        return result
