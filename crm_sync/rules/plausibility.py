"""Is a found value plausible enough to write into someone's CRM? Pure checks, no I/O.

Emails go through email-validator's syntax checks only (`check_deliverability=False`: no DNS
lookup in the write path): length limits, no control or unsafe characters, no quoted local
part, no IP literal, a real-looking domain. On top of it, a non-ASCII local part may hold only
letters, marks and digits (an internationalised name, not symbols or U+FFFD junk).
Phones with letters (`+1 415-555-CALL`) are refused before phonenumbers would turn the
letters into digits; so is anything outside the characters a phone number is written with.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email

MAX_PHONE_LENGTH = 40
_PHONE_CHARACTERS = frozenset("0123456789+-()./ ")
_LETTER_MARK_DIGIT = ("L", "M", "N")


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a value is not written: a short code (for counts) and the checker's own words."""

    code: str
    message: str


def email_problem(value: str) -> Refusal | None:
    """None when `value` is a syntactically valid address worth writing, else why not."""
    try:
        validate_email(
            value,
            check_deliverability=False,
            allow_quoted_local=False,
            allow_domain_literal=False,
            allow_display_name=False,
        )
    except EmailNotValidError as exc:
        return Refusal(_email_code(str(exc)), str(exc)[:200])
    local = value.rpartition("@")[0]
    for char in local:
        if not char.isascii() and unicodedata.category(char)[0] not in _LETTER_MARK_DIGIT:
            name = unicodedata.name(char, f"U+{ord(char):04X}")
            return Refusal("email_bad_characters", f"the local part contains {name}")
    return None


def _email_code(message: str) -> str:
    text = message.lower()
    if "too long" in text:
        return "email_too_long"
    if "character" in text:
        return "email_bad_characters"
    return "email_syntax"


def phone_problem(value: str) -> Refusal | None:
    """None when `value` is written with phone characters only, else why it is refused."""
    if any(char.isalpha() for char in value):
        return Refusal("phone_has_letters", "the phone number contains letters")
    if len(value) > MAX_PHONE_LENGTH:
        return Refusal("phone_too_long", f"longer than {MAX_PHONE_LENGTH} characters")
    if not set(value) <= _PHONE_CHARACTERS:
        return Refusal("phone_bad_characters", "characters other than digits, + - ( ) . /")
    return None
