"""Webhook signatures: `X-Signature-SHA1`, hex HMAC-SHA1 of the raw body keyed with the API key."""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Signature-SHA1"


def sign(body: bytes, api_key: str) -> str:
    """The signature the API sends for `body`."""
    return hmac.new(api_key.encode(), body, hashlib.sha1).hexdigest()


def verify(body: bytes, signature: str | None, api_key: str) -> bool:
    """True only when `signature` matches `body`; compared in constant time."""
    if not signature:
        return False
    return hmac.compare_digest(sign(body, api_key), signature.strip().lower())
