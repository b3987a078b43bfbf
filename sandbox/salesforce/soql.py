"""A SOQL subset for the Salesforce emulator: tokenizer, parser and compiler to SQLite.

Supported: ``SELECT f1, f2 | COUNT() FROM Obj [WHERE ...] [ORDER BY f [ASC|DESC] [NULLS
FIRST|LAST], ...] [LIMIT n] [OFFSET n]`` with AND/OR/NOT, parentheses, ``= != <> < > <= >= LIKE
IN NOT IN``, ``null``, string/number/boolean/date/datetime literals and Salesforce's string
escapes. Errors are `SoqlError` carrying Salesforce's error code (MALFORMED_QUERY, INVALID_FIELD,
INVALID_TYPE) so the app can answer like the real API.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
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

    kind: str  # string, number, boolean, null, date, datetime
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
    params: list[Any] = field(default_factory=list)

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
    query: Query, fields: Mapping[str, FieldSpec], table: str
) -> tuple[str, list[Any], list[str]]:
    """SQL, parameters and canonical selected field names for a parsed query.

    Raises:
        SoqlError: INVALID_FIELD naming any unknown field, or a type mismatch.
    """
    comp = _Compiler(query.object_name, fields)
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
