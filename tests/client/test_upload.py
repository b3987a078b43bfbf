"""Upload orchestration: polling with backoff to a deadline, terminal states, counts that balance."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from connectors.coldsend import (
    APIConnectionError,
    ColdSendClient,
    CsvPart,
    NotFoundError,
    RowRef,
    UploadIncomplete,
    UploadJob,
    UploadJobFailed,
    UploadJobStatus,
    UploadJobTimedOut,
    UploadTooLarge,
    result_for_job,
    upload_leads,
    upload_part,
    wait_for_upload_job,
)
from connectors.leads import Lead

from ._helpers import Recorder, json_response

MakeClient = Callable[..., ColdSendClient]
CID = "c-1"


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def job(status: str, **counts: Any) -> dict[str, Any]:
    return {"job_id": "j-1", "campaign_id": CID, "status": status, **counts}


def polls(*answers: dict[str, Any] | Exception) -> Callable[[httpx.Request], httpx.Response]:
    remaining = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        answer = remaining.pop(0) if len(remaining) > 1 else remaining[0]
        if isinstance(answer, Exception):
            raise answer
        return json_response(200, answer)

    return handler


def test_polls_with_a_growing_interval_until_completed(
    make_client: MakeClient, recorder: Recorder
) -> None:
    fake = FakeClock()
    done = job(
        "COMPLETED",
        total_count=2,
        processed_count=2,
        success_count=2,
        duplicate_count=0,
        error_count=0,
    )
    client = make_client(
        polls(job("PENDING"), job("VALIDATING"), job("IN_PROGRESS"), job("IN_PROGRESS"), done)
    )
    result = wait_for_upload_job(client, CID, "j-1", clock=fake.clock, sleep=fake.sleep)
    assert result.status is UploadJobStatus.COMPLETED
    assert fake.sleeps == pytest.approx([0.5, 0.8, 1.28, 2.048])
    assert len(recorder.requests) == 5
    assert recorder.requests[0].url.path.endswith(f"/campaigns/{CID}/leads/upload/j-1")


def test_poll_interval_is_capped(make_client: MakeClient) -> None:
    fake = FakeClock()
    client = make_client(polls(*[job("IN_PROGRESS")] * 12, job("COMPLETED")))
    wait_for_upload_job(
        client, CID, "j-1", poll_max=3.0, timeout=1_000, clock=fake.clock, sleep=fake.sleep
    )
    assert max(fake.sleeps) == 3.0
    assert fake.sleeps[-3:] == [3.0, 3.0, 3.0]


def test_deadline_raises_timed_out_without_sleeping_past_it(make_client: MakeClient) -> None:
    fake = FakeClock()
    client = make_client(polls(job("IN_PROGRESS")))
    with pytest.raises(
        UploadJobTimedOut, match=r"within 10 s \(last status IN_PROGRESS\)"
    ) as caught:
        wait_for_upload_job(client, CID, "j-1", timeout=10, clock=fake.clock, sleep=fake.sleep)
    assert fake.now == pytest.approx(10.0)
    assert caught.value.last_status is UploadJobStatus.IN_PROGRESS
    assert caught.value.job_id == "j-1"


def test_failed_job_raises_with_its_errors(make_client: MakeClient) -> None:
    fake = FakeClock()
    failed = job(
        "FAILED",
        total_count=10,
        processed_count=4,
        errors=[{"row": 3, "email": "x", "error": "invalid email"}],
    )
    client = make_client(polls(job("IN_PROGRESS"), failed))
    with pytest.raises(
        UploadJobFailed, match="after processing 4 of 10 rows; first errors: row 3: invalid email"
    ) as caught:
        wait_for_upload_job(client, CID, "j-1", clock=fake.clock, sleep=fake.sleep)
    assert caught.value.job.status is UploadJobStatus.FAILED


def test_a_few_failed_polls_are_tolerated(make_client: MakeClient) -> None:
    fake = FakeClock()
    client = make_client(
        polls(
            httpx.ConnectError("refused"),
            job("IN_PROGRESS"),
            httpx.ConnectError("refused"),
            job("COMPLETED"),
        ),
        max_retries=0,
    )
    assert (
        wait_for_upload_job(client, CID, "j-1", clock=fake.clock, sleep=fake.sleep).status
        is UploadJobStatus.COMPLETED
    )


def test_persistent_poll_failures_surface(make_client: MakeClient) -> None:
    fake = FakeClock()
    client = make_client(polls(httpx.ConnectError("refused")), max_retries=0)
    with pytest.raises(APIConnectionError):
        wait_for_upload_job(
            client, CID, "j-1", max_poll_errors=2, clock=fake.clock, sleep=fake.sleep
        )
    assert len(fake.sleeps) == 2


def test_a_missing_job_is_not_polled_again(make_client: MakeClient, recorder: Recorder) -> None:
    fake = FakeClock()
    client = make_client(lambda r: json_response(404, {"detail": "Upload job not found"}))
    with pytest.raises(NotFoundError):
        wait_for_upload_job(client, CID, "j-1", clock=fake.clock, sleep=fake.sleep)
    assert len(recorder.requests) == 1


def _part(n: int) -> CsvPart:
    rows = [RowRef(f"p{i}@example.com", 100 + i, f"id-{i}") for i in range(1, n + 1)]
    return CsvPart(3, b"email\n", n, rows, {"email": "email"})


def _job(**fields: Any) -> UploadJob:
    return UploadJob.model_validate({"job_id": "j-1", "status": "COMPLETED", **fields})


def test_result_maps_row_errors_to_the_callers_rows() -> None:
    done = _job(
        total_count=4,
        processed_count=4,
        success_count=2,
        duplicate_count=1,
        error_count=1,
        errors=[{"row": 3, "email": "p3@example.com", "error": "invalid email"}],
    )
    result = result_for_job(CID, done, _part(4))
    assert (result.total, result.success, result.duplicate, result.error) == (4, 2, 1, 1)
    assert result.balanced and result.row_errors_complete
    assert result.part_index == 3
    (err,) = result.row_errors
    assert (err.part_row, err.row_number, err.source_id, err.email, err.error) == (
        3,
        103,
        "id-3",
        "p3@example.com",
        "invalid email",
    )


def test_result_keeps_a_row_error_that_points_outside_the_file() -> None:
    done = _job(
        total_count=1,
        processed_count=1,
        error_count=1,
        errors=[{"row": 9, "email": "?@x", "error": "bad"}],
    )
    (err,) = result_for_job(CID, done, _part(1)).row_errors
    assert (err.part_row, err.row_number, err.email) == (9, None, "?@x")


@pytest.mark.parametrize(
    ("counts", "needle"),
    [
        (
            {"total_count": 3, "processed_count": 3, "success_count": 3},
            "counted 3 rows but 4 were sent",
        ),
        (
            {"total_count": 4, "processed_count": 3, "success_count": 3},
            "3 of 4 rows were processed",
        ),
        (
            {"total_count": 4, "processed_count": 4, "success_count": 2, "error_count": 1},
            "= 3, not 4",
        ),
    ],
)
def test_counts_that_do_not_balance_raise(counts: dict[str, int], needle: str) -> None:
    with pytest.raises(UploadIncomplete, match=needle):
        result_for_job(CID, _job(**counts), _part(4))


def test_upload_part_refuses_oversized_parts_before_sending(
    make_client: MakeClient, recorder: Recorder
) -> None:
    client = make_client(lambda r: json_response(202, {"job_id": "j"}))
    big = CsvPart(0, b"email\n", 10_001, [], {"email": "email"})
    with pytest.raises(UploadTooLarge, match="10,001 rows"):
        upload_part(client, CID, big)
    assert recorder.requests == []


class FakeColdSend:
    """Just enough of the upload endpoints: jobs finish on the second poll."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.polls: dict[str, int] = {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            job_id = f"j-{len(self.files)}"
            content = request.content
            start = content.index(b"text/csv\r\n\r\n") + 12
            self.files[job_id] = content[start : content.index(b"\r\n--", start)]
            return json_response(202, {"job_id": job_id, "status": "PENDING"})
        job_id = request.url.path.rsplit("/", 1)[1]
        self.polls[job_id] = self.polls.get(job_id, 0) + 1
        rows = self.files[job_id].count(b"\n") - 1
        if self.polls[job_id] < 2:
            return json_response(200, {"job_id": job_id, "status": "IN_PROGRESS"})
        bad = 1 if b"bad@" in self.files[job_id] else 0
        return json_response(
            200,
            {
                "job_id": job_id,
                "status": "COMPLETED",
                "total_count": rows,
                "processed_count": rows,
                "success_count": rows - bad,
                "duplicate_count": 0,
                "error_count": bad,
                "errors": [{"row": 2, "email": "bad@", "error": "invalid email"}] if bad else [],
            },
        )


