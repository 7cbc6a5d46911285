"""Secret material for the webhook: the secret token, its rotation phases, self-signed certificates.

Pure functions (plus ``secrets``/``cryptography`` randomness); no Kubernetes and no Telegram here.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import ipaddress
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from . import names
from .conditions import parse_time

#: Telegram allows 1-256 characters of ``A-Za-z0-9_-`` for ``secret_token``.
SECRET_TOKEN_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"  # noqa: S105
SECRET_TOKEN_LENGTH = 64
_SECRET_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")

CERTIFICATE_VALIDITY = timedelta(days=365)
CERTIFICATE_RENEW_BEFORE = timedelta(days=30)


def generate_secret_token(length: int = SECRET_TOKEN_LENGTH) -> str:
    """A crypto-random secret token in Telegram's alphabet."""
    return "".join(secrets.choice(SECRET_TOKEN_ALPHABET) for _ in range(length))


def is_valid_secret_token(value: str) -> bool:
    return bool(_SECRET_TOKEN_RE.match(value))


def generate_identity_key() -> bytes:
    """32 random bytes: the HMAC key of ``status.bot.identityHash``."""
    return secrets.token_bytes(32)


IDENTITY_MAC_PREFIX = "hmac-sha256:"


def identity_mac(key: bytes, identity: str) -> str:
    """A keyed hash of the Bot API server and the bot token, safe to show in status.

    Unlike a plain sha256, a guessed token cannot be confirmed with it by whoever can read
    TelegramBots: that takes the key, which only the operator-owned Secret holds.
    """
    return IDENTITY_MAC_PREFIX + hmac.new(key, identity.encode(), hashlib.sha256).hexdigest()


def sha256_hex(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return hashlib.sha256(raw).hexdigest()


# --- rotation -------------------------------------------------------------------------------


class RotationPhase(enum.StrEnum):
    """Where a secret-token rotation stands; persisted in the generated Secret's annotations.

    IDLE: one token, registered with Telegram.
    PROPAGATING: ``secret-token`` is the new token, ``previous-secret-token`` the old one, which is
        still the registered one; waiting for kubelets to update the mounted Secret everywhere.
    RETIRING: the new token is registered; the old one is kept for in-flight deliveries and
        lagging sidecars until the retire grace period ends.
    """

    IDLE = "Idle"
    PROPAGATING = "Propagating"
    RETIRING = "Retiring"


@dataclass(frozen=True)
class WebhookSecretState:
    """What the operator reads back from the generated Secret (decoded)."""

    secret_token: str | None = field(repr=False)
    previous_secret_token: str | None = field(repr=False)
    tls_crt: bytes | None = field(repr=False)  # public, but long
    tls_key: bytes | None = field(repr=False)
    phase: RotationPhase
    phase_since: datetime | None
    rotated_at: datetime | None
    rotate_handled: str | None
    resource_version: str | None = None
    identity_key: bytes | None = field(default=None, repr=False)  # for status.bot.identityHash
    # A self-signed certificate renewal (see decide()): staged pair, then the previous certificate.
    next_tls_crt: bytes | None = field(default=None, repr=False)
    next_tls_key: bytes | None = field(default=None, repr=False)
    previous_tls_crt: bytes | None = field(default=None, repr=False)
    previous_certificate_until: datetime | None = None

    @property
    def registered_token(self) -> str | None:
        """The token Telegram should have now: the old one until propagation is over."""
        if self.phase is RotationPhase.PROPAGATING and self.previous_secret_token:
            return self.previous_secret_token
        return self.secret_token


def read_state(
    data: Mapping[str, bytes], annotations: Mapping[str, str], resource_version: str | None = None
) -> WebhookSecretState:
    def text(key: str) -> str | None:
        raw = data.get(key)
        return raw.decode("utf-8", "replace").strip() if raw else None

    try:
        phase = RotationPhase(annotations.get(names.ROTATION_PHASE_ANNOTATION, RotationPhase.IDLE))
    except ValueError:
        phase = RotationPhase.IDLE
    return WebhookSecretState(
        secret_token=text(names.SECRET_TOKEN_KEY),
        previous_secret_token=text(names.PREVIOUS_SECRET_TOKEN_KEY),
        tls_crt=data.get(names.TLS_CERT_KEY) or None,
        tls_key=data.get(names.TLS_KEY_KEY) or None,
        phase=phase,
        phase_since=parse_time(annotations.get(names.ROTATION_PHASE_SINCE_ANNOTATION)),
        rotated_at=parse_time(annotations.get(names.ROTATED_AT_ANNOTATION)),
        rotate_handled=annotations.get(names.ROTATE_HANDLED_ANNOTATION),
        resource_version=resource_version,
        identity_key=data.get(names.IDENTITY_KEY_KEY) or None,
        next_tls_crt=data.get(names.NEXT_TLS_CERT_KEY) or None,
        next_tls_key=data.get(names.NEXT_TLS_KEY_KEY) or None,
        previous_tls_crt=data.get(names.PREVIOUS_TLS_CERT_KEY) or None,
        previous_certificate_until=parse_time(annotations.get(names.CERTIFICATE_OVERLAP_UNTIL_ANNOTATION)),
    )


def render_state(state: WebhookSecretState) -> tuple[dict[str, bytes], dict[str, str]]:
    """The Secret's data and our annotations for ``state`` (the inverse of :func:`read_state`)."""
    data: dict[str, bytes] = {}
    if state.secret_token:
        data[names.SECRET_TOKEN_KEY] = state.secret_token.encode()
    if state.previous_secret_token:
        data[names.PREVIOUS_SECRET_TOKEN_KEY] = state.previous_secret_token.encode()
    if state.tls_crt:
        data[names.TLS_CERT_KEY] = state.tls_crt
    if state.tls_key:
        data[names.TLS_KEY_KEY] = state.tls_key
    if state.identity_key:
        data[names.IDENTITY_KEY_KEY] = state.identity_key
    for key, value in (
        (names.NEXT_TLS_CERT_KEY, state.next_tls_crt),
        (names.NEXT_TLS_KEY_KEY, state.next_tls_key),
        (names.PREVIOUS_TLS_CERT_KEY, state.previous_tls_crt),
    ):
        if value:
            data[key] = value
    annotations = {names.ROTATION_PHASE_ANNOTATION: str(state.phase)}
    if state.phase_since is not None:
        annotations[names.ROTATION_PHASE_SINCE_ANNOTATION] = _iso(state.phase_since)
    if state.rotated_at is not None:
        annotations[names.ROTATED_AT_ANNOTATION] = _iso(state.rotated_at)
    if state.rotate_handled is not None:
        annotations[names.ROTATE_HANDLED_ANNOTATION] = state.rotate_handled
    if state.previous_certificate_until is not None:
        annotations[names.CERTIFICATE_OVERLAP_UNTIL_ANNOTATION] = _iso(state.previous_certificate_until)
    return data, annotations


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# --- certificates ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CertificateInfo:
    not_before: datetime
    not_after: datetime
    common_name: str | None
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]
    sha256: str

    def covers(self, host: str) -> bool:
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return host.lower() in (name.lower() for name in self.dns_names)
        return str(ip) in self.ip_addresses


