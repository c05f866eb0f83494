"""End-to-end tests: a real `relaygate serve` process, real mock upstreams, the real openai SDK."""
