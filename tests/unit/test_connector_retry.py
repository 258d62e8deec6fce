"""Each connector only classifies what came back; the one RetryPolicy does the waiting."""

from __future__ import annotations

import json

import pytest
import urllib3
from hubspot.crm.contacts.exceptions import ApiException

from connectors.hubspot.policy import classify
from connectors.salesforce.http import classify as classify_salesforce
from crm_sync.errors import AuthError, QuotaExhausted, RateLimited, ServerError, ValidationError
from crm_sync.retry import Raise, Retry

API_ERRORS = (ApiException,)


def api_error(status: int, **body: str) -> ApiException:
    error = ApiException(status=status, reason="x")
    error.body = json.dumps(body)
    return error


@pytest.mark.parametrize(
    ("policy", "after"), [("TEN_SECONDLY_ROLLING", 10.0), ("SECONDLY", 1.0), ("", 10.0)]
)
def test_hubspot_rate_windows_are_retried_after_the_window(policy: str, after: float) -> None:
    """A 429 names its policy window: retry after it, RateLimited once retries are spent."""
    decision = classify(api_error(429, policyName=policy), 1, api_errors=API_ERRORS)
    assert isinstance(decision, Retry)
    assert decision.after == after
    assert isinstance(decision.give_up, RateLimited)


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (429, {"policyName": "DAILY"}, QuotaExhausted),
        (401, {"category": "INVALID_AUTHENTICATION"}, AuthError),
        (403, {}, AuthError),
        (400, {"category": "VALIDATION_ERROR"}, ValidationError),
    ],
)
def test_hubspot_final_answers_raise_what_the_caller_should_do(
    status: int, body: dict[str, str], error: type[Exception]
) -> None:
    """The daily quota, a refused token and a refused request are never retried."""
    decision = classify(api_error(status, **body), 1, api_errors=API_ERRORS)
    assert isinstance(decision, Raise)
    assert isinstance(decision.error, error)


def test_hubspot_server_and_connection_errors_are_retried() -> None:
    """5xx and a connection error back off, then are a ServerError."""
    server = classify(api_error(503), 1, api_errors=API_ERRORS)
    unreachable = classify(urllib3.exceptions.NewConnectionError(None, "refused"), 3, api_errors=())
    for decision in (server, unreachable):
        assert isinstance(decision, Retry)
        assert isinstance(decision.give_up, ServerError)
    assert isinstance(unreachable, Retry)
    assert "after 3 attempts" in str(unreachable.give_up)


def test_hubspot_passthrough_and_success_are_left_to_the_caller() -> None:
    """A status the caller handles itself, and any answer, are accepted as they are."""
    error = api_error(409)
    assert classify(error, 1, api_errors=API_ERRORS, passthrough=frozenset({409})) is None
    assert classify({"results": []}, 1, api_errors=API_ERRORS) is None


def test_salesforce_retries_server_errors_only() -> None:
    """5xx and connection errors (ServerError) are retried; anything else is final."""
    assert isinstance(classify_salesforce(ServerError("503"), 1), Retry)
    assert classify_salesforce(AuthError("refused"), 1) is None
    assert classify_salesforce({"records": []}, 1) is None
