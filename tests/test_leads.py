"""The shared Lead record: email rules, mapping resolution, duplicates and the status order."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.leads import (
    FINAL_STATUSES,
    FieldMapping,
    Lead,
    LeadBuilder,
    LeadStatus,
    MappingError,
    Reject,
    StatusUpdate,
    WriteResult,
    advance,
    normalize_email,
    parse_status,
    status_rank,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Ann@Example.com", "ann@example.com"),
        ("  bob@example.co.uk \t", "bob@example.co.uk"),
        ("<carol@example.org>", "carol@example.org"),
        ("first.last+tag@sub.example.io", "first.last+tag@sub.example.io"),
        ("o'brien@example.ie", "o'brien@example.ie"),
        ("user@bücher.de", "user@xn--bcher-kva.de"),
        ("user@xn--bcher-kva.de", "user@xn--bcher-kva.de"),
    ],
)
def test_valid_emails_are_normalised(raw: str, expected: str) -> None:
    assert normalize_email(raw) == (expected, None)


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (None, "missing email"),
        ("", "missing email"),
        ("   ", "missing email"),
        ("plainaddress", "no '@'"),
        ("@example.com", "no '@'"),
        ("ann@", "no '@'"),
        ("ann smith@example.com", "whitespace"),
        ("ann..smith@example.com", "malformed"),
        (".ann@example.com", "malformed"),
        ("ann@example", "domain is malformed"),
        ("ann@-example.com", "domain is malformed"),
        ("ann@example..com", "domain is malformed"),
        ("ann@example.c0m", "top-level"),
        ("jürgen@example.de", "non-ASCII"),
        ("a" * 65 + "@example.com", "longer than 64"),
        ("a@" + "b" * 250 + ".com", "longer than 254"),
        ('=HYPERLINK("x")@example.com', "malformed"),
    ],
)
def test_invalid_emails_say_why(raw: str | None, fragment: str) -> None:
    email, why = normalize_email(raw)
    assert email is None
    assert why is not None and fragment in why


def test_mapping_resolves_exactly_then_ignoring_case_and_spaces() -> None:
    mapping = FieldMapping(
        email="Email",
        first_name="first name",
        company="Company",
        custom_fields={"sector": "Sector"},
    )
    resolved = mapping.resolve(["Email", " First Name ", "Company", "SECTOR"], source="sheet")
    assert resolved.columns == {
        "email": "Email",
        "first_name": " First Name ",
        "company": "Company",
        "custom:sector": "SECTOR",
    }


def test_mapping_names_every_missing_column_before_reading() -> None:
    mapping = FieldMapping(email="Work Email", last_name="Surname", custom_fields={"x": "Nope"})
    with pytest.raises(MappingError) as info:
        mapping.resolve(["Email", "Last Name"], source="worksheet 'Leads'")
    message = str(info.value)
    assert "worksheet 'Leads'" in message
    assert "'Work Email' (mapped to email)" in message
    assert "'Surname' (mapped to last_name)" in message
    assert "'Nope' (mapped to x)" in message
    assert "'Email'" in message  # the available columns are listed


@pytest.mark.parametrize("bad", ["email", "company", " "])
def test_custom_fields_cannot_shadow_standard_fields(bad: str) -> None:
    with pytest.raises(ValueError, match="custom field"):
        FieldMapping(custom_fields={bad: "Column"})


def test_builder_yields_leads_and_rejects_with_row_numbers() -> None:
    mapping = FieldMapping(
        email="Email", first_name="First", company="Co", custom_fields={"size": "Size"}
    )
    builder = LeadBuilder(mapping.resolve(["Email", "First", "Co", "Size"], source="csv"))
    rows = [
        {"Email": " Ann@Example.com ", "First": "Ann", "Co": "Acme", "Size": 12.0},
        {"Email": "not-an-email", "First": "Bob"},
        {"Email": "ANN@example.com", "First": "Ann again"},
        {"Email": None},
        {"Email": "dave@example.com", "First": None, "Co": "Ünïcode Ltd", "Size": True},
    ]
    out = [builder.build(row, row_number=i) for i, row in enumerate(rows, start=1)]
    assert out[0] == Lead(
        email="ann@example.com",
        first_name="Ann",
        company="Acme",
        custom_fields={"size": "12"},
        row_number=1,
    )
    assert isinstance(out[1], Reject) and out[1].row_number == 2
    assert out[1].email == "not-an-email" and "no '@'" in out[1].reason
    assert isinstance(out[2], Reject) and "already read at row 1" in out[2].reason
    assert isinstance(out[3], Reject) and out[3].reason == "missing email"
    assert isinstance(out[4], Lead)
    assert out[4].company == "Ünïcode Ltd" and out[4].custom_fields == {"size": "true"}


def test_reject_where_names_row_and_record() -> None:
    assert Reject("x", row_number=3).where == "row 3"
    assert Reject("x", source_id="00Q1").where == "record 00Q1"
    assert Reject("x", row_number=3, source_id="00Q1").where == "row 3 (record 00Q1)"


ORDERED = [
    LeadStatus.PENDING,
    LeadStatus.QUEUED,
    LeadStatus.SENT,
    LeadStatus.OPENED,
    LeadStatus.REPLIED,
]


def test_status_order_is_the_documented_one() -> None:
    assert [status_rank(s) for s in ORDERED] == sorted(status_rank(s) for s in ORDERED)
    assert len({status_rank(s) for s in ORDERED}) == len(ORDERED)
    for earlier, later in itertools.combinations(ORDERED, 2):
        assert advance(earlier, later) is later
        assert advance(later, earlier) is later, f"{later} moved back to {earlier}"


@pytest.mark.parametrize("final", sorted(FINAL_STATUSES))
def test_final_statuses_never_change(final: LeadStatus) -> None:
    for other in LeadStatus:
        assert advance(final, other) is final
        if other not in FINAL_STATUSES:
            assert advance(other, final) is final


statuses = st.sampled_from(list(LeadStatus))


@given(st.lists(statuses, min_size=1, max_size=20), statuses)
def test_advance_never_moves_backwards_in_any_sequence(
    seq: list[LeadStatus], start: LeadStatus
) -> None:
    held = start
    for new in seq:
        nxt = advance(held, new)
        assert nxt in (held, new)
        if held in FINAL_STATUSES:
            assert nxt is held
        elif nxt is not held:
            assert nxt in FINAL_STATUSES or status_rank(nxt) > status_rank(held)
        held = nxt


@given(st.lists(statuses, min_size=1, max_size=12))
def test_advance_is_order_insensitive_for_non_final_statuses(seq: list[LeadStatus]) -> None:
    non_final = [s for s in seq if s not in FINAL_STATUSES]
    if not non_final:
        return
    forward: LeadStatus | None = None
    for s in non_final:
        forward = advance(forward, s)
    backward: LeadStatus | None = None
    for s in reversed(non_final):
        backward = advance(backward, s)
    assert forward is not None and backward is not None
    assert status_rank(forward) == status_rank(backward) == max(status_rank(s) for s in non_final)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("replied", LeadStatus.REPLIED),
        (" Sent ", LeadStatus.SENT),
        ("", None),
        (None, None),
        ("Open - Not Contacted", None),
    ],
)
def test_parse_status_tolerates_case_and_unknown_values(
    value: str | None, expected: LeadStatus | None
) -> None:
    assert parse_status(value) is expected


def test_write_result_balances() -> None:
    result = WriteResult(received=4, written=1, unchanged=1, held_back=1, not_found=["a@b.co"])
    assert result.balanced
    result.received = 5
    assert not result.balanced
    assert StatusUpdate("a@b.co", LeadStatus.SENT).source_id is None


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        # HubSpot contacts export
        (
            ["Record ID", "First Name", "Last Name", "Email", "Company Name", "Phone Number"],
            {
                "email": "Email",
                "first_name": "First Name",
                "last_name": "Last Name",
                "company": "Company Name",
            },
        ),
        # A hand-made sheet and a LinkedIn-style export
        (
            ["E-mail address", "Surname", "FirstName", "Organization"],
            {
                "email": "E-mail address",
                "first_name": "FirstName",
                "last_name": "Surname",
                "company": "Organization",
            },
        ),
        (
            ["Work Email", "first_name", "last_name", "Account Name"],
            {
                "email": "Work Email",
                "first_name": "first_name",
                "last_name": "last_name",
                "company": "Account Name",
            },
        ),
        (["Email Address", "Notes"], {"email": "Email Address"}),
    ],
)
def test_common_export_headers_are_recognised(header: list[str], expected: dict[str, str]) -> None:
    resolved = FieldMapping().resolve(header, source="export.csv")
    assert dict(resolved.columns) == expected
    assert set(resolved.recognised) == set(expected)
    assert resolved.unused == tuple(h for h in header if h not in expected.values())


def test_partial_mapping_keeps_the_defaults_and_reports_unused_columns() -> None:
    header = ["E-mail address", "Personal Email", "First Name", "Last Name", "Company", "Phone"]
    resolved = FieldMapping(email="Personal Email").resolve(header, source="csv")
    assert dict(resolved.columns) == {
        "email": "Personal Email",
        "first_name": "First Name",
        "last_name": "Last Name",
        "company": "Company",
    }
    assert resolved.recognised == ("first_name", "last_name", "company")
    assert resolved.unused == ("E-mail address", "Phone")
    line = resolved.describe()
    assert "email <- 'Personal Email'" in line
    assert "company <- 'Company' (recognised)" in line
    assert "unused: 'E-mail address', 'Phone'" in line


def test_empty_string_maps_a_field_to_nothing_and_key_columns_are_not_unused() -> None:
    header = ["Email", "Company", "CRM Id"]
    resolved = FieldMapping(company="").resolve(header, source="csv", other_columns=["CRM Id"])
    assert dict(resolved.columns) == {"email": "Email"}
    assert resolved.unused == ("Company",)
    assert "no column for first_name, last_name, company" in resolved.describe()


def test_no_recognisable_email_column_says_how_to_map_it() -> None:
    with pytest.raises(MappingError) as info:
        FieldMapping().resolve(["Contact", "Name"], source="CSV file leads.csv")
    message = str(info.value)
    assert "CSV file leads.csv has no email column" in message
    assert "Available: 'Contact', 'Name'" in message
    assert "--map email=COLUMN" in message


def test_blank_email_column_is_refused() -> None:
    with pytest.raises(ValueError, match="email column must not be blank"):
        FieldMapping(email=" ")
