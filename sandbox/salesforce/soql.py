"""A SOQL subset for the Salesforce emulator: tokenizer, parser and compiler to SQLite.

Supported: ``SELECT f1, f2 | COUNT() FROM Obj [WHERE ...] [ORDER BY f [ASC|DESC] [NULLS
FIRST|LAST], ...] [LIMIT n] [OFFSET n]`` with AND/OR/NOT, parentheses, ``= != <> < > <= >= LIKE
IN NOT IN``, ``null``, string/number/boolean/date/datetime literals, Salesforce's string
escapes and its relative date literals (``TODAY``, ``LAST_N_DAYS:7``, ``THIS_WEEK``, ...: UTC,
weeks starting on Sunday as in the en_US locale, fiscal years on calendar years). Errors are `SoqlError` carrying Salesforce's error code (MALFORMED_QUERY, INVALID_FIELD,
INVALID_TYPE) so the app can answer like the real API.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

__all__ = [
    "Comparison",
    "Condition",
    "FieldSpec",
    "Literal",
    "Logical",
    "Not",
    "Query",
    "SoqlError",
    "compile_query",
    "date_literal_range",
    "format_datetime",
    "parse",
    "parse_literal",
]


class SoqlError(Exception):
    """A query Salesforce would refuse; `code` is its errorCode."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class FieldSpec(Protocol):
    """What the compiler needs to know about one field: name and Salesforce type."""

    @property
    def name(self) -> str: ...

    @property
    def type(self) -> str: ...  # id, string, email, picklist, boolean, double, int, date, datetime


# ---------------------------------------------------------------------------------------------
# Tokens
# ---------------------------------------------------------------------------------------------

_KEYWORDS = {
    "SELECT",
    "FROM",
    "WHERE",
    "AND",
    "OR",
    "NOT",
    "IN",
    "LIKE",
    "ORDER",
    "BY",
    "ASC",
    "DESC",
    "NULLS",
    "FIRST",
    "LAST",
    "LIMIT",
    "OFFSET",
    "NULL",
    "TRUE",
    "FALSE",
    "COUNT",
}

