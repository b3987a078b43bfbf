"""Upload leads to a campaign: send CSV parts, wait for their jobs, account for every row.

Trigger, then wait: `upload_part` starts a job and returns its id, `wait_for_upload_job` polls
it with a growing interval to a wall-clock deadline, and `UploadResult` maps the job's row
errors back to the caller's rows and checks that its counts add up. `upload_leads` chains the
three over a stream of leads.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from connectors.coldsend.client import ColdSendClient
from connectors.coldsend.csvparts import CsvPart, RowRef, iter_csv_parts
from connectors.coldsend.errors import (
    APIConnectionError,
    InternalServerError,
    InvalidRequestError,
    RateLimitError,
    UploadIncomplete,
    UploadJobFailed,
    UploadJobTimedOut,
    UploadTooLarge,
)
from connectors.coldsend.jobtiming import time_to_finish
from connectors.coldsend.models import (
    MAX_UPLOAD_BYTES,
    MAX_UPLOAD_ROWS,
    DuplicateAction,
    UploadJob,
    UploadJobStatus,
)
from connectors.leads import Lead

__all__ = [
    "RowError",
    "UploadResult",
    "result_for_job",
    "upload_leads",
    "upload_part",
    "wait_for_upload_job",
]

logger = logging.getLogger("connectors.coldsend")

# Errors a poll may hit that say nothing about the job; the client has already retried them.
_TRANSIENT = (APIConnectionError, InternalServerError, RateLimitError)
# A read timed from a job's progress comes this much after its estimated end.
_FINISH_MARGIN = 1.1


@dataclass(slots=True, frozen=True)
class RowError:
    """A row the upload job rejected, identified the way the caller knows it.

    Attributes:
        part_row: 1-based data row in the uploaded file.
        row_number: The row in the caller's source, if it has rows.
        source_id: The caller's record id, if any.
        email: The row's email.
        error: ColdSend's reason, e.g. ``"invalid email"``.
    """

    part_row: int | None
    row_number: int | None
    source_id: str | None
    email: str
    error: str


@dataclass(slots=True)
class UploadResult:
    """What one upload job did with one part.

    ``total == success + duplicate + error`` always holds (`result_for_job` raises otherwise).

    Attributes:
        job_id: The upload job.
        campaign_id: The campaign.
        part_index: Which part of the stream (0-based).
        total: Data rows in the file, as the job counted them.
        success: Rows imported as new leads.
        duplicate: Rows skipped (or merged) because the email was already there or repeated.
        error: Rows rejected.
        row_errors: The rejected rows the job listed, mapped to the caller's rows. The API may
            list fewer than `error` (see `row_errors_complete`).
        job: The final job as the API returned it.
    """

    job_id: str
    campaign_id: str
    part_index: int
    total: int
    success: int
    duplicate: int
    error: int
    row_errors: list[RowError] = field(default_factory=list)
    job: UploadJob | None = field(default=None, repr=False)

    @property
    def balanced(self) -> bool:
        """Whether ``success + duplicate + error == total``."""
        return self.success + self.duplicate + self.error == self.total

    @property
    def row_errors_complete(self) -> bool:
        """Whether every rejected row is listed in `row_errors`."""
        return len(self.row_errors) >= self.error


def upload_part(
    client: ColdSendClient,
    campaign_id: str,
    part: CsvPart,
    *,
    duplicate_action: DuplicateAction = "skip",
) -> str:
    """Send one part and return the id of the job importing it.

    Raises:
        UploadTooLarge: The part is over 10,000 rows or 50 MB (nothing is sent).
    """
    if part.row_count > MAX_UPLOAD_ROWS:
        raise UploadTooLarge(
            f"part {part.index} has {part.row_count:,} rows; an upload takes at most {MAX_UPLOAD_ROWS:,}"
        )
    if len(part.data) > MAX_UPLOAD_BYTES:
        raise UploadTooLarge(
            f"part {part.index} is {len(part.data):,} bytes; an upload takes at most {MAX_UPLOAD_BYTES:,}"
        )
    accepted = client.upload_leads_csv(
        campaign_id,
        data=part.data,
        mapping=part.mapping,
        duplicate_action=duplicate_action,
        filename=f"leads-part-{part.index + 1:04d}.csv",
    )
    return accepted.job_id


def wait_for_upload_job(
    client: ColdSendClient,
    campaign_id: str,
    job_id: str,
    *,
    timeout: float = 600.0,
    first_poll_delay: float = 0.0,
    poll_initial: float = 0.5,
    poll_max: float = 10.0,
    poll_factor: float = 1.6,
    max_poll_errors: int = 3,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> UploadJob:
    """Poll an upload job until it is COMPLETED, with a growing interval and a deadline.

    The first poll comes after `first_poll_delay` (0: at once, for jobs that may be done
    already; a just-started job is never done at once, so waiting first saves a request;
    `UploadJobTiming.first_poll_delay` estimates it); the interval then starts at
    `poll_initial` and grows by `poll_factor` up to `poll_max`, never sleeping past the
    deadline. A job that shows its progress (some but not all rows processed) is read next
    when that pace says it is done (`time_to_finish`), within the same `poll_max`.

    Args:
        client: The client.
        campaign_id: The campaign.
        job_id: The job, from `upload_part` or `upload_leads_csv`.
        timeout: Wall-clock seconds before giving up.
        first_poll_delay: Seconds to wait before the first poll.
        poll_initial / poll_max / poll_factor: The polling interval.
        max_poll_errors: Consecutive failed polls (after the client's own retries) tolerated.
        clock / sleep: Monotonic clock and sleep, injectable for tests.

    Returns:
        The COMPLETED job.

    Raises:
        UploadJobFailed: The job ended FAILED.
        UploadJobTimedOut: The deadline passed first (the job may still finish).
        APIStatusError / APIConnectionError: A poll failed for good.
    """
    if timeout <= 0 or poll_initial <= 0 or poll_max < poll_initial or poll_factor < 1:
        raise InvalidRequestError(
            "need timeout > 0, poll_initial > 0, poll_max >= poll_initial and poll_factor >= 1"
        )
    started = clock()
    deadline = started + timeout
    if first_poll_delay > 0:
        sleep(min(first_poll_delay, timeout))
    interval = poll_initial
    failures = 0
    last: UploadJob | None = None
    last_error: BaseException | None = None
    while True:
        try:
            job = client.get_upload_job(campaign_id, job_id)
        except _TRANSIENT as exc:
            failures += 1
            last_error = exc
            if failures > max_poll_errors:
                raise
            logger.warning("polling upload job %s failed (%s); will poll again", job_id, exc)
        else:
            failures = 0
            last = job
            if job.status is UploadJobStatus.COMPLETED:
                return job
            if job.status is UploadJobStatus.FAILED:
                raise UploadJobFailed(campaign_id, job_id, job)
        remaining = deadline - clock()
        if remaining <= 0:
            raise UploadJobTimedOut(
                campaign_id,
                job_id,
                timeout=timeout,
                last_status=last.status if last else None,
                last_error=last_error,
            )
        # A job showing its progress is read again when it is likely done (within the
        # interval's bounds), not after a ladder of early reads.
        wait = interval
        eta = time_to_finish(last, clock() - started) if last is not None else None
        if eta is not None:
            wait = min(max(interval, eta * _FINISH_MARGIN), poll_max)
        sleep(min(wait, remaining))
        interval = min(interval * poll_factor, poll_max)


def result_for_job(
    campaign_id: str,
    job: UploadJob,
    part: CsvPart | Sequence[RowRef],
    *,
    part_index: int | None = None,
) -> UploadResult:
    """Check a COMPLETED job against the part it imported and map its row errors.

    Args:
        campaign_id: The campaign.
        job: The COMPLETED job.
        part: The part uploaded, or just its `rows`.
        part_index: The part's position; defaults to ``part.index`` (0 for bare rows).

    Raises:
        UploadIncomplete: The job's counts do not account for every row sent.
    """
    rows = part.rows if isinstance(part, CsvPart) else part
    if part_index is None:
        part_index = part.index if isinstance(part, CsvPart) else 0
    sent = len(rows)
    total = job.total_count if job.total_count is not None else sent
    success = job.success_count or 0
    duplicate = job.duplicate_count or 0
    error = job.error_count or 0
    processed = job.processed_count if job.processed_count is not None else total

    def incomplete(reason: str) -> UploadIncomplete:
        return UploadIncomplete(campaign_id, job.job_id, rows_sent=sent, job=job, reason=reason)

    if total != sent:
        raise incomplete(f"the job counted {total} rows but {sent} were sent")
    if processed != total:
        raise incomplete(f"{processed} of {total} rows were processed")
    if success + duplicate + error != total:
        raise incomplete(
            f"success + duplicate + error = {success + duplicate + error}, not {total}"
        )
    row_errors: list[RowError] = []
    for item in job.errors:
        ref = rows[item.row - 1] if item.row is not None and 1 <= item.row <= sent else None
        row_errors.append(
            RowError(
                part_row=item.row,
                row_number=ref.row_number if ref else None,
                source_id=ref.source_id if ref else None,
                email=ref.email if ref else (item.email or ""),
                error=item.error,
            )
        )
    return UploadResult(
        job_id=job.job_id,
        campaign_id=campaign_id,
        part_index=part_index,
        total=total,
        success=success,
        duplicate=duplicate,
        error=error,
        row_errors=row_errors,
        job=job,
    )


def upload_leads(
    client: ColdSendClient,
    campaign_id: str,
    leads: Iterable[Lead],
    *,
    custom_fields: Sequence[str] = (),
    source_id_column: str | None = "crm_record_id",
    duplicate_action: DuplicateAction = "skip",
    max_rows: int = MAX_UPLOAD_ROWS,
    max_bytes: int = MAX_UPLOAD_BYTES,
    max_pending: int = 2,
    job_timeout: float = 600.0,
    poll_initial: float = 0.5,
    poll_max: float = 10.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[UploadResult]:
    """Upload `leads` in parts and yield each part's checked result, in part order.

    Up to `max_pending` jobs run on the server while the next part is built and sent, so
    waiting overlaps with work; memory stays at one part's bytes plus the row identities of
    the pending parts.

    Args:
        client: The client.
        campaign_id: The campaign.
        leads: The leads to upload, consumed lazily.
        custom_fields / source_id_column / max_rows / max_bytes: See `iter_csv_parts`.
        duplicate_action: See `ColdSendClient.upload_leads_csv`.
        max_pending: Jobs started but not yet waited for.
        job_timeout: Deadline for each job, in seconds.
        poll_initial / poll_max: See `wait_for_upload_job`.
        clock / sleep: Injectable for tests.

    Yields:
        One `UploadResult` per part.

    Raises:
        UploadJobFailed / UploadJobTimedOut / UploadIncomplete: A job went wrong; results of
            earlier parts have been yielded already.
    """
    if max_pending < 1:
        raise InvalidRequestError(f"max_pending must be >= 1, got {max_pending}")
    pending: deque[tuple[int, list[RowRef], str]] = deque()

    def finish() -> UploadResult:
        index, rows, job_id = pending.popleft()
        job = wait_for_upload_job(
            client,
            campaign_id,
            job_id,
            timeout=job_timeout,
            first_poll_delay=poll_initial,
            poll_initial=poll_initial,
            poll_max=poll_max,
            clock=clock,
            sleep=sleep,
        )
        return result_for_job(campaign_id, job, rows, part_index=index)

    for part in iter_csv_parts(
        leads,
        custom_fields=custom_fields,
        source_id_column=source_id_column,
        max_rows=max_rows,
        max_bytes=max_bytes,
    ):
        job_id = upload_part(client, campaign_id, part, duplicate_action=duplicate_action)
        # Keep only the row identities; the part's bytes can go now.
        pending.append((part.index, part.rows, job_id))
        del part
        while len(pending) >= max_pending:
            yield finish()
    while pending:
        yield finish()
