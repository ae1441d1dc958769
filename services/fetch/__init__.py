"""The fetch service: HTTP requests for models, with markdown conversion, safe by default."""
