"""The one map from what aiohttp (or the OS) raises while talking to an upstream to the gateway's errors.

Every upstream path (LLM calls through `relay.py`, the custom-endpoint proxy, the resource routes)
catches `NETWORK_ERRORS` and asks `failure_kind` what happened: the upstream could not be reached
(`CONNECT`), it answered something that is not HTTP (`MALFORMED`), it went quiet past a timeout
(`TIMEOUT`), or the connection broke (`DISCONNECTED`, everything else). The messages name what the caller
called (a model, a provider account, an endpoint) and the exception's class, never a URL (some
providers carry keys in query strings). Statuses: 504 for a timeout, 502 for the rest.
"""

from __future__ import annotations

from typing import Literal

import aiohttp
from aiohttp.http_exceptions import HttpProcessingError

from relaygate.errors import BadGateway, GatewayError, GatewayTimeout

# Everything an upstream exchange can fail with: transport errors, HTTP the parser refused (a garbage
# status line surfaces as HttpProcessingError, which is not a ClientError), and timeouts (TimeoutError
# is an OSError).
NETWORK_ERRORS: tuple[type[BaseException], ...] = (aiohttp.ClientError, HttpProcessingError, OSError)

FailureKind = Literal["connect", "malformed", "timeout", "disconnected"]
CONNECT: FailureKind = "connect"
MALFORMED: FailureKind = "malformed"
TIMEOUT: FailureKind = "timeout"
DISCONNECTED: FailureKind = "disconnected"


def failure_kind(exc: BaseException) -> FailureKind:
    """What one of `NETWORK_ERRORS` means (aiohttp's own timeouts are `TimeoutError`s too)."""
    if isinstance(exc, TimeoutError):
        return TIMEOUT
    if isinstance(exc, (aiohttp.ClientConnectorError, aiohttp.InvalidURL)):
        return CONNECT
    if isinstance(exc, aiohttp.ClientResponseError):
        return MALFORMED
    return DISCONNECTED


def model_open_error(exc: BaseException, model: str) -> GatewayError:
    """An LLM call that failed before the upstream of `model` answered."""
    kind, name = failure_kind(exc), type(exc).__name__
    if kind == TIMEOUT:
        return GatewayTimeout(f"the upstream of model {model} did not answer in time")
    if kind == CONNECT:
        return BadGateway(f"could not connect to the upstream of model {model} ({name})")
    if kind == MALFORMED:
        return BadGateway(f"the upstream of model {model} sent a malformed answer ({name})")
    return BadGateway(f"the upstream of model {model} closed the connection ({name})")


def model_read_error(exc: BaseException) -> GatewayError:
    """An LLM answer whose body broke while it was read whole (timeouts are the caller's to judge)."""
    return BadGateway(f"upstream connection broke while reading the answer ({type(exc).__name__})")


def model_stream_error(exc: BaseException) -> GatewayError:
    """An LLM stream that broke, or stalled past the idle timeout, after it started."""
    if failure_kind(exc) == TIMEOUT:
        return GatewayTimeout("the upstream stalled mid-stream for longer than the idle timeout")
    return BadGateway(f"upstream connection broke mid-stream ({type(exc).__name__})")


def account_open_error(exc: BaseException, account: str) -> GatewayError:
    """A resource call (`/responses`, `/files`, `/batches`) that failed before the provider account answered."""
    if failure_kind(exc) == TIMEOUT:
        return GatewayTimeout(f"provider account {account} did not answer in time")
    return BadGateway(f"could not reach provider account {account} ({type(exc).__name__})")


def account_broke_message(exc: BaseException) -> str:
    """The log row's error message for a resource answer cut after its headers were relayed."""
    return f"provider connection broke mid-answer ({type(exc).__name__})"


def endpoint_open_error(exc: BaseException, endpoint: str) -> BadGateway:
    """A custom-endpoint attempt that failed before `endpoint` ("account/name") answered (not a timeout:
    the proxy says how long it waited)."""
    return BadGateway(f"endpoint {endpoint} failed: {type(exc).__name__}")


def endpoint_broke_message(exc: BaseException) -> str:
    """The log row's error message for a custom-endpoint answer cut after its headers were relayed."""
    return f"upstream body broke after headers ({type(exc).__name__})"
