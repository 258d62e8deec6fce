"""The SOQL subset the Salesforce emulator answers: a tokenizer and a recursive-descent parser.

    query      := SELECT field ("," field)* FROM name [WHERE expr]
                  [ORDER BY field [ASC|DESC] [NULLS (FIRST|LAST)] ("," ...)*] [LIMIT int]
    expr       := and_expr (OR and_expr)*
    and_expr   := unary (AND unary)*
    unary      := NOT unary | "(" expr ")" | condition
    condition  := field (op literal | [NOT] IN "(" literal ("," literal)* ")" | LIKE string)
    op         := "=" | "!=" | "<>" | "<" | "<=" | ">" | ">="
    literal    := 'string' | number | datetime | TRUE | FALSE | NULL
    datetime   := YYYY-MM-DDThh:mm:ss[.sss](Z | +hh:mm | -hh:mm)   (unquoted, as in SOQL)

Keywords and field names are case-insensitive, as in SOQL. NOT binds tighter than AND, AND
tighter than OR (real SOQL asks for parentheses when mixing them; accepting the usual
precedence is a superset). Errors raise `SoqlError`, which the emulator answers as 400
MALFORMED_QUERY. Meaning (which fields exist, null semantics) is the evaluator's job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

Literal = str | int | float | bool | datetime | None

KEYWORDS = frozenset(
    [
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
        "TRUE",
        "FALSE",
        "NULL",
    ]
)
COMPARISONS = frozenset({"=", "!=", "<>", "<", "<=", ">", ">="})
_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:\d{2}))
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<op>!=|<>|<=|>=|=|<|>)
  | (?P<punct>[(),])
    """,
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}


class SoqlError(ValueError):
    """The query is not valid SOQL (of the subset we speak)."""

    code = "MALFORMED_QUERY"


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # "string", "number", "name", "keyword", "op", "punct", "end"
    value: str
    pos: int


@dataclass(frozen=True, slots=True)
class Comparison:
    field: str
    op: str  # one of COMPARISONS, "<>" normalised to "!="
    value: Literal


@dataclass(frozen=True, slots=True)
class InList:
    field: str
    values: tuple[Literal, ...]
    negated: bool = False


@dataclass(frozen=True, slots=True)
class Like:
    field: str
    pattern: str


@dataclass(frozen=True, slots=True)
class Not:
    operand: Expr


@dataclass(frozen=True, slots=True)
class BoolOp:
    op: str  # "AND" or "OR"
    operands: tuple[Expr, ...]


Expr = Comparison | InList | Like | Not | BoolOp


@dataclass(frozen=True, slots=True)
class OrderBy:
    field: str
    descending: bool = False
    nulls_last: bool | None = None  # None: SOQL's default (nulls first ascending, last descending)


@dataclass(frozen=True, slots=True)
class Query:
    fields: tuple[str, ...]
    sobject: str
    where: Expr | None = None
    order_by: tuple[OrderBy, ...] = ()
    limit: int | None = None


