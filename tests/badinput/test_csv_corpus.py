"""Bad CSV files: each one gives a clear error or per-row rejects, and no valid row is lost."""

from __future__ import annotations

import codecs
from collections.abc import Callable
from pathlib import Path

import pytest

from connectors.csv_file import CsvLeadSource
from connectors.leads import FieldMapping, Lead, Reject

from ._corpus import Case, emails

MB = 1024 * 1024


def _over_50_mb() -> bytes:
    # One row whose Notes cell alone is larger than a whole ColdSend upload file may be.
    return (
        b"Email,Notes\r\nfirst@x.com,ok\r\nsecond@x.com,ok\r\nhuge@x.com,"
        + (b"x" * (50 * MB + 10))
        + b"\r\nlast@x.com,ok\r\n"
    )


CSV_CASES: list[Case] = [
    # -- the email column ---------------------------------------------------------------------
    Case("no-email-column", b"Name,Company\r\nAnn,Acme\r\n", error=("MappingError", "'Email'")),
    Case(
        "blank-email-header",
        b",Company\r\na@x.com,Acme\r\n",
        error=("MappingError", "'Column A'"),
    ),
    Case(
        "mapping-names-missing-email-column",
        b"Email\r\na@x.com\r\n",
        mapping=FieldMapping(email="Work Email"),
        error=("MappingError", "'Work Email' (mapped to email)"),
    ),
    Case(
        "unknown-custom-mapping-column",
        b"Email,Company\r\na@x.com,Acme\r\n",
        mapping=FieldMapping(email="Email", custom_fields={"industry": "Sector"}),
        error=("MappingError", "'Sector' (mapped to industry)"),
    ),
    Case(
        "unknown-key-column",
        b"Email\r\na@x.com\r\n",
        options={"key_column": "CRM Id"},
        error=("MappingError", "'CRM Id'"),
    ),
    Case(
        "blank-email-cells",
        b"Email,Company\r\n,Acme\r\n   ,Beta\r\nok@x.com,Gamma\r\n\t,Delta\r\n",
        valid=emails("ok@x.com"),
        rejects=((1, "missing email"), (2, "missing email"), (4, "missing email")),
    ),
    Case(
        "email-column-matched-ignoring-case-and-spaces",
        b" EMAIL ,Company\r\nA@X.com,Acme\r\n",
        valid=emails("a@x.com"),
    ),
    Case(
        "repeated-email-header-uses-the-first",
        b"Email,email\r\na@x.com,b@x.com\r\n",
        valid=emails("a@x.com"),
    ),
    # -- addresses ----------------------------------------------------------------------------
    Case(
        "invalid-addresses",
        b"Email\r\nnot-an-email\r\na@b\r\na@@x.com\r\na b@x.com\r\n@x.com\r\na@-x.com\r\n"
        b"a.@x.com\r\na@x.123\r\nok@x.com\r\n1e5\r\n",
        valid=emails("ok@x.com"),
        rejects=(
            (1, "no '@'"),
            (2, "domain is malformed"),
            (3, "before '@' is malformed"),
            (4, "contains whitespace"),
            (5, "no '@'"),
            (6, "domain is malformed"),
            (7, "before '@' is malformed"),
            (8, "no valid top-level part"),
            (10, "no '@'"),
        ),
    ),
    Case(
        "internationalised-addresses",
        "Email\r\nuser@bücher.de\r\njosé@example.com\r\nuser\uff20example.com\r\n"
        "zero\u200bwidth@x.com\r\nok@例え.jp\r\nnbsp@x.com\u00a0\r\n".encode(),
        valid=emails("user@xn--bcher-kva.de", "ok@xn--r8jz45g.jp", "nbsp@x.com"),
        rejects=(
            (2, "non-ASCII characters before '@'"),
            (3, "no '@'"),
            (4, "non-ASCII characters before '@'"),
        ),
    ),
    Case(
        "too-long-addresses",
        b"Email\r\n" + b"a" * 65 + b"@x.com\r\n" + b"b" * 250 + b"@x.com\r\nok@x.com\r\n",
        valid=emails("ok@x.com"),
        rejects=((1, "longer than 64"), (2, "longer than 254")),
    ),
    Case(
        "display-name-forms",
        b"Email\r\n<a@x.com>\r\nAnn <ann@x.com>\r\nmailto:b@x.com\r\n",
        valid=emails("a@x.com"),
        rejects=((2, "contains whitespace"), (3, "before '@' is malformed")),
    ),
    Case(
        "duplicates-differing-in-case-and-spaces",
        b"Email,First Name\r\n Ann@X.com,Ann\r\nann@x.com ,Ann2\r\nANN@X.COM,Ann3\r\n"
        b"\tann@x.com\t,Ann4\r\nbob@x.com,Bob\r\n",
        valid=emails("ann@x.com", "bob@x.com"),
        rejects=(
            (2, "already read at row 1"),
            (3, "already read at row 1"),
            (4, "already read at row 1"),
        ),
    ),
    # -- encodings and line endings -----------------------------------------------------------
    Case(
        "utf8-bom",
        codecs.BOM_UTF8 + b"Email,Company\r\na@x.com,Acme\r\n",
        valid=emails("a@x.com"),
    ),
    Case(
        "utf16-with-bom",
        "Email,Company\r\na@x.com,Café\r\n".encode("utf-16"),
        valid=emails("a@x.com"),
    ),
    Case("bom-only", codecs.BOM_UTF8, error=("NoHeaderError", "empty")),
    Case(
        "cp1252-detected",
        "Email,Company\r\na@x.com,Café\r\n".encode("cp1252"),
        valid=emails("a@x.com"),
    ),
    Case(
        "wrong-explicit-encoding",
        "Email,Company\r\na@x.com,Café\r\n".encode("cp1252"),
        options={"encoding": "utf-8"},
        error=("CsvFormatError", "data row 1"),
    ),
    Case(
        "crlf",
        b"Email,First Name\r\na@x.com,Ann\r\nb@x.com,Bob\r\n",
        valid=emails("a@x.com", "b@x.com"),
    ),
    Case(
        "cr-only-old-mac",
        b"Email,First Name\ra@x.com,Ann\rb@x.com,Bob\r",
        valid=emails("a@x.com", "b@x.com"),
    ),
    Case(
        "mixed-line-endings",
        b"Email\r\na@x.com\nb@x.com\rc@x.com\r\n",
        valid=emails("a@x.com", "b@x.com", "c@x.com"),
    ),
    Case(
        "quoted-newlines-keep-row-numbers",
        b'Email,Company\r\na@x.com,"Acme\r\nHQ"\r\nb@x.com,"Line1\nLine2, Inc"\r\n'
        b"c@x.com,x\r\nbad\r\n",
        valid=emails("a@x.com", "b@x.com", "c@x.com"),
        rejects=((4, "no '@'"),),
    ),
    Case(
        "unclosed-quote",
        b'Email,Company\r\na@x.com,"Acme\r\nb@x.com,Beta\r\nc@x.com,Gamma\r\n',
        error=("CsvFormatError", "data row 1"),
    ),
    Case(
        "text-after-closing-quote",
        b'Email,Company\r\na@x.com,x\r\nb@x.com,"Acme" Inc\r\n',
        error=("CsvFormatError", "data row 2"),
    ),
    # -- delimiters ---------------------------------------------------------------------------
    Case(
        "semicolon-european-excel",
        b"Email;Company\r\na@x.com;Acme, Inc\r\nb@x.com;Beta\r\n",
        valid=emails("a@x.com", "b@x.com"),
    ),
    Case("tab-delimited", b"Email\tCompany\na@x.com\tAcme\n", valid=emails("a@x.com")),
    Case("pipe-delimited", b"Email|Company\na@x.com|Acme\n", valid=emails("a@x.com")),
    Case(
        "wrong-explicit-delimiter",
        b"Email;Company\r\na@x.com;Acme\r\n",
        options={"delimiter": ","},
        error=("MappingError", "'Email;Company'"),
    ),
    Case(
        "unsupported-delimiter",
        b"Email:Company\r\na@x.com:Acme\r\n",
        options={"delimiter": ":"},
        error=("CsvFormatError", "delimiter must be one of"),
    ),
    Case(
        "short-and-long-rows",
        b"Email,First Name,Company\r\na@x.com\r\nb@x.com,Bob,Beta,extra,more\r\n",
        valid=emails("a@x.com", "b@x.com"),
    ),
    # -- not CSV at all -----------------------------------------------------------------------
    Case(
        "xlsx-renamed-to-csv",
        b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00" + bytes(range(256)) * 4,
        error=("CsvFormatError", "binary file"),
    ),
    Case(
        "png-garbage",
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)),
        error=("CsvFormatError", "binary file"),
    ),
    Case(
        "nul-byte-past-the-sniffed-sample",
        b"Email\r\n"
        + b"".join(b"p%d@x.com\r\n" % i for i in range(6000))
        + b"a\x00@x.com\r\nz@x.com\r\n",
        valid=emails(*(f"p{i}@x.com" for i in range(6000)), "z@x.com"),
        rejects=((6001, "before '@' is malformed"),),
    ),
    # -- empty ----------------------------------------------------------------------------------
    Case("empty-file", b"", error=("NoHeaderError", "empty")),
    Case("whitespace-only", b"\r\n  \r\n\t\r\n", error=("NoHeaderError", "empty")),
    Case("header-only", b"Email,First Name,Company\r\n"),
    Case(
        "blank-lines-around-header-and-rows",
        b"\r\n\r\nEmail\r\n\r\na@x.com\r\n,\r\n\r\nb@x.com\r\n",
        valid=emails("a@x.com", "b@x.com"),
    ),
    # -- size -----------------------------------------------------------------------------------
    Case(
        "huge-field",
        b"Email,Company\r\na@x.com,ok\r\nb@x.com," + b"y" * 200_000 + b"\r\nc@x.com,ok\r\n",
        error=("CsvFormatError", "data row 2"),
    ),
    Case("row-over-50-mb", _over_50_mb, error=("CsvFormatError", "data row 3")),
    # -- formula-looking values are data, not errors --------------------------------------------
    Case(
        "formula-looking-values",
        b'Email,First Name,Company\r\na@x.com,=1+1,"=HYPERLINK(""http://evil.example"",""x"")"\r\n'
        b"+b@x.com,@SUM(A1),-2\r\n=c@x.com,+cmd,@x\r\n",
        valid=emails("a@x.com", "+b@x.com", "=c@x.com"),
    ),
]


