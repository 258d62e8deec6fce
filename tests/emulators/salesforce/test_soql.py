"""The SOQL-subset parser and the emulator's evaluation of parsed queries."""

from __future__ import annotations

from typing import Any

import pytest

from crm_sync.sandbox.salesforce.data import QueryRunner, make_id, seed_records
from crm_sync.sandbox.salesforce.soql import (
    BoolOp,
    Comparison,
    InList,
    Like,
    Not,
    OrderBy,
    SoqlError,
    parse,
    parse_condition,
)


def where(text: str) -> Any:
    return parse(f"SELECT Id FROM Contact WHERE {text}").where


def test_select_fields_and_object() -> None:
    """Fields, relationship paths and the object come out in order."""
    query = parse("select Id, Account.Name, Email from Contact")
    assert query.fields == ("Id", "Account.Name", "Email")
    assert query.sobject == "Contact"
    assert query.where is None


def test_and_binds_tighter_than_or() -> None:
    """`a OR b AND c` groups as `a OR (b AND c)`."""
    assert where("A = 1 OR B = 2 AND C = 3") == BoolOp(
        "OR",
        (
            Comparison("A", "=", 1),
            BoolOp("AND", (Comparison("B", "=", 2), Comparison("C", "=", 3))),
        ),
    )


def test_parentheses_override_precedence() -> None:
    """`(a OR b) AND c` keeps the OR inside."""
    assert where("(A = 1 OR B = 2) AND C = 3") == BoolOp(
        "AND",
        (BoolOp("OR", (Comparison("A", "=", 1), Comparison("B", "=", 2))), Comparison("C", "=", 3)),
    )


def test_not_applies_to_the_next_condition_only() -> None:
    """`NOT a AND b` is `(NOT a) AND b`."""
    assert where("NOT A = null AND B != null") == BoolOp(
        "AND", (Not(Comparison("A", "=", None)), Comparison("B", "!=", None))
    )


def test_literals_and_operators() -> None:
    """Strings with escapes, numbers, booleans, null and `<>` parse to values."""
    assert where("Name = 'O\\'Brien \\\\ x'") == Comparison("Name", "=", "O'Brien \\ x")
    assert where("N >= 2.5") == Comparison("N", ">=", 2.5)
    assert where("Flag <> TRUE") == Comparison("Flag", "!=", True)
    assert where("Flag = false") == Comparison("Flag", "=", False)


def test_in_not_in_and_like() -> None:
    """IN lists, NOT IN and LIKE patterns."""
    assert where("Id IN ('a', 'b')") == InList("Id", ("a", "b"))
    assert where("Id NOT IN ('a')") == InList("Id", ("a",), negated=True)
    assert where("Name LIKE 'Ac%'") == Like("Name", "Ac%")


def test_order_by_and_limit() -> None:
    """Several ORDER BY keys with directions and NULLS, then LIMIT."""
    query = parse("SELECT Id FROM Lead ORDER BY LastName DESC NULLS LAST, Id LIMIT 10")
    assert query.order_by == (OrderBy("LastName", True, True), OrderBy("Id", False, None))
    assert query.limit == 10


@pytest.mark.parametrize(
    "text",
    [
        "SELECT FROM Contact",
        "SELECT Id, FROM Contact",
        "SELECT Id FROM",
        "SELECT Id FROM Contact WHERE",
        "SELECT Id FROM Contact WHERE (Email = null",
        "SELECT Id FROM Contact WHERE Email = null)",
        "SELECT Id FROM Contact WHERE Name = 'open",
        "SELECT Id FROM Contact WHERE Email == 'x'",
        "SELECT Id FROM Contact WHERE Email = null; DELETE",
        "SELECT Id FROM Contact WHERE Id IN ()",
        "SELECT Id FROM Contact LIMIT -1",
        "SELECT Id FROM Contact ORDER Id",
        "SELECT Id FROM Contact WHERE Email NOT = null",
    ],
)
def test_syntax_errors(text: str) -> None:
    """Malformed queries raise SoqlError with the MALFORMED_QUERY code."""
    with pytest.raises(SoqlError) as info:
        parse(text)
    assert info.value.code == "MALFORMED_QUERY"


