"""Shared API budgets: Prefect global concurrency limits with slot decay, used as rate limits.

Every worker and deployment that uses one account draws on one budget: one ColdSend key, one
Google user, one HubSpot private app, one Salesforce org. Each client paces itself (from the
service's headers or its own window), but processes that share an account only learn of
each other's requests after the fact and can race into 429s or overspend. These limits make
them queue on the Prefect server instead: a task (or a connector, through
`connectors.shared_budget.SharedBudget`) takes one slot per request it is about to make
(`take_api_budget`), and slots drain at the budget's rate.

A limit of ``capacity`` slots that decays at ``rate`` slots a second lets through at most
``capacity + rate * window`` requests in any window; each budget here keeps that at or under
the service's own figure, whatever the phase of the service's windows:

- ``coldsend-key-<hash>-minute``: 10 slots, 1.5 a second (at most 10 + 90 = 100 a minute)
- ``coldsend-key-<hash>-hour``: 500 slots, 500 an hour (at most 1,000 an hour; bursts of
  500 go at the minute rate, a sustained load at 500 an hour)
- ``google-sheets-user-<hash>-minute``: 6 slots, 0.9 a second (at most 6 + 54 = 60 a minute,
  reads and writes together, as the connector's own pacer counts them)
- ``hubspot-app-<hash>-ten-seconds``: a tenth of the app's bucket (10 of 100, 19 of 190), the
  rest spread over 10.25 s (at most the bucket in any 10 s, even for a request reaching
  HubSpot a quarter of a second after its slot was taken)
- ``hubspot-app-<hash>-search``: 1 slot, 3.2 a second (5 searches a second, the same way)
- ``salesforce-org-<hash>-day``: half of the share of the daily allocation this project may
  spend (default 0.5 x 15,000), the other half over 24 hours (at most the share in any
  rolling 24 hours, Salesforce's own window)

Prefect applies decay in whole slots since the limit last changed, and every take or refusal
changes it: a budget freeing one slot every few seconds would never drain while requests keep
coming. So each request is `SLOTS_PER_REQUEST` slots on the server (``prefect gcl ls`` shows
thousandths of a request), and the refill is lost only in thousandths.

Names carry a short SHA-256 digest of the credential or account, never a secret.
`ensure_api_budgets` creates or updates the limits; the deploy step calls it (``prefect
deploy`` runs it as a build step of deployments/prefect.yaml; ``prefect-coldsend deploy``
does it too). Without the limits the tasks still run, paced by the clients alone, and say
once which limits are missing.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import httpx
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.settings import PREFECT_API_URL

from connectors.hubspot.pacing import HubSpotLimits
from connectors.sheets.calls import SHEETS_REQUESTS_PER_MINUTE

__all__ = [
    "COLDSEND_HOURLY_BURST",
    "SALESFORCE_DAILY_ALLOCATION",
    "SALESFORCE_DAILY_SHARE",
    "SLOTS_PER_REQUEST",
    "ApiBudget",
    "budget_digest",
    "coldsend_budgets",
    "ensure_api_budgets",
    "hubspot_budgets",
    "salesforce_budgets",
    "sheets_budgets",
    "take_api_budget",
]

# Slots on the Prefect server per request: decay counts in whole slots (module docstring).
SLOTS_PER_REQUEST = 1_000
# The largest limit a server column holds (PostgreSQL integer), in requests.
MAX_CAPACITY = (2**31 - 1) // SLOTS_PER_REQUEST

COLDSEND_PER_MINUTE = 100
COLDSEND_PER_HOUR = 1_000
COLDSEND_MINUTE_BURST = 10
# Half the hourly budget may go in one burst; the other half refills it over the hour.
COLDSEND_HOURLY_BURST = 500

# A Google user's burst; the rest of the minute's 60 refills at 0.9 a second.
SHEETS_MINUTE_BURST = 6

# A request may reach HubSpot this long after its slot was taken (sending it, a busy
# machine): each window is stretched by it, so the bucket holds at arrival time too.
HUBSPOT_LAG_SECONDS = 0.25

# Salesforce: the smallest daily allocation of an org with API access (Developer Edition),
# so the default can never let this project spend more than the share of any org's
# allocation; set the org's own figure on the credentials block (Setup > Company
# Information > API Requests, Last 24 Hours: the maximum).
SALESFORCE_DAILY_ALLOCATION = 15_000
# The share of the daily allocation this project's flows together may spend in any 24
# hours; the rest stays for the org's other integrations and people.
SALESFORCE_DAILY_SHARE = 0.5
DAY_SECONDS = 86_400


@dataclass(frozen=True, slots=True)
class ApiBudget:
    """One Prefect global concurrency limit used as a rate limit.

    Figures are in requests; the server holds `SLOTS_PER_REQUEST` slots per request
    (`limit_slots`, `decay_slots`).

    Attributes:
        name: The limit's name (a digest of the credential, never the credential).
        capacity: The most requests that may go out at once after a quiet spell.
        per_second: Requests freed each second (the sustained request rate).
        description: What the budget protects, for messages and the README.
        kinds: The kinds of request it counts (e.g. {"search"}); None counts every request.
    """

    name: str
    capacity: int
    per_second: float
    description: str
    kinds: frozenset[str] | None = None

    def __post_init__(self) -> None:
        if self.capacity < 1 or self.per_second <= 0:
            raise ValueError(
                f"API budget {self.name!r} needs capacity >= 1 and per_second > 0, got "
                f"{self.capacity} and {self.per_second}"
            )
        if self.capacity > MAX_CAPACITY:
            raise ValueError(
                f"API budget {self.name!r}: capacity {self.capacity:,} is above the "
                f"{MAX_CAPACITY:,} requests a Prefect limit can hold"
            )

    @property
    def limit_slots(self) -> int:
        """The Prefect limit's size in slots."""
        return self.capacity * SLOTS_PER_REQUEST

    @property
    def decay_slots(self) -> float:
        """The Prefect limit's slot decay per second."""
        return self.per_second * SLOTS_PER_REQUEST

    def counts(self, kind: str) -> bool:
        """Whether a request of `kind` draws on this budget."""
        return self.kinds is None or kind in self.kinds

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


