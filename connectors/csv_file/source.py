"""Leads streamed from a local CSV file, whatever its delimiter, encoding or line endings."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path

from connectors._tabular import NoHeaderError, effective_mapping, find_column, normalize_headers
from connectors.csv_file.format import CsvFormat, CsvFormatError, detect_format
from connectors.leads import (
    OPT_OUT_COLUMN_NAMES,
    FieldMapping,
    Lead,
    LeadBuilder,
    Reject,
    ResolvedMapping,
    opt_out_columns,
)

__all__ = ["CsvLeadSource", "read_header"]


def read_header(
    reader: Iterator[list[str]], *, where: str
) -> tuple[list[str], list[str], list[list[str]]]:
    """Skip blank records before the header; return (raw header, normalised header, skipped).

    Raises:
        NoHeaderError: the file has no records at all, or only blank ones.
    """
    skipped: list[list[str]] = []
    for record in reader:
        if any(cell.strip() for cell in record):
            return record, normalize_headers(record), skipped
        skipped.append(record)
    raise NoHeaderError(f"{where} is empty: no header row to read columns from")


class CsvLeadSource:
    """Streams a CSV file's rows as `Lead` / `Reject` values (implements `LeadSource`).

    The file is read record by record, never loaded whole. Quoted fields may contain the
    delimiter and newlines. Blank records before the header are skipped; blank records after it
    are skipped but counted.

    Row numbers: `Lead.row_number` / `Reject.row_number` is the 1-based **data record** number,
    header excluded (the first record after the header is row 1). It counts records, not
    physical lines, so a quoted field spanning three lines still makes one row; in a
    spreadsheet program the record shows on line ``row_number + 1`` when the header is first.

    Header rule: see `connectors._tabular` (blank header -> ``"Column C"``, repeats ->
    ``"Name (2)"``). The mapping is checked against the header before any lead is yielded.
    A header-only file yields nothing.

    Args:
        path: The CSV file.
        mapping: Columns feeding each lead field. None: ``Email`` is required, and ``First
            Name``, ``Last Name`` and ``Company`` are used when present.
        opt_out_column: A column marking people not to email (TRUE, yes, x, UNSUBSCRIBED...);
            it must exist. Columns named as in `recognised_opt_out_columns` count too.
        recognised_opt_out_columns: Column names read as opt-out signals when present
            (compared ignoring case, spaces, dashes, underscores); () recognises none.
        key_column: A column whose value becomes `Lead.source_id`; None for none.
        encoding: A Python codec name; None detects it (UTF-8 BOM, UTF-16 BOM, UTF-8, then
            cp1252, then latin-1, the fallbacks logged and kept in `format.note`).
        delimiter: One of ``, ; TAB |``; None detects it from a sample.

    Example:
        ```python
        source = CsvLeadSource("leads.csv", mapping=FieldMapping(email="Work Email"))
        leads = [x for x in source.read() if isinstance(x, Lead)]
        ```
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        mapping: FieldMapping | None = None,
        key_column: str | None = None,
        opt_out_column: str | None = None,
        recognised_opt_out_columns: Sequence[str] = OPT_OUT_COLUMN_NAMES,
        encoding: str | None = None,
        delimiter: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.mapping = mapping
        self.key_column = key_column
        self.opt_out_column = opt_out_column
        self.recognised_opt_out_columns = tuple(recognised_opt_out_columns)
        # The mapping as matched to the header by the last `read`: the run report shows it.
        self.resolved_mapping: ResolvedMapping | None = None
        self.encoding = encoding
        self.delimiter = delimiter
        self.format: CsvFormat | None = None

    def __repr__(self) -> str:
        return f"CsvLeadSource(path={str(self.path)!r})"

    def read(self, *, since: datetime | None = None) -> Iterator[Lead | Reject]:
        """Stream every record of the file as a `Lead` or `Reject`.

        Args:
            since: Ignored: a CSV file has no per-row modification time.

        Raises:
            FileNotFoundError: no such file.
            CsvFormatError: binary data, text not in the encoding, or broken quoting (the
                message names the row).
            NoHeaderError: the file is empty.
            MappingError: a mapped column (or the key column) is not in the header.
        """
        del since
        fmt = detect_format(self.path, encoding=self.encoding, delimiter=self.delimiter)
        self.format = fmt
        where = f"CSV file {self.path.name}"
        row_number = 0
        with self.path.open("r", encoding=fmt.encoding, newline="") as fh:
            # strict: an unclosed quote would otherwise swallow every later row into one
            # field without a word (rows lost; a rewrite would merge them for good).
            reader = csv.reader(fh, delimiter=fmt.delimiter, strict=True)
            try:
                _, header, _ = read_header(reader, where=where)
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
                key_index = (
                    find_column(header, self.key_column, source=where) if self.key_column else None
                )
                columns = [(name, header.index(name)) for name in mapping.source_columns]
                build = LeadBuilder(mapping).build
                for row in reader:
                    row_number += 1
                    if not row or not "".join(row).strip():
                        continue
                    width = len(row)
                    record = {name: row[i] if i < width else "" for name, i in columns}
                    source_id = None
                    if key_index is not None and key_index < width:
                        source_id = row[key_index].strip() or None
                    yield build(record, row_number=row_number, source_id=source_id)
            except UnicodeDecodeError as exc:
                raise CsvFormatError(
                    f"{where}: text near data row {row_number + 1} is not valid "
                    f"{fmt.encoding} (byte 0x{exc.object[exc.start]:02x}); "
                    "pass the file's encoding, e.g. encoding='cp1252'"
                ) from None
            except csv.Error as exc:
                raise CsvFormatError(f"{where}: data row {row_number + 1}: {exc}") from None