def test_parse_condition_alone() -> None:
    """A WHERE fragment parses on its own and rejects trailing tokens."""
    assert parse_condition("LeadSource = 'Web'") == Comparison("LeadSource", "=", "Web")
    with pytest.raises(SoqlError):
        parse_condition("LeadSource = 'Web' ORDER BY Id")


@pytest.fixture
def runner() -> QueryRunner:
    records = seed_records([], [])
    account = make_id("Account", 0)
    rows: list[dict[str, Any]] = [
        {"FirstName": "Ada", "LastName": "Lovelace", "Email": "ada@x.com", "AccountId": account},
        {"FirstName": "alan", "LastName": "Turing", "Email": None, "AccountId": None},
        {"FirstName": "Grace", "LastName": None, "Email": "g@x.com", "AccountId": account},
    ]
    for index, row in enumerate(rows):
        record_id = make_id("Contact", index)
        records[record_id] = {"Id": record_id, "Phone": None, **row}
    return QueryRunner(records)


def first_names(runner: QueryRunner, text: str) -> list[str]:
    _, rows = runner.run(parse(text))
    return [row["FirstName"] for row in rows]


def test_null_semantics(runner: QueryRunner) -> None:
    """`!= 'x'` keeps nulls; `= null`, `!= null` test emptiness; `<` never matches null."""
    base = "SELECT FirstName FROM Contact WHERE "
    assert first_names(runner, base + "LastName != 'Turing'") == ["Ada", "Grace"]
    assert first_names(runner, base + "LastName = null") == ["Grace"]
    assert first_names(runner, base + "Email != null") == ["Ada", "Grace"]
    assert first_names(runner, base + "LastName < 'Z'") == ["Ada", "alan"]


def test_like_in_and_case(runner: QueryRunner) -> None:
    """LIKE and `=` ignore case; IN matches any; NOT negates."""
    base = "SELECT FirstName FROM Contact WHERE "
    assert first_names(runner, base + "FirstName LIKE 'A%'") == ["Ada", "alan"]
    assert first_names(runner, base + "firstname = 'ALAN'") == ["alan"]
    assert first_names(runner, base + "FirstName IN ('Grace', 'Ada')") == ["Ada", "Grace"]
    assert first_names(runner, base + "NOT (FirstName = 'Ada' OR Email = null)") == ["Grace"]


def test_relationship_fields_nest_or_are_null(runner: QueryRunner) -> None:
    """`Account.Name` comes back nested under `Account`, or `Account: null` without one."""
    _, rows = runner.run(parse("SELECT Id, Account.Name, Account.Website FROM Contact"))
    assert rows[0]["Account"]["Name"] == "Acme Analytics"
    assert rows[0]["Account"]["attributes"]["type"] == "Account"
    assert rows[1]["Account"] is None
    assert first_names(runner, "SELECT FirstName FROM Contact WHERE Account.Name LIKE 'acme%'") == [
        "Ada",
        "Grace",
    ]


def test_order_by_desc_puts_nulls_last_and_limit_cuts(runner: QueryRunner) -> None:
    """ORDER BY DESC sorts case-insensitively with nulls last; LIMIT keeps the first rows."""
    text = "SELECT FirstName FROM Contact ORDER BY LastName DESC LIMIT 2"
    assert first_names(runner, text) == ["alan", "Ada"]
    text = "SELECT FirstName FROM Contact ORDER BY LastName ASC"
    assert first_names(runner, text) == ["Grace", "Ada", "alan"]


def test_unknown_names_and_type_mismatches(runner: QueryRunner) -> None:
    """Unknown fields, relationships and objects are INVALID_*; a boolean needs a boolean."""
    for text, code in [
        ("SELECT Bogus__c FROM Contact", "INVALID_FIELD"),
        ("SELECT Owner.Name FROM Contact", "INVALID_FIELD"),
        ("SELECT Id FROM Opportunity", "INVALID_TYPE"),
        ("SELECT Id FROM Contact WHERE Enrichment_Opt_Out__c = 'yes'", "MALFORMED_QUERY"),
    ]:
        with pytest.raises(SoqlError) as info:
            runner.run(parse(text))
        assert info.value.code == code, text