def test_upload_leads_chains_parts_jobs_and_results(
    make_client: MakeClient, recorder: Recorder
) -> None:
    fake_server = FakeColdSend()
    fake = FakeClock()
    client = make_client(fake_server)
    leads = [Lead(email=f"u{i}@example.com", row_number=i, source_id=f"s{i}") for i in range(1, 26)]
    leads[11] = Lead(email="bad@", row_number=12, source_id="s12")
    order: list[str] = []

    def tracking() -> Any:
        for lead in leads:
            order.append(f"read {lead.row_number}")
            yield lead

    results = []
    for result in upload_leads(
        client, CID, tracking(), max_rows=10, clock=fake.clock, sleep=fake.sleep
    ):
        order.append(f"result {result.part_index}")
        results.append(result)
    assert [(r.part_index, r.total, r.success, r.error) for r in results] == [
        (0, 10, 10, 0),
        (1, 10, 9, 1),
        (2, 5, 5, 0),
    ]
    (err,) = results[1].row_errors
    assert (err.row_number, err.source_id, err.error) == (12, "s12", "invalid email")
    # Results stream out while later leads are still unread (max_pending=2 by default).
    assert order.index("result 0") < order.index("read 21")
    assert len(fake_server.files) == 3
    assert client.request_count == 3 + 6  # one upload and two polls per part


