"""The response cache's core: keys, stored entries, stream assembly and replay, stores, single-flight.

Nothing here speaks HTTP or reads config: the request pipeline decides eligibility and policy
(next-capabilities §4.6) and calls these pieces. Import the submodules directly
(`relaygate.cache.key`, `relaygate.cache.replay`, ...); this package imports nothing eagerly so a
process without caching never loads redis.asyncio for it.
"""
