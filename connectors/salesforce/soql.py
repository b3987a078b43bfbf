"""Safe SOQL building: structured filters in, escaped SOQL text out; never raw user SOQL.

A filter is a clause ``(field, operator, value)``, a `Condition`, or an `AnyOf` group of them;
a list of filters is ANDed. Field names are checked against the object's describe()
(`ObjectInfo`), operators against a whitelist, and each value is written as a SOQL literal of
the field's type, so a value can never change the shape of the query.

Example:
    ```python
    where = where_clause([("LeadSource", "=", "Web"), ("Country", "IN", ["US", "CA"])], info)
    # "LeadSource = 'Web' AND Country IN ('US', 'CA')"
    ```
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Literal, TypeAlias, cast

from connectors.salesforce.errors import SoqlBuildError

__all__ = [
    "OPERATORS",
    "AnyOf",
    "Clause",
    "Condition",
    "FieldInfo",
    "Filter",
    "ObjectInfo",
    "Operator",
    "Scalar",
    "count_query",
    "escape_like",
    "escape_string",
    "format_datetime",
    "like_literal",
    "literal",
    "select_query",
    "where_clause",
]

Operator = Literal["=", "!=", "<", ">", "<=", ">=", "LIKE", "IN", "NOT IN"]
OPERATORS: frozenset[str] = frozenset({"=", "!=", "<", ">", "<=", ">=", "LIKE", "IN", "NOT IN"})
Scalar: TypeAlias = str | bool | int | float | Decimal | date | datetime | None

_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_STRING_ESCAPES = {
    "\\": "\\\\",
    "'": "\\'",
    '"': '\\"',
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\b": "\\b",
    "\f": "\\f",
}
_ESCAPE_TABLE = str.maketrans(_STRING_ESCAPES)
_LIKE_TABLE = str.maketrans({"\\": "\\\\", "%": "\\%", "_": "\\_"})
_LIKE_TOKEN_RE = re.compile(r"\\[%_\\]|[\\'\"\n\r\t\b\f]")
_NUMERIC_TYPES = frozenset({"double", "int", "long", "currency", "percent"})
_UNFILTERABLE = frozenset({"base64", "address", "location", "textarea"})


@dataclass(frozen=True, slots=True)
class FieldInfo:
    """One field as describe() reports it."""

    name: str
    type: str
    updateable: bool = False
    nillable: bool = True


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """An object's describe(): its name and fields, looked up case-insensitively."""

    name: str
    fields: Mapping[str, FieldInfo]  # lower-case name -> field

    @classmethod
    def from_describe(cls, describe: Mapping[str, Any]) -> ObjectInfo:
        """Build from the JSON of ``GET sobjects/<Object>/describe``."""
        fields = {
            str(f["name"]).lower(): FieldInfo(
                name=str(f["name"]),
                type=str(f.get("type", "string")),
                updateable=bool(f.get("updateable", False)),
                nillable=bool(f.get("nillable", True)),
            )
            for f in describe.get("fields", [])
        }
        return cls(name=str(describe.get("name", "")), fields=fields)

    @property
    def field_names(self) -> list[str]:
        """Canonical field names, in describe() order."""
        return [f.name for f in self.fields.values()]

    def field(self, name: str) -> FieldInfo:
        """The field called `name` (any case), or `SoqlBuildError` naming it and the object."""
        found = self.fields.get(name.lower()) if isinstance(name, str) else None
        if found is None:
            raise SoqlBuildError(f"{self.name} has no field {name!r}")
        return found


@dataclass(frozen=True, slots=True)
class Condition:
    """``field operator value``; `value` is a sequence for IN / NOT IN."""

    field: str
    op: Operator
    value: Scalar | Sequence[Scalar]


@dataclass(frozen=True, slots=True)
class AnyOf:
    """Filters joined with OR (each may itself be a list joined with AND)."""

    filters: Sequence[Filter | Sequence[Filter]]


