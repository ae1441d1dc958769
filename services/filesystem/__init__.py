"""The filesystem service: text files under allowed roots, each read-only or read-write (port 8003)."""
