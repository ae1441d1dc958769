"""Image build step: print the pip extra of the service the Dockerfile's SERVICE names.

Usage: ``service_extra.py REGISTRY SERVICE``, with REGISTRY the path of config/services.yaml. Prints the
service's ``extra`` and exits 0; a missing or unknown SERVICE exits 1 with a message that names the
build argument and the known services, so a wrong ``--build-arg SERVICE=...`` stops the build there.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: service_extra.py REGISTRY SERVICE", file=sys.stderr)
        return 2
    registry, name = Path(argv[0]), argv[1]
    services: dict[str, dict[str, object]] = yaml.safe_load(registry.read_text(encoding="utf-8"))["services"]
    if not name:
        choices = "|".join(services)
        print(f"the build argument SERVICE is required: --build-arg SERVICE=<{choices}>", file=sys.stderr)
        return 1
    if name not in services:
        known = ", ".join(services)
        print(f"unknown SERVICE {name!r} (--build-arg SERVICE=...); known: {known}", file=sys.stderr)
        return 1
    print(services[name]["extra"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
