"""Loopback stand-ins and process helpers shared by tests and bench, so neither imports the other.

``processes`` starts a service (or any server module) as a child process; ``postgres`` a throwaway
PostgreSQL with the test databases; ``pageserver`` and ``pages`` a crafted HTTP server and real-world
pages for fetch; ``fake_github`` the GitHub REST API stand-in; ``http_client`` a light HTTP/1.1 client.
"""
