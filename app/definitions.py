"""Sync definitions: one YAML file (``coldsend.yaml``) declaring any number of syncs.

Each sync names a source (a saved lead store block, or inline: a CSV file, a Google Sheet, a
Salesforce object with filters), its field mapping, its campaign (an id, or a campaign spec
inline or in a file, ensured by name), schedules for the sync and the write-back, where the
write-back puts statuses, one match key shared by the sync and the write-back, and the store's
opt-out settings. Secrets never go in the file: credentials are named by block, or come from
the environment (COLDSEND_API_KEY / COLDSEND_BASE_URL).

The pydantic models below are the format; `json_schema()` is the JSON Schema editors use
(shipped as app/coldsend.schema.json, kept current by a test). `load_definitions` turns a
file into checked `SyncDefinitions`, or raises `DefinitionsError` whose lines each name the
sync, the field and the fix.

Example file::

    # yaml-language-server: $schema=./coldsend.schema.json
    syncs:
      - name: web-leads
        source:
          csv: data/web-leads.csv
        mapping:
          company: Company Name
        campaign:
          spec_file: campaigns/web.yaml
        launch: true
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from connectors.leads import FieldMapping

if TYPE_CHECKING:
    from blocks.leads import LeadStore
    from flows.campaigns import CampaignSpec

__all__ = [
    "SCHEMA_PATH",
    "CampaignRef",
    "DefinitionsError",
    "Schedule",
    "SourceConfig",
    "SyncDefinition",
    "SyncDefinitions",
    "json_schema",
    "load_definitions",
]

SCHEMA_PATH = Path(__file__).with_name("coldsend.schema.json")
NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
SOURCE_KINDS = ("block", "csv", "sheet", "salesforce", "hubspot")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _path_shorthand(value: object) -> object:
    return {"path": value} if isinstance(value, str) else value


class CsvSource(_Strict):
    """A CSV file on the machine running the sync (relative paths: from the definitions file)."""

    path: str = Field(min_length=1, description="The CSV file, relative to this file or absolute.")
    encoding: str | None = Field(default=None, description="File encoding; detected when empty.")
    delimiter: str | None = Field(default=None, description="Delimiter; sniffed when empty.")


class SheetSource(_Strict):
    """A worksheet of a Google spreadsheet."""

    spreadsheet_id: str = Field(min_length=1, description="The key in the spreadsheet's URL.")
    worksheet: str = Field(default="Sheet1", description="Worksheet title.")
    credentials: str = Field(
        min_length=1,
        description="A saved Google Sheets Credentials block, by name (no secrets here).",
    )


class SalesforceSource(_Strict):
    """Salesforce Leads or Contacts, optionally filtered."""

    object: Literal["Lead", "Contact"] = Field(default="Lead", description="The object to read.")
    filters: list[tuple[str, str, Any]] = Field(
        default_factory=list,
        description="Conditions ANDed together, e.g. [[LeadSource, '=', Web]]; values escaped.",
    )
    credentials: str = Field(
        min_length=1,
        description="A saved Salesforce Credentials block, by name (no secrets here).",
    )


class HubSpotSource(_Strict):
    """HubSpot contacts: all, a list's members, or those matching filters."""

    list_id: str | None = Field(default=None, description="Only the members of this list.")
    filters: list[tuple[str, str, Any]] = Field(
        default_factory=list,
        description="Up to 4 conditions ANDed together, e.g. [[lifecyclestage, '=', lead]].",
    )
    credentials: str = Field(
        min_length=1,
        description="A saved HubSpot Credentials block, by name (no secrets here).",
    )


class SourceConfig(_Strict):
    """Where leads come from: exactly one of block, csv, sheet, salesforce, hubspot."""

    block: str | None = Field(
        default=None,
        description="A saved lead store, '<block type>/<name>', e.g. salesforce-leads/acme.",
    )
    csv: Annotated[
        CsvSource | None,
        BeforeValidator(_path_shorthand, json_schema_input_type=CsvSource | str | None),
    ] = Field(default=None, description="A CSV file: its path, or {path, encoding, delimiter}.")
    sheet: SheetSource | None = None
    salesforce: SalesforceSource | None = None
    hubspot: HubSpotSource | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SourceConfig:
        given = [k for k in SOURCE_KINDS if getattr(self, k)]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of block, csv, sheet, salesforce, hubspot"
                + (f" (got {', '.join(given)})" if given else "")
            )
        if self.block is not None and "/" not in self.block:
            raise ValueError(
                f"block {self.block!r} must be '<block type>/<name>', e.g. "
                "'salesforce-leads/acme' or 'csv-file-leads/import'"
            )
        return self

    @property
    def kind(self) -> str:
        return next(k for k in SOURCE_KINDS if getattr(self, k))


