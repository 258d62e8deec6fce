"""What the write guards cost per contact: value plausibility and the identity check.

Runs the checks write-back makes before a CRM write over results like the emulator's (names
echoed, an accepted email, a phone) for a seeded population, and prints microseconds per
contact for each check and for the whole per-contact decision, ending with one JSON line.

    python bench/write_guards.py [--contacts N] [--repeat R]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

from connectors.base import Contact
from crm_sync.enrichment.email_statuses import WRITABLE_BY_DEFAULT
from crm_sync.enrichment.models import ContactResult, PhoneFound
from crm_sync.fields import FIELD_PHONE, FIELD_WORK_EMAIL
from crm_sync.rules.identity import identity_mismatch
from crm_sync.rules.plausibility import email_problem, phone_problem
from crm_sync.rules.policies import decide
from crm_sync.sandbox.people import generate_people, truth_for

ACCEPTED = WRITABLE_BY_DEFAULT


def _population(n: int) -> list[tuple[Contact, ContactResult]]:
    pairs = []
    for person in generate_people(n, seed=11):
        first, last = person.first_name or "Ada", person.last_name or "Lovelace"
        domain = person.domain or "example.com"
        truth = truth_for(first, last, domain)
        email = truth.work_email or f"{first}.{last}@{domain}".lower()
        phone = truth.phone or "+1 415 555 2671"
        record = Contact(person_id(person.index), first, last, person.company, domain)
        result = ContactResult(
            firstname=first.upper(),
            lastname=last,
            domain=domain,
            most_probable_email=email,
            most_probable_email_status="DELIVERABLE",
            most_probable_phone=phone,
            phones=[PhoneFound(number=phone, region=truth.phone_region or "US")],
        )
        pairs.append((record, result))
    return pairs


def person_id(index: int) -> str:
    return str(1000 + index)


def _per_contact_us(
    pairs: list[tuple[Contact, ContactResult]],
    repeat: int,
    fn: Callable[[Contact, ContactResult], object],
) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for record, result in pairs:
            fn(record, result)
        best = min(best, time.perf_counter() - start)
    return best / len(pairs) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    pairs = _population(args.contacts)
    asked = (FIELD_WORK_EMAIL, FIELD_PHONE)
    figures = {
        "email_check_us": _per_contact_us(
            pairs, args.repeat, lambda _r, res: email_problem(res.most_probable_email or "")
        ),
        "phone_check_us": _per_contact_us(
            pairs, args.repeat, lambda _r, res: phone_problem(res.most_probable_phone or "")
        ),
        "identity_check_us": _per_contact_us(pairs, args.repeat, identity_mismatch),
        "decide_with_value_checks_us": _per_contact_us(
            pairs,
            args.repeat,
            lambda rec, res: decide(
                rec, res, asked, accepted_email_statuses=ACCEPTED, overwrite={}
            ),
        ),
    }
    figures["guards_total_us"] = (
        figures["email_check_us"] + figures["phone_check_us"] + figures["identity_check_us"]
    )
    for name, value in figures.items():
        print(f"{name:<30} {value:8.1f} µs per contact")
    print(json.dumps({"contacts": len(pairs), **{k: round(v, 2) for k, v in figures.items()}}))


if __name__ == "__main__":
    main()