def sheets_budgets(user: str) -> tuple[ApiBudget]:
    """The per-minute budget of one Google user (60 requests a minute, reads and writes).

    Args:
        user: What identifies the user to Google: the service account's email, or the
            access token (only its digest is used).
    """
    digest = budget_digest(user)
    per_minute = SHEETS_REQUESTS_PER_MINUTE
    return (
        ApiBudget(
            name=f"google-sheets-user-{digest}-minute",
            capacity=SHEETS_MINUTE_BURST,
            per_second=(per_minute - SHEETS_MINUTE_BURST) / 60,
            description=f"Google Sheets user {digest}: {per_minute} requests a minute",
        ),
    )


def hubspot_budgets(token: str, limits: HubSpotLimits) -> tuple[ApiBudget, ApiBudget]:
    """The rolling 10-second bucket and the search budget of one HubSpot private app.

    Args:
        token: The app's access token or service key (only its digest is used).
        limits: The account's plan limits (the credentials block's settings).
    """
    digest = budget_digest(token)
    bucket = limits.per_ten_seconds
    burst = max(1, bucket // 10)
    searches = limits.searches_per_second
    ten = ApiBudget(
        name=f"hubspot-app-{digest}-ten-seconds",
        capacity=burst,
        per_second=max(bucket - burst, 1) / (10 + HUBSPOT_LAG_SECONDS),
        description=f"HubSpot app {digest}: {bucket} requests per 10 seconds",
    )
    search = ApiBudget(
        name=f"hubspot-app-{digest}-search",
        capacity=1,
        per_second=max(searches - 1, 1) / (1 + HUBSPOT_LAG_SECONDS),
        description=f"HubSpot app {digest}: {searches} searches a second",
        kinds=frozenset({"search"}),
    )
    return ten, search


def salesforce_budgets(
    org: str,
    *,
    daily_allocation: int = SALESFORCE_DAILY_ALLOCATION,
    share: float = SALESFORCE_DAILY_SHARE,
) -> tuple[ApiBudget]:
    """The day-scale budget of one Salesforce org: at most `share` of its daily allocation
    in any 24 hours.

    Half of that may go in one burst; the other half refills it over 24 hours, so a burst
    followed by a day of steady use still stays within the share (burst + rate x 24 h).

    Args:
        org: What identifies the org: its id, or the login host and user (digest only).
        daily_allocation: The org's daily API request allocation.
        share: The part of it (0 < share <= 1) this project's flows may spend together.
    """
    if daily_allocation < 2:
        raise ValueError(f"daily_allocation must be at least 2, got {daily_allocation}")
    if not 0 < share <= 1:
        raise ValueError(f"share must be in (0, 1], got {share}")
    digest = budget_digest(org)
    allowed = math.floor(daily_allocation * share)
    burst = min(max(1, allowed // 2), MAX_CAPACITY)
    return (
        ApiBudget(
            name=f"salesforce-org-{digest}-day",
            capacity=burst,
            per_second=max(allowed - burst, 1) / DAY_SECONDS,
            description=(
                f"Salesforce org {digest}: {allowed:,} requests a day "
                f"({share:.0%} of {daily_allocation:,})"
            ),
        ),
    )


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
                budget.name, budget.limit_slots, slot_decay_per_second=budget.decay_slots
            )
            names.append(budget.name)
    return names


def take_api_budget(budgets: Sequence[ApiBudget], requests: int) -> None:
    """Wait until the shared budgets allow `requests` more requests, and spend them.

    Called right before a batch of requests (one export, one upload, a listing) or, by a
    connector, before each request; never per lead. A batch larger than the smallest limit
    is taken in steps, so it never asks for more slots than a limit holds.
    """
    if requests <= 0 or not budgets:
        return
    names = [b.name for b in budgets]
    step = min(b.capacity for b in budgets)
    while requests > 0:
        occupy = min(step, requests)
        _occupy(names, occupy * SLOTS_PER_REQUEST)
        requests -= occupy


# One Prefect client per thread and API URL: building a client costs ~50 ms here, a take on a
# kept one ~10 ms (Prefect's own `rate_limit` builds its machinery and emits two events per
# take, ~50-100 ms): it matters for connectors paying request by request (HubSpot pages).
_clients = threading.local()


def _client() -> SyncPrefectClient:
    url = str(PREFECT_API_URL.value() or "")
    kept: dict[str, SyncPrefectClient] = getattr(_clients, "by_url", None) or {}
    _clients.by_url = kept
    client = kept.get(url)
    if client is None:
        client = get_client(sync_client=True)
        client.__enter__()
        kept[url] = client
    return client


def _occupy(names: list[str], slots: int) -> None:
    """Take `slots` of every limit in `names` at once, waiting while the server refuses.

    A refusal (423) says when to ask again (``Retry-After``, from the blocking limit's decay);
    limits missing on the server are skipped by it, as Prefect's `rate_limit` does.
    """
    while True:
        try:
            _client().increment_concurrency_slots(names=names, slots=slots, mode="rate_limit")
            return
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code != 423:
                raise
            try:
                wait = float(exc.response.headers.get("Retry-After", "1"))
            except ValueError:
                wait = 1.0
            time.sleep(min(max(wait, 0.0), 60.0))