def _unescape(body: str, pos: int) -> str:
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            nxt = body[i + 1]
            if nxt not in _ESCAPES:
                raise SoqlError(f"Invalid string literal escape \\{nxt} at position {pos + i}")
            out.append(_ESCAPES[nxt])
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def tokenize(text: str) -> list[Token]:
    """The tokens of `text`, ending with an `end` token; SoqlError on a character we cannot read."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            snippet = text[pos : pos + 10]
            if text[pos] == "'":
                raise SoqlError(f"unterminated string literal at position {pos}")
            raise SoqlError(f"unexpected character at position {pos}: {snippet!r}")
        kind = match.lastgroup or ""
        value = match.group()
        if kind == "string":
            tokens.append(Token("string", _unescape(value[1:-1], pos + 1), pos))
        elif kind == "name" and value.upper() in KEYWORDS:
            tokens.append(Token("keyword", value.upper(), pos))
        elif kind != "ws":
            tokens.append(Token(kind, value, pos))
        pos = match.end()
    tokens.append(Token("end", "", pos))
    return tokens


class _Parser:
    """One pass over a token list; each method parses one grammar rule."""

    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.i = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def _fail(self, expected: str) -> SoqlError:
        tok = self.tok
        found = "end of query" if tok.kind == "end" else repr(tok.value)
        return SoqlError(f"unexpected token: {found} at position {tok.pos}; expected {expected}")

    def accept(self, kind: str, value: str | None = None) -> Token | None:
        tok = self.tok
        if tok.kind == kind and (value is None or tok.value == value):
            self.i += 1
            return tok
        return None

    def expect(self, kind: str, value: str | None = None, what: str = "") -> Token:
        tok = self.accept(kind, value)
        if tok is None:
            raise self._fail(what or value or kind)
        return tok

    def query(self) -> Query:
        self.expect("keyword", "SELECT")
        fields = [self.expect("name", what="a field name").value]
        while self.accept("punct", ","):
            fields.append(self.expect("name", what="a field name").value)
        self.expect("keyword", "FROM")
        sobject = self.expect("name", what="an object name").value
        where = self.expr() if self.accept("keyword", "WHERE") else None
        order: list[OrderBy] = []
        if self.accept("keyword", "ORDER"):
            self.expect("keyword", "BY")
            order.append(self.order_item())
            while self.accept("punct", ","):
                order.append(self.order_item())
        limit = None
        if self.accept("keyword", "LIMIT"):
            number = self.expect("number", what="a row count")
            if not number.value.isdigit():
                raise SoqlError(f"LIMIT must be a non-negative integer, not {number.value}")
            limit = int(number.value)
        if self.tok.kind != "end":
            raise self._fail("end of query")
        return Query(tuple(fields), sobject, where, tuple(order), limit)

    def order_item(self) -> OrderBy:
        field = self.expect("name", what="a field name").value
        descending = bool(self.accept("keyword", "DESC"))
        if not descending:
            self.accept("keyword", "ASC")
        nulls_last: bool | None = None
        if self.accept("keyword", "NULLS"):
            if self.accept("keyword", "LAST"):
                nulls_last = True
            else:
                self.expect("keyword", "FIRST", what="FIRST or LAST")
                nulls_last = False
        return OrderBy(field, descending, nulls_last)

    def expr(self) -> Expr:
        operands = [self.and_expr()]
        while self.accept("keyword", "OR"):
            operands.append(self.and_expr())
        return operands[0] if len(operands) == 1 else BoolOp("OR", tuple(operands))

    def and_expr(self) -> Expr:
        operands = [self.unary()]
        while self.accept("keyword", "AND"):
            operands.append(self.unary())
        return operands[0] if len(operands) == 1 else BoolOp("AND", tuple(operands))

    def unary(self) -> Expr:
        if self.accept("keyword", "NOT"):
            return Not(self.unary())
        if self.accept("punct", "("):
            inner = self.expr()
            self.expect("punct", ")")
            return inner
        return self.condition()

    def condition(self) -> Expr:
        field = self.expect("name", what="a field name or '('").value
        if self.accept("keyword", "LIKE"):
            return Like(field, self.expect("string", what="a quoted pattern").value)
        negated = bool(self.accept("keyword", "NOT"))
        if self.accept("keyword", "IN"):
            return InList(field, self.literal_list(), negated)
        if negated:
            raise self._fail("IN")
        op = self.expect("op", what="a comparison operator").value
        return Comparison(field, "!=" if op == "<>" else op, self.literal())

    def literal_list(self) -> tuple[Literal, ...]:
        self.expect("punct", "(")
        values = [self.literal()]
        while self.accept("punct", ","):
            values.append(self.literal())
        self.expect("punct", ")")
        return tuple(values)

    def literal(self) -> Literal:
        tok = self.tok
        if tok.kind == "string":
            self.i += 1
            return tok.value
        if tok.kind == "datetime":
            self.i += 1
            return datetime.fromisoformat(tok.value.replace("Z", "+00:00"))
        if tok.kind == "number":
            self.i += 1
            return float(tok.value) if "." in tok.value else int(tok.value)
        if tok.kind == "keyword" and tok.value in {"TRUE", "FALSE", "NULL"}:
            self.i += 1
            return {"TRUE": True, "FALSE": False, "NULL": None}[tok.value]
        raise self._fail("a literal value")


def parse(text: str) -> Query:
    """The syntax tree of one SOQL query; SoqlError if it is not valid."""
    return _Parser(text).query()


def parse_condition(text: str) -> Expr:
    """The syntax tree of a WHERE fragment alone (used to check a user's filter)."""
    parser = _Parser(text)
    expr = parser.expr()
    if parser.tok.kind != "end":
        raise parser._fail("end of condition")
    return expr
