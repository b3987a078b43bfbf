"""Leads read from a Google Sheets worksheet through gspread, in as few requests as possible."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from itertools import chain, islice
from operator import itemgetter

import gspread

from connectors._tabular import NoHeaderError, effective_mapping, find_column, normalize_headers
from connectors.leads import (
    OPT_OUT_COLUMN_NAMES,
    FieldMapping,
    Lead,
    LeadBuilder,
    Reject,
    ResolvedMapping,
    opt_out_columns,
)
from connectors.retry import RetryPolicy
from connectors.shared_budget import SharedBudget
from connectors.sheets.calls import RequestPacer, SheetsCaller
from connectors.sheets.pages import RowPages
from connectors.sheets.worksheet import check_location, fetch_worksheet

__all__ = ["SheetsLeadSource"]


class SheetsLeadSource:
    """Reads a worksheet's rows as `Lead` / `Reject` values (implements `LeadSource`).

    Requests: one metadata call, then one values call per `page_rows` rows (so one in all for
    sheets up to that size). Values are read as shown (``FORMATTED_VALUE``), so ``00123``,
    ``1e5`` and non-Latin text arrive exactly as a person sees them.

    Header rule: see `connectors._tabular` (blank header -> ``"Column C"``, repeats ->
    ``"Name (2)"``). The mapping is checked against the header before any lead is yielded.

    Row numbers: `Lead.row_number` and `Reject.row_number` are the **sheet row number** a
    person sees at the left of the sheet (the header is row `header_row`, the first data row
    is ``header_row + 1``). Blank rows are skipped but keep their numbers counted.

    Args:
        client: A `gspread.Client`, e.g. from `SheetsConnection.client()`.
        spreadsheet_id: The id in the sheet's URL (``/spreadsheets/d/<id>/``).
        worksheet: Worksheet title, or 0-based tab index.
        mapping: Columns feeding each lead field. None: ``Email`` is required, and ``First
            Name``, ``Last Name`` and ``Company`` are used when present.
        opt_out_column: A column marking people not to email (TRUE, yes, x, UNSUBSCRIBED...);
            it must exist. Columns named as in `recognised_opt_out_columns` count too.
        recognised_opt_out_columns: Column names read as opt-out signals when present
            (compared ignoring case, spaces, dashes, underscores); () recognises none.
        key_column: A column whose value becomes `Lead.source_id` (e.g. a CRM id); None for none.
        header_row: 1-based sheet row holding the header; rows above it are ignored.
        page_rows: Rows per values request for very large sheets.
        retry: Retry policy for 429, 5xx and transport failures.
        pacer: Client-side pacing shared across calls (default 60 requests a minute).
        budget: A request budget shared with other processes using the same Google user.
        sleep: Sleep used between retries (injectable for tests).

    Example:
        ```python
        source = SheetsLeadSource(conn.client(), spreadsheet_id=sid, worksheet="Leads")
        for item in source.read():
            ...
        ```
    """

    def __init__(
        self,
        client: gspread.Client,
        *,
        spreadsheet_id: str,
        worksheet: str | int = 0,
        mapping: FieldMapping | None = None,
        key_column: str | None = None,
        opt_out_column: str | None = None,
        recognised_opt_out_columns: Sequence[str] = OPT_OUT_COLUMN_NAMES,
        header_row: int = 1,
        page_rows: int = 10_000,
        retry: RetryPolicy | None = None,
        pacer: RequestPacer | None = None,
        budget: SharedBudget | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        check_location(spreadsheet_id, header_row)
        if page_rows < 1:
            raise ValueError(f"page_rows must be >= 1, got {page_rows}")
        self.spreadsheet_id = spreadsheet_id
        self.worksheet = worksheet
        self.mapping = mapping
        self.key_column = key_column
        self.opt_out_column = opt_out_column
        self.recognised_opt_out_columns = tuple(recognised_opt_out_columns)
        # The mapping as matched to the header by the last `read`: the run report shows it.
        self.resolved_mapping: ResolvedMapping | None = None
        self.header_row = header_row
        self.page_rows = page_rows
        self.caller = SheetsCaller(
            client, retry=retry, pacer=pacer, budget=budget, sleep=sleep, rng=rng
        )

    def __repr__(self) -> str:
        return (
            f"SheetsLeadSource(spreadsheet_id={self.spreadsheet_id!r}, "
            f"worksheet={self.worksheet!r}, header_row={self.header_row})"
        )

    @property
    def requests(self) -> int:
        """API requests made so far by this source, retries included."""
        return self.caller.requests

    def read(self, *, since: datetime | None = None) -> Iterator[Lead | Reject]:
        """Stream every row of the worksheet as a `Lead` or `Reject`.

        Args:
            since: Ignored: a sheet has no per-row modification time, so every read is full.
                Write-back and upload reconcile against what already exists instead.

        Raises:
            WorksheetNotFoundError: no such worksheet.
            NoHeaderError: the sheet is empty or its header row is blank.
            MappingError: a mapped column (or the key column) is not in the header.
            SheetsAPIError: the API refused a call (after retries for 429 / 5xx).
        """
        del since  # sheets carry no modification time; see the docstring
        info = fetch_worksheet(self.caller, self.spreadsheet_id, self.worksheet)
        where = f"worksheet {info.title!r} of spreadsheet {self.spreadsheet_id}"
        first = self.header_row
        reader = RowPages(self.caller, self.spreadsheet_id, info.title, info=info)
        pages = reader.read(first, first + self.page_rows, self.page_rows)
        _, page = next(pages, (first, []))
        if not page or not any(str(c).strip() for c in page[0]):
            state = "is empty" if not page else f"has a blank header row (row {first})"
            raise NoHeaderError(f"{where} {state}: no header row to read columns from")
        header = normalize_headers(page[0])
        mapping = effective_mapping(self.mapping, header).resolve(
            header, source=where, other_columns=[self.key_column] if self.key_column else []
        )
        mapping = mapping.with_opt_out(
            opt_out_columns(
                header,
                configured=self.opt_out_column,
                recognised=self.recognised_opt_out_columns,
                source=where,
            )
        )
        self.resolved_mapping = mapping
        key_index = find_column(header, self.key_column, source=where) if self.key_column else None
        columns = [(name, header.index(name)) for name in mapping.source_columns]
        builder = LeadBuilder(mapping)
        build = builder.build
        names = [name for name, _ in columns]
        # A row holding every mapped column (nearly all) is read with one C-level getter.
        full_width = max(i for _, i in columns) + 1
        getter = itemgetter(*[i for _, i in columns]) if len(columns) > 1 else None
        skip = 1  # the header, at the top of the first page
        for start, rows in chain([(first, page)], pages):
            for row_number, row in enumerate(islice(rows, skip, None), start + skip):
                # FORMATTED_VALUE rows are lists of strings with trailing blanks trimmed.
                if not row or not "".join(row).strip():
                    continue
                width = len(row)
                if getter is not None and width >= full_width:
                    record = dict(zip(names, getter(row), strict=True))
                else:
                    record = {name: row[i] if i < width else "" for name, i in columns}
                source_id = None
                if key_index is not None and key_index < width:
                    source_id = row[key_index].strip() or None
                yield build(record, row_number=row_number, source_id=source_id)
            skip = 0
