"""TLS for the webhook port, with certificates that can be renewed under a running server.

The listening socket keeps one "front" :class:`ssl.SSLContext` forever; its SNI callback (which
OpenSSL calls on every handshake, with or without SNI) points the new connection at the newest
context. A renewal therefore affects new handshakes only, and a half-written pair of files
never breaks the server: the old context stays until a new one loads cleanly.
"""

from __future__ import annotations

import logging
import os
import ssl
from pathlib import Path

log = logging.getLogger(__name__)


def _new_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context


class ReloadingTLS:
    """Server TLS whose certificate follows the files ``cert`` and ``key``."""

    def __init__(self, cert: Path, key: Path) -> None:
        self._cert = cert
        self._key = key
        self._signature = self._stat()
        self._current = _new_context(cert, key)
        self.front = _new_context(cert, key)
        self.front.sni_callback = self._pick_context
        self.reloads = 0

    def _stat(self) -> tuple[int, ...] | None:
        try:
            a, b = os.stat(self._cert), os.stat(self._key)
        except OSError:
            return None
        return (a.st_ino, a.st_mtime_ns, a.st_size, b.st_ino, b.st_mtime_ns, b.st_size)

    def _pick_context(self, sslobj: ssl.SSLObject, server_name: str | None, _: ssl.SSLContext) -> None:
        sslobj.context = self._current

    def refresh(self) -> bool:
        """Reload the pair when the files changed. Blocking file IO: call it from a worker thread."""
        signature = self._stat()
        if signature is None or signature == self._signature:
            return False
        try:
            context = _new_context(self._cert, self._key)
        except (OSError, ssl.SSLError) as exc:
            # Mid-renewal the cert and key may briefly not match; keep serving the old pair.
            log.warning("TLS files changed but do not load yet; keeping the old certificate: %s", exc)
            return False
        self._current = context
        self._signature = signature
        self.reloads += 1
        log.info("TLS certificate reloaded")
        return True
