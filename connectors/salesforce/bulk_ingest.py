"""The one place that calls simple-salesforce's private Bulk 2.0 upload step (`_upload_data`).

`SFBulk2Type.update(records=...)` writes the records with a DictWriter, then parses and
rewrites the CSV twice to count and split it (about 15 us per record). The sink builds its
CSV once, so it calls the step that follows those: `_upload_data` (create the job, upload,
close, wait, read the job's counts). That method is private and the dependency range allows
any 1.x release, so this adapter checks its signature before the first use and fails with a
clear error, naming the fix, if a release changed it; tests/salesforce/test_bulk_ingest.py
checks it against the installed release and runs it against the sandbox.
"""

from __future__ import annotations

import inspect
from functools import cache
from typing import Any, cast

from simple_salesforce.bulk2 import ColumnDelimiter, LineEnding, Operation, SFBulk2Type

__all__ = [
    "EXPECTED_PARAMETERS",
    "BulkIngestAdapterError",
    "IngestJob",
    "check_upload_data",
    "run_update_job",
]

EXPECTED_PARAMETERS = (
    "self",
    "operation",
    "data",
    "column_delimiter",
    "line_ending",
    "external_id_field",
    "wait",
)
"""`SFBulk2Type._upload_data`'s parameters in simple-salesforce 1.12 (checked in order)."""

_COUNTS = ("numberRecordsFailed", "numberRecordsProcessed", "numberRecordsTotal", "job_id")

IngestJob = dict[str, Any]
"""What the step returns: the job's ``job_id`` and its three record counts."""


class BulkIngestAdapterError(RuntimeError):
    """simple-salesforce's private Bulk 2.0 upload step is not what this connector codes against."""


@cache
def check_upload_data() -> None:
    """Raise `BulkIngestAdapterError` unless `_upload_data` has the expected parameters."""
    method = getattr(SFBulk2Type, "_upload_data", None)
    if method is None:
        raise BulkIngestAdapterError(
            "simple-salesforce no longer has SFBulk2Type._upload_data, which the Salesforce "
            "status sink uses for Bulk 2.0 updates: pin simple-salesforce to 1.12.x "
            "(requirements.lock) or update connectors/salesforce/bulk_ingest.py"
        )
    found = tuple(inspect.signature(method).parameters)
    if found != EXPECTED_PARAMETERS:
        raise BulkIngestAdapterError(
            f"simple-salesforce's SFBulk2Type._upload_data takes {found}, not "
            f"{EXPECTED_PARAMETERS}: pin simple-salesforce to 1.12.x (requirements.lock) or "
            "update connectors/salesforce/bulk_ingest.py"
        )


def run_update_job(handler: SFBulk2Type, rows: int, data: str, *, wait: float) -> IngestJob:
    """Run one Bulk 2.0 update job over `data` (an ``Id``-first CSV with LF line endings).

    Args:
        handler: ``sf.bulk2.<Object>``.
        rows: Data rows in `data` (so the library need not count them again).
        data: The CSV text.
        wait: Seconds before the first status read of the job.

    Returns:
        The job's ``job_id``, ``numberRecordsFailed``, ``numberRecordsProcessed`` and
        ``numberRecordsTotal``.

    Raises:
        BulkIngestAdapterError: the installed simple-salesforce changed the private step.
    """
    check_upload_data()
    # Typed `wait: int` in the library, which only sleeps it: a fraction of a second works.
    upload_data = cast(Any, handler)._upload_data
    job: IngestJob = upload_data(
        Operation.update, (rows, data), ColumnDelimiter.COMMA, LineEnding.LF, None, wait
    )
    missing = [k for k in _COUNTS if k not in job]
    if missing:
        raise BulkIngestAdapterError(
            f"simple-salesforce's SFBulk2Type._upload_data answered without {missing}: pin "
            "simple-salesforce to 1.12.x or update connectors/salesforce/bulk_ingest.py"
        )
    return job
