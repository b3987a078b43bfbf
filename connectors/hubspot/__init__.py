"""HubSpot contacts as a lead source and a status sink, on the official hubspot-api-client.

Nothing here imports Prefect. Start from `HubSpotConnection`, then read with
`HubSpotContactSource` and write results back with `HubSpotStatusSink`.
"""

from connectors.hubspot.connection import (
    DEFAULT_BASE_URL,
    HubSpotConnection,
    PropertyInfo,
    rate_limit_wait,
    translate_error,
)
from connectors.hubspot.errors import (
    HubSpotApiError,
    HubSpotAuthError,
    HubSpotConnectionError,
    HubSpotError,
    HubSpotFilterError,
    HubSpotNotFound,
    HubSpotRateLimitError,
    HubSpotScopeError,
    HubSpotValidationError,
)
from connectors.hubspot.filters import OPERATORS, Filter, search_filters
from connectors.hubspot.pacing import HubSpotLimits, RollingWindow
from connectors.hubspot.sink import STATUS_GROUP, HubSpotStatusSink, StatusProperties
from connectors.hubspot.source import (
    DEFAULT_MAPPING,
    DEFAULT_OPT_OUT_PROPERTIES,
    HubSpotContactSource,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_MAPPING",
    "DEFAULT_OPT_OUT_PROPERTIES",
    "OPERATORS",
    "STATUS_GROUP",
    "Filter",
    "HubSpotApiError",
    "HubSpotAuthError",
    "HubSpotConnection",
    "HubSpotConnectionError",
    "HubSpotContactSource",
    "HubSpotError",
    "HubSpotFilterError",
    "HubSpotLimits",
    "HubSpotNotFound",
    "HubSpotRateLimitError",
    "HubSpotScopeError",
    "HubSpotStatusSink",
    "HubSpotValidationError",
    "PropertyInfo",
    "RollingWindow",
    "StatusProperties",
    "rate_limit_wait",
    "search_filters",
    "translate_error",
]
