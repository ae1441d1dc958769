"""Servers for testing MCP clients and libmcp itself against the official conformance suite."""
