"""SalesforceConnection: login recipes, renewal on expiry, typed errors, limits and budget."""

from __future__ import annotations

import logging
import socket

import pytest

from connectors.retry import client_retried
from connectors.salesforce import (
    ApiBudget,
    ApiUsage,
    SalesforceApiError,
    SalesforceAuthError,
    SalesforceBudgetExceeded,
    SalesforceConnection,
    SalesforceConnectionError,
    SalesforceLeadSource,
    SalesforceRequestLimitExceeded,
    parse_limit_info,
)
from connectors.salesforce.connection import SALESFORCE_RETRY_POLICY, bulk_first_wait
from sandbox.salesforce.fixtures import SalesforceSandbox

from .conftest import ConnectionFactory

COUNT = "SELECT COUNT() FROM Lead"


@pytest.mark.parametrize("auth", ["client_credentials", "password", "oauth_password", "session"])
def test_every_login_recipe_reaches_the_api(
    auth: str, salesforce_sandbox: SalesforceSandbox, connect: ConnectionFactory
) -> None:
    salesforce_sandbox.seed(3)
    conn = connect(auth)
    assert conn.call(lambda sf: sf.query(COUNT))["totalSize"] == 3
    # simple-salesforce builds https URLs; the adapter carried them to the http emulator.
    assert conn.client.base_url.startswith("https://127.0.0.1:")


def test_wrong_credentials_fail_clearly_without_echoing_secrets(
    salesforce_sandbox: SalesforceSandbox, connect: ConnectionFactory
) -> None:
    with pytest.raises(SalesforceAuthError, match=r"client-credentials.*invalid_client") as err:
        connect(consumer_secret="wrong-secret-value").client  # noqa: B018
    assert "wrong-secret-value" not in str(err.value)
    with pytest.raises(SalesforceAuthError, match="INVALID_LOGIN") as err:
        connect("password", password="hunter2-wrong").client  # noqa: B018
    assert "hunter2-wrong" not in str(err.value)


