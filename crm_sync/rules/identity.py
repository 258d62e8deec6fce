"""Does a result belong to the record it is about to be written to? Pure checks, no I/O.

A result reaches a record through `custom.crm_id` alone; an API that mixes up `custom` between
the items of a batch would hand one person's email to another. The result echoes the person's
names (and domain), so they are compared with the record as re-read right before the write:
names with accents and case normalised (NFKD, combining marks dropped, casefold, only letters
and digits kept, so `José-Luis` equals `jose luis`); domains where both sides have one, a
subdomain matching its parent. A record that has a name needs a result that carries one.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from connectors.base import Contact
from crm_sync.enrichment.models import ContactResult
from crm_sync.rules.policies import normalize_domain


@dataclass(frozen=True, slots=True)
class Mismatch:
    """Why a result is not the record's: a short code (for counts) and a sentence."""

    code: str
    message: str


def normalise_name(value: str | None) -> str:
    """`  José-Luis ` -> `joseluis`: what is left to compare once accents and case are gone."""
    if not value:
        return ""
    decomposed = unicodedata.normalize("NFKD", value)
    kept = (c for c in decomposed if not unicodedata.combining(c))
    return "".join(c for c in "".join(kept).casefold() if c.isalnum())


def _domains_match(a: str, b: str) -> bool:
    return a == b or a.endswith("." + b) or b.endswith("." + a)


def identity_mismatch(record: Contact, result: ContactResult) -> Mismatch | None:
    """None when the result is plausibly about `record`, else what differs."""
    names = (
        ("first_name", record.first_name, result.firstname),
        ("last_name", record.last_name, result.lastname),
    )
    compared = 0
    for code, ours, theirs in names:
        mine, other = normalise_name(ours), normalise_name(theirs)
        if mine and other:
            if mine != other:
                return Mismatch(code, f"{code} differs: record {ours!r}, result {theirs!r}")
            compared += 1
    if compared == 0 and any(normalise_name(ours) for _, ours, _ in names):
        return Mismatch("no_name", "the result carries no name to compare with the record")
    mine_domain, other_domain = normalize_domain(record.domain), normalize_domain(result.domain)
    if mine_domain and other_domain and not _domains_match(mine_domain, other_domain):
        return Mismatch(
            "domain", f"domain differs: record {mine_domain!r}, result {other_domain!r}"
        )
    return None
