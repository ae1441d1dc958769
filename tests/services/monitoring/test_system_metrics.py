"""get_system_metrics: psutil on the host, cgroup v2 files in a container."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import psutil
from mcp import Client

from services.monitoring.service import service
from services.monitoring.settings import Platform
from services.monitoring.system_metrics import collect, read_cgroup
from tests.services.monitoring.support import make_settings, nowhere, rpc_call

GIB = 1024**3


async def test_the_host_figures_match_what_the_kernel_reports(serve_service, tmp_path):
    # This machine's /sys/fs/cgroup is a cgroup v1 hierarchy, so the figures are the host's.
    url, _ = serve_service(service, make_settings(nowhere(tmp_path)))

    async with Client(f"{url}/mcp", mode="auto") as client:
        result = await client.call_tool("get_system_metrics", {})

    metrics = result.structured_content
    assert result.is_error is False
    assert metrics["scope"] == "host" and metrics["cgroup"] is None
    assert metrics["hostname"] == socket.gethostname()
    assert metrics["cpu"]["logical_cpus"] == os.cpu_count()
    assert 0 <= metrics["cpu"]["usage_percent"] <= 100
    assert metrics["memory"]["total_bytes"] == psutil.virtual_memory().total
    assert 0 < metrics["memory"]["used_bytes"] < metrics["memory"]["total_bytes"]
    root = next(disk for disk in metrics["disks"] if disk["mountpoint"] == "/")
    assert root["total_bytes"] == psutil.disk_usage("/").total
    assert "lo" in {interface["interface"] for interface in metrics["network"]}
    assert metrics["load"]["load1"] >= 0 and metrics["uptime_seconds"] > 0


def write_cgroup(root: Path, memory_max: str, cpu_max: str, usage_usec: int = 8_000_000) -> Path:
    """A directory laid out as a container's /sys/fs/cgroup (cgroup v2 file formats, kernel docs
    admin-guide/cgroup-v2): this machine runs cgroup v1, so a real v2 hierarchy is not available."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (root / "memory.max").write_text(f"{memory_max}\n")
    (root / "memory.current").write_text(f"{256 * 1024**2}\n")
    (root / "cpu.max").write_text(f"{cpu_max}\n")
    (root / "cpu.stat").write_text(
        f"usage_usec {usage_usec}\nuser_usec 6000000\nsystem_usec 2000000\n"
        "nr_periods 120\nnr_throttled 7\nthrottled_usec 350000\n"
    )
    (root / "pids.current").write_text("12\n")
    return root


def test_in_a_container_the_cgroup_limits_replace_the_host_figures(tmp_path):
    cgroup_root = write_cgroup(tmp_path / "cgroup", memory_max=str(GIB), cpu_max="50000 100000")

    metrics = collect(cgroup_root, sample_seconds=0.05)

    assert metrics.scope == "container"
    assert metrics.memory.total_bytes == GIB
    assert metrics.memory.used_bytes == 256 * 1024**2
    assert metrics.memory.available_bytes == GIB - 256 * 1024**2
    assert metrics.memory.percent == 25.0
    assert metrics.cpu.usable_cpus == 0.5
    assert metrics.cpu.usage_percent == 0.0  # cpu.stat did not move during the sample
    assert metrics.cgroup is not None
    assert metrics.cgroup.cpu_usage_seconds == 8.0
    assert metrics.cgroup.cpu_throttled_periods == 7
    assert metrics.cgroup.pids_current == 12


def test_unlimited_cgroups_fall_back_to_the_host_totals(tmp_path):
    cgroup = read_cgroup(write_cgroup(tmp_path / "cgroup", memory_max="max", cpu_max="max 100000"))
    metrics = collect(tmp_path / "cgroup", sample_seconds=0.05)

    assert cgroup is not None
    assert cgroup.memory_max_bytes is None and cgroup.cpu_quota_cpus is None
    assert metrics.memory.total_bytes == psutil.virtual_memory().total
    assert metrics.cpu.usable_cpus == len(os.sched_getaffinity(0))


def test_the_service_reads_the_cgroup_of_its_platform(serve_service, tmp_path):
    cgroup_root = write_cgroup(tmp_path / "cgroup", memory_max=str(2 * GIB), cpu_max="150000 100000")
    platform = Platform(
        environ={},
        serviceaccount_dir=tmp_path / "none",
        docker_socket=tmp_path / "none.sock",
        cgroup_root=cgroup_root,
    )
    url, _ = serve_service(service, make_settings(platform))

    result = rpc_call(url, "get_system_metrics", {})

    metrics = result["structuredContent"]
    assert metrics["scope"] == "container"
    assert metrics["memory"]["total_bytes"] == 2 * GIB
    assert metrics["cpu"]["usable_cpus"] == min(1.5, len(os.sched_getaffinity(0)))
