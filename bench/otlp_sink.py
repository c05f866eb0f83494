#!/usr/bin/env python3
"""A local OTLP/HTTP receiver for benchmarks: answers every export with 200 and keeps only counts.

    python bench/otlp_sink.py --port 4318

`POST /v1/traces` (and /v1/metrics, /v1/logs) are read whole and acknowledged with an empty
protobuf `Export*ServiceResponse`; `GET /stats` tells how many requests and bytes arrived. It decodes
nothing, so it costs the benchmark as little CPU as a collector could.
"""

from __future__ import annotations

import argparse

from aiohttp import web

COUNTS = {"requests": 0, "bytes": 0}


async def export(request: web.Request) -> web.Response:
    body = await request.read()
    COUNTS["requests"] += 1
    COUNTS["bytes"] += len(body)
    return web.Response(body=b"", content_type="application/x-protobuf")


async def stats(request: web.Request) -> web.Response:
    return web.json_response(COUNTS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=4318)
    args = parser.parse_args()
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/{signal}", export)
    app.router.add_get("/stats", stats)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None)


if __name__ == "__main__":
    main()
