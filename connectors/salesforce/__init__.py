"""Salesforce Lead/Contact source and status sink on the real simple-salesforce library.

Nothing here imports Prefect. Start from `SalesforceConnection`, then read with
`SalesforceLeadSource` and write results back with `SalesforceStatusSink`.
"""

from connectors.salesforce.budget import ApiBudget, ApiUsage, parse_limit_info
from connectors.salesforce.connection import (
    DEFAULT_API_VERSION,
    SalesforceConnection,
    translate_error,
)
from connectors.salesforce.errors import (
    SalesforceApiError,
    SalesforceAuthError,
    SalesforceBudgetExceeded,
    SalesforceConnectionError,
    SalesforceError,
    SalesforceJobError,
    SalesforceQueryError,
    SalesforceRequestLimitExceeded,
    SoqlBuildError,
)
from connectors.salesforce.sink import SalesforceStatusSink, StatusFields
from connectors.salesforce.soql import (
    AnyOf,
    Condition,
    FieldInfo,
    ObjectInfo,
    escape_like,
    escape_string,
    literal,
    where_clause,
)
from connectors.salesforce.source import DEFAULT_MAPPINGS, SalesforceLeadSource

__all__ = [
    "DEFAULT_API_VERSION",
    "DEFAULT_MAPPINGS",
    "AnyOf",
    "ApiBudget",
    "ApiUsage",
    "Condition",
    "FieldInfo",
    "ObjectInfo",
    "SalesforceApiError",
    "SalesforceAuthError",
    "SalesforceBudgetExceeded",
    "SalesforceConnection",
    "SalesforceConnectionError",
    "SalesforceError",
    "SalesforceJobError",
    "SalesforceLeadSource",
    "SalesforceQueryError",
    "SalesforceRequestLimitExceeded",
    "SalesforceStatusSink",
    "SoqlBuildError",
    "StatusFields",
    "escape_like",
    "escape_string",
    "literal",
    "parse_limit_info",
    "translate_error",
    "where_clause",
]
