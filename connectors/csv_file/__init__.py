"""Local CSV files as a lead source and a status sink (the embedded default).

`CsvLeadSource` streams leads whatever the delimiter, encoding or line endings;
`CsvStatusSink` updates status columns in place, atomically; `write_rejects_csv` writes the
rejected rows for people to open, safe from CSV injection.
"""

from connectors._tabular import NoHeaderError, StatusColumns
from connectors.csv_file.format import CsvFormat, CsvFormatError, detect_encoding, sniff_delimiter
from connectors.csv_file.sink import CsvStatusSink, neutralize_cell, write_rejects_csv
from connectors.csv_file.source import CsvLeadSource

__all__ = [
    "CsvFormat",
    "CsvFormatError",
    "CsvLeadSource",
    "CsvStatusSink",
    "NoHeaderError",
    "StatusColumns",
    "detect_encoding",
    "neutralize_cell",
    "sniff_delimiter",
    "write_rejects_csv",
]
