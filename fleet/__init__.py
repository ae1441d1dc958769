"""Fleet tooling, not a service: the ``mcp-sse`` command, the service registry, the generated docs, client configs."""
