"""Lead stores: where a team keeps its prospects (Salesforce, a Google Sheet, a CSV file).

A lead store block is saved configuration: which object or sheet, which fields map to lead
fields, and which fields receive campaign statuses. Flows take its name
(``"salesforce-leads/acme"``) so deployment parameters stay short.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Literal

from prefect.blocks.core import Block
from pydantic import Field

from blocks._logo import LOGO_URL
from blocks._nested import SavesInnerBlocks
from blocks.budgets import ApiBudget
from blocks.salesforce import SalesforceCredentials
from blocks.sheets import GoogleSheetsCredentials
from connectors._tabular import ReplyColumns
from connectors.activities import ActivitySink
from connectors.csv_file import CsvLeadSource, CsvStatusSink
from connectors.csv_file.replies import CsvReplySink
from connectors.leads import OPT_OUT_COLUMN_NAMES, FieldMapping, LeadSource, StatusSink
from connectors.salesforce import SalesforceLeadSource, SalesforceStatusSink, StatusFields
from connectors.salesforce.activities import DEFAULT_KEY_FIELD, SalesforceActivitySink
from connectors.salesforce.source import DEFAULT_OPT_OUT_FIELDS
from connectors.shared_budget import SharedBudget
from connectors.sheets import SheetsLeadSource, SheetsStatusSink, StatusColumns
from connectors.sheets.replies import SheetsReplySink

__all__ = ["CsvFileLeads", "GoogleSheetLeads", "LeadStore", "SalesforceLeads"]

_DOCS = "https://github.com/prefect-coldsend/prefect-coldsend#lead-stores"


class LeadStore(SavesInnerBlocks, ABC):
    """Interface of every lead store: a source of leads and a sink for statuses."""

    supports_incremental: ClassVar[bool] = False

    ignore_store_opt_outs: bool = Field(
        default=False,
        description=(
            "Do NOT honour this store's opt-out signal (e.g. Salesforce HasOptedOutOfEmail): "
            "opted-out people are then uploaded and kept. Leave off unless another system "
            "already filters them; unsubscribes and bounces in ColdSend are still honoured."
        ),
    )

    @abstractmethod
    def lead_source(self, budget: SharedBudget | None = None) -> LeadSource:
        """A new lead source reading this store.

        Args:
            budget: Spend every request from this budget shared with other processes (the
                flows pass one built from `api_budgets`); None paces by the client alone.
        """

    @abstractmethod
    def status_sink(self, budget: SharedBudget | None = None) -> StatusSink:
        """A new status sink writing to this store (`budget` as for `lead_source`)."""

    def api_budgets(self) -> tuple[ApiBudget, ...]:
        """The shared request budgets of the account behind this store (none for a file)."""
        return ()

    def activity_sink(self, budget: SharedBudget | None = None) -> ActivitySink:
        """A new sink logging campaign replies on this store's records (exactly once).

        Raises:
            NotImplementedError: this store cannot log replies yet (the write-back says so).
        """
        raise NotImplementedError(f"{type(self).__name__} does not log replies yet")

    @abstractmethod
    def describe(self) -> str:
        """A short human description, e.g. "Salesforce Lead (LeadSource = 'Web')"."""

    def written_columns(self) -> list[str]:
        """The columns the write-back fills: part of the store, never "unused" source columns."""
        names = (
            "status_column",
            "opened_column",
            "replied_column",
            "unsubscribed_column",
            "bounced_column",
        )
        found = (getattr(self, name, None) for name in names)
        return [value for value in found if isinstance(value, str) and value]

    def custom_field_names(self) -> list[str]:
        """The ColdSend custom fields this store's mapping produces, in upload column order."""
        mapping: FieldMapping | None = getattr(self, "mapping", None)
        return list(mapping.custom_fields) if mapping else []


