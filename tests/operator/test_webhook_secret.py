"""Secret tokens, rotation state in the generated Secret, self-signed certificates."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tgbot_operator import names
from tgbot_operator.webhook_secret import (
    SECRET_TOKEN_ALPHABET,
    RotationPhase,
    WebhookSecretState,
    bundle,
    certificate_renewal_reason,
    generate_secret_token,
    generate_self_signed,
    inspect_certificate,
    is_valid_secret_token,
    read_state,
    render_state,
)

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def test_secret_token_uses_telegrams_alphabet_and_is_random() -> None:
    tokens = {generate_secret_token() for _ in range(200)}
    assert len(tokens) == 200
    for token in tokens:
        assert len(token) == 64
        assert set(token) <= set(SECRET_TOKEN_ALPHABET)
        assert is_valid_secret_token(token)
    # Over many tokens every character of the alphabet shows up (no accidental subset).
    assert set("".join(tokens)) == set(SECRET_TOKEN_ALPHABET)


@pytest.mark.parametrize("bad", ["", "a b", "x" * 257, "ключ", "a+b", "a/b"])
def test_invalid_secret_tokens(bad: str) -> None:
    assert not is_valid_secret_token(bad)


@pytest.fixture(scope="module")
def dns_cert() -> tuple[bytes, bytes]:
    return generate_self_signed("bots.example.com", NOW)


def test_self_signed_certificate_for_a_host_name(dns_cert: tuple[bytes, bytes]) -> None:
    cert, key = dns_cert
    assert b"PRIVATE KEY" in key
    info = inspect_certificate(cert)
    assert info.common_name == "bots.example.com"
    assert info.dns_names == ("bots.example.com",)
    assert info.ip_addresses == ()
    assert info.covers("bots.example.com")
    assert info.covers("BOTS.example.com")
    assert not info.covers("other.example.com")
    assert info.not_after - NOW == timedelta(days=365)
    assert info.not_before <= NOW


def test_self_signed_certificate_for_an_ip_address() -> None:
    cert, _ = generate_self_signed("127.0.0.1", NOW, validity=timedelta(days=10))
    info = inspect_certificate(cert)
    assert info.ip_addresses == ("127.0.0.1",)
    assert info.dns_names == ()
    assert info.covers("127.0.0.1")
    assert not info.covers("127.0.0.2")
    assert info.not_after - NOW == timedelta(days=10)


def test_renewal_decision(dns_cert: tuple[bytes, bytes]) -> None:
    cert, key = dns_cert
    assert certificate_renewal_reason(None, None, "bots.example.com", NOW) == "no certificate yet"
    assert certificate_renewal_reason(cert, None, "bots.example.com", NOW) == "no certificate yet"
    assert certificate_renewal_reason(b"junk", key, "bots.example.com", NOW) == (
        "the stored certificate does not parse"
    )
    assert certificate_renewal_reason(cert, key, "bots.example.com", NOW) is None
    assert "does not cover" in (certificate_renewal_reason(cert, key, "new.example.com", NOW) or "")
    # 30 days before expiry it is renewed; a day earlier it is not.
    assert certificate_renewal_reason(cert, key, "bots.example.com", NOW + timedelta(days=334)) is None
    assert "expires" in (
        certificate_renewal_reason(cert, key, "bots.example.com", NOW + timedelta(days=335)) or ""
    )


def _state(**kw: object) -> WebhookSecretState:
    base: dict[str, object] = {
        "secret_token": "new",
        "previous_secret_token": None,
        "tls_crt": None,
        "tls_key": None,
        "phase": RotationPhase.IDLE,
        "phase_since": None,
        "rotated_at": NOW,
        "rotate_handled": None,
    }
    base.update(kw)
    return WebhookSecretState(**base)  # type: ignore[arg-type]


def test_registered_token_follows_the_rotation_phase() -> None:
    assert _state().registered_token == "new"
    propagating = _state(previous_secret_token="old", phase=RotationPhase.PROPAGATING, phase_since=NOW)
    assert propagating.registered_token == "old"
    retiring = _state(previous_secret_token="old", phase=RotationPhase.RETIRING, phase_since=NOW)
    assert retiring.registered_token == "new"


def test_state_round_trips_through_the_secret() -> None:
    state = _state(
        previous_secret_token="old",
        tls_crt=b"CERT",
        tls_key=b"KEY",
        phase=RotationPhase.RETIRING,
        phase_since=NOW,
        rotate_handled="2",
    )
    data, annotations = render_state(state)
    assert data[names.SECRET_TOKEN_KEY] == b"new"
    assert data[names.PREVIOUS_SECRET_TOKEN_KEY] == b"old"
    assert annotations[names.ROTATION_PHASE_ANNOTATION] == "Retiring"
    # No secret ever lands in an annotation.
    assert not any(v in {"new", "old"} for v in annotations.values())
    assert read_state(data, annotations) == state


def test_unknown_phase_reads_as_idle() -> None:
    state = read_state({names.SECRET_TOKEN_KEY: b"t"}, {names.ROTATION_PHASE_ANNOTATION: "Bogus"})
    assert state.phase is RotationPhase.IDLE
    assert state.previous_secret_token is None


@settings(max_examples=50, deadline=None)
@given(length=st.integers(min_value=1, max_value=256))
def test_any_length_is_valid(length: int) -> None:
    assert is_valid_secret_token(generate_secret_token(length))


def test_the_self_signed_certificate_is_a_server_leaf(dns_cert: tuple[bytes, bytes]) -> None:
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID

    cert = x509.load_pem_x509_certificate(dns_cert[0])
    basic = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical
    assert basic.value.ca is False
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical
    assert usage.value.digital_signature
    assert usage.value.key_encipherment
    assert not usage.value.key_cert_sign
    assert not usage.value.crl_sign
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["bots.example.com"]
    cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)


def test_a_pinned_leaf_verifies_a_tls_handshake_and_a_bundle_pins_both(tmp_path: Path) -> None:
    """What "Telegram pins the uploaded certificate" means (the emulator does the same): the
    upload is the only trust anchor, with partial chains allowed. A CA:FALSE leaf works; an
    upload of two certificates trusts either."""
    old = generate_self_signed("127.0.0.1", datetime.now(UTC))
    new = generate_self_signed("127.0.0.1", datetime.now(UTC))
    assert handshake(tmp_path, pinned=old[0], served=old) == "ok"
    assert handshake(tmp_path, pinned=old[0], served=new).startswith("fail")
    both = bundle(new[0], old[0])
    assert handshake(tmp_path, pinned=both, served=new) == "ok"
    assert handshake(tmp_path, pinned=both, served=old) == "ok"


def handshake(tmp_path: Path, *, pinned: bytes, served: tuple[bytes, bytes]) -> str:
    (tmp_path / "c.pem").write_bytes(served[0])
    (tmp_path / "k.pem").write_bytes(served[1])
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)

        def serve() -> None:
            conn, _ = listener.accept()
            with contextlib.suppress(OSError), server_context.wrap_socket(conn, server_side=True):
                pass

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        client_context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        client_context.load_verify_locations(cadata=pinned.decode())
        client_context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
        try:
            with (
                socket.create_connection(listener.getsockname(), timeout=5) as raw,
                client_context.wrap_socket(raw, server_hostname="127.0.0.1"),
            ):
                return "ok"
        except ssl.SSLError as exc:
            return f"fail: {exc}"
        finally:
            thread.join(5)
