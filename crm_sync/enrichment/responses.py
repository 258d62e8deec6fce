"""Reading the enrichment API's answers: bodies, results, and the error each status maps to.

Error mapping (crm_sync.errors): 401 -> EnrichmentAuthError; 400 -> ValidationError(code);
404 -> NotFoundError; 402 -> InsufficientCredits (except a 402 that carries a result body on
GET, which the client returns); 429 after retries -> RateLimited; 5xx / connection after retries
-> ServerError. Exceptions are raised `from None` and carry only codes and statuses: the API key
never reaches a message, a repr or a traceback.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import httpx
from pydantic import SecretStr
from pydantic import ValidationError as PydanticValidationError

from crm_sync.enrichment.models import ApiError, BulkRequest, EnrichmentResult, describe_errors
from crm_sync.errors import (
    EnrichmentAuthError,
    FatalError,
    InsufficientCredits,
    NotFoundError,
    RateLimited,
    ServerError,
    UnreadableResult,
    ValidationError,
)
from crm_sync.logs import MASK, scrub


def read_json(response: httpx.Response) -> Any:
    """The answer's JSON body, or None when it has none."""
    try:
        return response.json()
    except ValueError:
        return None


def api_error(response: httpx.Response) -> ApiError:
    """The `{code, message}` error body, or an empty one when the body is not of that shape."""
    body = read_json(response)
    if isinstance(body, dict):
        try:
            return ApiError.model_validate(body)
        except PydanticValidationError:
            pass
    return ApiError()


def validated_request(request: BulkRequest | Mapping[str, Any]) -> BulkRequest:
    """Re-validate before any network call (a model_construct'ed request skips validation)."""
    raw = request.model_dump() if isinstance(request, BulkRequest) else dict(request)
    try:
        return BulkRequest.model_validate(raw)
    except PydanticValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<body>'}: {err['msg']}"
            for err in exc.errors()[:5]
        )
        raise ValidationError(
            f"bulk request is invalid, not sent: {problems}", code="client.invalid_request"
        ) from None


def parse_result(enrichment_id: str, body: Any, status: int) -> EnrichmentResult:
    """A result body read per item; UnreadableResult when its envelope cannot be read.

    A malformed item does not make the result unreadable: it is kept in `result.malformed`.
    """
    if not isinstance(body, dict):
        raise UnreadableResult(
            f"the enrichment API answered {status} with a result that is not a JSON object",
            status=status,
            code="result.unreadable",
        )
    try:
        result = EnrichmentResult.model_validate(body)
    except PydanticValidationError as exc:
        raise UnreadableResult(
            f"the enrichment API answered {status} with an unreadable result "
            f"({describe_errors(exc)})",
            status=status,
            code="result.unreadable",
        ) from None
    return result if result.id else result.model_copy(update={"id": enrichment_id})


def clean(text: str, key: SecretStr) -> str:
    """An API-provided text, safe for a message: key masked, length bounded."""
    return scrub(text.replace(key.get_secret_value(), MASK))[:200]


def raise_for_status(
    endpoint: str,
    response: httpx.Response,
    *,
    key: SecretStr,
    max_retries: int,
    code_map: Callable[[str], str] = str,
) -> None:
    """Map a non-2xx answer to the exception that tells the caller what to do.

    `code_map` turns the dialect's error code into the internal (v1) name.
    """
    status = response.status_code
    if status < 300:
        return
    error = api_error(response)
    code = clean(code_map(error.code), key)
    detail = clean(error.message, key) or response.reason_phrase
    what = f"{endpoint}: {status} {code}".rstrip()
    if status == 401:
        raise EnrichmentAuthError(
            f"the enrichment API refused the API key ({code or status})",
            service="enrichment",
            code=code,
        )
    if status == 402:
        raise InsufficientCredits(f"the enrichment account is out of credits ({what})")
    if status == 400:
        raise ValidationError(
            f"the enrichment API refused the request ({what}): {detail}",
            status=status,
            code=code,
        )
    if status == 404:
        raise NotFoundError(f"not found on the enrichment API ({what})", status=status, code=code)
    if status == 429:
        raise RateLimited(
            f"still rate limited after {max_retries} retries ({what})",
            status=status,
            code=code,
        )
    if status >= 500:
        raise ServerError(f"the enrichment API kept failing ({what})", status=status, code=code)
    raise FatalError(
        f"unexpected answer from the enrichment API ({what})", status=status, code=code
    )
