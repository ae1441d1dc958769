# One command runs it, one tests it.
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test bench lint clean

run:
	@bash scripts/bootstrap.sh run
	$(VENV)/bin/mcp-sse up

test:
	@bash scripts/bootstrap.sh test
	$(PY) -m pytest

bench:
	@bash scripts/bootstrap.sh test
	$(PY) -m bench

# Bootstraps first, like test: on a fresh machine ruff and mypy come with the dev extra.
lint:
	@bash scripts/bootstrap.sh test
	$(VENV)/bin/ruff check libmcp services fleet harness tests bench
	$(VENV)/bin/ruff format --check libmcp services fleet harness tests bench
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .tools
