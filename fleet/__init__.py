"""Fleet tooling, not a service: the ``mcp-sse`` command, the registry, the generated docs, client configs."""
