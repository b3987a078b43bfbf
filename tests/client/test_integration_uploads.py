"""Uploads and exports against the ColdSend emulator: counts add up, limits, jobs, round trip."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connectors.coldsend import (
    BadRequestError,
    ColdSendClient,
    CsvPart,
    LeadStatus,
    UploadJobFailed,
    UploadJobTimedOut,
    UploadTooLarge,
    iter_csv_parts,
    result_for_job,
    upload_leads,
    upload_part,
    wait_for_upload_job,
)
from connectors.leads import Lead
from sandbox.coldsend.fixtures import ColdSendControl

FAST_POLL = {"poll_initial": 0.05, "poll_max": 0.5}


@pytest.fixture
def client(coldsend_sandbox: ColdSendControl) -> Iterator[ColdSendClient]:
    with ColdSendClient(
        coldsend_sandbox.admin_key, base_url=coldsend_sandbox.base_url, timeout=30
    ) as c:
        yield c


def leads(n: int, *, start: int = 1) -> Iterator[Lead]:
    for i in range(start, start + n):
        yield Lead(
            email=f"lead{i}@example.com",
            first_name=f"First{i}",
            last_name="Last",
            company="Acme, Inc.",
            custom_fields={"industry": "Retail" if i % 2 else "Health"},
            source_id=f"00Q{i:012d}",
            row_number=i,
        )


def test_10000_rows_with_invalid_and_duplicate_rows_add_up(client: ColdSendClient) -> None:
    cid = client.create_campaign(name="Ten thousand rows").campaign_id
    for i in range(1, 41):  # already in the campaign before the upload
        client.add_lead(cid, email=f"lead{i * 100}@example.com")
    rows = list(leads(10_000))
    invalid_at = list(range(7, 10_000, 271))  # 37 rows
    for i in invalid_at:
        old = rows[i - 1]
        rows[i - 1] = Lead(
            email=f"broken{i}.example.com", source_id=old.source_id, row_number=old.row_number
        )
    repeat_at = list(range(5, 10_000, 401))  # 25 rows repeating an earlier email of the file
    for i in repeat_at:
        old = rows[i - 1]
        rows[i - 1] = Lead(
            email="lead1@example.com", source_id=old.source_id, row_number=old.row_number
        )
    assert not set(invalid_at) & set(repeat_at)
    already = sum(1 for i in range(100, 4_001, 100) if i not in invalid_at and i not in repeat_at)

    (part,) = iter_csv_parts(rows, custom_fields=["industry"])
    assert part.row_count == 10_000
    job_id = upload_part(client, cid, part)
    job = wait_for_upload_job(client, cid, job_id, **FAST_POLL)
    result = result_for_job(cid, job, part)
    assert result.balanced
    assert result.total == 10_000
    assert result.error == len(invalid_at)
    assert result.duplicate == len(repeat_at) + already
    assert result.success == 10_000 - result.error - result.duplicate
    assert sorted(e.row_number for e in result.row_errors if e.row_number) == invalid_at
    assert {e.source_id for e in result.row_errors} == {f"00Q{i:012d}" for i in invalid_at}
    assert all("invalid email" in e.error for e in result.row_errors)
    assert client.list_leads(cid, limit=1).pagination.total == 40 + result.success


def test_upload_leads_in_parts_and_export_round_trip(
    client: ColdSendClient, coldsend_sandbox: ColdSendControl
) -> None:
    cid = client.create_campaign(name="Export round trip").campaign_id
    source = list(leads(2_500))
    results = list(
        upload_leads(
            client, cid, iter(source), custom_fields=["industry"], max_rows=1_000, **FAST_POLL
        )
    )
    assert [r.total for r in results] == [1_000, 1_000, 500]
    assert sum(r.success for r in results) == 2_500

    coldsend_sandbox.set_lead_status(cid, "lead7@example.com", "REPLIED")
    with client.export_leads(cid) as stream:
        exported = {row.email: row for row in stream}
    assert len(exported) == 2_500
    row = exported["lead8@example.com"]
    assert (row.first_name, row.last_name, row.company, row.status) == (
        "First8",
        "Last",
        "Acme, Inc.",
        LeadStatus.PENDING,
    )
    assert row.custom_fields == {"industry": "Health", "crm_record_id": "00Q000000000008"}
    assert row.created_at is not None
    assert exported["lead7@example.com"].status is LeadStatus.REPLIED


def test_reuploading_with_skip_is_idempotent(client: ColdSendClient) -> None:
    cid = client.create_campaign(name="Idempotent reupload").campaign_id
    first = list(upload_leads(client, cid, leads(300), **FAST_POLL))
    again = list(upload_leads(client, cid, leads(300), **FAST_POLL))
    assert (first[0].success, first[0].duplicate) == (300, 0)
    assert (again[0].success, again[0].duplicate) == (0, 300)
    assert client.list_leads(cid, limit=1).pagination.total == 300


def test_files_over_the_limits_are_refused(client: ColdSendClient) -> None:
    cid = client.create_campaign(name="Limits campaign").campaign_id
    too_many = b"email\n" + b"".join(f"u{i}@example.com\n".encode() for i in range(10_001))
    with pytest.raises(BadRequestError, match="more than 10,000 data rows"):
        client.upload_leads_csv(cid, data=too_many)
    big = CsvPart(0, too_many, 10_001, [], {"email": "email"})
    with pytest.raises(UploadTooLarge, match="10,001 rows"):
        upload_part(client, cid, big)
    with pytest.raises(UploadTooLarge, match="50 MB"):
        client.upload_leads_csv(cid, data=b"email\n" + b"x" * (50 * 1024 * 1024))
    with pytest.raises(BadRequestError, match="no email column"):
        client.upload_leads_csv(cid, data=b"name\nAnn\n")
    assert client.list_leads(cid, limit=1).pagination.total == 0  # nothing imported


def test_failed_and_stalled_jobs(client: ColdSendClient, coldsend_sandbox: ColdSendControl) -> None:
    cid = client.create_campaign(name="Unlucky uploads").campaign_id
    coldsend_sandbox.set_jobs(fail_rate=1.0)
    with pytest.raises(UploadJobFailed, match="failed"):
        list(upload_leads(client, cid, leads(50), **FAST_POLL))
    coldsend_sandbox.set_jobs(fail_rate=0.0, stall_rate=1.0)
    job_id = client.upload_leads_csv(cid, data=b"email\na@example.com\n").job_id
    with pytest.raises(UploadJobTimedOut, match=r"within 0\.6 s"):
        wait_for_upload_job(client, cid, job_id, timeout=0.6, **FAST_POLL)


def test_upload_to_a_completed_campaign_is_a_bad_request(
    client: ColdSendClient, coldsend_sandbox: ColdSendControl
) -> None:
    cid = client.create_campaign(name="Run to completion").campaign_id
    client.add_lead(cid, email="only@example.com", first_name="Only")
    inbox = client.create_smtp_inbox(
        email_address="s@example.com",
        display_name="S",
        smtp_host="smtp.example.com",
        smtp_port=587,
        smtp_username="s",
        smtp_password="pw-123456",
    ).inbox_id
    client.update_campaign(
        cid,
        inbox_ids=[inbox],
        variants=[
            {
                "variant_name": "A",
                "subject_template": "Hi",
                "email_content": "Hello there, friend",
                "distribution_percent": 100,
            }
        ],
    )
    client.launch_campaign(cid)
    for _ in range(20):
        coldsend_sandbox.advance(50)
        if client.get_campaign(cid).status == "COMPLETED":
            break
    assert client.get_campaign(cid).status == "COMPLETED"
    with pytest.raises(BadRequestError, match="COMPLETED"):
        client.upload_leads_csv(cid, data=b"email\nnew@example.com\n")
