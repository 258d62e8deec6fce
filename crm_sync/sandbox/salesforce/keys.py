"""Key pairs for trying the JWT bearer flow: an RSA private key and its self-signed certificate.

What a Salesforce admin makes with `openssl req -x509 ...` and uploads to the connected app or
external client app; the sandbox and the tests make it here with cryptography.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from crm_sync.clock import SYSTEM_CLOCK, Clock


@dataclass(frozen=True, slots=True)
class KeyPair:
    """A PEM private key (the client's secret) and the PEM certificate the org trusts."""

    private_key: str = field(repr=False)
    certificate: str


def generate_key_pair(
    common_name: str = "crm-sync sandbox", clock: Clock = SYSTEM_CLOCK
) -> KeyPair:
    """A fresh 2048-bit RSA key and a self-signed certificate valid for a year."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = clock.now()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    cert_pem = certificate.public_bytes(serialization.Encoding.PEM)
    return KeyPair(private_pem.decode("ascii"), cert_pem.decode("ascii"))


@functools.cache
def sandbox_key_pair() -> KeyPair:
    """One key pair per process, shared by every emulator that is not given its own."""
    return generate_key_pair()


def public_key_pem(certificate: str) -> bytes:
    """The public key inside a PEM certificate, as PyJWT takes it."""
    cert = x509.load_pem_x509_certificate(certificate.encode("ascii"))
    return cert.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
