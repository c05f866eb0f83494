"""AWS event-stream frames, encoded as Bedrock's ConverseStream sends them (botocore ships only a decoder).

A frame is a prelude (total and header lengths, then their CRC32), string headers, the payload and a
CRC32 of everything before it. `event_frame` and `exception_frame` build ConverseStream's JSON events
and modeled exceptions.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

import orjson


def encode_frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One AWS event-stream message: prelude (total and header lengths, CRC), string headers, payload, CRC."""
    encoded = b"".join(
        struct.pack("B", len(name)) + name.encode() + b"\x07" + struct.pack(">H", len(value.encode())) + value.encode()
        for name, value in headers.items()
    )
    total = 12 + len(encoded) + len(payload) + 4
    prelude = struct.pack(">II", total, len(encoded))
    prelude += struct.pack(">I", zlib.crc32(prelude) & 0xFFFFFFFF)
    message = prelude + encoded + payload
    return message + struct.pack(">I", zlib.crc32(message) & 0xFFFFFFFF)


def event_frame(event_type: str, body: dict[str, Any]) -> bytes:
    """A ConverseStream event; Bedrock pads payloads with a `p` field, so the mock does too."""
    padded = {**body, "p": "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ"[: 4 + len(event_type)]}
    return encode_frame(
        {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"}, orjson.dumps(padded)
    )


def exception_frame(exception_type: str, message: str) -> bytes:
    """A modeled exception inside the stream (`:exception-type` in lowerCamel, e.g. throttlingException)."""
    return encode_frame(
        {":exception-type": exception_type, ":content-type": "application/json", ":message-type": "exception"},
        orjson.dumps({"message": message}),
    )
