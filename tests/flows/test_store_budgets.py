"""Shared API budgets of the lead stores' accounts: Google user, HubSpot app, Salesforce org."""

from __future__ import annotations

import logging
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from prefect import get_client

from blocks import (
    GoogleSheetLeads,
    GoogleSheetsCredentials,
    HubSpotContacts,
    HubSpotCredentials,
    SalesforceCredentials,
    SalesforceLeads,
)
from blocks.budgets import (
    HUBSPOT_LAG_SECONDS,
    SLOTS_PER_REQUEST,
    ApiBudget,
    budget_digest,
    ensure_api_budgets,
    hubspot_budgets,
    salesforce_budgets,
    sheets_budgets,
)
from connectors.hubspot import HubSpotLimits
from connectors.leads import Lead
from flows import budgets as flow_budgets
from flows.budgets import ApiSpend, create_api_budgets, store_budget
from sandbox.hubspot.fixtures import HubSpotSandbox
from sandbox.salesforce.fixtures import SalesforceSandbox
from sandbox.sheets.fixtures import SheetsSandbox
from tests._stack import Stack

# -- figures ----------------------------------------------------------------------------------


def test_a_google_user_never_gets_more_than_60_requests_in_any_minute() -> None:
    (minute,) = sheets_budgets("service-account\0leads@acme.iam.gserviceaccount.com")
    assert minute.most_in(60) <= 60
    assert (minute.capacity, minute.per_second * 60) == (6, pytest.approx(54))
    assert minute.name.startswith("google-sheets-user-") and minute.name.endswith("-minute")


@pytest.mark.parametrize("bucket", [100, 190])
def test_a_hubspot_app_stays_within_its_bucket_and_its_searches(bucket: int) -> None:
    ten, search = hubspot_budgets("pat-na1-secret", HubSpotLimits(per_ten_seconds=bucket))
    # Even for a request reaching HubSpot a quarter of a second after its slot was taken.
    assert ten.most_in(10 + HUBSPOT_LAG_SECONDS) <= bucket
    assert search.most_in(1 + HUBSPOT_LAG_SECONDS) <= 5
    assert ten.capacity == bucket // 10
    # Every request counts in the bucket; only searches in the search budget.
    assert ten.counts("api") and ten.counts("search")
    assert search.counts("search") and not search.counts("api")


def test_a_salesforce_org_spends_at_most_its_share_of_the_allocation_in_any_24_hours() -> None:
    (day,) = salesforce_budgets("org\0" + "00D000000000001", daily_allocation=100_000, share=0.4)
    assert day.most_in(86_400) <= 40_000
    assert day.capacity == 20_000  # half may go at once, the other half refills over the day
    assert day.name.endswith("-day")
    with pytest.raises(ValueError, match="share must be in"):
        salesforce_budgets("x", share=0)


def test_names_carry_a_digest_of_the_account_never_a_secret() -> None:
    token = "pat-na1-" + uuid.uuid4().hex
    sheets = GoogleSheetsCredentials(access_token=token).api_budgets()
    hubspot = HubSpotCredentials(access_token=token).api_budgets()
    names = [b.name for b in (*sheets, *hubspot)]
    assert all(token not in n and token[8:20] not in n for n in names)
    # One budget per account: another token is another user, another app.
    other = HubSpotCredentials(access_token="pat-na1-" + uuid.uuid4().hex).api_budgets()
    assert not {b.name for b in hubspot} & {b.name for b in other}


def test_a_service_account_is_named_by_its_email_whatever_key_it_holds() -> None:
    def block(key: str) -> GoogleSheetsCredentials:
        info = {"client_email": "leads@acme.iam", "private_key": key, "token_uri": "x"}
        return GoogleSheetsCredentials(service_account_info=info)

    assert block("k1").api_budgets() == block("k2").api_budgets()
    assert budget_digest("k1") not in block("k1").api_budgets()[0].name


def test_every_block_of_one_salesforce_org_shares_its_daily_budget() -> None:
    def block(**kwargs: Any) -> SalesforceCredentials:
        return SalesforceCredentials(**{"username": "u@acme.com", "password": "p", **kwargs})

    by_id = block(org_id="00D5g000001abcdEAA").api_budgets()
    assert by_id == block(org_id="00D5g000001abcd").api_budgets()  # 18 or 15 characters
    assert by_id != block().api_budgets()
    # Without an org id, the login host and the user name it (a username is one org's).
    assert block().api_budgets() == block(username="U@ACME.com").api_budgets()
    assert block().api_budgets() != block(domain="test").api_budgets()
    (day,) = block(daily_api_allocation=200_000, daily_api_share=0.25).api_budgets()
    assert (day.capacity, day.most_in(86_400)) == (25_000, pytest.approx(50_000))


