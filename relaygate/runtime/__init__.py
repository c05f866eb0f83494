"""What the request path reads: frozen, pydantic-free types built by `relaygate.config` at load.

Nothing here imports `relaygate.config` or pydantic, so a request never touches a manifest object;
types of upper layers (adapters, strategies, access rules) are named under TYPE_CHECKING only.
"""