Clause: TypeAlias = tuple[str, str, Any]
Filter: TypeAlias = Clause | Condition | AnyOf


# ---------------------------------------------------------------------------------------------
# Literals
# ---------------------------------------------------------------------------------------------


def escape_string(text: str) -> str:
    """Escape text for use inside a quoted SOQL string literal (quotes not included)."""
    return text.translate(_ESCAPE_TABLE)


def escape_like(text: str) -> str:
    """Escape text so a LIKE pattern matches it literally; add ``%``/``_`` wildcards around it.

    LIKE values are patterns: ``%`` and ``_`` are wildcards, ``\\%``, ``\\_`` and ``\\\\``
    match those characters literally.
    """
    return text.translate(_LIKE_TABLE)


def like_literal(pattern: str) -> str:
    """A LIKE pattern (see `escape_like`) as a quoted SOQL literal, keeping its escapes."""

    def repl(match: re.Match[str]) -> str:
        token = match.group()
        return token if len(token) == 2 else _STRING_ESCAPES[token]

    return "'" + _LIKE_TOKEN_RE.sub(repl, pattern) + "'"


def format_datetime(value: datetime) -> str:
    """A SOQL datetime literal in UTC, e.g. ``2024-05-01T12:00:00.000Z``.

    Raises:
        SoqlBuildError: for a naive datetime (its time zone would be a guess).
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise SoqlBuildError(f"datetime {value.isoformat()} has no time zone; pass an aware one")
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def literal(value: Scalar) -> str:
    """A Python value as a SOQL literal: quoted/escaped strings, dates, numbers, booleans, null.

    Raises:
        SoqlBuildError: for values SOQL cannot express (NaN, infinity, other types).
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "'" + value.translate(_ESCAPE_TABLE) + "'"
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float | Decimal):
        if isinstance(value, float) and not math.isfinite(value):
            raise SoqlBuildError(f"{value!r} cannot be written in SOQL")
        number = Decimal(repr(value)) if isinstance(value, float) else value
        if not number.is_finite():
            raise SoqlBuildError(f"{value!r} cannot be written in SOQL")
        return format(number, "f")
    raise SoqlBuildError(f"unsupported value type {type(value).__name__}")


def _check_type(info: FieldInfo, value: Scalar, object_name: str) -> None:
    if value is None:
        return
    kind = info.type
    if kind == "boolean":
        ok = isinstance(value, bool)
    elif kind in _NUMERIC_TYPES:
        ok = isinstance(value, int | float | Decimal) and not isinstance(value, bool)
    elif kind == "datetime":
        ok = isinstance(value, datetime)
    elif kind == "date":
        ok = isinstance(value, date) and not isinstance(value, datetime)
    else:
        ok = isinstance(value, str)
    if not ok:
        raise SoqlBuildError(
            f"{object_name}.{info.name} is a {kind} field; "
            f"{type(value).__name__} value {value!r} does not fit it"
        )


# ---------------------------------------------------------------------------------------------
# WHERE clauses
# ---------------------------------------------------------------------------------------------


def _as_condition(item: Any) -> Condition | AnyOf:
    if isinstance(item, Condition | AnyOf):
        return item
    if isinstance(item, tuple) and len(item) == 3:
        name, op, value = item
        if not isinstance(op, str):
            raise SoqlBuildError(f"operator for {name!r} must be text, got {op!r}")
        normalized = " ".join(op.upper().split())
        if normalized == "<>":
            normalized = "!="
        if normalized not in OPERATORS:
            raise SoqlBuildError(
                f"operator {op!r} for field {name!r} is not allowed; use one of "
                + ", ".join(sorted(OPERATORS))
            )
        return Condition(name, normalized, value)  # type: ignore[arg-type]
    raise SoqlBuildError(f"a filter must be (field, operator, value), got {item!r}")


