"""When to read a just-started upload job first: its likely duration, learned from earlier jobs.

Every read of an upload job spends one request of the key's budget (100 a minute, 1,000 an
hour). A first read that comes before the job is done is wasted and is followed by more, so
the first read should land when the job is likely done: after a fixed start-up allowance plus
the job's rows at the import speed seen on earlier jobs of the same server in this process.
Until a job large enough to measure has been seen, the speed is `DEFAULT_ROWS_PER_SECOND` and
the wait is capped at `DEFAULT_MAX_DELAY`: a first sync never waits longer than before.

Pure and clock-free: the speed comes from each finished job's own ``started_at`` and
``completed_at`` (the server's clock), never from how long the caller happened to wait.
"""

from __future__ import annotations

import threading

from connectors.coldsend.models import UploadJob, UploadJobStatus

__all__ = [
    "DEFAULT_MAX_DELAY",
    "DEFAULT_ROWS_PER_SECOND",
    "LEARNED_MAX_DELAY",
    "MIN_LEARN_ROWS",
    "UploadJobTiming",
    "forget_upload_job_timings",
    "time_to_finish",
    "upload_job_timing",
]

# Import speed assumed before any job is measured (the emulator's default speed; a slower
# server costs a few early reads on its first job, then is learned).
DEFAULT_ROWS_PER_SECOND = 20_000.0
# Before the first job finishes a just-started job is polled within this many seconds.
DEFAULT_MAX_DELAY = 5.0
# Once the speed is learned, waits up to this long before the first read (a 10,000-row part
# on a server importing 500 rows a second); the deadline caps it further.
LEARNED_MAX_DELAY = 30.0
# Jobs smaller than this say more about per-job overhead than about speed: not learned from.
MIN_LEARN_ROWS = 1_000
# Time a job needs whatever its size (queueing, parsing, validating the file).
START_ALLOWANCE = 0.5
# The first read waits this much longer than the estimate: late costs a fraction of the
# wait, early costs a request and a backoff step.
MARGIN = 1.25
# Weight of the newest job in the learned speed (recent jobs speak for the server now).
NEWEST_WEIGHT = 0.5


class UploadJobTiming:
    """Import speed of one server's upload jobs, learned from jobs seen to finish.

    Thread-safe: a sync waits for several parts at once.

    Args:
        default_rows_per_second: Speed assumed until a job is measured.
        default_max_delay: Longest first wait until then.
        learned_max_delay: Longest first wait once the speed is learned.

    Example:
        >>> timing = UploadJobTiming()
        >>> timing.first_poll_delay(40)
        0.5
    """

    def __init__(
        self,
        *,
        default_rows_per_second: float = DEFAULT_ROWS_PER_SECOND,
        default_max_delay: float = DEFAULT_MAX_DELAY,
        learned_max_delay: float = LEARNED_MAX_DELAY,
    ) -> None:
        if default_rows_per_second <= 0 or default_max_delay < START_ALLOWANCE:
            raise ValueError("need default_rows_per_second > 0 and default_max_delay >= 0.5")
        if learned_max_delay < default_max_delay:
            raise ValueError("learned_max_delay must be at least default_max_delay")
        self._default_seconds_per_row = 1.0 / default_rows_per_second
        self._default_max = default_max_delay
        self._learned_max = learned_max_delay
        self._seconds_per_row: float | None = None
        self._lock = threading.Lock()

    @property
    def rows_per_second(self) -> float | None:
        """The learned import speed; None until a large enough job has finished."""
        with self._lock:
            learned = self._seconds_per_row
        return None if learned is None else 1.0 / learned

    def first_poll_delay(self, rows: int) -> float:
        """Seconds to let a just-started job of `rows` rows run before reading it.

        At least `START_ALLOWANCE` (a just-started job is never done at once) and at most
        the default or learned cap.
        """
        with self._lock:
            learned = self._seconds_per_row
        if learned is None:
            estimate = START_ALLOWANCE + max(rows, 0) * self._default_seconds_per_row
            return min(estimate, self._default_max)
        estimate = START_ALLOWANCE + max(rows, 0) * learned * MARGIN
        return min(estimate, self._learned_max)

    def observe(self, job: UploadJob) -> bool:
        """Learn from a finished job; returns whether it was measurable.

        Only COMPLETED jobs of at least `MIN_LEARN_ROWS` rows with both timestamps count: a
        failed job stopped early, and a small one measures overhead, not speed.
        """
        rows = job.total_count or 0
        if job.status is not UploadJobStatus.COMPLETED or rows < MIN_LEARN_ROWS:
            return False
        if job.started_at is None or job.completed_at is None:
            return False
        seconds = (job.completed_at - job.started_at).total_seconds()
        if seconds <= 0:
            return False
        per_row = seconds / rows
        with self._lock:
            previous = self._seconds_per_row
            self._seconds_per_row = (
                per_row
                if previous is None
                else NEWEST_WEIGHT * per_row + (1 - NEWEST_WEIGHT) * previous
            )
        return True


def time_to_finish(job: UploadJob, elapsed: float) -> float | None:
    """Seconds a running job likely needs still, from its progress so far; None if unknown.

    A job that processed a fraction f of its rows in `elapsed` seconds needs about
    ``elapsed * (1 - f) / f`` more at the same pace. Unknown while nothing is processed yet
    (still validating) or when the job gives no counts.
    """
    total, processed = job.total_count, job.processed_count
    if not total or processed is None or not 0 < processed < total or elapsed <= 0:
        return None
    done = processed / total
    return elapsed * (1 - done) / done


_timings: dict[str, UploadJobTiming] = {}
_timings_lock = threading.Lock()


def upload_job_timing(base_url: str) -> UploadJobTiming:
    """The process-wide timing of one server's upload jobs (servers differ in speed)."""
    with _timings_lock:
        timing = _timings.get(base_url)
        if timing is None:
            timing = _timings[base_url] = UploadJobTiming()
        return timing


def forget_upload_job_timings() -> None:
    """Start learning afresh, as a new process would (tests)."""
    with _timings_lock:
        _timings.clear()
