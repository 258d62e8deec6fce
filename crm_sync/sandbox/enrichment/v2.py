"""The enrichment emulator's v2 face: v2 bodies in and out, over the same jobs and world.

The emulator works in one internal shape (v1's, as `results.py` builds it); this
module translates at its edge, so a contact gets the same truth through `/api/v1` and
`/api/v2`. Shapes follow `fullenrich-openapi-v2.yml`; where the spec is silent (the body of a
`contact_finished` event), `docs/reference/fullenrich-v2-emulator.md` says what we chose.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from crm_sync.sandbox.enrichment.facts import CONTACT_EVENT, V2_ENRICH_FIELDS, V2_ERROR_CODES
from crm_sync.sandbox.enrichment.jobs import Job
from crm_sync.sandbox.enrichment.records import Exchange
from crm_sync.sandbox.enrichment.validation import ApiFailure, ValidContact

_WEBHOOK = re.compile(r"^https?://[^\s/]+(?:/\S*)?$", re.I)
_RENAMED_ITEM_KEYS = {"first_name": "firstname", "last_name": "lastname"}
#: `contact_finished` body styles: the result envelope holding one item (as FullEnrich's
#: webhook page reads), or the bare item (the spec says nothing; less convenient: no id).
CONTACT_EVENT_STYLES = ("envelope", "record")


@dataclass(frozen=True, slots=True)
class V2Submission:
    """A v2 POST body translated to the emulator's shape, and its per-contact event URL."""

    payload: dict[str, Any]
    contact_url: str | None


def _bad(code: str, message: str) -> ApiFailure:
    return ApiFailure(400, code, message)


def _item_to_v1(item: Any) -> Any:
    if not isinstance(item, dict):
        return item
    out = {
        _RENAMED_ITEM_KEYS.get(k, k): v
        for k, v in item.items()
        if k not in _RENAMED_ITEM_KEYS.values()
    }
    fields = item.get("enrich_fields")
    if isinstance(fields, list):
        if any(f not in V2_ENRICH_FIELDS for f in fields):
            bad = next(f for f in fields if f not in V2_ENRICH_FIELDS)
            raise _bad(
                "error.enrichment.enrich_field.value",
                f"enrichField '{bad}' not valid must be contact.work_emails or "
                "contact.phones or contact.personal_emails",
            )
        out["enrich_fields"] = [V2_ENRICH_FIELDS[f] for f in fields]
    return out


def submission_from_v2(payload: Any) -> V2Submission:
    """A v2 POST body in the emulator's internal (v1) names; 400 for what v2 refuses itself."""
    if not isinstance(payload, dict):
        raise _bad("error.body.invalid", "The body must be a JSON object")
    contact_url: str | None = None
    events = payload.get("webhook_events")
    if events is not None:
        url = events.get(CONTACT_EVENT) if isinstance(events, dict) else None
        if not isinstance(events, dict) or (url is not None and not isinstance(url, str)):
            raise _bad("error.body.invalid", "webhook_events must be an object of URLs")
        if url:
            if not _WEBHOOK.match(url):
                raise _bad(
                    "error.enrichment.webhook_url", "Webhook URL must be start with http or https"
                )
            contact_url = url
    translated = {k: v for k, v in payload.items() if k not in ("data", "datas", "webhook_events")}
    data = payload.get("data")
    translated["datas"] = [_item_to_v1(i) for i in data] if isinstance(data, list) else data
    return V2Submission(translated, contact_url)


def failure_to_v2(failure: ApiFailure) -> ApiFailure:
    """An emulator refusal in v2's codes and words."""
    code = V2_ERROR_CODES.get(failure.code, failure.code)
    message = failure.message.replace("datas", "data").replace("firstname", "first_name")
    message = message.replace("lastname", "last_name")
    return ApiFailure(failure.status, code, message)


def _email(address: str, status: str) -> dict[str, str]:
    return {"email": address, "status": status}


def _phone(found: dict[str, Any]) -> dict[str, str]:
    out = {"number": found.get("number") or ""}
    if found.get("region"):
        out["region"] = found["region"]
    return out


def contact_info(contact: dict[str, Any]) -> dict[str, Any]:
    """An internal contact's findings as v2's `ContactEnrichedInformation`."""
    info: dict[str, Any] = {}
    if contact.get("most_probable_email"):
        info["most_probable_work_email"] = _email(
            contact["most_probable_email"], contact.get("most_probable_email_status") or ""
        )
    if contact.get("most_probable_personal_email"):
        info["most_probable_personal_email"] = _email(
            contact["most_probable_personal_email"],
            contact.get("most_probable_personal_email_status") or "",
        )
    phones = [_phone(p) for p in contact.get("phones") or []]
    if phones:
        info["most_probable_phone"] = next(
            (p for p in phones if p["number"] == contact.get("most_probable_phone")), phones[0]
        )
    info["work_emails"] = [_email(e["email"], e["status"]) for e in contact.get("emails") or []]
    info["personal_emails"] = [
        _email(e["email"], e["status"]) for e in contact.get("personal_emails") or []
    ]
    info["phones"] = phones
    return info


