"""The five mcp-sse services, their registry and the ``mcp-sse`` command."""