_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2})(?![\w:])
  | (?P<number>[+-]?\d+(?:\.\d+)?)(?![\w.])
  | (?P<string>')
  | (?P<dateliteral>(?i:(?:LAST_N_|NEXT_N_)(?:DAYS|WEEKS|MONTHS|QUARTERS|YEARS|FISCAL_QUARTERS
        |FISCAL_YEARS)|N_(?:DAYS|WEEKS|MONTHS|QUARTERS|YEARS|FISCAL_QUARTERS|FISCAL_YEARS)_AGO)
        \s*:\s*\d+)(?![\w.])
  | (?P<op>!=|<>|<=|>=|=|<|>)
  | (?P<punct>[(),])
  | (?P<ident>[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*)*)
    """,
    re.VERBOSE,
)

_SIMPLE_ESCAPES = {
    "\\": "\\",
    "'": "'",
    '"': '"',
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "b": "\b",
    "f": "\f",
}


@dataclass(frozen=True, slots=True)
class Literal:
    """A literal value; `like` is the SQLite LIKE pattern (escape char ``\\``) for strings."""

    kind: str  # string, number, boolean, null, date, datetime, daterange ((NAME, n))
    value: Any
    like: str | None = None


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str
    text: str
    pos: int
    literal: Literal | None = None


def _read_string(soql: str, start: int) -> tuple[Literal, int]:
    """Decode the quoted string starting after the quote at `start`; return it and the end."""
    out: list[str] = []
    like: list[str] = []
    i = start + 1
    n = len(soql)
    while i < n:
        ch = soql[i]
        if ch == "'":
            return Literal("string", "".join(out), "".join(like)), i + 1
        if ch == "\\":
            if i + 1 >= n:
                break
            nxt = soql[i + 1]
            if nxt in _SIMPLE_ESCAPES:
                decoded = _SIMPLE_ESCAPES[nxt]
                out.append(decoded)
                like.append("\\\\" if decoded == "\\" else decoded)
                i += 2
                continue
            if nxt in "%_":
                # Only meaningful in LIKE, where it matches the character literally.
                out.append("\\" + nxt)
                like.append("\\" + nxt)
                i += 2
                continue
            if nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", soql[i + 2 : i + 6]):
                decoded = chr(int(soql[i + 2 : i + 6], 16))
                out.append(decoded)
                like.append(decoded)
                i += 6
                continue
            raise SoqlError(
                "MALFORMED_QUERY", f"Invalid string literal escape sequence '\\{nxt}' at {i}"
            )
        out.append(ch)
        like.append(ch)
        i += 1
    raise SoqlError("MALFORMED_QUERY", f"unterminated string literal starting at {start}")


_DATE_LITERALS = {
    "YESTERDAY",
    "TODAY",
    "TOMORROW",
    "LAST_90_DAYS",
    "NEXT_90_DAYS",
    *(
        f"{when}_{unit}"
        for when in ("LAST", "THIS", "NEXT")
        for unit in ("WEEK", "MONTH", "QUARTER", "YEAR", "FISCAL_QUARTER", "FISCAL_YEAR")
    ),
}
_UNIT_MONTHS = {"MONTH": 1, "QUARTER": 3, "YEAR": 12, "FISCAL_QUARTER": 3, "FISCAL_YEAR": 12}


def _period_start(unit: str, today: date) -> date:
    if unit == "DAY":
        return today
    if unit == "WEEK":
        return today - timedelta(days=(today.weekday() + 1) % 7)  # weeks start on Sunday
    months = _UNIT_MONTHS[unit]
    month0 = (today.month - 1) // months * months
    return date(today.year, month0 + 1, 1)


def _shift(unit: str, start: date, steps: int) -> date:
    if unit == "DAY":
        return start + timedelta(days=steps)
    if unit == "WEEK":
        return start + timedelta(days=7 * steps)
    total = start.year * 12 + start.month - 1 + steps * _UNIT_MONTHS[unit]
    return date(total // 12, total % 12 + 1, 1)


def date_literal_range(name: str, n: int, today: date) -> tuple[date, date]:
    """The [start, end) days a relative date literal covers, e.g. LAST_N_DAYS:7 on `today`.

    Raises:
        SoqlError: an unknown literal.
    """
    fixed = {"YESTERDAY": ("DAY", -1), "TODAY": ("DAY", 0), "TOMORROW": ("DAY", 1)}
    if name in fixed:
        unit, step = fixed[name]
        return _shift(unit, today, step), _shift(unit, today, step + 1)
    if name in ("LAST_90_DAYS", "NEXT_90_DAYS"):
        name, n = name.replace("90", "N"), 90
    when, _, rest = name.partition("_")
    if when in ("LAST", "THIS", "NEXT") and not rest.startswith("N_"):
        unit, step = rest, {"LAST": -1, "THIS": 0, "NEXT": 1}[when]
        start = _period_start(unit, today)
        return _shift(unit, start, step), _shift(unit, start, step + 1)
    plural: str | None = None
    if when in ("LAST", "NEXT") and rest.startswith("N_"):
        plural = rest[2:]
    elif name.startswith("N_") and name.endswith("_AGO"):
        plural = name[2:-4]
    unit = (plural or "")[:-1]  # DAYS -> DAY, FISCAL_YEARS -> FISCAL_YEAR
    if unit != "DAY" and unit != "WEEK" and unit not in _UNIT_MONTHS:
        raise SoqlError("MALFORMED_QUERY", f"unknown date literal {name}")
    start = _period_start(unit, today)
    if name.endswith("_AGO"):
        return _shift(unit, start, -n), _shift(unit, start, -n + 1)
    if when == "NEXT":
        return _shift(unit, start, 1), _shift(unit, start, 1 + n)
    if unit == "DAY":
        return _shift(unit, start, -n), _shift(unit, start, 1)  # LAST_N_DAYS includes today
    return _shift(unit, start, -n), start


def _tokenize(soql: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    n = len(soql)
    while pos < n:
        m = _TOKEN_RE.match(soql, pos)
        if m is None:
            raise SoqlError(
                "MALFORMED_QUERY", f"unexpected character {soql[pos]!r} at position {pos}"
            )
        kind = m.lastgroup or ""
        text = m.group()
        if kind == "ws":
            pos = m.end()
            continue
        if kind == "string":
            lit, end = _read_string(soql, pos)
            tokens.append(_Token("literal", soql[pos:end], pos, lit))
            pos = end
            continue
        if kind == "number":
            num: int | float = float(text) if "." in text else int(text)
            tokens.append(_Token("literal", text, pos, Literal("number", num)))
        elif kind == "date":
            tokens.append(_Token("literal", text, pos, Literal("date", text)))
        elif kind == "datetime":
            tokens.append(_Token("literal", text, pos, Literal("datetime", _parse_dt(text))))
        elif kind == "dateliteral":
            name, _, count = text.upper().replace(" ", "").partition(":")
            tokens.append(_Token("literal", text, pos, Literal("daterange", (name, int(count)))))
        elif kind == "ident" and text.upper() in _DATE_LITERALS:
            tokens.append(_Token("literal", text, pos, Literal("daterange", (text.upper(), 1))))
        elif kind == "ident" and text.upper() in _KEYWORDS:
            up = text.upper()
            if up == "NULL":
                tokens.append(_Token("literal", text, pos, Literal("null", None)))
            elif up in ("TRUE", "FALSE"):
                tokens.append(_Token("literal", text, pos, Literal("boolean", up == "TRUE")))
            else:
                tokens.append(_Token("kw", up, pos))
        else:
            tokens.append(_Token(kind, text, pos))
        pos = m.end()
    tokens.append(_Token("eof", "", n))
    return tokens


def _parse_dt(text: str) -> str:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise SoqlError("MALFORMED_QUERY", f"invalid datetime literal {text}") from exc
    return format_datetime(parsed)


def format_datetime(value: datetime) -> str:
    """The emulator's stored and returned form: UTC, milliseconds, ``+0000`` like Salesforce."""
    utc = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}+0000"


