"""The last step of every logged route: the finished-request record, queued for the log sink.

Observability features (metrics, traces, the access log) read this one record, so a request is
described once, whichever route served it and however it ended.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from relaygate.observe.record import finished_record

if TYPE_CHECKING:
    from relaygate.pipeline.call import Call


def finish(call: Call) -> None:
    """Queue the request's row (never blocks: a full queue drops and counts, observe/sink.py)."""
    gateway = call.gateway
    gateway.sink.submit(finished_record(call.ctx, gateway.settings.log_body_max_bytes))
