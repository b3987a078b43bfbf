"""A lead's newest reply written into a worksheet's "Last reply" columns (RAW, so text stays text)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from connectors._tabular import (
    NoHeaderError,
    ReplyColumns,
    email_column,
    find_column,
    latest_replies,
    normalize_headers,
    plan_reply,
)
from connectors.activities import Activity, ActivityResult, LoggedActivity
from connectors.leads import MappingError, normalize_email
from connectors.sheets.pages import RowPages
from connectors.sheets.sink import _UNPLACED, SheetsStatusSink, _Plan

__all__ = ["SheetsReplySink"]


class SheetsReplySink(SheetsStatusSink):
    """Shows each row's newest reply in its "Last reply" / "Last reply at" columns (implements
    `ActivitySink`).

    It shares the status sink's worksheet plumbing (paged reads of `page_rows` rows, one
    ``values:batchUpdate`` of all changes, column growth) and its neutralisation: values are
    written with ``valueInputOption=RAW``, so a reply reading ``=IMPORTXML(...)`` is stored as
    text and never runs. A row whose "Last reply at" already shows the reply, or a newer one,
    is left alone; nothing to change means no write request.

    Args:
        reply_columns: The two column names (missing ones are added to the header).
        store_ids: The store has a key column; see `CsvReplySink`.
        **kwargs: As for `SheetsStatusSink` (client, spreadsheet_id, worksheet, match_by, ...).
    """

    def __init__(
        self,
        *args: Any,
        reply_columns: ReplyColumns | None = None,
        store_ids: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.reply_columns = reply_columns or ReplyColumns()
        self.store_ids = store_ids or self.match_value == "source_id"

    def __repr__(self) -> str:
        return (
            f"SheetsReplySink(spreadsheet_id={self.spreadsheet_id!r}, "
            f"worksheet={self.worksheet!r}, match_by={self.match_by!r})"
        )

    def write_activities(self, activities: Sequence[Activity]) -> ActivityResult:
        """Write each row's newest reply.

        Raises:
            NoHeaderError: the sheet is empty or its header row is blank.
            MappingError: the `match_by` column is not in the header.
            SheetsAPIError: the API refused a call (after retries for 429 / 5xx).
        """
        latest, result = latest_replies(activities, match_value=self.match_value)
        if not latest:
            return result
        start = self.caller.requests
        try:
            self._write_replies(latest, result)
        finally:
            result.requests = self.caller.requests - start
        return result

    def _write_replies(self, latest: dict[str, Activity], result: ActivityResult) -> None:
        info = self._resolve() if self._title is None else None
        assert self._title is not None
        title = self._title
        where = f"worksheet {title!r} of spreadsheet {self.spreadsheet_id}"
        h = self.header_row - 1
        names = self.reply_columns.names()
        by_email = self.match_value == "email"
        matched: set[str] = set()
        changed: set[str] = set()
        changes: dict[int, _Plan] = {}
        placed: list[int] | None = None
        match_col = 0
        width = 0
        reader = RowPages(self.caller, self.spreadsheet_id, title, info=info)
        for first, rows in reader.read(1, self.header_row + self.page_rows, self.page_rows):
            if rows:
                width = max(width, max(map(len, rows)))
            base = first - 1
            if placed is None:
                if len(rows) <= h or not any(str(c).strip() for c in rows[h]):
                    raise NoHeaderError(f"{where} has no header in row {self.header_row}")
                header = normalize_headers(rows[h])
                try:
                    match_col = (
                        find_column(header, self.match_by, source=where)
                        if self.match_by
                        else email_column(header, self.mapping, source=where)
                    )
                except MappingError as exc:
                    raise MappingError(f"cannot match rows: {exc}") from None
                placed = []
                for slot, name in enumerate(names):
                    try:
                        placed.append(find_column(header, name, source=where))
                    except MappingError:
                        placed.append(_UNPLACED + slot)
            text_col, at_col = placed
            for i in range(max(0, h + 1 - base), len(rows)):
                row = rows[i]
                if match_col >= len(row):
                    continue
                cell = row[match_col]
                key = normalize_email(cell)[0] if by_email else (str(cell).strip() or None)
                reply = latest.get(key) if key is not None else None
                if key is None or reply is None:
                    continue
                matched.add(key)
                row_changes = dict(plan_reply(row, reply, text_col=text_col, at_col=at_col))
                if row_changes:
                    changed.add(key)
                    changes[base + i] = (row_changes[text_col], row_changes[at_col])
        if placed is None:
            raise NoHeaderError(f"{where} has no header in row {self.header_row}")
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
        if not changes:
            return
        self._place_and_send(
            title, changes, names=names, placed=placed, width=width, header=h, reader=reader
        )