def parse_literal(text: str) -> Literal:
    """Parse one SOQL literal (e.g. ``'O\\'Brien'``); used by tests to check round trips."""
    tokens = _tokenize(text)
    if len(tokens) != 2 or tokens[0].literal is None:
        raise SoqlError("MALFORMED_QUERY", f"not a single literal: {text!r}")
    return tokens[0].literal


# ---------------------------------------------------------------------------------------------
# AST and parser
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Comparison:
    """``field op value``; for IN / NOT IN the value is a tuple of literals."""

    field: str
    op: str
    value: Literal | tuple[Literal, ...]


@dataclass(frozen=True, slots=True)
class Logical:
    """AND / OR of two or more conditions."""

    op: str
    parts: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class Not:
    """NOT condition."""

    part: Condition


Condition = Comparison | Logical | Not


@dataclass(slots=True)
class Query:
    """A parsed SELECT."""

    object_name: str
    fields: list[str]
    count: bool
    where: Condition | None = None
    order_by: list[tuple[str, bool, str | None]] = field(default_factory=list)
    limit: int | None = None
    offset: int | None = None


class _Parser:
    def __init__(self, soql: str) -> None:
        self.tokens = _tokenize(soql)
        self.i = 0

    def peek(self) -> _Token:
        return self.tokens[self.i]

    def take(self) -> _Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def is_kw(self, *words: str) -> bool:
        tok = self.peek()
        return tok.kind == "kw" and tok.text in words

    def expect_kw(self, word: str) -> None:
        tok = self.take()
        if tok.kind != "kw" or tok.text != word:
            raise self.unexpected(tok, f"expecting {word}")

    def expect_punct(self, ch: str) -> None:
        tok = self.take()
        if tok.kind != "punct" or tok.text != ch:
            raise self.unexpected(tok, f"expecting '{ch}'")

    def unexpected(self, tok: _Token, why: str) -> SoqlError:
        shown = tok.text or "end of query"
        return SoqlError("MALFORMED_QUERY", f"unexpected token: '{shown}' at {tok.pos} ({why})")

    def ident(self) -> str:
        tok = self.take()
        if tok.kind != "ident":
            raise self.unexpected(tok, "expecting a field name")
        return tok.text

    def query(self) -> Query:
        self.expect_kw("SELECT")
        fields: list[str] = []
        count = False
        if self.is_kw("COUNT"):
            self.take()
            self.expect_punct("(")
            self.expect_punct(")")
            count = True
        else:
            fields.append(self.ident())
            while self.peek().kind == "punct" and self.peek().text == ",":
                self.take()
                fields.append(self.ident())
        self.expect_kw("FROM")
        q = Query(object_name=self.ident(), fields=fields, count=count)
        if self.is_kw("WHERE"):
            self.take()
            q.where = self.disjunction()
        if self.is_kw("ORDER"):
            self.take()
            self.expect_kw("BY")
            while True:
                name = self.ident()
                asc = True
                if self.is_kw("ASC", "DESC"):
                    asc = self.take().text == "ASC"
                nulls: str | None = None
                if self.is_kw("NULLS"):
                    self.take()
                    if not self.is_kw("FIRST", "LAST"):
                        raise self.unexpected(self.peek(), "expecting FIRST or LAST")
                    nulls = self.take().text
                q.order_by.append((name, asc, nulls))
                if self.peek().kind == "punct" and self.peek().text == ",":
                    self.take()
                    continue
                break
        if self.is_kw("LIMIT"):
            self.take()
            q.limit = self.integer()
        if self.is_kw("OFFSET"):
            self.take()
            q.offset = self.integer()
        tok = self.peek()
        if tok.kind != "eof":
            raise self.unexpected(tok, "expecting end of query")
        return q

    def integer(self) -> int:
        tok = self.take()
        lit = tok.literal
        if lit is None or lit.kind != "number" or not isinstance(lit.value, int) or lit.value < 0:
            raise self.unexpected(tok, "expecting a non-negative integer")
        return lit.value

    def disjunction(self) -> Condition:
        parts = [self.conjunction()]
        while self.is_kw("OR"):
            self.take()
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else Logical("OR", tuple(parts))

    def conjunction(self) -> Condition:
        parts = [self.unary()]
        while self.is_kw("AND"):
            self.take()
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else Logical("AND", tuple(parts))

    def unary(self) -> Condition:
        if self.is_kw("NOT"):
            self.take()
            return Not(self.unary())
        tok = self.peek()
        if tok.kind == "punct" and tok.text == "(":
            self.take()
            inner = self.disjunction()
            self.expect_punct(")")
            return inner
        return self.comparison()

    def comparison(self) -> Comparison:
        name = self.ident()
        tok = self.take()
        if tok.kind == "op":
            return Comparison(name, "!=" if tok.text == "<>" else tok.text, self.literal())
        if tok.kind == "kw" and tok.text == "LIKE":
            return Comparison(name, "LIKE", self.literal())
        if tok.kind == "kw" and tok.text == "IN":
            return Comparison(name, "IN", self.literal_list())
        if tok.kind == "kw" and tok.text == "NOT" and self.is_kw("IN"):
            self.take()
            return Comparison(name, "NOT IN", self.literal_list())
        raise self.unexpected(tok, "expecting an operator")

    def literal(self) -> Literal:
        tok = self.take()
        if tok.literal is None:
            raise self.unexpected(tok, "expecting a value")
        return tok.literal

    def literal_list(self) -> tuple[Literal, ...]:
        self.expect_punct("(")
        values = [self.literal()]
        while self.peek().kind == "punct" and self.peek().text == ",":
            self.take()
            values.append(self.literal())
        self.expect_punct(")")
        return tuple(values)


