"""The request pipeline, written once: authenticate, admit, plan, attempt, exchange, finish.

Handlers (`relaygate/handlers/`) read their route's wire format and hand a `Call` to these steps;
nothing here knows a route by name. docs/ARCHITECTURE.md draws the flow and the import layers.
"""
