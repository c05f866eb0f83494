"""The MCP gateway (docs/mcp.md): one endpoint and one token in front of every MCP server.

Import the submodules directly (`relaygate.mcp.names`, ...); this package imports nothing eagerly, so
the config compiler can use its pure helpers (tool names, header rules) without the request path.
"""