def test_a_job_showing_its_progress_is_read_again_when_that_pace_says_it_is_done(
    make_client: MakeClient, recorder: Recorder
) -> None:
    fake = FakeClock()
    done = job(
        "COMPLETED",
        total_count=10_000,
        processed_count=10_000,
        success_count=10_000,
        duplicate_count=0,
        error_count=0,
    )
    client = make_client(polls(job("IN_PROGRESS", total_count=10_000, processed_count=2_000), done))
    wait_for_upload_job(
        client, CID, "j-1", first_poll_delay=1.0, clock=fake.clock, sleep=fake.sleep
    )
    # A fifth done in 1 s: four fifths take ~4 s more (read at 4.4 s, with a margin), where
    # the ladder would have read at 0.5, 0.8, 1.28 and 2.05 s.
    assert fake.sleeps == pytest.approx([1.0, 4.4])
    assert len(recorder.requests) == 2


def test_a_slow_job_is_still_read_at_least_every_poll_max(make_client: MakeClient) -> None:
    fake = FakeClock()
    slow = job("IN_PROGRESS", total_count=10_000, processed_count=1)
    client = make_client(polls(slow, slow, job("COMPLETED")))
    wait_for_upload_job(
        client, CID, "j-1", first_poll_delay=1.0, timeout=100, clock=fake.clock, sleep=fake.sleep
    )
    assert fake.sleeps == [1.0, 10.0, 10.0]
