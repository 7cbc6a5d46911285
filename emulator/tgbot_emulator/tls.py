"""TLS contexts for webhook delivery.

An uploaded certificate becomes the *only* trust anchor for that webhook (Telegram's
self-signed mode); otherwise the system store plus an optional extra CA file is used.
"""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

from .state import Certificate


def build_context(certificate: Certificate | None, extra_ca_file: Path | None) -> ssl.SSLContext:
    if certificate is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.load_verify_locations(cadata=certificate.pem.decode("ascii", "replace"))
        # The uploaded certificate may be the server's own leaf (not a CA); partial-chain
        # lets OpenSSL accept it as the anchor, exactly as "pin this certificate" means.
        context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
        return context
    context = ssl.create_default_context()
    if extra_ca_file is not None:
        context.load_verify_locations(cafile=str(extra_ca_file))
    return context


class TlsContexts:
    """Builds contexts off the event loop (loading trust stores reads files) and caches them."""

    def __init__(self, extra_ca_file: Path | None) -> None:
        self._extra_ca_file = extra_ca_file
        self._cache: dict[str, ssl.SSLContext] = {}

    async def for_certificate(self, certificate: Certificate | None) -> ssl.SSLContext:
        key = certificate.sha256 if certificate is not None else ""
        context = self._cache.get(key)
        if context is None:
            context = await asyncio.to_thread(build_context, certificate, self._extra_ca_file)
            self._cache[key] = context
        return context
