"""The adapter around simple-salesforce's private Bulk 2.0 upload step fails loudly if it changes."""

from __future__ import annotations

import inspect

import pytest
from simple_salesforce.bulk2 import SFBulk2Type

from connectors.salesforce import SalesforceConnection
from connectors.salesforce.bulk_ingest import (
    EXPECTED_PARAMETERS,
    BulkIngestAdapterError,
    check_upload_data,
    run_update_job,
)
from sandbox.salesforce.fixtures import SalesforceSandbox


def test_the_installed_release_has_the_private_step_this_connector_codes_against() -> None:
    # Fails on a simple-salesforce release (the range allows any 1.x) that renamed, removed or
    # re-ordered the parameters of SFBulk2Type._upload_data: pin it or update bulk_ingest.py.
    assert tuple(inspect.signature(SFBulk2Type._upload_data).parameters) == EXPECTED_PARAMETERS
    check_upload_data()


def test_a_changed_signature_is_refused_with_the_fix_named(monkeypatch: pytest.MonkeyPatch) -> None:
    def _upload_data(self: object, operation: object, data: object) -> None:  # a "new release"
        raise AssertionError("must not be called")

    check_upload_data.cache_clear()
    monkeypatch.setattr(SFBulk2Type, "_upload_data", _upload_data)
    try:
        with pytest.raises(BulkIngestAdapterError, match=r"pin simple-salesforce to 1\.12"):
            run_update_job(SFBulk2Type.__new__(SFBulk2Type), 1, "Id\n", wait=0)
    finally:
        check_upload_data.cache_clear()


def test_the_step_runs_an_update_job_and_reports_its_counts(
    salesforce_sandbox: SalesforceSandbox, conn: SalesforceConnection
) -> None:
    ids = salesforce_sandbox.seed(3)
    data = "Id,ColdSend_Status__c\n" + "".join(f"{rid},SENT\n" for rid in ids)

    job = conn.call(lambda sf: run_update_job(sf.bulk2.Lead, len(ids), data, wait=0))

    assert job["job_id"]
    assert (job["numberRecordsTotal"], job["numberRecordsProcessed"]) == (3, 3)
    assert job["numberRecordsFailed"] == 0
    held = conn.call(lambda sf: sf.query("SELECT Id, ColdSend_Status__c FROM Lead"))["records"]
    assert {r["ColdSend_Status__c"] for r in held if r["Id"] in set(ids)} == {"SENT"}