def _render(item: Any, info: ObjectInfo, nested: bool) -> str:
    cond = _as_condition(item)
    if isinstance(cond, AnyOf):
        if not cond.filters:
            raise SoqlBuildError("AnyOf needs at least one filter")
        parts = []
        for sub in cond.filters:
            if isinstance(sub, list):
                parts.append(_render_all(sub, info, nested=True))
            else:
                parts.append(_render(sub, info, nested=True))
        joined = " OR ".join(parts)
        return f"({joined})" if len(parts) > 1 else joined
    name = cond.field
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise SoqlBuildError(f"{name!r} is not a valid {info.name} field name")
    field = info.field(name)
    if field.type in _UNFILTERABLE:
        raise SoqlBuildError(f"{info.name}.{field.name} ({field.type}) cannot be filtered")
    op = cond.op
    if op in ("IN", "NOT IN"):
        if isinstance(cond.value, str | bytes) or not isinstance(cond.value, Iterable):
            raise SoqlBuildError(f"{op} on {field.name} needs a list of values")
        values = list(cond.value)
        if not values:
            raise SoqlBuildError(f"{op} on {field.name} needs at least one value")
        for v in values:
            _check_type(field, v, info.name)
        return f"{field.name} {op} ({', '.join(literal(v) for v in values)})"
    if isinstance(cond.value, list | tuple | set | frozenset):
        raise SoqlBuildError(f"{op} on {field.name} needs a single value; use IN for a list")
    value = cast(Scalar, cond.value)
    if value is None and op not in ("=", "!="):
        raise SoqlBuildError(f"null can only be compared with = or != ({field.name})")
    if op == "LIKE" and not isinstance(value, str):
        raise SoqlBuildError(f"LIKE on {field.name} needs a text pattern")
    _check_type(field, value, info.name)
    if op == "LIKE":
        return f"{field.name} LIKE {like_literal(cast(str, value))}"
    return f"{field.name} {op} {literal(value)}"


def _render_all(filters: Iterable[Any], info: ObjectInfo, nested: bool) -> str:
    parts = [_render(f, info, nested) for f in filters]
    if not parts:
        raise SoqlBuildError("an AND group needs at least one filter")
    joined = " AND ".join(parts)
    return f"({joined})" if nested and len(parts) > 1 else joined


def where_clause(filters: Iterable[Filter], info: ObjectInfo) -> str:
    """The SOQL condition (without ``WHERE``) for filters ANDed together; "" when none.

    Raises:
        SoqlBuildError: unknown field (naming it and the object), operator not allowed, or a
            value that does not fit the field's type.
    """
    items = list(filters)
    return _render_all(items, info, nested=False) if items else ""


def select_query(
    info: ObjectInfo,
    fields: Sequence[str],
    *,
    where: Sequence[str] = (),
    order_by: Sequence[str] = (),
    limit: int | None = None,
) -> str:
    """``SELECT ... FROM`` with already-rendered WHERE parts (ANDed, each parenthesised).

    Field names in `fields` and `order_by` are validated against `info`.
    """
    names = [info.field(f).name for f in fields]
    soql = f"SELECT {', '.join(names)} FROM {info.name}"
    conditions = [w for w in where if w]
    if conditions:
        soql += " WHERE " + " AND ".join(f"({w})" if len(conditions) > 1 else w for w in conditions)
    if order_by:
        soql += " ORDER BY " + ", ".join(info.field(f).name for f in order_by)
    if limit is not None:
        soql += f" LIMIT {int(limit)}"
    return soql


def count_query(info: ObjectInfo, *, where: Sequence[str] = ()) -> str:
    """``SELECT COUNT() FROM ...`` with already-rendered WHERE parts (ANDed)."""
    conditions = [w for w in where if w]
    soql = f"SELECT COUNT() FROM {info.name}"
    if conditions:
        soql += " WHERE " + " AND ".join(f"({w})" if len(conditions) > 1 else w for w in conditions)
    return soql
