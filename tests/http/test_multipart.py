"""Reading and rewriting the `model` field of a multipart body, every other byte untouched."""

import aiohttp
import pytest

from relaygate.errors import BadRequest
from relaygate.http.multipart import boundary_of, read_field, replace_field


def _form() -> tuple[bytes, bytes]:
    form = aiohttp.FormData()
    form.add_field("file", b"\x00\x01binary--data\r\n", filename="a.wav", content_type="audio/wav")
    form.add_field("model", "team/whisper")
    form.add_field("language", "en")
    payload = form()
    chunks: list[bytes] = []

    class Writer:
        async def write(self, data: bytes) -> None:
            chunks.append(bytes(data))

    import asyncio

    asyncio.run(payload.write(Writer()))  # type: ignore[arg-type]
    return b"".join(chunks), payload.content_type.encode()


def test_boundary_is_read_from_the_content_type() -> None:
    assert boundary_of(b'multipart/form-data; boundary="abc"') == b"abc"
    assert boundary_of(b"multipart/form-data; boundary=xyz") == b"xyz"


def test_non_multipart_content_type_is_400() -> None:
    with pytest.raises(BadRequest):
        boundary_of(b"application/json")


def test_model_field_is_read_and_rewritten() -> None:
    body, ctype = _form()
    boundary = boundary_of(ctype)
    assert read_field(body, boundary, b"model") == "team/whisper"
    rewritten = replace_field(body, boundary, b"model", "whisper-1")
    assert read_field(rewritten, boundary, b"model") == "whisper-1"
    assert read_field(rewritten, boundary, b"language") == "en"
    assert b"\x00\x01binary--data\r\n" in rewritten
    assert rewritten.replace(b"whisper-1", b"team/whisper") == body


def test_missing_field_reads_none() -> None:
    body, ctype = _form()
    assert read_field(body, boundary_of(ctype), b"prompt") is None
