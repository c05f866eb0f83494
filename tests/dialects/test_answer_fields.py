"""`answer_fields` against a whole parse: the same `usage` and `model`, or no answer at all.

Adversarial bodies: "usage" and "model" inside strings (escaped quotes, backslashes, braces),
nested objects with those keys, duplicate top-level keys (the last one wins), keys spelled with
escapes, any whitespace, large values in the way.
"""

from __future__ import annotations

import json
import random
from typing import Any

import orjson
import pytest

from relaygate.dialects.answer_fields import answer_fields

USAGE = {"prompt_tokens": 8, "total_tokens": 8, "prompt_tokens_details": {"cached_tokens": 0}}
TRICKY = [
    'say "usage": {"prompt_tokens": 999}',
    '\\"usage\\": {}',
    '"model": "gpt-fake"}',
    "ends with a backslash \\",
    'quote then brace "} and ]',
    '\\\\"usage\\\\"',
    "unicode \u00e9\u4e2d",
]


def embeddings(n: int, model: str = "text-embedding-3-small") -> dict[str, Any]:
    rng = random.Random(n)
    data = [
        {"object": "embedding", "index": i, "embedding": [rng.uniform(-1, 1) for _ in range(1536)]} for i in range(n)
    ]
    return {"object": "list", "data": data, "model": model, "usage": USAGE}


def chat(text: str, pad: int = 0) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-2024-08-06",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text + "x" * pad}, "finish_reason": "stop"}
        ],
        "usage": USAGE,
        "service_tier": "default",
        "system_fingerprint": "fp_1",
    }


def spellings(payload: dict[str, Any]) -> list[bytes]:
    return [
        orjson.dumps(payload),
        json.dumps(payload).encode(),
        json.dumps(payload, ensure_ascii=False).encode(),
        json.dumps(payload, indent=2).encode() + b"\n",
        json.dumps(payload, separators=(" , ", " : ")).encode() + b" \r\n",
    ]


def agrees(body: bytes) -> bool:
    """The walk's answer equals the parse's, when it gives one; whether it gave one."""
    found = answer_fields(body)
    if found is None:
        return False
    parsed = orjson.loads(body)
    assert found[:2] == (parsed.get("usage"), parsed.get("model")), body[:200]
    return True


@pytest.mark.parametrize("body", spellings(embeddings(16)), ids=["orjson", "json", "utf8", "indent", "spaced"])
def test_an_embeddings_answer_is_read_from_its_end(body: bytes) -> None:
    assert len(body) > 400_000
    assert agrees(body)


@pytest.mark.parametrize("text", TRICKY)
def test_usage_and_model_inside_strings_are_not_taken(text: str) -> None:
    strings_last = {"data": [text] * 2000, "model": text, "usage": USAGE, "note": text, "other": [text, {"x": text}]}
    for payload in (chat(text, pad=20_000), {**embeddings(1), "model": text}, strings_last):
        for body in spellings(payload):
            agrees(body)
    assert agrees(orjson.dumps({**embeddings(1), "model": text}))
    assert agrees(orjson.dumps(strings_last))
    assert answer_fields(orjson.dumps(chat(text, pad=20_000))) is None  # `model` in front: the parse finds it


def test_nested_keys_and_duplicates_follow_the_parse() -> None:
    pad = '"' + "p" * 20_000 + '"'
    bodies = [
        # a nested `usage` after the real one, and a nested `model`
        b'{"model":"a","data":[' + pad.encode() + b'],"usage":{"n":1},"extra":{"usage":{"n":2},"model":"z"}}',
        # duplicate top-level keys: the last wins
        b'{"model":"a","data":[' + pad.encode() + b'],"model":"b","usage":null,"usage":{"n":3}}',
        b'{"model":"a","data":[' + pad.encode() + b'],"model":"b","usage":{"n":1},"usage":{"n":3}}',
        b'{"usage":{"n":1},"model":"a","data":[' + pad.encode() + b'],"model":"b"}',
        # a key spelled with escapes is the same key
        b'{"model":"a","data":[' + pad.encode() + b'],"us\\u0061ge":{"n":4},"m\\u006fdel":"c"}',
        b'{"model":"a","data":[' + pad.encode() + b'],"usage":{"n":5},"mod\\u0065l":"d"}',
        b'{"model":"a","choices":[' + pad.encode() + b'],"usage":{"n":6},"x":1,"model":"e"}',
        b'{"id":"x","model":"a","choices":[' + pad.encode() + b'],"usage":null,"x":true}',
        b'{"data":[' + pad.encode() + b'],"usage":{"n":7}}',
        b'{"data":[' + pad.encode() + b'],"usage":{"n":8},"model":null}',
        b'{"model":"a","data":[' + pad.encode() + b',{"model":"inner"}],"usage":{"n":9}}',
        b"{}",
        b'{"usage":1}',
    ]
    for body in bodies:
        agrees(body)
    assert answer_fields(bodies[1])[:2] == ({"n": 3}, "b")  # type: ignore[index]
    assert answer_fields(bodies[4]) is None  # an escaped `model` key: left to the parse
    assert answer_fields(bodies[10]) is None  # two `"model"` spellings and the first is in front: unsure


def test_it_gives_up_rather_than_guess() -> None:
    big = "q" * 20_000
    no_usage = orjson.dumps({"created": 1, "data": [{"b64_json": big}]})
    assert answer_fields(no_usage) is None  # no usage at the end: only a parse says there is none
    usage_first = orjson.dumps({"usage": USAGE, "model": "m", "data": [big]})
    assert answer_fields(usage_first) is None
    assert answer_fields(b'{"usage": {"n": 1}} trailing') is None
    assert answer_fields(b'[{"usage": {"n": 1}}]') is None


def test_random_bodies_agree_with_the_parse() -> None:
    rng = random.Random(11)
    keys = ["usage", "model", "data", "id", "choices", "x"]
    values: list[Any] = [USAGE, "m1", "m2", None, 3, 2.5, True, [1, 2], {"usage": {"a": 1}}, *TRICKY, "z" * 3000]
    answered = 0
    for _ in range(3000):
        members = [(rng.choice(keys), rng.choice(values)) for _ in range(rng.randint(1, 8))]
        members.insert(rng.randint(0, len(members)), ("data", ["w" * 2000] * 9))  # past the small-answer size
        body = b"{" + b",".join(orjson.dumps(k) + b":" + orjson.dumps(v) for k, v in members) + b"}"
        answered += agrees(body)
    assert answered > 200  # every answer agreed; the rest went to a parse
