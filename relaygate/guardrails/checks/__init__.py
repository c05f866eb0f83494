"""Built-in guardrail checks: pure, synchronous, no external calls (one module per integration type)."""
