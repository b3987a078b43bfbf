"""Shared API budgets: Prefect global concurrency limits with slot decay, used as rate limits.

Every worker and deployment that uses one ColdSend key draws on one budget (100 requests a
minute and 1,000 an hour per key). Each client paces itself from the server's
``X-RateLimit-*`` headers, but processes that share a key only learn of each other's requests
after the fact and can race into 429s. These limits make them queue on the Prefect server
instead: a task takes one slot per request it is about to make (`take_api_budget`), and slots
drain at the budget's rate.

A limit of ``capacity`` slots that decays at ``rate`` slots a second lets through at most
``capacity + rate * window`` requests in any window; each budget here keeps that at or under
the service's own figure, whatever the phase of the service's windows:

- ``coldsend-key-<hash>-minute``: 10 slots, 1.5 a second (at most 10 + 90 = 100 a minute)
- ``coldsend-key-<hash>-hour``: 500 slots, 500 an hour (at most 1,000 an hour; bursts of
  500 go at the minute rate, a sustained load at 500 an hour)

Names carry a short SHA-256 digest of the key, never the key. `ensure_api_budgets` creates
or updates the limits; the deploy step calls it (``prefect deploy`` runs it as a build step
of deployments/prefect.yaml; ``prefect-coldsend budgets`` does it by hand). Without the
limits the tasks still run, paced by the client alone, and Prefect logs that the limits do
not exist.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from prefect.client.orchestration import get_client
from prefect.concurrency.sync import rate_limit

__all__ = [
    "COLDSEND_HOURLY_BURST",
    "ApiBudget",
    "budget_digest",
    "coldsend_budgets",
    "ensure_api_budgets",
    "take_api_budget",
]

COLDSEND_PER_MINUTE = 100
COLDSEND_PER_HOUR = 1_000
COLDSEND_MINUTE_BURST = 10
# Half the hourly budget may go in one burst; the other half refills it over the hour.
COLDSEND_HOURLY_BURST = 500


@dataclass(frozen=True, slots=True)
class ApiBudget:
    """One Prefect global concurrency limit used as a rate limit.

    Attributes:
        name: The limit's name (a digest of the credential, never the credential).
        capacity: Slots; the most requests that may go out at once after a quiet spell.
        per_second: Slots freed each second (the sustained request rate).
        description: What the budget protects, for messages and the README.
    """

    name: str
    capacity: int
    per_second: float
    description: str

    def __post_init__(self) -> None:
        if self.capacity < 1 or self.per_second <= 0:
            raise ValueError(
                f"API budget {self.name!r} needs capacity >= 1 and per_second > 0, got "
                f"{self.capacity} and {self.per_second}"
            )

    def most_in(self, window_seconds: float) -> float:
        """The most requests this budget lets through in any window of that length."""
        return self.capacity + self.per_second * window_seconds


def budget_digest(secret: str) -> str:
    """A short digest naming a credential's budget; the credential cannot be read back from it.

    Keys are long random tokens, so 48 bits of SHA-256 name them without collisions in
    practice and reveal nothing usable.
    """
    return hashlib.sha256(b"prefect-coldsend budget\0" + secret.encode()).hexdigest()[:12]


def coldsend_budgets(
    api_key: str, *, hourly_burst: int = COLDSEND_HOURLY_BURST
) -> tuple[ApiBudget, ApiBudget]:
    """The minute and hour budgets of one ColdSend key.

    Args:
        api_key: The key (only its digest is used).
        hourly_burst: Slots of the hourly limit (1 to 999): a larger burst leaves less of the
            hour for the sustained rate, since burst + rate x 3600 stays at 1,000.
    """
    if not 1 <= hourly_burst < COLDSEND_PER_HOUR:
        raise ValueError(
            f"hourly_burst must be between 1 and {COLDSEND_PER_HOUR - 1}, got {hourly_burst}"
        )
    digest = budget_digest(api_key)
    minute = ApiBudget(
        name=f"coldsend-key-{digest}-minute",
        capacity=COLDSEND_MINUTE_BURST,
        per_second=(COLDSEND_PER_MINUTE - COLDSEND_MINUTE_BURST) / 60,
        description=f"ColdSend key {digest}: {COLDSEND_PER_MINUTE} requests a minute",
    )
    hour = ApiBudget(
        name=f"coldsend-key-{digest}-hour",
        capacity=hourly_burst,
        per_second=(COLDSEND_PER_HOUR - hourly_burst) / 3600,
        description=f"ColdSend key {digest}: {COLDSEND_PER_HOUR:,} requests an hour",
    )
    return minute, hour


def ensure_api_budgets(budgets: Iterable[ApiBudget]) -> list[str]:
    """Create each budget's global concurrency limit, or update it to these figures.

    Idempotent: the deploy step calls it on every deploy. Uses the Prefect API the process is
    pointed at (PREFECT_API_URL).

    Returns:
        The limit names, in order.
    """
    names: list[str] = []
    with get_client(sync_client=True) as client:
        for budget in budgets:
            client.upsert_global_concurrency_limit_by_name(
                budget.name, budget.capacity, slot_decay_per_second=budget.per_second
            )
            names.append(budget.name)
    return names


def take_api_budget(budgets: Sequence[ApiBudget], requests: int) -> None:
    """Wait until the shared budgets allow `requests` more requests, and spend them.

    Called by a task right before a batch of requests (one export, one upload, a listing),
    never per lead. A batch larger than the smallest limit is taken in steps, so it never
    asks for more slots than a limit holds.
    """
    if requests <= 0 or not budgets:
        return
    names = [b.name for b in budgets]
    step = min(b.capacity for b in budgets)
    while requests > 0:
        occupy = min(step, requests)
        rate_limit(names, occupy=occupy)
        requests -= occupy
