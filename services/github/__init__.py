"""The github service: repositories, issues and files through the GitHub REST API (PyGithub)."""

from importlib.metadata import version

VERSION = version("mcp-sse")
