"""The secret tokens Telegram must present, kept fresh from their files.

Kubernetes updates a mounted Secret in place by swapping the ``..data`` symlink, so the token
files change inode and mtime without the pod restarting. :class:`TokenStore` notices that with
cheap ``stat`` calls from a background poll (off the event loop), never per request.
"""

from __future__ import annotations

import hmac
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

# (device, inode, mtime, size): changes whenever the kubelet swaps ..data or someone rewrites the file.
_Signature = tuple[int, int, int, int] | None


def _signature(path: Path) -> _Signature:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


def _read_token(path: Path) -> bytes:
    try:
        # Telegram tokens are [A-Za-z0-9_-]{1,256}; surrounding whitespace is an editor's newline.
        return path.read_bytes().strip()
    except OSError:
        return b""


class TokenStore:
    """Current and (during rotation) previous secret token, compared in constant time."""

    def __init__(self, current: Path, previous: Path | None = None) -> None:
        self._paths = (current, previous)
        self._signatures: tuple[_Signature, _Signature] = (None, None)
        self._current = b""
        self._previous = b""
        self.reloads = 0
        self.refresh()

    @property
    def ready(self) -> bool:
        """True when the current token file was readable and non-empty at the last check."""
        return bool(self._current)

    def refresh(self) -> bool:
        """Re-read files whose stat changed. Blocking file IO: call it from a worker thread."""
        current_path, previous_path = self._paths
        signatures = (
            _signature(current_path),
            _signature(previous_path) if previous_path is not None else None,
        )
        if signatures == self._signatures:
            return False
        current = _read_token(current_path) if signatures[0] is not None else b""
        previous = (
            _read_token(previous_path) if previous_path is not None and signatures[1] is not None else b""
        )
        # One assignment each; the event loop thread sees either the old or the new pair, and
        # accepting the old current token for one more request during a swap is harmless.
        self._current, self._previous = current, previous
        self._signatures = signatures
        self.reloads += 1
        log.info(
            "secret tokens loaded",
            extra={"current_present": bool(current), "previous_present": bool(previous)},
        )
        return True

    def verify(self, presented: bytes | None) -> bool:
        """Does ``presented`` equal the current or the previous token? Constant time per token."""
        if not presented:
            return False
        current, previous = self._current, self._previous
        # Compare against both without short-circuiting, so timing does not tell which matched.
        ok_current = bool(current) and hmac.compare_digest(presented, current)
        ok_previous = bool(previous) and hmac.compare_digest(presented, previous)
        return ok_current | ok_previous
