"""The hook through which connectors spend a request budget shared with other processes.

Each connector paces itself (RequestPacer, RollingWindow, header-based pacing), but processes
that share one Google user, HubSpot app or Salesforce org only learn of each other's
requests after the fact. A connector given a `SharedBudget` calls `take` right before each
request it sends (retries included), and the budget waits until the shared figure allows
it. The Prefect layer fills it with global concurrency limits (flows/budgets.py `ApiSpend`);
nothing here knows of Prefect.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["SharedBudget"]


class SharedBudget(Protocol):
    """Requests spent from a budget shared with other processes."""

    def take(self, requests: int, kind: str = "api") -> None:
        """Wait until the shared budget allows `requests` more requests of `kind`; spend them.

        Args:
            requests: Requests about to be sent (or already sent, when settling extras).
            kind: Which requests: "api" for any, "search" for HubSpot CRM searches (which
                also count as "api" requests).
        """