class CampaignRef(_Strict):
    """The campaign a sync fills: exactly one of id, spec, spec_file."""

    id: str | None = Field(default=None, description="An existing campaign's id.")
    spec: dict[str, Any] | None = Field(
        default=None,
        description="A campaign spec (README: 'Campaign spec'); created or found by name.",
    )
    spec_file: str | None = Field(
        default=None, description="A YAML or JSON file holding a campaign spec."
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> CampaignRef:
        given = [k for k in ("id", "spec", "spec_file") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of id, spec, spec_file"
                + (f" (got {', '.join(given)})" if given else "")
            )
        return self


class Schedule(_Strict):
    """When a deployment runs: every `interval` seconds, or on a `cron` expression."""

    interval: float | None = Field(default=None, gt=0, description="Seconds between runs.")
    cron: str | None = Field(default=None, description="A cron expression, e.g. '*/15 * * * *'.")
    timezone: str | None = Field(default=None, description="Time zone of a cron schedule.")
    active: bool = Field(default=True, description="False: deployed with the schedule paused.")

    @model_validator(mode="after")
    def _exactly_one(self) -> Schedule:
        if (self.interval is None) == (self.cron is None):
            raise ValueError("give exactly one of interval (seconds) or cron")
        if self.cron is not None and len(self.cron.split()) not in (5, 6):
            raise ValueError(f"cron {self.cron!r} needs 5 fields, e.g. '*/15 * * * *'")
        return self


class WriteBack(_Strict):
    """The write-back of campaign statuses onto the store's records."""

    enabled: bool = Field(default=True, description="False: this sync has no write-back.")
    schedule: Schedule = Field(
        default_factory=lambda: Schedule(interval=3600), description="Default: hourly."
    )
    status: str | None = Field(
        default=None,
        description="Column (sheet, CSV) or field (Salesforce) for the status; store default when empty.",
    )
    opened: str | None = Field(default=None, description="Column or field set once opened.")
    replied: str | None = Field(default=None, description="Column or field set once replied.")
    unsubscribed: str | None = Field(
        default=None, description="Column or field set once unsubscribed."
    )
    bounced: str | None = Field(default=None, description="Column or field set once bounced.")


class OptOuts(_Strict):
    """How the store tells people not to email."""

    column: str | None = Field(
        default=None,
        description="Column (sheet, CSV) or checkbox field (Salesforce) marking opt-outs; common names recognised when empty.",
    )
    ignore_store_opt_outs: bool = Field(
        default=False,
        description="Stop honouring the store's opt-outs (ColdSend unsubscribes still hold).",
    )


class SyncDefinition(_Strict):
    """One sync: a source, its mapping, a campaign, schedules and the write-back."""

    name: str = Field(
        pattern=NAME_PATTERN,
        description="Lower-case letters, digits and '-': names the sync and its deployments.",
    )
    description: str | None = None
    source: SourceConfig
    mapping: FieldMapping | None = Field(
        default=None,
        description="Columns or fields for email, first_name, last_name, company, custom_fields; fields left out are recognised from common headers.",
    )
    key_column: str | None = Field(
        default=None, description="Sheet or CSV column with a stable record key."
    )
    match_by: Literal["email", "key"] | None = Field(
        default=None,
        description="The one match key of sync and write-back: 'email' (the mapping's email column) or 'key' (key_column; the record Id for Salesforce). Default: key for Salesforce, else email.",
    )
    campaign: CampaignRef
    launch: bool = Field(
        default=False, description="Launch the campaign once a sync uploaded leads into it."
    )
    schedule: Schedule = Field(
        default_factory=lambda: Schedule(interval=900),
        description="When the deployed sync runs. Default: every 15 minutes.",
    )
    write_back: WriteBack = Field(default_factory=WriteBack)
    opt_outs: OptOuts = Field(default_factory=OptOuts)
    suppress: list[str] = Field(default_factory=list, description="Emails never to upload.")
    on_removed: Literal["keep", "delete_pending"] = Field(
        default="keep",
        description="A campaign lead that left the store: keep it, or delete it while PENDING (else reported).",
    )
    max_updates_per_run: int = Field(
        default=500, ge=0, description="Lead updates applied per run at most; the rest next run."
    )
    coldsend: str | None = Field(
        default=None, description="ColdSend Credentials block for this sync (overrides the file's)."
    )

    @model_validator(mode="after")
    def _consistent(self) -> SyncDefinition:
        kind = self.source.kind
        if kind == "block":
            extra: list[str] = [
                f
                for f in ("mapping", "key_column", "match_by", "opt_outs")
                if f in self.model_fields_set
            ]
            wb = self.write_back
            if any((wb.status, wb.opened, wb.replied, wb.unsubscribed, wb.bounced)):
                extra.append("write_back columns")
            if extra:
                raise ValueError(
                    f"source.block {self.source.block!r} is a saved lead store, which holds its "
                    f"own {', '.join(extra)}: edit the block, or describe the source inline "
                    "(csv, sheet, salesforce) instead"
                )
        if self.key_column and kind in ("salesforce", "hubspot"):
            raise ValueError(
                "key_column is for sheets and CSV files; a Salesforce or HubSpot record's key "
                "is its id (match_by: key)"
            )
        if self.match_by == "key" and kind in ("csv", "sheet") and not self.key_column:
            raise ValueError("match_by: key needs key_column, the column holding record keys")
        return self


class WorkPool(_Strict):
    name: str = Field(default="coldsend-process", description="The work pool deployments use.")
    work_queue: str | None = Field(default=None, description="A queue of the pool.")


class SyncDefinitions(_Strict):
    """A sync definitions file: `prefect-coldsend validate | plan | run | deploy`."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={"$id": "https://prefect-coldsend.dev/schemas/coldsend.schema.json"},
    )

    version: Literal[1] = Field(default=1, description="Format version.")
    coldsend: str | None = Field(
        default=None,
        description="ColdSend Credentials block name; default COLDSEND_API_KEY / COLDSEND_BASE_URL, then the block 'default'.",
    )
    work_pool: WorkPool = Field(default_factory=WorkPool)
    syncs: list[SyncDefinition] = Field(min_length=1)

    @field_validator("syncs")
    @classmethod
    def _unique_names(cls, syncs: list[SyncDefinition]) -> list[SyncDefinition]:
        seen: set[str] = set()
        for sync in syncs:
            if sync.name in seen:
                raise ValueError(f"two syncs are named {sync.name!r}: give each a unique name")
            seen.add(sync.name)
        return syncs

    def select(self, names: list[str]) -> list[SyncDefinition]:
        """The syncs named (all when `names` is empty), or a `DefinitionsError` for an unknown one."""
        if not names:
            return list(self.syncs)
        known = {s.name: s for s in self.syncs}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise DefinitionsError(
                [
                    f"no sync named {n!r}: the file has {', '.join(repr(k) for k in known)}"
                    for n in unknown
                ]
            )
        return [known[n] for n in names]


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a sync definitions file (what app/coldsend.schema.json holds)."""
    schema = SyncDefinitions.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "prefect-coldsend sync definitions"
    return schema


def schema_text() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


# -- errors -----------------------------------------------------------------------------------


class DefinitionsError(ValueError):
    """A definitions file that cannot be used; one line per problem (sync, field, fix)."""

    def __init__(self, problems: list[str], *, file: Path | None = None) -> None:
        self.problems = problems
        self.file = file
        where = f"{file}: " if file else ""
        if len(problems) == 1:
            super().__init__(f"{where}{problems[0]}")
        else:
            super().__init__(f"{where}{len(problems)} problems: " + " | ".join(problems))


_SECRET_NAME = re.compile(r"(?i)(key|token|secret|password|passwd)")
_FIXES: Mapping[str, str] = {
    "missing": "add it",
    "extra_forbidden": "remove it, or correct its spelling",
    "literal_error": "use one of the allowed values",
    "string_pattern_mismatch": "use lower-case letters, digits and '-'",
    "string_too_short": "give a value",
    "too_short": "give at least one",
    "greater_than": "use a positive number",
}


def _problem(error: Mapping[str, Any], data: Any) -> str:
    loc = [p for p in error["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
    prefix = "file"
    if len(loc) >= 2 and loc[0] == "syncs" and isinstance(loc[1], int):
        name = None
        with contextlib.suppress(KeyError, IndexError, TypeError, AttributeError):
            name = data["syncs"][loc[1]].get("name")
        prefix = f"sync {name!r}" if name else f"sync #{loc[1] + 1}"
        loc = loc[2:]
    field = ".".join(str(p) for p in loc if not str(p).startswith(("tagged-union", "nullable")))
    message = str(error["msg"]).removeprefix("Value error, ")
    fix = _FIXES.get(str(error["type"]))
    if error["type"] == "extra_forbidden" and _SECRET_NAME.search(str(loc[-1]) if loc else ""):
        fix = (
            "secrets never go in this file: save them in a credentials block and name the "
            "block (e.g. credentials: acme), or use COLDSEND_API_KEY for ColdSend"
        )
    if error["type"] == "literal_error":
        fix = None  # the message lists the allowed values already
    where = f"{prefix}, field {field}" if field else prefix
    return f"{where}: {message}" + (f"; fix: {fix}" if fix else "")


def _read(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DefinitionsError(
            [
                f"no sync definitions file {str(path)!r}: create one (README: 'Sync definitions') "
                "or pass its path"
            ]
        ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise DefinitionsError([f"not valid YAML{at}: {problem}"], file=path) from None


def parse_definitions(data: Any, *, file: Path | None = None) -> SyncDefinitions:
    """Check `data` (a loaded YAML document) against the format."""
    if not isinstance(data, dict):
        raise DefinitionsError(
            ["the file must be a mapping with a 'syncs' list (see README: 'Sync definitions')"],
            file=file,
        )
    try:
        return SyncDefinitions.model_validate(data)
    except ValidationError as exc:
        raise DefinitionsError([_problem(e, data) for e in exc.errors()], file=file) from None


def load_definitions(path: Path) -> Definitions:
    """Read, parse and check the file at `path` (schema, then what can be checked locally)."""
    data = _read(path)
    parsed = parse_definitions(data, file=path)
    definitions = Definitions(parsed, base=path.resolve().parent, file=path)
    problems = list(definitions.local_problems())
    if problems:
        raise DefinitionsError(problems, file=path)
    return definitions


# -- from definitions to lead stores and campaigns ---------------------------------------------


class Definitions:
    """Parsed definitions plus the directory relative paths start from."""

    def __init__(self, parsed: SyncDefinitions, *, base: Path, file: Path | None = None) -> None:
        self.parsed = parsed
        self.base = base
        self.file = file

    @property
    def syncs(self) -> list[SyncDefinition]:
        return list(self.parsed.syncs)

    def select(self, names: list[str]) -> list[SyncDefinition]:
        return self.parsed.select(names)

    def coldsend(self, sync: SyncDefinition) -> str | None:
        return sync.coldsend or self.parsed.coldsend

    def sync_parameters(self, sync: SyncDefinition) -> dict[str, Any]:
        """The sync flow's parameters a definition sets, besides the campaign and the store."""
        return {
            "coldsend": self.coldsend(sync),
            "suppression_list": list(sync.suppress),
            "on_removed": sync.on_removed,
            "max_updates_per_run": sync.max_updates_per_run,
        }

    def path(self, value: str) -> Path:
        candidate = Path(value).expanduser()
        return candidate if candidate.is_absolute() else self.base / candidate

    def local_problems(self) -> Iterator[str]:
        """What can be checked without any service: files, specs, mapped CSV columns."""
        for sync in self.parsed.syncs:
            where = f"sync {sync.name!r}"
            ref = sync.campaign
            if ref.spec is not None or ref.spec_file is not None:
                try:
                    self.campaign_spec(sync)
                except DefinitionsError as exc:
                    yield from exc.problems
            csv = sync.source.csv
            if csv is not None:
                path = self.path(csv.path)
                if not path.is_file():
                    yield (
                        f"{where}, field source.csv.path: no such file {str(path)!r} (paths are "
                        "relative to the definitions file)"
                    )
                else:
                    problem = self._check_csv_columns(sync, path)
                    if problem:
                        yield f"{where}, field mapping: {problem}"

    def _check_csv_columns(self, sync: SyncDefinition, path: Path) -> str | None:
        from connectors.csv_file import CsvLeadSource
        from connectors.leads import MappingError

        source = CsvLeadSource(path, mapping=sync.mapping, key_column=sync.key_column)
        try:
            next(iter(source.read()), None)
        except MappingError as exc:
            return f"{exc} (fix the mapping or the file)"
        except (ValueError, OSError) as exc:
            return f"{path.name} cannot be read: {exc}"
        return None

    def campaign_spec(self, sync: SyncDefinition) -> CampaignSpec:
        """The sync's campaign spec (inline or from its file), checked."""
        from flows.campaigns import CampaignSpec

        ref = sync.campaign
        field = "campaign.spec"
        data: Any = ref.spec
        if ref.spec_file is not None:
            field = "campaign.spec_file"
            path = self.path(ref.spec_file)
            try:
                data = yaml.safe_load(path.read_text(encoding="utf-8"))
            except OSError as exc:
                raise DefinitionsError(
                    [
                        f"sync {sync.name!r}, field {field}: cannot read {str(path)!r}: {exc.strerror}"
                    ]
                ) from None
            except yaml.YAMLError as exc:
                raise DefinitionsError(
                    [
                        f"sync {sync.name!r}, field {field}: {path.name} is not valid YAML/JSON: {exc}"
                    ]
                ) from None
        try:
            return CampaignSpec.model_validate(data)
        except ValidationError as exc:
            problems = []
            for error in exc.errors():
                inner = ".".join(str(p) for p in error["loc"])
                message = str(error["msg"]).removeprefix("Value error, ")
                problems.append(f"sync {sync.name!r}, field {field} -> {inner}: {message}")
            raise DefinitionsError(problems) from None

    def lead_store(self, sync: SyncDefinition) -> str | LeadStore:
        """The sync's lead store: a saved block's name, or an unsaved block built from the file.

        Inline sheet and Salesforce sources load their credentials block by name here.
        """
        source = sync.source
        if source.block is not None:
            return source.block
        wb = sync.write_back
        if source.salesforce is not None:
            return self._salesforce_store(sync, source.salesforce)
        if source.hubspot is not None:
            return self._hubspot_store(sync, source.hubspot)
        from blocks import CsvFileLeads, GoogleSheetLeads, GoogleSheetsCredentials

        match_key = sync.match_by or ("key" if sync.key_column else "email")
        common: dict[str, Any] = {
            "mapping": sync.mapping,
            "key_column": sync.key_column,
            "match_by": sync.key_column if match_key == "key" else None,
            "opt_out_column": sync.opt_outs.column,
            "ignore_store_opt_outs": sync.opt_outs.ignore_store_opt_outs,
        }
        columns = {
            "status_column": wb.status,
            "opened_column": wb.opened,
            "replied_column": wb.replied,
            "unsubscribed_column": wb.unsubscribed,
            "bounced_column": wb.bounced,
        }
        common.update({k: v for k, v in columns.items() if v})
        if source.csv is not None:
            return CsvFileLeads(
                path=str(self.path(source.csv.path)),
                encoding=source.csv.encoding,
                delimiter=source.csv.delimiter,
                **common,
            )
        sheet = source.sheet
        assert sheet is not None
        credentials = _load_block(GoogleSheetsCredentials, sheet.credentials, sync, "source.sheet")
        return GoogleSheetLeads(
            credentials=credentials,
            spreadsheet_id=sheet.spreadsheet_id,
            worksheet=sheet.worksheet,
            **common,
        )

    def _salesforce_store(self, sync: SyncDefinition, sf: SalesforceSource) -> LeadStore:
        from blocks import SalesforceCredentials, SalesforceLeads

        credentials = _load_block(SalesforceCredentials, sf.credentials, sync, "source.salesforce")
        fields = _write_back_targets(sync, "field")
        return SalesforceLeads(
            credentials=credentials,
            object_name=sf.object,
            mapping=sync.mapping,
            filters=list(sf.filters),
            match_by="email" if sync.match_by == "email" else "id",
            opt_out_field=sync.opt_outs.column,
            ignore_store_opt_outs=sync.opt_outs.ignore_store_opt_outs,
            **fields,
        )

    def _hubspot_store(self, sync: SyncDefinition, hs: HubSpotSource) -> LeadStore:
        from blocks import HubSpotContacts, HubSpotCredentials

        credentials = _load_block(HubSpotCredentials, hs.credentials, sync, "source.hubspot")
        properties = _write_back_targets(sync, "property")
        return HubSpotContacts(
            credentials=credentials,
            mapping=sync.mapping,
            list_id=hs.list_id,
            filters=list(hs.filters),
            match_by="email" if sync.match_by == "email" else "id",
            opt_out_property=sync.opt_outs.column,
            ignore_store_opt_outs=sync.opt_outs.ignore_store_opt_outs,
            **properties,
        )


def _load_block(cls: Any, name: str, sync: SyncDefinition, field: str) -> Any:
    bare = re.sub(r"^[a-z0-9-]+/", "", name)
    try:
        return cls.load(bare)
    except ValueError:
        raise DefinitionsError(
            [
                f"sync {sync.name!r}, field {field}.credentials: no {cls.__name__} block named "
                f"{bare!r} on this Prefect server: save one (UI, or {cls.__name__}(...).save"
                f"({bare!r}))"
            ]
        ) from None


def _write_back_targets(sync: SyncDefinition, kind: str) -> dict[str, str]:
    """The write-back names a sync sets, as CRM store settings (``status_field``,
    ``opened_property``, ...); unset ones keep the store's defaults."""
    wb = sync.write_back
    names = {
        "status": wb.status,
        "opened": wb.opened,
        "replied": wb.replied,
        "unsubscribed": wb.unsubscribed,
        "bounced": wb.bounced,
    }
    return {f"{name}_{kind}": value for name, value in names.items() if value}