class SalesforceLeads(LeadStore):
    """Leads or Contacts in a Salesforce org, and the fields that receive campaign statuses.

    Reads are incremental (by SystemModstamp) and switch to Bulk 2.0 above a threshold; the
    status write-back reads current values first, never moves a status backwards and writes
    only changed records (composite collections or one Bulk 2.0 job).

    Example:
        ```python
        from blocks import SalesforceLeads

        store = SalesforceLeads.load("BLOCK_NAME")
        for lead in store.lead_source().read():
            print(lead)
        ```
    """

    _block_type_name = "Salesforce Leads"
    _block_type_slug = "salesforce-leads"
    _description = "Salesforce Leads or Contacts as a lead source and a status sink."
    _documentation_url = _DOCS  # type: ignore[assignment]
    _logo_url = LOGO_URL

    supports_incremental: ClassVar[bool] = True

    credentials: SalesforceCredentials = Field(
        default=...,
        title="Credentials",
        description="A saved Salesforce Credentials block; the UI lists them, or adds one.",
    )
    object_name: Literal["Lead", "Contact"] = Field(
        default="Lead", description="The Salesforce object leads come from."
    )
    mapping: FieldMapping | None = Field(
        default=None,
        description="Salesforce field for each lead field; default Email, FirstName, LastName, Company.",
    )
    filters: list[tuple[str, str, Any]] = Field(
        default_factory=list,
        description="Conditions ANDed together, e.g. [['LeadSource', '=', 'Web']]; values are escaped.",
    )
    bulk_threshold: int = Field(
        default=10_000, ge=1, description="Read with Bulk 2.0 above this many records."
    )
    match_by: Literal["id", "email"] = Field(
        default="id", description="Match campaign leads to records by record id or by email."
    )
    opt_out_field: str | None = Field(
        default=None,
        description=(
            "A checkbox field marking records not to email, read besides HasOptedOutOfEmail "
            "(always read), e.g. Do_Not_Contact__c."
        ),
    )
    status_field: str = Field(
        default="ColdSend_Status__c", description="Field receiving the ColdSend status."
    )
    opened_field: str | None = Field(
        default="ColdSend_Opened__c", description="Checkbox set once the lead opened."
    )
    replied_field: str | None = Field(
        default="ColdSend_Replied__c", description="Checkbox set once the lead replied."
    )
    unsubscribed_field: str | None = Field(
        default="HasOptedOutOfEmail", description="Checkbox set once the lead unsubscribed."
    )
    bounced_field: str | None = Field(
        default="ColdSend_Bounced__c", description="Checkbox set once an email bounced."
    )
    reply_key_field: str = Field(
        default=DEFAULT_KEY_FIELD,
        description=(
            "Text(255) custom field on Activity holding each reply's id, so every reply is "
            "logged as a Task exactly once."
        ),
    )

    def api_budgets(self) -> tuple[ApiBudget, ...]:
        return self.credentials.api_budgets()

    def lead_source(self, budget: SharedBudget | None = None) -> SalesforceLeadSource:
        return SalesforceLeadSource(
            self.credentials.get_client(budget),
            object_name=self.object_name,
            mapping=self.mapping,
            filters=[tuple(f) for f in self.filters],
            bulk_threshold=self.bulk_threshold,
            opt_out_fields=self.opt_out_fields(),
        )

    def opt_out_fields(self) -> tuple[str, ...]:
        """The checkbox fields read as the opt-out signal; none with `ignore_store_opt_outs`."""
        if self.ignore_store_opt_outs:
            return ()
        extra = (self.opt_out_field,) if self.opt_out_field else ()
        return tuple(dict.fromkeys((*DEFAULT_OPT_OUT_FIELDS, *extra)))

    def status_sink(self, budget: SharedBudget | None = None) -> SalesforceStatusSink:
        return SalesforceStatusSink(
            self.credentials.get_client(budget),
            object_name=self.object_name,
            match_by=self.match_by,
            scope=[tuple(f) for f in self.filters],
            fields=StatusFields(
                status=self.status_field,
                opened=self.opened_field,
                replied=self.replied_field,
                unsubscribed=self.unsubscribed_field,
                bounced=self.bounced_field,
            ),
        )

    def activity_sink(self, budget: SharedBudget | None = None) -> SalesforceActivitySink:
        return SalesforceActivitySink(
            self.credentials.get_client(budget),
            object_name=self.object_name,
            match_by=self.match_by,
            key_field=self.reply_key_field,
        )

    def describe(self) -> str:
        where = " AND ".join(f"{f} {op} {v!r}" for f, op, v in self.filters)
        return f"Salesforce {self.object_name}" + (f" where {where}" if where else "")