def parse(soql: str) -> Query:
    """Parse a SOQL query or raise `SoqlError` (MALFORMED_QUERY)."""
    return _Parser(soql).query()


# ---------------------------------------------------------------------------------------------
# Compiler to SQLite
# ---------------------------------------------------------------------------------------------

_STRINGY = {"id", "string", "email", "picklist", "textarea", "phone", "url", "reference"}
_NUMERIC = {"double", "int", "currency", "percent"}


@dataclass(slots=True)
class _Compiler:
    object_name: str
    fields: Mapping[str, FieldSpec]  # lower-case name -> spec
    today: date
    params: list[Any] = field(default_factory=list)

    def date_bounds(self, spec: FieldSpec, lit: Literal) -> tuple[str, str]:
        """A date literal's [start, end) in the stored form of `spec`'s values."""
        if spec.type not in ("date", "datetime"):
            raise SoqlError(
                "INVALID_FIELD",
                f"value of filter criterion for field '{spec.name}' must be of type "
                f"{spec.type} and should not be a date literal",
            )
        name, n = lit.value
        start, end = date_literal_range(name, n, self.today)
        if spec.type == "date":
            return start.isoformat(), end.isoformat()
        return (
            format_datetime(datetime(start.year, start.month, start.day, tzinfo=UTC)),
            format_datetime(datetime(end.year, end.month, end.day, tzinfo=UTC)),
        )

    def in_range(self, col: str, spec: FieldSpec, lit: Literal) -> str:
        start, end = self.date_bounds(spec, lit)
        self.params.extend([start, end])
        return f"({col} >= ? AND {col} < ?)"

    def spec(self, name: str) -> FieldSpec:
        found = self.fields.get(name.lower())
        if found is None:
            raise SoqlError(
                "INVALID_FIELD",
                f"No such column '{name}' on entity '{self.object_name}'. If you are attempting "
                "to use a custom field, be sure to append the '__c' after the custom field name.",
            )
        return found

    def value(self, spec: FieldSpec, lit: Literal) -> Any:
        kind = lit.kind
        ok = (
            (spec.type in _STRINGY and kind == "string")
            or (spec.type == "boolean" and kind == "boolean")
            or (spec.type in _NUMERIC and kind == "number")
            or (spec.type == "date" and kind == "date")
            or (spec.type == "datetime" and kind == "datetime")
        )
        if not ok:
            quoted = " and should be enclosed in quotes" if spec.type in _STRINGY else ""
            raise SoqlError(
                "INVALID_FIELD",
                f"value of filter criterion for field '{spec.name}' must be of type "
                f"{spec.type}{quoted}",
            )
        if kind == "boolean":
            return 1 if lit.value else 0
        return lit.value

    def condition(self, cond: Condition) -> str:
        if isinstance(cond, Logical):
            joined = f" {cond.op} ".join(self.condition(p) for p in cond.parts)
            return f"({joined})"
        if isinstance(cond, Not):
            return f"(NOT {self.condition(cond.part)})"
        spec = self.spec(cond.field)
        col = f'"{spec.name}"'
        if spec.type in _STRINGY and spec.type not in ("id", "reference"):
            # Salesforce compares text case-insensitively; Ids are exact.
            col += " COLLATE NOCASE"
        if cond.op in ("IN", "NOT IN"):
            assert isinstance(cond.value, tuple)
            if any(v.kind == "daterange" for v in cond.value):
                if not all(v.kind == "daterange" for v in cond.value):
                    raise SoqlError(
                        "MALFORMED_QUERY", f"{cond.op} mixes date literals with other values"
                    )
                ranges = " OR ".join(self.in_range(col, spec, v) for v in cond.value)
                if cond.op == "IN":
                    return f"({ranges})"
                return f"(NOT ({ranges}) OR {col} IS NULL)"
            values = [self.value(spec, v) for v in cond.value if v.kind != "null"]
            has_null = any(v.kind == "null" for v in cond.value)
            marks = ", ".join("?" for _ in values)
            self.params.extend(values)
            if cond.op == "IN":
                sql = f"{col} IN ({marks})" if values else "0"
                return f"({sql} OR {col} IS NULL)" if has_null else f"({sql})"
            sql = f"({col} NOT IN ({marks}) OR {col} IS NULL)" if values else "1"
            return f"({sql} AND {col} IS NOT NULL)" if has_null else f"({sql})"
        assert isinstance(cond.value, Literal)
        lit = cond.value
        if lit.kind == "null":
            if cond.op == "=":
                return f"{col} IS NULL"
            if cond.op == "!=":
                return f"{col} IS NOT NULL"
            raise SoqlError(
                "MALFORMED_QUERY", f"null can only be compared with = or != ({cond.field})"
            )
        if lit.kind == "daterange" and cond.op != "LIKE":
            if cond.op == "=":
                return self.in_range(col, spec, lit)
            if cond.op == "!=":
                return f"(NOT {self.in_range(col, spec, lit)} OR {col} IS NULL)"
            start, end = self.date_bounds(spec, lit)
            # A range compares by its start (<, >=) or its end (<=, >), as Salesforce does.
            self.params.append(start if cond.op in ("<", ">=") else end)
            return f"{col} {'<' if cond.op in ('<', '<=') else '>='} ?"
        if cond.op == "LIKE":
            if spec.type not in _STRINGY or lit.kind != "string":
                raise SoqlError(
                    "INVALID_FIELD", f"LIKE needs a string field and value ('{spec.name}')"
                )
            self.params.append(lit.like)
            return f"{col} LIKE ? ESCAPE '\\'"
        self.params.append(self.value(spec, lit))
        if cond.op == "!=":
            # SOQL's != matches nulls too, unlike SQL.
            return f"({col} != ? OR {col} IS NULL)"
        return f"{col} {cond.op} ?"


