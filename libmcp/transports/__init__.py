"""The HTTP transports. Each one only moves JSON-RPC messages between sockets and :class:`libmcp.Server`."""