class _TabularStatusFields(Block, ABC):
    """Column mapping, key and status columns shared by the sheet and CSV stores."""

    mapping: FieldMapping | None = Field(
        default=None,
        description="Column for each lead field; default Email, First Name, Last Name, Company.",
    )
    key_column: str | None = Field(
        default=None, description="Column with a stable record key, stored as crm_record_id."
    )

    opt_out_column: str | None = Field(
        default=None,
        description=(
            "Column marking people not to email (TRUE, yes, x, UNSUBSCRIBED). Empty: columns "
            "named Unsubscribed, Opted out, Do not contact, Email opt out (and the write-back's "
            "unsubscribed and status columns) are recognised."
        ),
    )
    match_by: str | None = Field(
        default=None,
        description=(
            "Column matching campaign leads to rows: the key column, or empty for the column "
            "the mapping reads emails from (the sync's own match key)."
        ),
    )
    status_column: str = Field(default="ColdSend Status", description="Column for the status.")
    opened_column: str | None = Field(
        default="ColdSend Opened", description="Column set TRUE once the lead opened."
    )
    replied_column: str | None = Field(
        default="ColdSend Replied", description="Column set TRUE once the lead replied."
    )
    unsubscribed_column: str | None = Field(
        default="ColdSend Unsubscribed", description="Column set TRUE once the lead unsubscribed."
    )
    bounced_column: str | None = Field(
        default="ColdSend Bounced", description="Column set TRUE once an email bounced."
    )
    last_reply_column: str = Field(
        default="Last reply", description="Column showing the lead's newest reply (as text)."
    )
    last_reply_at_column: str = Field(
        default="Last reply at", description="Column showing when that reply came (UTC)."
    )

    def _reply_columns(self) -> ReplyColumns:
        return ReplyColumns(text=self.last_reply_column, at=self.last_reply_at_column)

    def _opt_out_settings(self) -> dict[str, Any]:
        """The source's opt-out arguments: none with `ignore_store_opt_outs` (a `LeadStore` field)."""
        if getattr(self, "ignore_store_opt_outs", False):
            return {"opt_out_column": None, "recognised_opt_out_columns": ()}
        own = [c for c in (self.unsubscribed_column, self.status_column) if c]
        return {
            "opt_out_column": self.opt_out_column,
            "recognised_opt_out_columns": (*OPT_OUT_COLUMN_NAMES, *own),
        }

    def _match_value(self) -> Literal["email", "source_id"]:
        """Rows are matched on the key column (the crm_record_id uploaded) or on the email."""
        return "source_id" if self.key_column and self.match_by == self.key_column else "email"

    def _columns(self) -> StatusColumns:
        return StatusColumns(
            status=self.status_column,
            opened=self.opened_column,
            replied=self.replied_column,
            unsubscribed=self.unsubscribed_column,
            bounced=self.bounced_column,
        )


