"""The org's daily API allocation: reading ``Sforce-Limit-Info`` and refusing work that would spend too much."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from connectors.salesforce.errors import SalesforceBudgetExceeded

if TYPE_CHECKING:
    from connectors.salesforce.connection import SalesforceConnection

__all__ = ["ApiBudget", "ApiUsage", "parse_limit_info"]

_USAGE_RE = re.compile(r"(?:^|[;,\s])api-usage=(\d+)/(\d+)")


@dataclass(frozen=True, slots=True)
class ApiUsage:
    """Requests used today and the daily allocation, as Salesforce last reported them."""

    used: int
    limit: int

    @property
    def remaining(self) -> int:
        """Requests left in the rolling 24-hour window."""
        return max(0, self.limit - self.used)


def parse_limit_info(header: str | None) -> ApiUsage | None:
    """Parse ``Sforce-Limit-Info: api-usage=USED/MAX`` (other parts ignored); None if absent."""
    if not header:
        return None
    match = _USAGE_RE.search(header)
    if match is None:
        return None
    return ApiUsage(used=int(match.group(1)), limit=int(match.group(2)))


class ApiBudget:
    """Refuses to start work whose estimated request count exceeds a share of what is left today.

    The daily allocation is shared by every integration in the org; a sync that would spend
    most of it should stop before it starts rather than starve the others halfway through.

    Example:
        ```python
        ApiBudget(share=0.25).check(conn, 120, what="reading 240,000 Lead records")
        ```
    """

    def __init__(self, share: float = 0.5) -> None:
        """Args:
        share: Largest fraction (0 < share <= 1) of the remaining allocation one piece of
            work may use.
        """
        if not 0 < share <= 1:
            raise ValueError(f"share must be in (0, 1], got {share}")
        self.share = share

    def __repr__(self) -> str:
        return f"ApiBudget(share={self.share})"

    def allowed(self, usage: ApiUsage) -> int:
        """How many requests one piece of work may use given `usage`."""
        return math.floor(usage.remaining * self.share)

    def check(self, conn: SalesforceConnection, estimated_requests: int, *, what: str) -> None:
        """Raise `SalesforceBudgetExceeded` if `estimated_requests` is over this budget.

        Uses the usage seen on the connection's last response, or asks ``limits/`` once.
        """
        usage = conn.usage or conn.fetch_usage()
        allowed = self.allowed(usage)
        if estimated_requests > allowed:
            raise SalesforceBudgetExceeded(
                f"Refusing to start {what}: it needs about {estimated_requests} API requests, "
                f"more than {self.share:.0%} of the {usage.remaining} left today "
                f"({usage.used} of {usage.limit} used), i.e. more than {allowed}."
            )
