"""The monitoring service: container logs, LogQL search, system metrics and PromQL queries."""
