"""The five mcp-sse services: postgres, fetch, filesystem, github, monitoring."""