def _write(tmp_path: Path, case: Case) -> Path:
    data = case.data() if isinstance(case.data, Callable) else case.data  # type: ignore[arg-type]
    path = tmp_path / f"{case.id}.csv"
    path.write_bytes(data)
    return path


def check_outcome(items: list[Lead | Reject], case: Case) -> None:
    """The exact valid emails, and the exact rejected rows with a reason a person can act on."""
    leads = [i for i in items if isinstance(i, Lead)]
    rejects = [i for i in items if isinstance(i, Reject)]
    assert {lead.email for lead in leads} == case.valid
    assert len(leads) == len(case.valid), "a valid email was yielded twice"
    got = [(r.row_number, r.reason) for r in rejects]
    assert [row for row, _ in got] == [row for row, _ in case.rejects], got
    for (row, reason), (_, fragment) in zip(got, case.rejects, strict=True):
        assert fragment in reason, f"row {row}: {reason!r} lacks {fragment!r}"


@pytest.mark.parametrize("case", CSV_CASES, ids=[c.id for c in CSV_CASES])
def test_csv_bad_input(case: Case, tmp_path: Path) -> None:
    path = _write(tmp_path, case)
    source = CsvLeadSource(path, mapping=case.mapping, **case.options)
    if case.error is None:
        check_outcome(list(source.read()), case)
        return
    kind, fragment = case.error
    with pytest.raises(Exception) as info:
        list(source.read())
    assert type(info.value).__name__ == kind
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message and len(message) < 500, "errors are one readable line"


def test_the_corpus_is_large_and_varied() -> None:
    from .test_salesforce_corpus import RECORD_CASES, SOQL_INJECTIONS
    from .test_sheets_corpus import SHEET_CASES

    total = len(CSV_CASES) + len(SHEET_CASES) + len(RECORD_CASES) + len(SOQL_INJECTIONS)
    assert total >= 40
    ids = [c.id for c in CSV_CASES + SHEET_CASES + RECORD_CASES]
    assert len(ids) == len(set(ids))


def test_write_back_refuses_a_broken_file_instead_of_merging_its_rows(tmp_path: Path) -> None:
    from connectors.csv_file import CsvFormatError, CsvStatusSink
    from connectors.leads import LeadStatus, StatusUpdate

    path = tmp_path / "broken.csv"
    data = b'Email,Company\r\na@x.com,"Acme\r\nb@x.com,Beta\r\n'
    path.write_bytes(data)
    sink = CsvStatusSink(path)
    with pytest.raises(CsvFormatError, match="data row 1"):
        sink.write_statuses([StatusUpdate("b@x.com", LeadStatus.SENT)])
    assert path.read_bytes() == data