class GoogleSheetLeads(LeadStore, _TabularStatusFields):
    """One worksheet of a Google spreadsheet as a lead source and a status sink.

    The header row names the columns (blank headers become "Column C", repeats "Name (2)").
    Write-back makes one read and one RAW batch update, so a value starting with "=" stays text.

    Example:
        ```python
        from blocks import GoogleSheetLeads

        store = GoogleSheetLeads.load("BLOCK_NAME")
        print(store.describe())
        ```
    """

    _block_type_name = "Google Sheet Leads"
    _block_type_slug = "google-sheet-leads"
    _description = "A Google Sheets worksheet as a lead source and a status sink."
    _documentation_url = _DOCS  # type: ignore[assignment]
    _logo_url = LOGO_URL

    credentials: GoogleSheetsCredentials = Field(
        default=...,
        title="Credentials",
        description="A saved Google Sheets Credentials block; the UI lists them, or adds one.",
    )
    spreadsheet_id: str = Field(default=..., description="The spreadsheet key from its URL.")
    worksheet: str = Field(default="Sheet1", description="Worksheet title.")

    def api_budgets(self) -> tuple[ApiBudget, ...]:
        return self.credentials.api_budgets()

    def lead_source(self, budget: SharedBudget | None = None) -> SheetsLeadSource:
        return SheetsLeadSource(
            self.credentials.get_client(),
            spreadsheet_id=self.spreadsheet_id,
            worksheet=self.worksheet,
            mapping=self.mapping,
            key_column=self.key_column,
            budget=budget,
            **self._opt_out_settings(),
        )

    def status_sink(self, budget: SharedBudget | None = None) -> SheetsStatusSink:
        return SheetsStatusSink(
            self.credentials.get_client(),
            **self._sink_location(),
            columns=self._columns(),
            budget=budget,
        )

    def activity_sink(self, budget: SharedBudget | None = None) -> SheetsReplySink:
        return SheetsReplySink(
            self.credentials.get_client(),
            **self._sink_location(),
            budget=budget,
            reply_columns=self._reply_columns(),
            store_ids=self.key_column is not None,
        )

    def _sink_location(self) -> dict[str, Any]:
        """Where both sinks write and how they find a lead's row: one place for the two."""
        return {
            "spreadsheet_id": self.spreadsheet_id,
            "worksheet": self.worksheet,
            "match_by": self.match_by,
            "mapping": self.mapping,
            "match_value": self._match_value(),
        }

    def describe(self) -> str:
        return f"Google Sheet {self.spreadsheet_id} / {self.worksheet!r}"


class CsvFileLeads(LeadStore, _TabularStatusFields):
    """A CSV file on the machine running the flow, as a lead source and a status sink.

    Any delimiter and encoding the csv module can sniff; statuses are written in place
    atomically (temporary file, then rename).

    Example:
        ```python
        from blocks import CsvFileLeads

        store = CsvFileLeads.load("BLOCK_NAME")
        print(store.describe())
        ```
    """

    _block_type_name = "CSV File Leads"
    _block_type_slug = "csv-file-leads"
    _description = "A local CSV file as a lead source and a status sink."
    _documentation_url = _DOCS  # type: ignore[assignment]
    _logo_url = LOGO_URL

    path: str = Field(default=..., description="Path of the CSV file on the worker.")
    encoding: str | None = Field(default=None, description="File encoding; detected when empty.")
    delimiter: str | None = Field(default=None, description="Delimiter; sniffed when empty.")

    def lead_source(self, budget: SharedBudget | None = None) -> CsvLeadSource:
        del budget  # a local file spends no API requests
        return CsvLeadSource(
            self.path,
            mapping=self.mapping,
            key_column=self.key_column,
            encoding=self.encoding,
            delimiter=self.delimiter,
            **self._opt_out_settings(),
        )

    def status_sink(self, budget: SharedBudget | None = None) -> CsvStatusSink:
        del budget
        return CsvStatusSink(
            self.path,
            match_by=self.match_by,
            mapping=self.mapping,
            match_value=self._match_value(),
            columns=self._columns(),
            encoding=self.encoding,
            delimiter=self.delimiter,
        )

    def activity_sink(self, budget: SharedBudget | None = None) -> CsvReplySink:
        del budget
        return CsvReplySink(
            self.path,
            match_by=self.match_by,
            mapping=self.mapping,
            match_value=self._match_value(),
            columns=self._reply_columns(),
            encoding=self.encoding,
            delimiter=self.delimiter,
            store_ids=self.key_column is not None,
        )

    def describe(self) -> str:
        return f"CSV file {self.path}"
