"""The postgres service: SQL and schema tools over asyncpg (see service.py)."""