def _input(asked: ValidContact) -> dict[str, str]:
    given = {
        "first_name": asked.firstname,
        "last_name": asked.lastname,
        "full_name": " ".join(p for p in (asked.firstname, asked.lastname) if p) or None,
        "company_domain": asked.domain,
        "company_name": asked.company_name,
        "professional_network_url": asked.linkedin_url,
    }
    return {k: v for k, v in given.items() if v}


def _profile(contact: dict[str, Any], asked: ValidContact) -> dict[str, Any] | None:
    found = contact.get("profile")
    if not isinstance(found, dict):
        return None
    profile: dict[str, Any] = {
        "full_name": found.get("full_name") or "",
        "first_name": asked.firstname or "",
        "last_name": asked.lastname or "",
        "employment": {
            "current": {
                "is_current": True,
                "company": {
                    "name": (found.get("company") or {}).get("name", ""),
                    "domain": (found.get("company") or {}).get("domain", ""),
                },
            }
        },
    }
    if asked.linkedin_url:
        profile["social_profiles"] = {"professional_network": {"url": asked.linkedin_url}}
    return profile


def item_to_v2(item: dict[str, Any], asked: ValidContact) -> dict[str, Any]:
    """One internal result item as v2's `RecordEnrichment`."""
    contact = item.get("contact") or {}
    record: dict[str, Any] = {
        "input": _input(asked),
        "custom": dict(item.get("custom") or {}),
        "contact_info": contact_info(contact),
    }
    profile = _profile(contact, asked)
    if profile is not None:
        record["profile"] = profile
    return record


def result_to_v2(body: dict[str, Any], contacts: tuple[ValidContact, ...]) -> dict[str, Any]:
    """An internal result object (GET answer, batch webhook) as v2's."""
    out: dict[str, Any] = {k: body[k] for k in ("id", "name", "status", "cost") if k in body}
    if "datas" in body:
        out["data"] = [item_to_v2(i, c) for i, c in zip(body["datas"], contacts, strict=True)]
    return out


def contact_event(body_v2: dict[str, Any], index: int, style: str) -> dict[str, Any]:
    """The `contact_finished` body for the `index`th contact of a v2 result, in `style`."""
    record: dict[str, Any] = body_v2["data"][index]
    if style == "record":
        return record
    return {
        "id": body_v2["id"],
        "name": body_v2["name"],
        "status": "IN_PROGRESS",
        "data": [record],
    }


def body_in(dialect: str, job: Job) -> bytes | None:
    """A job's terminal body as GET through `dialect` answers it; None while the job runs.

    A job keeps the body of the version it was created through (its webhooks speak that one)
    and its v1 rendering; a GET through the other version answers in that version, as the real
    API serves one enrichment through both. A body the answer styles made unreadable is sent
    as it is.
    """
    if dialect == "v1" or job.dialect == "v2" or job.body is None:
        return job.v1_body if dialect == "v1" else job.body
    parsed = json.loads(job.body)
    try:
        converted = result_to_v2(parsed, job.request.contacts)
    except (TypeError, ValueError, KeyError, AttributeError):
        return job.body
    return json.dumps(converted, separators=(",", ":")).encode()


def v2_bodies(
    result: dict[str, Any],
    contacts: tuple[ValidContact, ...],
    contact_url: str | None,
    style: str,
) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any]]]]:
    """A settled job's v2 result, and its `contact_finished` events (URL, body) in order."""
    body = result_to_v2(result, contacts)
    if not contact_url or body.get("status") == "CANCELED":
        return body, []
    finished = list(range(len(body["data"])))
    if body.get("status") == "CREDITS_INSUFFICIENT":  # the contacts after the stop never ran
        finished = [i for i in finished if _found(body["data"][i])]
    return body, [(contact_url, contact_event(body, i, style)) for i in finished]


def _found(record: dict[str, Any]) -> bool:
    info = record.get("contact_info") or {}
    return any(info.get(k) for k in ("work_emails", "personal_emails", "phones"))


def exchange_of(request: Request, body: bytes, response: Response) -> Exchange:
    """One call as seen on the wire."""
    return Exchange(
        request.method,
        request.url.path,
        dict(request.query_params),
        dict(request.headers),
        body,
        response.status_code,
        dict(response.headers),
        bytes(response.body),
    )


Handler = Callable[[Request], Awaitable[Response]]


def v2_guard(
    guard: Callable[[Handler], Handler], handler: Handler, keep: Callable[[Exchange], None]
) -> Handler:
    """`guard(handler)` answering refusals in v2's codes, each exchange handed to `keep`."""

    async def v2_handler(request: Request) -> Response:
        try:
            return await handler(request)
        except ApiFailure as failure:
            raise failure_to_v2(failure) from None

    guarded = guard(v2_handler)

    async def endpoint(request: Request) -> Response:
        body = await request.body()
        response = await guarded(request)
        keep(exchange_of(request, body, response))
        return response

    return endpoint


__all__ = [
    "CONTACT_EVENT_STYLES",
    "V2Submission",
    "body_in",
    "contact_event",
    "contact_info",
    "exchange_of",
    "failure_to_v2",
    "item_to_v2",
    "result_to_v2",
    "submission_from_v2",
    "v2_bodies",
    "v2_guard",
]