def inspect_certificate(pem: bytes) -> CertificateInfo:
    """Parse the first certificate of a PEM bundle. Raises ValueError when it isn't one."""
    cert = x509.load_pem_x509_certificate(pem)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns_names = tuple(san.get_values_for_type(x509.DNSName))
        ips = tuple(str(ip) for ip in san.get_values_for_type(x509.IPAddress))
    except x509.ExtensionNotFound:
        dns_names, ips = (), ()
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    common_name = str(cns[0].value) if cns else None
    return CertificateInfo(
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        common_name=common_name,
        dns_names=dns_names,
        ip_addresses=ips,
        sha256=cert.fingerprint(hashes.SHA256()).hex(),
    )


def certificate_renewal_reason(
    pem: bytes | None,
    key_pem: bytes | None,
    host: str,
    now: datetime,
    renew_before: timedelta = CERTIFICATE_RENEW_BEFORE,
) -> str | None:
    """Why the self-signed certificate must be (re)generated, or None when it is fine."""
    if not pem or not key_pem:
        return "no certificate yet"
    try:
        info = inspect_certificate(pem)
    except ValueError:
        return "the stored certificate does not parse"
    if not info.covers(host):
        return f"the certificate does not cover {host}"
    if info.not_after - renew_before <= now:
        return f"the certificate expires at {_iso(info.not_after)}"
    return None


def certificate_usable(pem: bytes | None, key_pem: bytes | None, host: str, now: datetime) -> bool:
    """Whether the certificate still works for ``host`` (so a renewal can overlap with it)."""
    if not pem or not key_pem:
        return False
    try:
        info = inspect_certificate(pem)
    except ValueError:
        return False
    return info.covers(host) and info.not_before <= now < info.not_after


def bundle(*pems: bytes) -> bytes:
    """Certificates as one PEM, each ending in a newline (what setWebhook uploads during a renewal)."""
    return b"".join(pem if pem.endswith(b"\n") else pem + b"\n" for pem in pems)


def generate_self_signed(
    host: str, now: datetime, validity: timedelta = CERTIFICATE_VALIDITY
) -> tuple[bytes, bytes]:
    """A self-signed certificate for ``host`` (a DNS SAN, or an IP SAN when ``host`` is an IP).

    Returns ``(cert_pem, key_pem)``. RSA 2048, the kind Telegram documents for self-signed webhooks.
    CPU-heavy (key generation): call it off the event loop.
    """
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    try:
        alt_name: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        alt_name = x509.DNSName(host)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host[:64])])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + validity)
        .add_extension(x509.SubjectAlternativeName([alt_name]), critical=False)
        # A server leaf, not a CA: pinned as the trust anchor, it cannot sign other certificates.
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_encipherment=True,
                content_commitment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert_pem, key_pem