def test_repr_and_logs_hold_no_secrets(
    salesforce_sandbox: SalesforceSandbox,
    connect: ConnectionFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    conn = connect("oauth_password")
    conn.call(lambda sf: sf.query(COUNT))
    token = conn.client.session_id
    text = repr(conn) + caplog.text
    for secret in (
        salesforce_sandbox.client_secret,
        salesforce_sandbox.password,
        salesforce_sandbox.security_token,
        token,
    ):
        assert secret not in text


def test_expired_session_is_renewed_once_and_the_call_retried(
    salesforce_sandbox: SalesforceSandbox, conn: SalesforceConnection
) -> None:
    salesforce_sandbox.seed(2)
    old = conn.client.session_id
    conn.call(lambda sf: sf.query(COUNT))
    salesforce_sandbox.expire_tokens()
    salesforce_sandbox.reset_stats()
    assert conn.call(lambda sf: sf.query(COUNT))["totalSize"] == 2
    assert conn.client.session_id != old
    assert salesforce_sandbox.stats()["requests"] == {"GET /services/data/v{version}/query/": 2}


def test_expiry_during_a_paged_read_continues_with_a_new_session(
    salesforce_sandbox: SalesforceSandbox, conn: SalesforceConnection
) -> None:
    ids = salesforce_sandbox.seed(4500)
    records = conn.query_records("SELECT Id FROM Lead ORDER BY SystemModstamp, Id")
    first = [next(records)["Id"] for _ in range(2500)]
    salesforce_sandbox.expire_tokens()
    assert first + [r["Id"] for r in records] == ids


def test_bare_session_id_cannot_be_renewed_and_says_so(
    salesforce_sandbox: SalesforceSandbox, connect: ConnectionFactory
) -> None:
    conn = connect("session")
    conn.call(lambda sf: sf.query(COUNT))
    salesforce_sandbox.expire_tokens()
    with pytest.raises(SalesforceAuthError, match="only a session id") as err:
        conn.call(lambda sf: sf.query(COUNT))
    assert err.value.error_code == "INVALID_SESSION_ID"


def test_usage_is_read_from_sforce_limit_info(
    salesforce_sandbox: SalesforceSandbox, conn: SalesforceConnection
) -> None:
    salesforce_sandbox.set_limits(daily_limit=1000, used=400)
    conn.call(lambda sf: sf.query(COUNT))
    assert conn.usage == ApiUsage(used=401, limit=1000)
    assert conn.usage.remaining == 599
    assert parse_limit_info("api-usage=7/15000; per-app-api-usage=1/100(appName=x)") == ApiUsage(
        7, 15000
    )
    assert parse_limit_info("garbage") is None


def test_daily_limit_reached_is_a_typed_error_and_not_retried(
    salesforce_sandbox: SalesforceSandbox, conn: SalesforceConnection
) -> None:
    conn.client  # noqa: B018  (log in first)
    salesforce_sandbox.set_limits(daily_limit=50, used=50)
    salesforce_sandbox.reset_stats()
    with pytest.raises(SalesforceRequestLimitExceeded, match="daily API request limit") as err:
        conn.call(lambda sf: sf.query(COUNT))
    assert err.value.status == 403
    assert err.value.error_code == "REQUEST_LIMIT_EXCEEDED"
    assert salesforce_sandbox.stats()["total"] == 1


def test_budget_refuses_a_read_needing_too_much_of_what_is_left(
    salesforce_sandbox: SalesforceSandbox, conn: SalesforceConnection
) -> None:
    salesforce_sandbox.seed(9000)
    salesforce_sandbox.set_limits(daily_limit=1000, used=990)
    salesforce_sandbox.reset_stats()
    source = SalesforceLeadSource(conn)
    with pytest.raises(SalesforceBudgetExceeded) as err:
        source.read()
    message = str(err.value)
    # describe + COUNT() leave 8; 5 pages of 2,000 is more than half of them.
    assert "needs about 5 API requests" in message
    assert "50% of the 8 left today (992 of 1000 used)" in message
    assert set(salesforce_sandbox.stats()["requests"]) == {
        "GET /services/data/v{version}/sobjects/{object}/describe",
        "GET /services/data/v{version}/query/",
    }
    # A larger share lets the same read through.
    assert sum(1 for _ in SalesforceLeadSource(conn, budget=ApiBudget(share=1.0)).read()) == 9000


def test_budget_share_is_validated() -> None:
    with pytest.raises(ValueError, match="share"):
        ApiBudget(share=0)
    assert ApiBudget(0.5).allowed(ApiUsage(used=10, limit=111)) == 50


def test_server_errors_keep_status_and_body(
    salesforce_sandbox: SalesforceSandbox, conn: SalesforceConnection
) -> None:
    conn.client  # noqa: B018
    salesforce_sandbox.set_faults(
        error_rate=1.0, error_statuses=[503], path_prefix="/services/data"
    )
    with pytest.raises(SalesforceApiError, match="HTTP 503") as err:
        conn.call(lambda sf: sf.query(COUNT))
    assert err.value.status == 503


def test_server_errors_are_retried_by_the_one_retry_layer(
    salesforce_sandbox: SalesforceSandbox,
) -> None:
    waits: list[float] = []
    conn = SalesforceConnection(**salesforce_sandbox.connection_kwargs(), sleep=waits.append)
    conn.client  # noqa: B018
    salesforce_sandbox.set_faults(
        error_rate=1.0, error_statuses=[503], path_prefix="/services/data"
    )
    before = conn.request_count
    with pytest.raises(SalesforceApiError, match="HTTP 503") as err:
        conn.call(lambda sf: sf.query(COUNT))
    assert conn.request_count - before == 1 + SALESFORCE_RETRY_POLICY.max_retries
    assert len(waits) == SALESFORCE_RETRY_POLICY.max_retries
    assert client_retried(err.value)  # so no Prefect task retry repeats the four attempts


def test_a_closed_port_fails_after_two_short_retries() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    waits: list[float] = []
    conn = SalesforceConnection(
        session_id="token", instance_url=f"http://127.0.0.1:{port}", sleep=waits.append
    )
    with pytest.raises(SalesforceConnectionError, match="after 3 attempts") as err:
        conn.call(lambda sf: sf.query(COUNT))
    assert len(waits) == 2 and sum(waits) <= 1.5
    assert err.value.__cause__ is None and "token" not in str(err.value)


def test_invalid_arguments_are_refused_early() -> None:
    with pytest.raises(ValueError, match="needs username"):
        SalesforceConnection(username="u")
    with pytest.raises(ValueError, match="login_url"):
        SalesforceConnection(consumer_key="k", consumer_secret="s", domain="https://x")
    with pytest.raises(ValueError, match="api_version"):
        SalesforceConnection(session_id="t", instance_url="https://x", api_version="v59.0")
    conn = SalesforceConnection(consumer_key="k", consumer_secret="s", domain="acme.my")
    assert conn.login_base == "https://acme.my.salesforce.com"


@pytest.mark.parametrize(
    ("records", "configured", "expected"),
    [(0, None, 0.5), (5_000, None, 1.0), (20_000, None, 2.5), (200_000, None, 5.0), (5_000, 0, 0)],
)
def test_bulk_first_wait_grows_with_the_job_unless_configured(
    records: int, configured: float | None, expected: float
) -> None:
    assert bulk_first_wait(records, configured) == expected