def compile_query(
    query: Query, fields: Mapping[str, FieldSpec], table: str, *, today: date | None = None
) -> tuple[str, list[Any], list[str]]:
    """SQL, parameters and canonical selected field names for a parsed query.

    Args:
        today: The UTC day relative date literals count from (today when None).

    Raises:
        SoqlError: INVALID_FIELD naming any unknown field, or a type mismatch.
    """
    comp = _Compiler(query.object_name, fields, today or datetime.now(UTC).date())
    selected = [comp.spec(f).name for f in query.fields]
    cols = "COUNT(*)" if query.count else ", ".join(f'"{name}"' for name in selected)
    sql = f'SELECT {cols} FROM "{table}"'
    if query.where is not None:
        sql += " WHERE " + comp.condition(query.where)
    if query.order_by and not query.count:
        parts = []
        for name, asc, nulls in query.order_by:
            spec = comp.spec(name)
            col = f'"{spec.name}"'
            # Salesforce puts nulls first in ascending order unless told otherwise.
            nulls_first = (nulls or ("FIRST" if asc else "LAST")) == "FIRST"
            parts.append(f"{col} IS {'NOT ' if nulls_first else ''}NULL")
            collate = " COLLATE NOCASE" if spec.type in _STRINGY and spec.type != "id" else ""
            parts.append(f"{col}{collate} {'ASC' if asc else 'DESC'}")
        sql += " ORDER BY " + ", ".join(parts)
    if not query.count and (query.limit is not None or query.offset is not None):
        sql += " LIMIT ? OFFSET ?"
        comp.params.extend([-1 if query.limit is None else query.limit, query.offset or 0])
    return sql, comp.params, selected
