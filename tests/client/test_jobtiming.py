"""When a just-started upload job is first read: bounded, learned from finished jobs only."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connectors.coldsend import UploadJob, UploadJobTiming, upload_job_timing
from connectors.coldsend.jobtiming import (
    DEFAULT_MAX_DELAY,
    LEARNED_MAX_DELAY,
    MIN_LEARN_ROWS,
    forget_upload_job_timings,
    time_to_finish,
)

T0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def finished(
    rows: int, seconds: float | None, status: str = "COMPLETED", **extra: Any
) -> UploadJob:
    return UploadJob.model_validate(
        {
            "job_id": "j-1",
            "status": status,
            "total_count": rows,
            "processed_count": rows,
            "started_at": T0.isoformat(),
            "completed_at": None
            if seconds is None
            else (T0 + timedelta(seconds=seconds)).isoformat(),
            **extra,
        }
    )


@pytest.mark.parametrize(
    ("rows", "delay"),
    [
        (0, 0.5),
        (40, 0.502),  # a small job is read within about half a second
        (2_000, 0.6),
        (10_000, 1.0),
        (1_000_000, DEFAULT_MAX_DELAY),  # capped until a job has been measured
    ],
)
def test_before_any_job_is_measured_the_first_read_comes_soon(rows: int, delay: float) -> None:
    assert UploadJobTiming().first_poll_delay(rows) == pytest.approx(delay)


def test_a_measured_slow_server_is_read_when_its_jobs_are_likely_done() -> None:
    timing = UploadJobTiming()
    # 10,000 rows in 20 s: 500 rows a second.
    assert timing.observe(finished(10_000, 20.0))
    assert timing.rows_per_second == pytest.approx(500)
    # 5,000 rows take ~10 s there: read once, a little after (the margin), not every 0.5 s.
    assert timing.first_poll_delay(5_000) == pytest.approx(0.5 + 10.0 * 1.25)
    # Small jobs still come soon, and nothing waits past the cap.
    assert timing.first_poll_delay(40) < 0.7
    assert timing.first_poll_delay(10_000) == pytest.approx(0.5 + 20.0 * 1.25)
    timing.observe(finished(10_000, 100.0))  # slower still
    assert timing.first_poll_delay(10_000) == LEARNED_MAX_DELAY


def test_a_fast_job_after_slow_ones_brings_the_estimate_back_down() -> None:
    timing = UploadJobTiming()
    timing.observe(finished(10_000, 20.0))  # 2 ms a row
    timing.observe(finished(10_000, 0.5))  # 0.05 ms a row
    # The newest job weighs half: (2 + 0.05) / 2 ms a row.
    assert timing.first_poll_delay(1_000) == pytest.approx(0.5 + 1_000 * 0.001025 * 1.25)
    for _ in range(10):
        timing.observe(finished(10_000, 0.5))
    assert timing.first_poll_delay(10_000) < 1.2


@pytest.mark.parametrize(
    "job",
    [
        finished(MIN_LEARN_ROWS - 1, 30.0),  # overhead, not speed
        finished(10_000, 30.0, status="FAILED"),  # stopped early
        finished(10_000, None, status="COMPLETED"),  # no completion time
        finished(10_000, 0.0),  # no measurable duration
        UploadJob.model_validate({"job_id": "j", "status": "COMPLETED", "total_count": 10_000}),
    ],
)
def test_jobs_that_say_nothing_about_speed_are_not_learned(job: UploadJob) -> None:
    timing = UploadJobTiming()
    assert not timing.observe(job)
    assert timing.rows_per_second is None
    assert timing.first_poll_delay(10_000) == pytest.approx(1.0)


def test_each_server_is_learned_apart_and_tests_start_afresh() -> None:
    a = upload_job_timing("http://a.example/api")
    assert upload_job_timing("http://a.example/api") is a
    assert upload_job_timing("http://b.example/api") is not a
    a.observe(finished(10_000, 20.0))
    assert upload_job_timing("http://b.example/api").rows_per_second is None
    forget_upload_job_timings()
    assert upload_job_timing("http://a.example/api").rows_per_second is None


def test_parts_waited_for_at_once_learn_safely() -> None:
    timing = UploadJobTiming()
    threads = [
        threading.Thread(target=lambda: [timing.observe(finished(10_000, 2.0)) for _ in range(200)])
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert timing.rows_per_second == pytest.approx(5_000)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="rows_per_second"):
        UploadJobTiming(default_rows_per_second=0)
    with pytest.raises(ValueError, match="learned_max_delay"):
        UploadJobTiming(default_max_delay=10, learned_max_delay=5)


@pytest.mark.parametrize(
    ("counts", "elapsed", "expected"),
    [
        ({"total_count": 10_000, "processed_count": 2_500}, 2.0, 6.0),
        ({"total_count": 10_000, "processed_count": 5_000}, 3.0, 3.0),
        ({"total_count": 10_000, "processed_count": 0}, 2.0, None),  # still validating
        ({"total_count": 10_000, "processed_count": 10_000}, 2.0, None),  # done
        ({"total_count": 10_000}, 2.0, None),  # no progress given
        ({}, 2.0, None),
        ({"total_count": 10_000, "processed_count": 2_500}, 0.0, None),
    ],
)
def test_time_to_finish_from_progress(
    counts: dict[str, int], elapsed: float, expected: float | None
) -> None:
    running = UploadJob.model_validate({"job_id": "j", "status": "IN_PROGRESS", **counts})
    assert time_to_finish(running, elapsed) == (
        None if expected is None else pytest.approx(expected)
    )
