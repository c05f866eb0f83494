"""One `Retry-After` reader for every upstream path: seconds or an HTTP date, nothing unusable."""

from __future__ import annotations

import time
from email.utils import formatdate

import pytest

from relaygate.upstream.retry_after import parse_retry_after


@pytest.mark.parametrize(("value", "seconds"), [("7", 7.0), ("0", 0.0), ("1.5", 1.5), (" 3 ", 3.0)])
def test_delta_seconds(value: str, seconds: float) -> None:
    assert parse_retry_after(value) == seconds


def test_http_date_in_the_future_is_the_seconds_until_it() -> None:
    seconds = parse_retry_after(formatdate(time.time() + 120, usegmt=True))
    assert seconds is not None and 115 <= seconds <= 121


def test_http_date_in_the_past_is_zero() -> None:
    assert parse_retry_after(formatdate(time.time() - 600, usegmt=True)) == 0.0


@pytest.mark.parametrize("value", [None, "", "soon", "-5", "inf", "nan", "Wed, 21 Oct 2015 07:28:00"])
def test_unusable_values_are_none(value: str | None) -> None:
    assert parse_retry_after(value) is None
