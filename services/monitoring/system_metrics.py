"""CPU, memory, load, disk and network of the host, or of the container when cgroup v2 limits it.

In a container, ``/sys/fs/cgroup`` is the container's own cgroup (cgroup namespaces), so its
``memory.max``, ``memory.current``, ``cpu.max`` and ``cpu.stat`` are the container's limits and usage.
On a host the root cgroup has none of those files and psutil's host-wide figures are reported.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import psutil

from services.monitoring.models import (
    CgroupMetrics,
    CpuMetrics,
    DiskMetrics,
    LoadMetrics,
    MemoryMetrics,
    NetworkMetrics,
    SystemMetrics,
)

MAX_DISKS = 20
MAX_INTERFACES = 20


def read_cgroup(root: Path) -> CgroupMetrics | None:
    """The cgroup v2 limits and usage under ``root``; ``None`` when it is not a limited cgroup v2."""
    if not (root / "cgroup.controllers").is_file() or not (root / "memory.max").is_file():
        return None
    quota: float | None = None
    cpu_max = _read(root / "cpu.max")
    if cpu_max:
        limit, _, period = cpu_max.partition(" ")
        if limit != "max" and period:
            quota = int(limit) / int(period)
    stat = _read_keyed(root / "cpu.stat")
    usage = stat.get("usage_usec")
    return CgroupMetrics(
        memory_max_bytes=_read_int(root / "memory.max"),
        memory_current_bytes=_read_int(root / "memory.current"),
        cpu_quota_cpus=quota,
        cpu_usage_seconds=usage / 1e6 if usage is not None else None,
        cpu_throttled_periods=stat.get("nr_throttled"),
        pids_current=_read_int(root / "pids.current"),
    )


def collect(cgroup_root: Path, sample_seconds: float = 0.25) -> SystemMetrics:
    """Take a snapshot; CPU usage is measured over ``sample_seconds`` (this blocks: run it in a thread)."""
    cgroup = read_cgroup(cgroup_root)
    logical = psutil.cpu_count(logical=True) or 1
    usable = float(len(os.sched_getaffinity(0))) if hasattr(os, "sched_getaffinity") else float(logical)
    if cgroup is not None and cgroup.cpu_quota_cpus is not None:
        usable = min(usable, cgroup.cpu_quota_cpus)
    usage_percent = _cpu_usage_percent(cgroup_root if cgroup else None, usable, sample_seconds)
    return SystemMetrics(
        scope="container" if cgroup is not None else "host",
        hostname=socket.gethostname(),
        uptime_seconds=round(time.time() - psutil.boot_time(), 1),
        cpu=CpuMetrics(logical_cpus=logical, usable_cpus=round(usable, 3), usage_percent=usage_percent),
        memory=_memory(cgroup),
        load=LoadMetrics(**dict(zip(("load1", "load5", "load15"), _load(), strict=True))),
        disks=_disks(),
        network=_network(),
        cgroup=cgroup,
    )


def _cpu_usage_percent(cgroup_root: Path | None, usable: float, sample_seconds: float) -> float:
    if cgroup_root is None:
        percent: float = psutil.cpu_percent(interval=sample_seconds)
        return round(percent, 1)
    before, started = _read_keyed(cgroup_root / "cpu.stat").get("usage_usec", 0), time.monotonic()
    time.sleep(sample_seconds)
    after, elapsed = _read_keyed(cgroup_root / "cpu.stat").get("usage_usec", 0), time.monotonic() - started
    busy_cpus = (after - before) / 1e6 / elapsed
    return round(max(0.0, 100.0 * busy_cpus / usable), 1)


def _memory(cgroup: CgroupMetrics | None) -> MemoryMetrics:
    host = psutil.virtual_memory()
    swap_used = psutil.swap_memory().used
    if cgroup is None or cgroup.memory_current_bytes is None:
        return MemoryMetrics(
            total_bytes=host.total,
            used_bytes=host.total - host.available,
            available_bytes=host.available,
            percent=host.percent,
            swap_used_bytes=swap_used,
        )
    total = min(cgroup.memory_max_bytes or host.total, host.total)
    used = cgroup.memory_current_bytes
    return MemoryMetrics(
        total_bytes=total,
        used_bytes=used,
        available_bytes=max(0, total - used),
        percent=round(100.0 * used / total, 1),
        swap_used_bytes=swap_used,
    )


def _disks() -> list[DiskMetrics]:
    # "/" first: in a container it is an overlay, which psutil's physical-only listing leaves out.
    fstypes = {part.mountpoint: part.fstype for part in psutil.disk_partitions(all=True)}
    mountpoints = dict.fromkeys(["/", *(part.mountpoint for part in psutil.disk_partitions(all=False))])
    disks: list[DiskMetrics] = []
    for mountpoint in list(mountpoints)[:MAX_DISKS]:
        try:
            usage = psutil.disk_usage(mountpoint)
        except OSError:
            continue
        disks.append(
            DiskMetrics(
                mountpoint=mountpoint,
                filesystem=fstypes.get(mountpoint, ""),
                total_bytes=usage.total,
                used_bytes=usage.used,
                free_bytes=usage.free,
                percent=usage.percent,
            )
        )
    return disks


def _network() -> list[NetworkMetrics]:
    counters = psutil.net_io_counters(pernic=True)
    return [
        NetworkMetrics(
            interface=name,
            bytes_sent=c.bytes_sent,
            bytes_recv=c.bytes_recv,
            packets_sent=c.packets_sent,
            packets_recv=c.packets_recv,
            errors_in=c.errin,
            errors_out=c.errout,
        )
        for name, c in sorted(counters.items())[:MAX_INTERFACES]
    ]


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _read_int(path: Path) -> int | None:
    value = _read(path)
    if value is None or value == "max":
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _read_keyed(path: Path) -> dict[str, int]:
    values: dict[str, int] = {}
    for line in (_read(path) or "").splitlines():
        key, _, value = line.partition(" ")
        if value.strip().isdigit():
            values[key] = int(value)
    return values


def _load() -> tuple[float, ...]:
    return tuple(round(value, 2) for value in os.getloadavg())
