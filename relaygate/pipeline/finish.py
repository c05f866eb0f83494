"""The last step of every logged route: the finished-request record, queued for the log sink and
handed to every recorder (metrics, traces, the access log).

Each reads this one record, so a request is described once, whichever route served it and however
it ended, and the log row, the metrics and the spans never disagree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from relaygate.observe.record import finished_record

if TYPE_CHECKING:
    from relaygate.pipeline.call import Call


def finish(call: Call) -> None:
    """Queue the request's row (never blocks: a full queue drops and counts, observe/sink.py), then let
    each recorder read it (each is cheap or queues its own work)."""
    gateway, ctx = call.gateway, call.ctx
    record = finished_record(ctx, gateway.settings.log_body_max_bytes)
    gateway.sink.submit(record)
    for recorder in gateway.recorders:
        recorder(ctx, record)
