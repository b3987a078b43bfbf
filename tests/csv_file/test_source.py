"""CsvLeadSource: delimiters, encodings, line endings, quoting and bad files."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from connectors.csv_file import CsvFormatError, CsvLeadSource, NoHeaderError
from connectors.leads import FieldMapping, Lead, MappingError, Reject

Writer = Callable[[bytes], Path]
MAPPING = FieldMapping(email="Email", first_name="First Name", company="Company")


def _emails(path: Path, **kwargs: object) -> list[tuple[str, int | None]]:
    source = CsvLeadSource(path, mapping=MAPPING, **kwargs)  # type: ignore[arg-type]
    return [(i.email, i.row_number) for i in source.read()]


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_detects_each_delimiter(write_bytes: Writer, delimiter: str) -> None:
    lines = [
        ["Email", "First Name", "Company"],
        ["a@example.com", "Ann", "Acme, Inc; Ltd|x"],
        ["b@example.com", "Bob", ""],
    ]
    text = "\n".join(
        delimiter.join(f'"{c}"' if any(d in c for d in ",;|\t") else c for c in line)
        for line in lines
    )
    path = write_bytes(text.encode())
    items = list(CsvLeadSource(path, mapping=MAPPING).read())
    assert items[0] == Lead(
        email="a@example.com", first_name="Ann", company="Acme, Inc; Ltd|x", row_number=1
    )
    assert len(items) == 2


def test_bom_crlf_and_quoted_newlines(write_bytes: Writer) -> None:
    data = (
        "\ufeffEmail,First Name,Company\r\n"
        'a@example.com,"Ann\r\nMarie","Multi\r\nline\r\nco"\r\n'
        "\r\n"
        "b@example.com,Zoë,日本\r\n"
    ).encode()
    path = write_bytes(data)
    source = CsvLeadSource(path, mapping=MAPPING)
    items = list(source.read())
    assert items == [
        Lead(
            email="a@example.com",
            first_name="Ann\r\nMarie",
            company="Multi\r\nline\r\nco",
            row_number=1,
        ),
        # Row numbers count records, not lines: the blank record is row 2.
        Lead(email="b@example.com", first_name="Zoë", company="日本", row_number=3),
    ]
    assert source.format is not None and source.format.encoding == "utf-8-sig"


def test_cp1252_file_is_read_with_a_note(
    write_bytes: Writer, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_bytes(
        "Email;First Name;Company\na@example.com;José;Café Müller €\n".encode("cp1252")
    )
    source = CsvLeadSource(path, mapping=MAPPING)
    (lead,) = source.read()
    assert isinstance(lead, Lead)
    assert (lead.first_name, lead.company) == ("José", "Café Müller €")
    assert source.format is not None and source.format.encoding == "cp1252"
    assert "not valid UTF-8" in source.format.note
    assert "Windows-1252" in caplog.text


def test_wrong_explicit_encoding_names_the_row(write_bytes: Writer) -> None:
    path = write_bytes("Email,First Name\na@example.com,José\n".encode("cp1252"))
    with pytest.raises(CsvFormatError, match=r"row 1 is not valid utf-8 \(byte 0xe9\)"):
        list(CsvLeadSource(path, encoding="utf-8").read())


def test_binary_garbage_is_refused(write_bytes: Writer) -> None:
    path = write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + os.urandom(4000))
    with pytest.raises(CsvFormatError, match="binary"):
        list(CsvLeadSource(path).read())


def test_empty_and_header_only_files(write_bytes: Writer) -> None:
    with pytest.raises(NoHeaderError, match="empty"):
        list(CsvLeadSource(write_bytes(b"")).read())
    with pytest.raises(NoHeaderError, match="empty"):
        list(CsvLeadSource(write_bytes(b"\r\n\r\n  \r\n")).read())
    assert (
        list(
            CsvLeadSource(
                write_bytes(b"Email,First Name\r\n"),
                mapping=MAPPING.model_copy(update={"company": None}),
            ).read()
        )
        == []
    )


def test_missing_column_names_it_before_reading_rows(write_bytes: Writer) -> None:
    path = write_bytes(b"Mail,Name\na@example.com,A\n")
    with pytest.raises(MappingError, match=r"'Email'.*Available: 'Mail', 'Name'"):
        next(iter(CsvLeadSource(path).read()))


def test_headers_rows_and_rejects(write_bytes: Writer) -> None:
    data = b"Email,,Email,Id\na@example.com,x,second,K1\nbad-email,y,,K2\nA@example.com,z,,K3\n"
    source = CsvLeadSource(
        write_bytes(data),
        mapping=FieldMapping(email="Email", custom_fields={"b": "Column B", "e2": "Email (2)"}),
        key_column="Id",
    )
    items = list(source.read())
    assert items[0] == Lead(
        email="a@example.com",
        custom_fields={"b": "x", "e2": "second"},
        source_id="K1",
        row_number=1,
    )
    assert isinstance(items[1], Reject) and items[1].row_number == 2 and items[1].source_id == "K2"
    assert isinstance(items[2], Reject) and "duplicate" in items[2].reason


def test_streams_without_loading_the_file(write_bytes: Writer) -> None:
    body = b"".join(b"user%d@example.com,U\n" % i for i in range(50_000))
    path = write_bytes(b"Email,First Name\n" + body)
    reader = CsvLeadSource(path, mapping=FieldMapping(email="Email")).read()
    first = next(reader)
    assert isinstance(first, Lead) and first.row_number == 1
    assert sum(1 for _ in reader) == 49_999
