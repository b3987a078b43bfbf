"""Parsing the streamed lead export: chunk boundaries, quoting, errors named by row."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.coldsend import (
    APIConnectionError,
    ColdSendClient,
    ExportFormatError,
    ExportRow,
    LeadStatus,
    NotFoundError,
)
from connectors.coldsend.export import parse_export

from ._helpers import Recorder, json_response

MakeClient = Callable[..., ColdSendClient]

EXPORT = (
    "email,first_name,last_name,company,status,custom_fields,created_at\r\n"
    'a@example.com,Ann,Lee,"Acme, Inc.",REPLIED,"{""industry"": ""Retail""}",2026-03-01T10:00:00Z\r\n'
    'b@example.com,Bo,"Multi\nline",Zoë\u2028Co,SENT,{},2026-03-02T11:30:00Z\r\n'
    "c@example.com,,,,unsubscribed,,\r\n"
).encode()

EXPECTED = [
    ExportRow(
        "a@example.com",
        "Ann",
        "Lee",
        "Acme, Inc.",
        LeadStatus.REPLIED,
        {"industry": "Retail"},
        datetime(2026, 3, 1, 10, tzinfo=UTC),
    ),
    ExportRow(
        "b@example.com",
        "Bo",
        "Multi\nline",
        "Zoë\u2028Co",
        LeadStatus.SENT,
        {},
        datetime(2026, 3, 2, 11, 30, tzinfo=UTC),
    ),
    ExportRow("c@example.com", "", "", "", LeadStatus.UNSUBSCRIBED, {}, None),
]


def chunked(data: bytes, size: int) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 10_000])
def test_rows_parse_the_same_whatever_the_chunk_boundaries(size: int) -> None:
    # Size 1 splits every multi-byte character and every \r\n.
    assert list(parse_export(chunked(EXPORT, size))) == EXPECTED


def test_bom_extra_and_reordered_columns_are_tolerated() -> None:
    data = "\ufeffstatus,extra,email\nOPENED,x,a@example.com\n".encode()
    (row,) = parse_export([data])
    assert (row.email, row.status, row.first_name, row.custom_fields) == (
        "a@example.com",
        LeadStatus.OPENED,
        "",
        {},
    )


def test_empty_export_has_no_rows() -> None:
    assert list(parse_export([b""])) == []
    assert list(parse_export([b"email,status\r\n"])) == []


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"mail,status\nx@example.com,SENT\n", "no email column"),
        (
            b"email,status\na@example.com,SENT\nb@example.com,LOST\n",
            "row 2: unknown lead status 'LOST'",
        ),
        (
            b"email,status,custom_fields\na@example.com,SENT,[1]\n",
            "row 1: custom_fields is not a JSON object",
        ),
        (b"email,status,custom_fields\na@example.com,SENT,{bad\n", "row 1"),
        (b"email,status,created_at\na@example.com,SENT,yesterday\n", "row 1"),
        (b"email,first_name,status\na@example.com\n", "row 1: has 1 columns, the header 3"),
        (b"email,status\n\xff\xfe\n", "not valid UTF-8"),
    ],
)
def test_malformed_exports_fail_naming_the_row(data: bytes, needle: str) -> None:
    with pytest.raises(ExportFormatError) as caught:
        list(parse_export([data]))
    assert needle in str(caught.value)


class _Body(httpx.SyncByteStream):
    """A response body that can break after some bytes and records whether it was closed."""

    def __init__(self, data: bytes, *, break_after: int | None = None) -> None:
        self.data = data
        self.break_after = break_after
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        for i in range(0, len(self.data), 40):
            if self.break_after is not None and i >= self.break_after:
                raise httpx.ReadError("connection reset")
            yield self.data[i : i + 40]

    def close(self) -> None:
        self.closed = True


def test_export_streams_rows_and_releases_the_connection(
    make_client: MakeClient, recorder: Recorder
) -> None:
    body = _Body(EXPORT)
    client = make_client(
        lambda r: httpx.Response(200, stream=body, headers={"content-type": "text/csv"})
    )
    with client.export_leads("c-1") as rows:
        assert len(recorder.requests) == 1  # requested on entering the block
        first = next(iter(rows))
        assert first.email == "a@example.com"
    assert body.closed  # leaving early still closes the response
    assert recorder.requests[0].url.path.endswith("/campaigns/c-1/leads/export")


def test_export_can_simply_be_iterated(make_client: MakeClient) -> None:
    client = make_client(lambda r: httpx.Response(200, content=EXPORT))
    stream = client.export_leads("c-1")
    assert list(stream) == EXPECTED
    assert stream.rows_read == 3
    with pytest.raises(RuntimeError, match="once"):
        list(stream)


def test_export_of_a_missing_campaign_raises_on_entry(make_client: MakeClient) -> None:
    client = make_client(lambda r: json_response(404, {"detail": "Campaign not found"}))
    with pytest.raises(NotFoundError, match="Campaign not found"), client.export_leads("c-1"):
        pass


def test_a_broken_export_stream_is_a_connection_error_saying_how_far_it_got(
    make_client: MakeClient,
) -> None:
    body = _Body(EXPORT, break_after=200)
    client = make_client(lambda r: httpx.Response(200, stream=body))
    seen: list[str] = []
    with pytest.raises(APIConnectionError, match="broke after 1 rows"):
        for row in client.export_leads("c-1"):
            seen.append(row.email)
    assert seen == ["a@example.com"]
    assert body.closed


def test_export_of_many_rows_parses_them_all(make_client: MakeClient) -> None:
    lines = ["email,first_name,last_name,company,status,custom_fields,created_at"]
    custom = json.dumps({"k": "v"}).replace('"', '""')
    lines += [
        f'u{i}@example.com,F,L,C,PENDING,"{custom}",2026-01-01T00:00:00Z' for i in range(20_000)
    ]
    client = make_client(
        lambda r: httpx.Response(200, content=("\r\n".join(lines) + "\r\n").encode())
    )
    rows = list(client.export_leads("c-1"))
    assert len(rows) == 20_000
    assert rows[-1].email == "u19999@example.com" and rows[-1].custom_fields == {"k": "v"}


_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(_TEXT, _TEXT, _TEXT, _TEXT), max_size=20),
    st.integers(min_value=1, max_value=97),
)
def test_any_text_written_by_a_csv_writer_parses_back(
    rows: list[tuple[str, str, str, str]], chunk: int
) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf)  # the emulator's and most servers' default dialect
    writer.writerow(
        ["email", "first_name", "last_name", "company", "status", "custom_fields", "created_at"]
    )
    for i, (first, last, company, note) in enumerate(rows):
        writer.writerow(
            [f"p{i}@example.com", first, last, company, "SENT", json.dumps({"note": note}), ""]
        )
    parsed = list(parse_export(chunked(buf.getvalue().encode(), chunk)))
    assert [(r.first_name, r.last_name, r.company, r.custom_fields["note"]) for r in parsed] == rows
