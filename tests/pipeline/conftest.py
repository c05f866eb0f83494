"""The limits backends (memory and Redis) for the admission tests, shared with tests/limits."""

from tests.limits.conftest import backend, clock, prefix  # noqa: F401  (pytest fixtures)
