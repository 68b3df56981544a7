"""The machine a run measures on, and the statistics of its rounds (medians, percentiles, steal)."""

from __future__ import annotations

import math
import os
import platform
import statistics
from pathlib import Path


def cpu_ticks() -> dict[str, int]:
    """This machine's CPU time so far (all cores, in clock ticks) by kind, from /proc/stat."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return {}
    names = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
    return dict(zip(names, map(int, fields)))


def steal_adjusted(rates: list[float], steal: list[float]) -> float:
    """Median of each round's rate divided by the share of the CPU left to this machine
    (1 - steal): a first-order correction for the hypervisor's steal; NaN without steal figures."""
    if not rates or len(steal) != len(rates):
        return float("nan")
    return median([rate / max(1 - s / 100, 1e-6) for rate, s in zip(rates, steal)])


def steal_percent(before: dict[str, int], after: dict[str, int]) -> float | None:
    """Share of the CPU time between two `cpu_ticks()` that the hypervisor took (steal)."""
    total = sum(after.values()) - sum(before.values())
    if not before or total <= 0:
        return None
    return 100 * (after["steal"] - before["steal"]) / total



def median(values: list[float]) -> float:
    return statistics.median(values)


def machine() -> dict:
    """What the run ran on, for the docs: CPU model and flags, cores, memory, load."""
    info = {"platform": platform.platform(), "python": platform.python_version(),
            "cpu_count": os.cpu_count(), "load_average_start": list(os.getloadavg())}
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        fields = dict(line.split(":", 1) for line in cpuinfo.splitlines() if ":" in line)
        fields = {k.strip(): v.strip() for k, v in fields.items()}
        info["cpu"] = fields.get("model name", platform.processor())
        flags = set(fields.get("flags", "").split())
        info["cpu_flags"] = sorted(f for f in flags if f.startswith(("avx", "amx", "fma")))
        meminfo = Path("/proc/meminfo").read_text().split()
        info["memory_gib"] = round(int(meminfo[meminfo.index("MemTotal:") + 1]) / 2**20, 1)
    except (OSError, ValueError):
        info["cpu"] = platform.processor() or platform.machine()
    return info



def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]

