"""The MCP gateway (docs/mcp.md)."""
