"""Spending the shared API budgets from tasks, and creating them at deploy time.

Tasks open their ColdSend client with `budgeted_client(credentials, expect=N)`: it takes N
slots of the key's budgets (blocks/budgets.py) before the first request and, when the block
ends, the slots of any request the client made beyond them (pages, retries). `ApiSpend` does
the same for a task that spends as it goes (job polling).

A lead store's connectors spend their account's budgets (Google user, HubSpot app,
Salesforce org) request by request through `store_budget(store)`, an `ApiSpend` handed to
the store's `lead_source` / `status_sink` / `activity_sink`.

`ensure_budgets_for` is the one place the limits are created from saved blocks: the deploy
build step of deployments/prefect.yaml (`create_api_budgets`) and the CLI call it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound

from blocks.budgets import SLOTS_PER_REQUEST, ApiBudget, ensure_api_budgets, take_api_budget
from blocks.coldsend import ColdSendCredentials
from blocks.leads import LeadStore
from connectors.coldsend import ColdSendClient
from flows._common import load_coldsend, load_lead_store

__all__ = [
    "ApiSpend",
    "budgeted_client",
    "create_api_budgets",
    "ensure_budgets_for",
    "ensure_store_budgets",
    "store_budget",
]

logger = logging.getLogger("prefect_coldsend.budgets")

# Whether each set of limits exists on the server, asked once per process: a missing limit
# then costs one warning that says how to create it, not one per task.
_exists: dict[tuple[str, ...], bool] = {}
_exists_lock = threading.Lock()


def _limits_exist(budgets: Sequence[ApiBudget]) -> bool:
    names = tuple(b.name for b in budgets)
    # Held while asking: threads of one process (parallel tasks, a store's connectors) asking
    # at once would each warn otherwise. Asked once per process and set of names.
    with _exists_lock:
        known = _exists.get(names)
        if known is not None:
            return known
        missing: list[str] = []
        older: list[ApiBudget] = []
        with get_client(sync_client=True) as client:
            for budget in budgets:
                try:
                    found = client.read_global_concurrency_limit_by_name(budget.name)
                except ObjectNotFound:
                    missing.append(budget.name)
                    continue
                if found.limit < SLOTS_PER_REQUEST:
                    # Made by a version counting one slot per request: too small for one
                    # request now. Put in this version's units (same figures), as a deploy would.
                    older.append(budget)
        if older:
            ensure_api_budgets(older)
            logger.info(
                "Shared API budgets %s were in an older version's units: updated.",
                ", ".join(b.name for b in older),
            )
        if missing:
            logger.warning(
                "No shared API budget on this Prefect server (%s): requests are paced by this "
                "process alone. Create the limits with `prefect deploy` (the create_api_budgets "
                "build step of deployments/prefect.yaml) or flows.budgets.ensure_budgets_for().",
                ", ".join(missing),
            )
        _exists[names] = not missing
        return not missing


class ApiSpend:
    """Slots taken from a set of budgets so far, by one task (or one connector).

    Implements `connectors.shared_budget.SharedBudget`: a connector given it calls `take`
    right before each request.

    Args:
        budgets: The budgets the requests draw on (each counts the kinds it names).
    """

    def __init__(self, budgets: Sequence[ApiBudget]) -> None:
        self.budgets = tuple(budgets)
        self.taken = 0
        self._active: bool | None = None
        self._lock = threading.Lock()

    def spend(self, requests: int) -> None:
        """Wait for the budgets to allow `requests` more requests, and spend them."""
        self.take(requests)

    def take(self, requests: int, kind: str = "api") -> None:
        """Wait for the budgets counting `kind` to allow `requests` more, and spend them."""
        if requests <= 0 or not self.budgets:
            return
        if self._active is None:
            self._active = _limits_exist(self.budgets)
        if self._active:
            take_api_budget([b for b in self.budgets if b.counts(kind)], requests)
        with self._lock:
            self.taken += requests

    def settle(self, made: int) -> None:
        """Spend the slots of requests made beyond those taken (pages, retries)."""
        self.spend(made - self.taken)

    def sleep_then_spend(self, seconds: float) -> None:
        """A `sleep` for polling loops: each poll that follows the sleep is paid for."""
        time.sleep(seconds)
        self.spend(1)


@contextmanager
def budgeted_client(
    credentials: ColdSendCredentials, expect: int = 1, **kwargs: Any
) -> Iterator[ColdSendClient]:
    """A new ColdSend client whose requests are paid for from the key's shared budgets.

    Args:
        credentials: The ColdSend credentials block.
        expect: Requests the caller is about to make; taken before the client is handed over.
        **kwargs: Passed to `ColdSendCredentials.get_client`.
    """
    spend = ApiSpend(credentials.api_budgets())
    spend.spend(expect)
    with credentials.get_client(**kwargs) as client:
        try:
            yield client
        finally:
            spend.settle(client.request_count)


def store_budget(store: LeadStore) -> ApiSpend | None:
    """The shared budgets a lead store's connectors spend from (None for a file)."""
    budgets = store.api_budgets()
    return ApiSpend(budgets) if budgets else None


def ensure_budgets_for(
    coldsend: str | None = None,
    *,
    lead_stores: Iterable[str | LeadStore] = (),
    extra: Iterable[ApiBudget] = (),
) -> list[str]:
    """Create or update the shared API budgets of the saved credentials; returns the limit names.

    Args:
        coldsend: A ColdSend Credentials block name (None: COLDSEND_API_KEY, then the block
            named ``default``, as the flows resolve it).
        lead_stores: Lead stores (``"salesforce-leads/acme"`` or blocks) whose accounts'
            budgets to create too: a Google user, a HubSpot app, a Salesforce org.
        extra: Further budgets to create (other accounts).
    """
    budgets = [*load_coldsend(coldsend).api_budgets(), *extra]
    return ensure_store_budgets(lead_stores, budgets)


def ensure_store_budgets(
    lead_stores: Iterable[str | LeadStore], also: Iterable[ApiBudget] = ()
) -> list[str]:
    """Create or update the shared budgets of the lead stores' accounts (and `also`).

    Stores of one account (two sheets of one Google user) share its limits: each is
    created once. Returns the limit names.
    """
    unique: dict[str, ApiBudget] = {}
    for budget in also:
        unique.setdefault(budget.name, budget)
    for store in lead_stores:
        for budget in load_lead_store(store).api_budgets():
            unique.setdefault(budget.name, budget)
    return ensure_api_budgets(unique.values()) if unique else []


def create_api_budgets(coldsend: str = "", lead_store: str = "") -> dict[str, list[str]]:
    """Deployment build step: `prefect deploy` creates the budgets of the deployed key and
    of the deployed lead store's account.

    In deployments/prefect.yaml::

        build:
          - flows.budgets.create_api_budgets:
              coldsend: "{{ $COLDSEND_BLOCK }}"
              lead_store: "{{ $COLDSEND_LEAD_STORE }}"
    """
    names = ensure_budgets_for(coldsend or None, lead_stores=[lead_store] if lead_store else [])
    print(f" > API budgets (global concurrency limits): {', '.join(names)}")
    return {"api_budgets": names}
