"""Where the dispatcher listens, and the request bytes every forward starts with."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit


class UpstreamTarget(NamedTuple):
    host: str
    port: int
    unix_socket: Path | None
    request_prefix: bytes  # request line and fixed headers, up to "Content-Length: "

    @classmethod
    def from_url(cls, url: str, unix_socket: Path | None = None) -> UpstreamTarget:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"upstream must be an http:// URL, got {url!r}")
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        host_header = parts.netloc.rsplit("@", 1)[-1]
        prefix = (
            f"POST {path} HTTP/1.1\r\nHost: {host_header}\r\n"
            "Content-Type: application/json\r\nContent-Length: "
        ).encode("latin-1")
        return cls(parts.hostname, parts.port or 80, unix_socket, prefix)

    def describe(self) -> str:
        return f"unix:{self.unix_socket}" if self.unix_socket else f"{self.host}:{self.port}"