# -- on the Prefect server --------------------------------------------------------------------


def _limit(name: str) -> tuple[float, float]:
    with get_client(sync_client=True) as client:
        found = client.read_global_concurrency_limit_by_name(name)
    return found.limit / SLOTS_PER_REQUEST, found.slot_decay_per_second / SLOTS_PER_REQUEST


@pytest.mark.usefixtures("limits_and_automations_made_here_removed")
def test_the_deploy_step_creates_the_budgets_of_the_deployed_lead_store(stack: Stack) -> None:
    sheet = stack.sheet_store(stack.sheets.create_spreadsheet())
    salesforce = stack.salesforce_store()
    hubspot = f"hubspot-contacts/hs-{stack.tag}"
    credentials = HubSpotCredentials(access_token=f"pat-{stack.tag}", requests_per_ten_seconds=190)
    HubSpotContacts(credentials=credentials).save(hubspot.split("/")[1], overwrite=True)

    for store, expected in [
        (sheet, [(6, 0.9)]),
        (salesforce, [(3_750, 3_750 / 86_400)]),
        (hubspot, [(19, 171 / 10.25), (1, 4 / 1.25)]),
    ]:
        step = create_api_budgets(coldsend=stack.coldsend_block, lead_store=store)
        names = step["api_budgets"]
        assert names[0].startswith("coldsend-key-")  # the key's, as before
        created = [_limit(name) for name in names[2:]]
        assert created == [(c, pytest.approx(r)) for c, r in expected], store

    # Without a lead store (COLDSEND_LEAD_STORE empty), the key's budgets alone.
    assert len(create_api_budgets(coldsend=stack.coldsend_block)["api_budgets"]) == 2


def _read_concurrently(store: GoogleSheetLeads, readers: int, reads: int) -> list[int]:
    """`readers` threads, each reading the sheet `reads` times through the flows' budget."""
    done: list[int] = []
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            for _ in range(reads):
                leads = [
                    x for x in store.lead_source(store_budget(store)).read() if isinstance(x, Lead)
                ]
                done.append(len(leads))
        except BaseException as exc:  # reported by the test, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(readers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors
    assert not any(thread.is_alive() for thread in threads)
    return done


