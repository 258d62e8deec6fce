"""A deterministic world of people, shared by the three emulators so tests know the ground truth.

* `generate_people(n, seed)` makes CRM records: unique identities, some already holding an
  email or a phone, some missing a name or a company, some opted out.
* `truth_for(first, last, company_or_domain)` says what the enrichment API "finds" for an identity.
  It depends on the identity alone (a hash), never on the seed or on call order, so the enrichment
  emulator and a test agree without sharing state.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers

FIRST_NAMES = [
    "Ada",
    "Alan",
    "Grace",
    "Linus",
    "Barbara",
    "Ken",
    "Margaret",
    "Dennis",
    "Radia",
    "Edsger",
    "Frances",
    "Donald",
    "Hedy",
    "John",
    "Katherine",
    "Tim",
    "Vint",
    "Sophie",
    "Guido",
    "Anita",
    "Bjarne",
    "Shafi",
    "Leslie",
    "Niklaus",
    "Jean",
    "Tony",
    "Fran",
    "Yukihiro",
    "Rasmus",
    "Brendan",
    "Juan",
    "Ines",
    "Lars",
    "Mei",
    "Aiko",
    "Priya",
    "Arjun",
    "Fatima",
    "Omar",
    "Chloe",
    "Lucas",
    "Emma",
    "Noah",
    "Olivia",
    "Liam",
    "Mia",
    "Elena",
    "Marco",
    "Sofia",
    "Mateo",
    "Ingrid",
    "Sven",
    "Amara",
    "Kwame",
    "Zoe",
    "Hugo",
    "Clara",
    "Felix",
    "Nora",
    "Oscar",
    "Ruth",
    "Ivan",
    "Lea",
    "Pablo",
    "Yara",
]
LAST_NAMES = [
    "Lovelace",
    "Turing",
    "Hopper",
    "Torvalds",
    "Liskov",
    "Thompson",
    "Hamilton",
    "Ritchie",
    "Perlman",
    "Dijkstra",
    "Allen",
    "Knuth",
    "Lamarr",
    "McCarthy",
    "Johnson",
    "Berners",
    "Cerf",
    "Wilson",
    "Rossum",
    "Borg",
    "Stroustrup",
    "Goldwasser",
    "Lamport",
    "Wirth",
    "Sammet",
    "Hoare",
    "Matsumoto",
    "Lerdorf",
    "Eich",
    "Garcia",
    "Martin",
    "Larsen",
    "Chen",
    "Tanaka",
    "Sharma",
    "Patel",
    "Haddad",
    "Nasser",
    "Dubois",
    "Moreau",
    "Schmidt",
    "Muller",
    "Rossi",
    "Bianchi",
    "Lopez",
    "Fernandez",
    "Nilsson",
    "Berg",
    "Okafor",
    "Mensah",
    "Laurent",
    "Petit",
    "Novak",
    "Kowalski",
    "Ivanova",
    "Silva",
    "Santos",
    "Costa",
    "Yilmaz",
    "Kaya",
    "Murphy",
    "Kelly",
    "Walsh",
    "Byrne",
    "Jensen",
]
COMPANIES = (
    ("Acme Analytics", "acme-analytics.com"),
    ("Globex Software", "globex-software.com"),
    ("Initech", "initech.io"),
    ("Umbrella Logistics", "umbrella-logistics.com"),
    ("Stark Robotics", "stark-robotics.com"),
    ("Wayne Foods", "wayne-foods.co.uk"),
    ("Hooli Cloud", "hooli.cloud"),
    ("Pied Piper", "piedpiper.com"),
    ("Vandelay Industries", "vandelay.com"),
    ("Soylent Health", "soylent-health.fr"),
    ("Tyrell Bio", "tyrell-bio.de"),
    ("Cyberdyne Systems", "cyberdyne.es"),
    ("Aperture Labs", "aperture-labs.com.au"),
    ("Wonka Confections", "wonka.com.br"),
    ("Monarch Travel", "monarch-travel.in"),
    ("Oceanic Airlines", "oceanic-air.com"),
    ("Dunder Paper", "dunder-paper.com"),
    ("Massive Dynamic", "massive-dynamic.io"),
    ("Gringotts Finance", "gringotts.co.uk"),
    ("Nakatomi Trading", "nakatomi.jp"),
)
# Regions whose mobile numbers the API "finds", with how often, and the written style used.
PHONE_REGIONS = ("US", "GB", "FR", "DE", "ES", "AU", "BR", "IN", "JP", "CA")
EMAIL_OUTCOMES = (  # (status, weight); None = not found
    ("DELIVERABLE", 50),
    ("HIGH_PROBABILITY", 15),
    ("CATCH_ALL", 10),
    ("INVALID", 5),
    (None, 20),
)


@dataclass(frozen=True, slots=True)
class Truth:
    """What the enrichment API finds for one identity."""

    work_email: str | None
    email_status: str | None  # DELIVERABLE, HIGH_PROBABILITY, CATCH_ALL, INVALID; None: not found
    personal_email: str | None
    phone: str | None  # as the API writes it (international, varied punctuation), None: not found
    phone_region: str | None

    @property
    def phone_e164(self) -> str | None:
        """The phone in E.164 when valid, else None: the daemon must not write it."""
        if not self.phone:
            return None
        try:
            parsed = phonenumbers.parse(self.phone, self.phone_region)
        except phonenumbers.NumberParseException:
            return None
        if not phonenumbers.is_valid_number(parsed):
            return None
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


@dataclass(frozen=True, slots=True)
class Person:
    """One CRM record as the emulators seed it."""

    index: int
    first_name: str | None
    last_name: str | None
    company: str | None
    domain: str | None
    linkedin_url: str | None
    email: str | None  # what the CRM already holds
    phone: str | None
    opted_out: bool


def _digest(*parts: str) -> bytes:
    key = "|".join(p.strip().lower() for p in parts)
    return hashlib.sha256(key.encode()).digest()


def normalize_domain(text: str) -> str:
    """`https://www.Acme.com/` -> `acme.com`; a company name is only trimmed."""
    text = text.strip()
    if "." not in text:
        return text
    return re.sub(r"^(https?://)?(www\.)?", "", text.lower()).split("/")[0]


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", text.lower())


@lru_cache(maxsize=64)
def _example_mobile(region: str) -> phonenumbers.PhoneNumber:
    number = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    assert number is not None, region
    return number


def _phone_for(region: str, seed: int, style: int) -> str:
    """A valid mobile number of `region`, written in one of several international styles."""
    example = _example_mobile(region)
    national = str(example.national_number)
    for attempt in range(20):
        tail = f"{(seed + attempt * 7919) % 10_000:04d}"
        candidate = phonenumbers.PhoneNumber(
            country_code=example.country_code, national_number=int(national[:-4] + tail)
        )
        if phonenumbers.is_valid_number(candidate):
            break
    else:
        candidate = example
    fmt = phonenumbers.format_number(candidate, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    if style == 0:
        return fmt  # "+44 7400 123456"
    if style == 1:
        return fmt.replace(" ", "-").replace("-", " ", 1)  # "+1 415-555-0134"
    if style == 2:
        return phonenumbers.format_number(candidate, phonenumbers.PhoneNumberFormat.E164)
    return fmt.replace(" ", ".")  # "+33.6.12.34.56.78"


def truth_for(first_name: str, last_name: str, company_or_domain: str) -> Truth:
    """Ground truth for an identity; the same inputs always give the same answer."""
    company_or_domain = normalize_domain(company_or_domain)
    d = _digest(first_name, last_name, company_or_domain)
    roll = d[0] * 100 // 256
    status: str | None = None
    acc = 0
    for outcome, weight in EMAIL_OUTCOMES:
        acc += weight
        if roll < acc:
            status = outcome
            break
    domain = company_or_domain if "." in company_or_domain else f"{slug(company_or_domain)}.com"
    local = f"{slug(first_name)}.{slug(last_name)}"
    work_email = f"{local}@{domain}" if status else None
    personal = f"{local}{d[1] % 90 + 10}@gmail.com" if d[2] % 4 == 0 else None
    phone: str | None = None
    region: str | None = None
    if d[3] * 100 // 256 < 55:
        region = PHONE_REGIONS[d[4] % len(PHONE_REGIONS)]
        if d[5] % 25 == 0:
            phone = "+0 000"  # a junk number the API sometimes returns: never written
        else:
            phone = _phone_for(region, int.from_bytes(d[6:9], "big"), d[9] % 4)
    return Truth(work_email, status, personal, phone, region)


def truth_for_person(person: Person) -> Truth:
    """Ground truth for a seeded person, keyed as the enrichment request will carry it."""
    return truth_for(
        person.first_name or "", person.last_name or "", person.domain or person.company or ""
    )


def generate_people(n: int, seed: int = 7) -> list[Person]:
    """`n` CRM records with unique identities; the same (n, seed) always gives the same list.

    Mix, roughly: 30 % missing email only, 30 % phone only, 25 % both, 15 % complete;
    3 % without a last name, 3 % without company and domain (never with a LinkedIn URL, so the
    strict enrichment API accepts every seeded person who has enough identity), 4 % opted out.
    """
    rng = random.Random(seed)
    people: list[Person] = []
    seen: set[tuple[str, str, str]] = set()
    for index in range(n):
        while True:
            first = rng.choice(FIRST_NAMES)
            last = rng.choice(LAST_NAMES)
            company, domain = rng.choice(COMPANIES)
            if len(seen) > len(FIRST_NAMES) * len(LAST_NAMES) // 2:
                last = f"{last}{index}"
            if (first, last, domain) not in seen:
                seen.add((first, last, domain))
                break
        truth = truth_for(first, last, domain)
        gap = rng.random()
        has_email = gap >= 0.55  # missing email in [0, 0.55)
        has_phone = not (0.30 <= gap < 0.85)  # missing phone in [0.30, 0.85)
        existing_email = f"{slug(first)}.{slug(last)}@old-{domain}" if has_email else None
        existing_phone = "+1 212 555 0100" if has_phone else None
        if truth.phone and has_phone and rng.random() < 0.5:
            existing_phone = truth.phone_e164 or existing_phone
        identity_gap = rng.random()
        people.append(
            Person(
                index=index,
                first_name=first,
                last_name=None if identity_gap < 0.03 else last,
                company=None if 0.03 <= identity_gap < 0.06 else company,
                domain=None if 0.03 <= identity_gap < 0.06 else domain,
                # Only people with a full identity carry a LinkedIn URL: every seeded person is
                # then accepted by the strict API (tests add LinkedIn-only contacts on purpose).
                linkedin_url=(
                    f"https://www.linkedin.com/in/{slug(first)}-{slug(last)}-{index}"
                    if rng.random() < 0.4 and identity_gap >= 0.06
                    else None
                ),
                email=existing_email,
                phone=existing_phone,
                opted_out=rng.random() < 0.04,
            )
        )
    return people


def truth_for_request(
    firstname: str | None,
    lastname: str | None,
    domain: str | None,
    company_name: str | None,
    linkedin_url: str | None = None,
) -> Truth:
    """Ground truth for one item of a bulk request: by name and company, else by LinkedIn URL."""
    if firstname and lastname and (domain or company_name):
        return truth_for(firstname, lastname, domain or company_name or "")
    handle = (linkedin_url or "").rstrip("/").rsplit("/", 1)[-1]  # linkedin.com/in/<handle>
    first, _, last = handle.partition("-")
    return truth_for(first or handle, last.split("-")[0] or handle, handle)
