"""Bot API parameters from any body Telegram accepts: JSON, urlencoded, multipart, query.

Form bodies carry only strings (booleans as "true"/"false", arrays and objects as
JSON text); JSON bodies carry typed values. The getters below accept both.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any, cast
from urllib.parse import parse_qsl

from .errors import bad_request

Params = dict[str, Any]


@dataclass(frozen=True)
class UploadedFile:
    """A file part of a multipart body (e.g. setWebhook's certificate)."""

    name: str
    filename: str
    content: bytes
    content_type: str


def parse_body(content_type_header: str, body: bytes) -> Params:
    """Parse a request or webhook-response body by its Content-Type."""
    mime = content_type_header.split(";", 1)[0].strip().lower()
    if not body.strip():
        return {}
    if mime == "application/json":
        try:
            value = json.loads(body)
        except ValueError as exc:
            raise bad_request("can't parse JSON object") from exc
        if not isinstance(value, dict):
            raise bad_request("can't parse JSON object")
        return cast(Params, value)
    if mime == "application/x-www-form-urlencoded":
        return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    if mime.startswith("multipart/"):
        return _parse_multipart(content_type_header, body)
    return {}


def _parse_multipart(content_type_header: str, body: bytes) -> Params:
    # The stdlib MIME parser handles form-data fine once it sees the boundary header;
    # this keeps parsing usable for both server requests and webhook responses.
    head = f"Content-Type: {content_type_header}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = BytesParser(policy=policy.HTTP).parsebytes(head + body)
    if not isinstance(message, EmailMessage) or not message.is_multipart():
        raise bad_request("can't parse multipart/form-data body")
    params: Params = {}
    for part in message.iter_parts():
        if not isinstance(part, EmailMessage):
            continue
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        content = part.get_payload(decode=True)
        data = content if isinstance(content, bytes) else b""
        filename = part.get_filename()
        if filename is not None:
            params[name] = UploadedFile(name, filename, data, part.get_content_type())
        else:
            charset = part.get_content_charset() or "utf-8"
            params[name] = data.decode(charset, "replace")
    return params


def get_str(params: Params, name: str) -> str | None:
    value = params.get(name)
    if value is None or isinstance(value, UploadedFile):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def get_bool(params: Params, name: str, default: bool = False) -> bool:
    value = params.get(name)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value != 0
    if isinstance(value, str):
        return value.strip().lower() in {"true", "1", "yes", "on"}
    return default


def get_int(params: Params, name: str, default: int | None = None) -> int | None:
    """Integers; text that isn't one counts as 0, as in the Bot API server."""
    value = params.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    try:
        return int(str(value).strip())
    except ValueError:
        return 0


def get_json(params: Params, name: str) -> Any:
    """A JSON value: given typed in JSON bodies, or as JSON text in form bodies."""
    value = params.get(name)
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError as exc:
            raise bad_request(f"can't parse {name} JSON object") from exc
    return value
