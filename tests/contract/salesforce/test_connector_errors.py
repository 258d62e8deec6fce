"""Errors at the connector's boundary: quota, refused sessions, bad queries, flaky servers."""

from __future__ import annotations

import socket
import traceback
from typing import Any

import pytest
from structlog.testing import capture_logs

from connectors.salesforce import QUOTA_MESSAGE, SalesforceConnector, SalesforceSettings
from crm_sync.config import SourceConfig
from crm_sync.errors import AuthError, FatalError, QuotaExhausted, RetriableError, ValidationError
from tests.support.backoff import assert_backoff
from tests.support.clock import FakeClock
from tests.support.salesforce import Org

SECRET_SESSION = "00D5g-super-secret-session-Zq81"


def test_request_limit_stops_with_quota_exhausted(make_org: Any) -> None:
    """The 403 REQUEST_LIMIT_EXCEEDED ends paging with QuotaExhausted and the clear message."""
    org = make_org(contacts=180, page_size=50, daily_limit=2)
    connector = org.connector()
    pages = []
    with pytest.raises(QuotaExhausted) as info:
        pages.extend(connector.iter_candidates(connector.selection()))
    assert len(pages) == 2
    assert str(info.value) == QUOTA_MESSAGE
    assert info.value.code == "REQUEST_LIMIT_EXCEEDED"
    assert connector.calls.counts["query_more"] == 2  # refused calls are not retried


def test_refused_session_is_an_auth_error_without_the_session(org: Org) -> None:
    """A 401 becomes AuthError(service="salesforce"); the session id appears nowhere."""
    connector = org.connector(instance_url=org.server.url, session_id=SECRET_SESSION)
    with capture_logs() as logs, pytest.raises(AuthError) as info:
        connector.read([sorted(org.emulator.of_type("Contact"))[0]])
    error = info.value
    assert error.service == "salesforce"
    assert error.code == "INVALID_SESSION_ID"
    text = "".join(traceback.format_exception(error)) + repr(error) + repr(logs)
    assert SECRET_SESSION not in text
    assert SECRET_SESSION not in repr(connector.settings)


def test_user_fragment_with_unknown_field_is_a_fatal_query_error(org: Org) -> None:
    """An unknown field in the user's filter comes back as a ValidationError naming it."""
    connector = org.connector(filters="Favourite_Colour__c = 'blue'")
    with pytest.raises(ValidationError) as info:
        next(connector.iter_candidates(connector.selection()))
    assert info.value.code == "INVALID_FIELD"
    assert "Favourite_Colour__c" in str(info.value)


def test_user_fragment_with_bad_syntax_is_malformed_query(org: Org) -> None:
    """A fragment that passes the local checks but not the parser is MALFORMED_QUERY, fatal."""
    connector = org.connector(filters="Email = = 'x'")
    with pytest.raises(FatalError) as info:
        next(connector.iter_candidates(connector.selection()))
    assert info.value.code == "MALFORMED_QUERY"
    assert org.emulator.calls["query"] == 1


def test_server_errors_are_retried_then_succeed(org: Org) -> None:
    """Two 503 answers are retried with growing pauses; the third call succeeds."""
    org.emulator.fail_next(2)
    connector = org.connector()
    record_id = sorted(org.emulator.of_type("Contact"))[0]
    assert set(connector.read([record_id])) == {record_id}
    assert_backoff(org.clock.sleeps, 2)
    assert connector.calls.counts["query"] == 3


def test_server_errors_beyond_the_retries_are_retriable(org: Org) -> None:
    """When 5xx outlasts `max_retries` the caller gets a RetriableError."""
    org.emulator.fail_next(10)
    connector = org.connector(max_retries=2)
    with pytest.raises(RetriableError) as info:
        connector.read([sorted(org.emulator.of_type("Contact"))[0]])
    assert info.value.status == 503
    assert connector.calls.counts["query"] == 3


def test_connection_refused_is_retriable() -> None:
    """Nothing listening: bounded retries, then RetriableError."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = {"instance_url": f"http://127.0.0.1:{port}", "session_id": "x", "max_retries": 1}
    source = SourceConfig(
        name="sf", connector="salesforce", fields={"email": "Email"}, settings=settings
    )
    clock = FakeClock()
    connector = SalesforceConnector(
        source.spec(), SalesforceSettings.model_validate(settings), clock=clock
    )
    with pytest.raises(RetriableError):
        connector.read(["0035g0000000000AAA"])
    assert_backoff(clock.sleeps, 1)
    assert connector.calls.counts == {"query": 2}


def test_check_reports_session_fields_and_usage(org: Org) -> None:
    """check() lists the session, the object, each mapped field and the API requests left."""
    connector = org.connector(fields={"email": "Email", "phone": "Mobile__c"})
    lines = {r.name: r for r in connector.check()}
    assert lines["salesforce session"].ok
    assert lines["field email"].ok
    assert not lines["field phone"].ok
    assert "Mobile__c" in lines["field phone"].detail
    assert lines["field opt_out_field"].ok
    assert lines["salesforce api usage"].ok
    assert "99999 of 100000" in lines["salesforce api usage"].detail


def test_check_with_a_refused_session_says_so(org: Org) -> None:
    """check() turns an auth failure into one failing line."""
    connector = org.connector(instance_url=org.server.url, session_id=SECRET_SESSION)
    [line] = connector.check()
    assert not line.ok
    assert "renew" in line.detail
    assert SECRET_SESSION not in line.detail
