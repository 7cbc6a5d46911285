"""Files a bot sent (photos, documents): their metadata, and their bytes within a budget.

Telegram keeps every file for ever; the emulator keeps metadata for the newest
``max_files`` and bytes for as many recent files as fit in ``byte_budget``, so a
bot uploading in a loop can't exhaust memory. A file whose bytes were evicted can
still be re-sent by file_id (as in Telegram, where re-sending never re-uploads).
"""

from __future__ import annotations

import hashlib
import secrets
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Literal

FileKind = Literal["photo", "document"]

DEFAULT_BYTE_BUDGET = 32 * 1024 * 1024


@dataclass
class StoredFile:
    file_id: str
    file_unique_id: str
    kind: FileKind
    size: int
    sha256: str | None
    file_name: str | None = None
    mime_type: str | None = None
    width: int | None = None
    height: int | None = None
    # An http(s) URL the bot gave instead of bytes (the emulator does not fetch it).
    url: str | None = None
    content: bytes | None = None

    def photo_size(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "width": self.width or 0,
            "height": self.height or 0,
        }
        if self.size:
            out["file_size"] = self.size
        return out

    def document(self) -> dict[str, Any]:
        out: dict[str, Any] = {"file_id": self.file_id, "file_unique_id": self.file_unique_id}
        for key, value in (("file_name", self.file_name), ("mime_type", self.mime_type)):
            if value:
                out[key] = value
        if self.size:
            out["file_size"] = self.size
        return out

    def view(self) -> dict[str, Any]:
        """What the control API shows (never the bytes)."""
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "kind": self.kind,
            "size": self.size,
            "sha256": self.sha256,
            "file_name": self.file_name,
            "mime_type": self.mime_type,
            "width": self.width,
            "height": self.height,
            "url": self.url,
            "content_kept": self.content is not None,
        }


def unique_id(kind: str, digest: str) -> str:
    """Same content, same file_unique_id (as in Telegram); short and URL-safe."""
    return hashlib.sha256(f"{kind}:{digest}".encode()).hexdigest()[:16]


class FileStore:
    def __init__(self, byte_budget: int = DEFAULT_BYTE_BUDGET, max_files: int = 10_000) -> None:
        self.byte_budget = byte_budget
        self.max_files = max_files
        self._files: OrderedDict[str, StoredFile] = OrderedDict()
        self._kept_bytes = 0

    @property
    def kept_bytes(self) -> int:
        return self._kept_bytes

    def get(self, file_id: str) -> StoredFile | None:
        return self._files.get(file_id)

    def all(self) -> list[StoredFile]:
        return list(self._files.values())

    def add_upload(
        self,
        kind: FileKind,
        content: bytes,
        *,
        file_name: str | None = None,
        mime_type: str | None = None,
        width: int | None = None,
        height: int | None = None,
    ) -> StoredFile:
        digest = hashlib.sha256(content).hexdigest()
        stored = StoredFile(
            file_id=self._new_id(kind),
            file_unique_id=unique_id(kind, digest),
            kind=kind,
            size=len(content),
            sha256=digest,
            file_name=file_name,
            mime_type=mime_type,
            width=width,
            height=height,
            content=content,
        )
        return self._add(stored)

    def add_url(self, kind: FileKind, url: str) -> StoredFile:
        stored = StoredFile(
            file_id=self._new_id(kind),
            file_unique_id=unique_id(kind, url),
            kind=kind,
            size=0,
            sha256=None,
            file_name=url.rsplit("/", 1)[-1] or None if kind == "document" else None,
            url=url,
        )
        return self._add(stored)

    def derive(self, source: StoredFile, width: int, height: int) -> StoredFile:
        """A smaller size of a photo (a thumbnail): metadata only."""
        stored = StoredFile(
            file_id=self._new_id(source.kind),
            file_unique_id=unique_id("thumb", f"{source.file_unique_id}:{width}x{height}"),
            kind=source.kind,
            size=0,
            sha256=None,
            width=width,
            height=height,
        )
        return self._add(stored)

    def _new_id(self, kind: str) -> str:
        prefix = "AgAC" if kind == "photo" else "BQAC"  # Telegram's photo/document id prefixes
        return prefix + secrets.token_urlsafe(24)

    def _add(self, stored: StoredFile) -> StoredFile:
        self._files[stored.file_id] = stored
        if stored.content is not None:
            self._kept_bytes += len(stored.content)
        self._evict()
        return stored

    def _evict(self) -> None:
        while len(self._files) > self.max_files:
            _, dropped = self._files.popitem(last=False)
            if dropped.content is not None:
                self._kept_bytes -= len(dropped.content)
        for stored in self._files.values():
            if self._kept_bytes <= self.byte_budget:
                break
            if stored.content is not None:
                self._kept_bytes -= len(stored.content)
                stored.content = None
