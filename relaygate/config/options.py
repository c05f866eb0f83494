"""What a config load needs to know about the process loading it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from relaygate.config.outbound import GatewayAddress

if TYPE_CHECKING:
    from relaygate.settings import Settings

DEFAULT_MAX_CONFIG_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class LoadOptions:
    """The size cap of a config file (a directory: all its files together), and the gateway's own
    listen address so a base URL pointing back at it is refused (None: not known, not checked)."""

    max_config_bytes: int = DEFAULT_MAX_CONFIG_BYTES
    gateway: GatewayAddress | None = None

    @classmethod
    def for_settings(cls, settings: Settings) -> LoadOptions:
        return cls(settings.max_config_bytes, GatewayAddress(settings.host, settings.port))
