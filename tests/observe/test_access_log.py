"""The access-log writer: never blocks the caller, writes batches, drops and counts when full."""

from __future__ import annotations

import asyncio
import io
import logging
import threading
import time

import pytest

from relaygate.context import RequestContext
from relaygate.observe.access_log import AccessLog
from tests.helpers.log_records import log_record

ROUTE = "/api/llm/chat/completions"


def _ctx(n: int) -> RequestContext:
    return RequestContext(f"req-{n}", "POST", ROUTE, route=ROUTE)


class BlockedStream(io.StringIO):
    """stdout nobody reads: every write waits until the test releases it."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()
        self.writes = 0

    def write(self, text: str) -> int:
        self.entered.set()
        self.release.wait(10)
        self.writes += 1
        return super().write(text)


class BrokenStream(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError("nobody reads")


async def _wait_for(predicate: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_lines_are_written_in_order_and_flushed_on_close() -> None:
    stream = io.StringIO()
    access = AccessLog("text", stream=stream)
    access.start()
    for n in range(50):
        access.record(_ctx(n), log_record(n))
    await access.close()
    lines = stream.getvalue().splitlines()
    assert [line.split(" ")[1] for line in lines] == [f"request_id=req-{n}" for n in range(50)]
    assert (access.submitted, access.written, access.dropped) == (50, 50, 0)
    assert not access.running


async def test_a_full_queue_drops_and_counts_without_waiting(caplog: pytest.LogCaptureFixture) -> None:
    stream = BlockedStream()
    access = AccessLog("json", max_queue=3, batch_size=1, stream=stream)
    access.start()
    access.record(_ctx(0), log_record(0))
    assert await asyncio.to_thread(stream.entered.wait, 5)  # the writer holds line 0, blocked on stdout
    caplog.set_level(logging.WARNING, "relaygate")
    started = time.perf_counter()
    for n in range(1, 11):
        access.record(_ctx(n), log_record(n))
    assert time.perf_counter() - started < 0.05, "recording waited on the blocked writer"
    assert access.queue_depth == 3 and access.dropped == 7
    drops = [r.getMessage() for r in caplog.records if "access log queue full" in r.getMessage()]
    assert drops == ["access log queue full (3 lines): 1 lines dropped since the last report, 1 in all"]
    stream.release.set()
    await access.close()
    assert (access.submitted, access.written, access.dropped) == (11, 4, 7)
    assert stream.getvalue().count("\n") == 4
    assert any("6 more lines dropped" in r.getMessage() for r in caplog.records), "held-back drops reported at close"


async def test_a_broken_stdout_counts_lines_as_dropped_and_keeps_going(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "relaygate")
    access = AccessLog("text", stream=BrokenStream())
    access.start()
    for n in range(3):
        access.record(_ctx(n), log_record(n))
        await _wait_for(lambda n=n: access.dropped == n + 1)
    await access.close()
    assert (access.written, access.dropped) == (0, 3)
    failures = [r for r in caplog.records if "stdout write failed (BrokenPipeError)" in r.getMessage()]
    assert len(failures) == 1, "one warning per interval, not one per batch"


async def test_records_after_close_are_dropped() -> None:
    access = AccessLog("text", stream=io.StringIO())
    access.start()
    await access.close()
    access.record(_ctx(1), log_record(1))
    assert access.dropped == 1


async def test_lines_recorded_before_start_are_written_on_close() -> None:
    stream = io.StringIO()
    access = AccessLog("text", stream=stream)
    access.record(_ctx(1), log_record(1))
    await access.close()
    assert "request_id=req-1 " in stream.getvalue()


async def test_a_writer_blocked_past_the_timeout_does_not_hold_close() -> None:
    stream = BlockedStream()
    access = AccessLog("text", batch_size=1, stream=stream)
    access.start()
    for n in range(3):
        access.record(_ctx(n), log_record(n))
    assert await asyncio.to_thread(stream.entered.wait, 5)
    started = time.perf_counter()
    await access.close(timeout=0.2)
    assert time.perf_counter() - started < 2
    assert access.dropped == 2  # the two still queued; the one being written is the thread's
    stream.release.set()


def test_off_starts_nothing() -> None:
    access = AccessLog("off")
    access.start()
    assert not access.enabled and not access.running


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="text, json, off"):
        AccessLog("xml")


def test_mode_comes_from_the_flag_or_the_environment_and_reaches_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    from relaygate.cli_parser import build_parser
    from relaygate.settings import Settings

    assert Settings().access_log == "text"
    args = build_parser().parse_args(["serve", "--access-log", "json"])
    assert args.access_log == "json"
    monkeypatch.setenv("RELAYGATE_ACCESS_LOG", "OFF")
    assert Settings.from_env().access_log == "off"
    assert Settings.from_env(access_log="json").to_env()["RELAYGATE_ACCESS_LOG"] == "json"
    monkeypatch.setenv("RELAYGATE_ACCESS_LOG", "xml")
    with pytest.raises(ValueError, match="RELAYGATE_ACCESS_LOG: must be one of text, json, off"):
        Settings.from_env()
