"""setWebhook's rules: turn raw parameters into a checked request or a Telegram error."""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from .errors import bad_request
from .params import Params, UploadedFile, get_bool, get_int, get_json, get_str
from .state import Certificate
from .updates import UPDATE_TYPES

log = logging.getLogger(__name__)

ALLOWED_PORTS = (80, 88, 443, 8443)
DEFAULT_MAX_CONNECTIONS = 40
MAX_CONNECTIONS = 100
# A self-hosted Bot API server (--local) accepts far more connections.
LOCAL_MAX_CONNECTIONS = 100_000
SECRET_TOKEN_MAX = 256
_SECRET_TOKEN_CHARS = re.compile(r"[A-Za-z0-9_-]+")

HTTPS_REQUIRED = "bad webhook: An HTTPS URL must be provided for webhook"
BAD_PORT = "bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443"
SECRET_TOO_LONG = "secret token is too long"  # noqa: S105 (an error message)
SECRET_BAD_CHARS = "secret token contains unallowed characters"  # noqa: S105 (an error message)
CERT_NOT_FILE = "bad webhook: certificate must be uploaded as a file using multipart/form-data"
CERT_INVALID = "bad webhook: Failed to set custom certificate file"
INVALID_IP = "invalid IP address specified"


@dataclass(frozen=True)
class WebhookRequest:
    url: str
    certificate: Certificate | None
    ip_address: str | None
    max_connections: int
    # allowed_updates_given=False means "keep what the bot had before".
    allowed_updates_given: bool
    allowed_updates: list[str] | None
    drop_pending_updates: bool
    secret_token: str | None


def parse_set_webhook(params: Params, *, allow_local: bool, url_param: bool = True) -> WebhookRequest:
    """Validate setWebhook (or deleteWebhook with url_param=False) parameters."""
    url = (get_str(params, "url") or "").strip() if url_param else ""
    if url:
        _check_url(url, allow_local)
    given, allowed = parse_allowed_updates(params)
    return WebhookRequest(
        url=url,
        certificate=_certificate(params) if url else None,
        ip_address=_ip_address(params, allow_local) if url else None,
        max_connections=_max_connections(params, allow_local),
        allowed_updates_given=given,
        allowed_updates=allowed,
        drop_pending_updates=get_bool(params, "drop_pending_updates"),
        secret_token=_secret_token(params) if url else None,
    )


def _check_url(url: str, allow_local: bool) -> None:
    parts = urlsplit(url if "://" in url else f"http://{url}")
    scheme = parts.scheme.lower()
    if scheme != "https" and not (allow_local and scheme == "http"):
        raise bad_request(HTTPS_REQUIRED)
    if not parts.hostname:
        raise bad_request("bad webhook: Wrong HTTP URL specified")
    try:
        port = parts.port
    except ValueError as exc:
        raise bad_request("bad webhook: Wrong port number specified in the URL") from exc
    if port is not None and port not in ALLOWED_PORTS and not allow_local:
        raise bad_request(BAD_PORT)
    if not allow_local:
        reserved = _reserved_address(parts.hostname)
        if reserved is not None:
            raise bad_request(f"bad webhook: IP address {reserved} is reserved")


def _reserved_address(host: str) -> str | None:
    """The address a host stands for when it is local or private; None otherwise.

    Names other than localhost aren't resolved: this machine has no DNS for them.
    """
    lowered = host.lower().rstrip(".")
    if lowered == "localhost" or lowered.endswith(".localhost"):
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(lowered)
    except ValueError:
        return None
    return None if address.is_global else str(address)


def _ip_address(params: Params, allow_local: bool) -> str | None:
    raw = (get_str(params, "ip_address") or "").strip()
    if not raw:
        return None
    try:
        address = ipaddress.IPv4Address(raw)
    except ValueError as exc:
        raise bad_request(INVALID_IP) from exc
    if not allow_local and not address.is_global:
        raise bad_request(f"bad webhook: IP address {address} is reserved")
    return str(address)


def _max_connections(params: Params, allow_local: bool) -> int:
    # The Bot API server clamps out-of-range values instead of refusing them.
    value = get_int(params, "max_connections", DEFAULT_MAX_CONNECTIONS)
    assert value is not None
    upper = LOCAL_MAX_CONNECTIONS if allow_local else MAX_CONNECTIONS
    return max(1, min(value, upper))


def parse_allowed_updates(params: Params) -> tuple[bool, list[str] | None]:
    """(given, value): value None means Telegram's default set of update types."""
    if params.get("allowed_updates") in (None, ""):
        return False, None
    value = get_json(params, "allowed_updates")
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise bad_request("allowed_updates must be a JSON array of strings")
    # Unknown names are ignored and an empty result means the default set, like Telegram.
    unknown = [item for item in value if item not in UPDATE_TYPES]
    if unknown:
        log.warning("allowed_updates names unknown update types, ignored: %s", unknown)
    known = [name for name in UPDATE_TYPES if name in value]
    return True, known or None


def _secret_token(params: Params) -> str | None:
    secret = get_str(params, "secret_token") or ""
    if not secret:
        return None
    if len(secret) > SECRET_TOKEN_MAX:
        raise bad_request(SECRET_TOO_LONG)
    if not _SECRET_TOKEN_CHARS.fullmatch(secret):
        raise bad_request(SECRET_BAD_CHARS)
    return secret


def _certificate(params: Params) -> Certificate | None:
    value = params.get("certificate")
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.startswith("attach://"):
        value = params.get(value.removeprefix("attach://"))
    if not isinstance(value, UploadedFile):
        raise bad_request(CERT_NOT_FILE)
    return load_certificate(value)


def load_certificate(upload: UploadedFile) -> Certificate:
    try:
        cert = x509.load_pem_x509_certificate(upload.content)
    except ValueError as exc:
        raise bad_request(CERT_INVALID) from exc
    return Certificate(
        filename=upload.filename,
        pem=upload.content,
        sha256=cert.fingerprint(hashes.SHA256()).hex(),
    )


def fingerprint(upload: UploadedFile) -> str:
    """SHA-256 of the certificate (DER, like `openssl x509 -fingerprint`), else of the bytes."""
    try:
        return x509.load_pem_x509_certificate(upload.content).fingerprint(hashes.SHA256()).hex()
    except ValueError:
        return hashlib.sha256(upload.content).hexdigest()