def test_two_readers_of_one_google_user_stay_within_the_shared_budget(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A small, fast budget for the test: at most 2 + 4 x 1 = 6 requests in any second.
    budget = ApiBudget(
        name=f"test-sheets-{stack.tag}", capacity=2, per_second=4.0, description="test"
    )
    monkeypatch.setattr("blocks.sheets.sheets_budgets", lambda user: (budget,))
    ensure_api_budgets([budget])
    sheets: SheetsSandbox = stack.sheets
    sheet_id = sheets.create_spreadsheet(
        sheets={"Sheet1": [["Email"], ["a@example.com"], ["b@example.com"]]}
    )
    store = GoogleSheetLeads(
        credentials=GoogleSheetsCredentials(api_base_url=sheets.url), spreadsheet_id=sheet_id
    )
    # The user's quota in the sandbox: what the budget lets through in any window of 1 s,
    # plus the budget's refill over one more second for a request sent late (busy machine).
    sheets.set_limits(reads_per_minute=10, window_seconds=1.0)
    sheets.reset_stats()

    done = _read_concurrently(store, readers=2, reads=4)

    stats = sheets.stats()
    assert done == [2] * 8
    assert stats["total"] == 16  # metadata and values per read: nothing retried
    assert stats.get("rate_limited", 0) == 0


def test_without_the_limit_a_store_still_reads_and_says_so_once(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    missing = ApiBudget(
        name=f"test-missing-sheets-{stack.tag}", capacity=5, per_second=1.0, description="x"
    )
    monkeypatch.setattr("blocks.sheets.sheets_budgets", lambda user: (missing,))
    sheet_id = stack.sheets.create_spreadsheet(sheets={"Sheet1": [["Email"], ["a@example.com"]]})
    store = GoogleSheetLeads(
        credentials=GoogleSheetsCredentials(api_base_url=stack.sheets.url),
        spreadsheet_id=sheet_id,
    )
    with caplog.at_level(logging.WARNING, logger=flow_budgets.logger.name):
        done = _read_concurrently(store, readers=2, reads=2)
    assert done == [1] * 4
    warnings = [r.getMessage() for r in caplog.records if missing.name in r.getMessage()]
    assert len(warnings) == 1 and "prefect deploy" in warnings[0]


class _Tally(ApiSpend):
    """The flows' budget, recording each take instead of asking a Prefect server."""

    def __init__(self, budgets: tuple[ApiBudget, ...]) -> None:
        super().__init__(budgets)
        self.takes: list[tuple[str, int]] = []

    def take(self, requests: int, kind: str = "api") -> None:
        self.takes.append((kind, requests))


def test_every_hubspot_request_is_paid_for_searches_from_the_search_budget_too(
    hubspot_sandbox: HubSpotSandbox,
) -> None:
    store = HubSpotContacts(
        credentials=HubSpotCredentials(
            access_token=hubspot_sandbox.token, base_url=hubspot_sandbox.url
        )
    )
    hubspot_sandbox.seed(250)
    hubspot_sandbox.reset_stats()
    full, incremental = _Tally(store.api_budgets()), _Tally(store.api_budgets())

    read = [x for x in store.lead_source(full).read() if isinstance(x, Lead)]
    since = datetime(2000, 1, 1, tzinfo=UTC)
    again = [x for x in store.lead_source(incremental).read(since=since) if isinstance(x, Lead)]

    stats = hubspot_sandbox.stats()
    searches = sum(n for route, n in stats["requests"].items() if route.endswith("/search"))
    assert len(read) == len(again) == 250 and searches >= 2
    # One take per request the sandbox received, each of its kind; nothing settled later.
    assert len(full.takes) + len(incremental.takes) == stats["total"]
    assert {n for _, n in full.takes + incremental.takes} == {1}
    assert sum(kind == "search" for kind, _ in incremental.takes) == searches
    assert all(kind == "api" for kind, _ in full.takes)
    # The search budget counts searches only; the 10-second bucket counts everything.
    ten, search = store.api_budgets()
    assert (ten.counts("api"), ten.counts("search")) == (True, True)
    assert (search.counts("api"), search.counts("search")) == (False, True)


@pytest.mark.parametrize("bulk", [False, True], ids=["rest", "bulk"])
def test_every_salesforce_api_request_is_paid_for_bulk_steps_and_pages_after_the_fact(
    salesforce_sandbox: SalesforceSandbox, bulk: bool
) -> None:
    store = SalesforceLeads(
        credentials=SalesforceCredentials(**salesforce_sandbox.connection_kwargs()),
        bulk_threshold=50 if bulk else 10_000,
    )
    salesforce_sandbox.seed(120)
    salesforce_sandbox.reset_stats()
    tally = _Tally(store.api_budgets())

    source = store.lead_source(tally)
    read = list(source.read())

    stats = salesforce_sandbox.stats()
    assert len(read) == 120 and stats["api_usage"] >= 3  # describe, count, read
    # Every request the org counts against its allocation, paid once: one before each
    # call, the rest (query pages, the Bulk 2.0 job's steps and polls) right after.
    assert sum(n for _, n in tally.takes) == stats["api_usage"]
    if bulk:
        assert any(n > 1 for _, n in tally.takes)  # a job's steps settled in one take


def test_an_org_reporting_another_allocation_than_its_budget_assumes_is_named_once(
    salesforce_sandbox: SalesforceSandbox, caplog: pytest.LogCaptureFixture
) -> None:
    salesforce_sandbox.set_limits(daily_limit=100_000)
    salesforce_sandbox.seed(5)
    store = SalesforceLeads(
        credentials=SalesforceCredentials(**salesforce_sandbox.connection_kwargs())
    )
    with caplog.at_level(logging.WARNING, logger="connectors.salesforce.connection"):
        assert len(list(store.lead_source(_Tally(store.api_budgets())).read())) == 5
        list(store.lead_source(None).read())  # no shared budget: nothing to say
    said = [r.getMessage() for r in caplog.records if "daily API allocation" in r.getMessage()]
    assert said == [
        "The Salesforce org reports a daily API allocation of 100,000 requests; its shared "
        "budget is sized for 15,000: set daily_api_allocation=100000 on the Salesforce "
        "Credentials block and deploy again."
    ]
