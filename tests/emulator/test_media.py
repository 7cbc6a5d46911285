"""sendPhoto and sendDocument: multipart uploads, file_id and URL strings, bounded storage."""

from __future__ import annotations

import hashlib
import struct
import zlib
from typing import Any

import aiohttp
import pytest

from tests.emulator.helpers import BOT_ID, BotApi
from tgbot_emulator import EmulatorClient
from tgbot_emulator.files import FileStore
from tgbot_emulator.images import image_size

CHAT = 31


def png(width: int, height: int) -> bytes:
    """A real (tiny, grey) PNG of the given size."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def jpeg_header(width: int, height: int) -> bytes:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof0 = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + sof0 + b"\xff\xd9"


async def upload(
    api: BotApi, method: str, field: str, filename: str, content: bytes, attach: bool = False, **params: str
) -> tuple[int, dict[str, Any]]:
    form = aiohttp.FormData()
    form.add_field("chat_id", str(CHAT))
    for key, value in params.items():
        form.add_field(key, value)
    part = "file0" if attach else field
    if attach:
        form.add_field(field, "attach://file0")
    form.add_field(part, content, filename=filename, content_type="application/octet-stream")
    async with api.session.post(api.url(method), data=form) as response:
        return response.status, await response.json(content_type=None)


def test_image_sizes_are_read_from_headers() -> None:
    assert image_size(png(64, 48)) == (64, 48)
    assert image_size(b"GIF89a" + struct.pack("<HH", 10, 20) + b"\x00" * 8) == (10, 20)
    assert image_size(jpeg_header(800, 600)) == (800, 600)
    vp8x = b"RIFF\x00\x00\x00\x00WEBPVP8X" + b"\x0a\x00\x00\x00" + b"\x00" * 4
    assert image_size(vp8x + (99).to_bytes(3, "little") + (49).to_bytes(3, "little")) == (100, 50)
    assert image_size(b"%PDF-1.7 not an image") is None
    assert image_size(b"\xff\xd8\xff") is None


async def test_upload_a_photo_then_resend_it_by_file_id(api: BotApi, client: EmulatorClient) -> None:
    content = png(64, 48)
    status, body = await upload(api, "sendPhoto", "photo", "cat.png", content, caption="a cat")
    assert status == 200, body
    message = body["result"]
    [size] = message["photo"]
    assert (size["width"], size["height"], size["file_size"]) == (64, 48, len(content))
    assert message["caption"] == "a cat"
    again = await api.ok("sendPhoto", chat_id=CHAT, photo=size["file_id"])
    assert again["photo"][0]["file_id"] == size["file_id"]
    assert again["photo"][0]["file_unique_id"] == size["file_unique_id"]
    [stored] = await client.files(BOT_ID)
    assert stored["sha256"] == hashlib.sha256(content).hexdigest()
    assert await client.file_content(BOT_ID, size["file_id"]) == content
    lines = await client.transcript(BOT_ID, CHAT)
    assert [(line["kind"], line["caption"]) for line in lines] == [("photo", "a cat"), ("photo", None)]


async def test_big_photos_are_scaled_like_telegram(api: BotApi) -> None:
    status, body = await upload(api, "sendPhoto", "photo", "wide.jpg", jpeg_header(2560, 1440))
    assert status == 200, body
    [size] = body["result"]["photo"]
    assert (size["width"], size["height"]) == (1280, 720)


async def test_attach_references_and_aiogram_style_uploads(api: BotApi) -> None:
    status, body = await upload(api, "sendPhoto", "photo", "p.png", png(2, 2), attach=True)
    assert status == 200, body
    assert body["result"]["photo"][0]["width"] == 2


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"definitely not an image", "Bad Request: IMAGE_PROCESS_FAILED"),
        (png(1, 50), "Bad Request: PHOTO_INVALID_DIMENSIONS"),
        (png(2, 2) + b"\x00" * (10 * 1024 * 1024), "Bad Request: PHOTO_SAVE_FILE_INVALID"),
    ],
)
async def test_bad_photos_are_refused_and_not_kept(
    api: BotApi, client: EmulatorClient, content: bytes, expected: str
) -> None:
    status, body = await upload(api, "sendPhoto", "photo", "bad.png", content)
    assert (status, body["description"]) == (400, expected)
    assert await client.files(BOT_ID) == []
    assert await client.sent_messages(BOT_ID) == []


async def test_photo_errors_without_a_file(api: BotApi, client: EmulatorClient) -> None:
    cases = {
        "": "Bad Request: there is no photo in the request",
        "AgACnotAKnownId": "Bad Request: wrong file identifier/HTTP URL specified",
    }
    for photo, expected in cases.items():
        status, body = await api.json("sendPhoto", chat_id=CHAT, photo=photo)
        assert (status, body["description"]) == (400, expected)
    status, body = await upload(api, "sendPhoto", "photo", "p.png", png(2, 2), caption="c" * 1025)
    assert (status, body["description"]) == (400, "Bad Request: message caption is too long")
    assert await client.files(BOT_ID) == []


async def test_documents(api: BotApi, client: EmulatorClient) -> None:
    content = b"%PDF-1.7\n" + b"x" * 1000
    status, body = await upload(api, "sendDocument", "document", "report.pdf", content, caption="Q3")
    assert status == 200, body
    document = body["result"]["document"]
    assert document["file_name"] == "report.pdf"
    assert document["mime_type"] == "application/pdf"
    assert document["file_size"] == len(content)
    by_id = await api.ok("sendDocument", chat_id=CHAT, document=document["file_id"])
    assert by_id["document"]["file_id"] == document["file_id"]
    by_url = await api.ok("sendDocument", chat_id=CHAT, document="https://files.example.com/a/manual.txt")
    assert by_url["document"]["file_name"] == "manual.txt"
    [_, url_file] = await client.files(BOT_ID)
    assert url_file["url"] == "https://files.example.com/a/manual.txt"
    assert url_file["content_kept"] is False


async def test_file_kinds_do_not_mix(api: BotApi) -> None:
    status, body = await upload(api, "sendPhoto", "photo", "p.png", png(3, 3))
    photo_id = body["result"]["photo"][0]["file_id"]
    status, body = await api.json("sendDocument", chat_id=CHAT, document=photo_id)
    assert (status, body["description"]) == (400, "Bad Request: type of file mismatch")
    status, body = await api.json("sendDocument", chat_id=CHAT)
    assert (status, body["description"]) == (400, "Bad Request: there is no document in the request")


async def test_bodies_over_the_upload_limit_answer_413(api: BotApi) -> None:
    status, body = await upload(api, "sendDocument", "document", "big.bin", b"\x00" * (50 * 1024 * 1024 + 1))
    assert (status, body) == (
        413,
        {"ok": False, "error_code": 413, "description": "Request Entity Too Large"},
    )


def test_the_file_store_keeps_bytes_within_its_budget() -> None:
    store = FileStore(byte_budget=250, max_files=3)
    first = store.add_upload("document", b"a" * 100)
    second = store.add_upload("document", b"b" * 100)
    third = store.add_upload("document", b"c" * 100)
    assert store.kept_bytes <= 250
    assert first.content is None  # the oldest bytes go first
    assert (second.content, third.content) == (b"b" * 100, b"c" * 100)
    assert store.get(first.file_id) is first  # its metadata stays, so it can be re-sent
    fourth = store.add_upload("document", b"d" * 10)
    assert store.get(first.file_id) is None  # beyond max_files the oldest record goes too
    assert store.get(fourth.file_id) is fourth
    assert store.add_upload("document", b"b" * 100).file_unique_id == second.file_unique_id
