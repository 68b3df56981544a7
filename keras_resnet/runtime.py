"""TensorFlow runtime settings the library prefers, applied before TensorFlow loads.

It also tells whether the CPU computes bfloat16 products in hardware (AMX tiles, or AVX512-BF16
dot products), where mixed bfloat16 trains our nets faster than float32
(`--mixed_precision=auto`, docs/performance.md).

TensorFlow reads `TF_ENABLE_ONEDNN_OPTS` once, when it is imported. Left unset, it turns its oneDNN
kernels on only on x86 CPUs with AVX512-VNNI, AVX512-BF16, AVX-VNNI or AMX; on the others (AVX2
machines such as most AMD EPYCs, older Xeons) it runs its Eigen kernels, which train our nets
about half as fast (docs/performance.md: *The trainers' defaults*, *TensorFlow threads*).
Importing `keras_resnet` before TensorFlow therefore sets the variable to 1 on x86-64, unless it
is set already: `TF_ENABLE_ONEDNN_OPTS=0` keeps the Eigen kernels. This module imports no
TensorFlow.
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

ONEDNN_VARIABLE = "TF_ENABLE_ONEDNN_OPTS"
X86_64 = ("x86_64", "amd64")
CPUINFO = Path("/proc/cpuinfo")


def prefer_onednn() -> bool:
    """Set `TF_ENABLE_ONEDNN_OPTS=1` if it is unset, TensorFlow is not imported yet and the
    processor is x86-64 (elsewhere TensorFlow's choice stands). Returns whether it set it."""
    if ONEDNN_VARIABLE in os.environ or "tensorflow" in sys.modules:
        return False
    if platform.machine().lower() not in X86_64:
        return False
    os.environ[ONEDNN_VARIABLE] = "1"
    return True


def onednn_enabled() -> bool:
    """Whether the imported TensorFlow runs its oneDNN kernels (imports TensorFlow)."""
    from tensorflow.python.util import _pywrap_util_port

    return bool(_pywrap_util_port.IsMklEnabled())


def _cpuinfo_field(field: str, cpuinfo: Path) -> str | None:
    """The first value of `field` in /proc/cpuinfo, or None where the file or the field is
    absent."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == field:
            return value.strip()
    return None


def cpu_flags(cpuinfo: Path = CPUINFO) -> frozenset[str]:
    """The CPU's feature flags as Linux lists them in /proc/cpuinfo (empty where it is absent or
    lists none: other systems, other architectures)."""
    return frozenset((_cpuinfo_field("flags", cpuinfo) or "").split())


def cpu_model(cpuinfo: Path = CPUINFO) -> str:
    """The CPU's model name from /proc/cpuinfo, else what `platform` knows (for benchmark
    records)."""
    return _cpuinfo_field("model name", cpuinfo) or platform.processor() or platform.machine()


BFLOAT16_HARDWARE_FLAGS = ("amx_bf16", "avx512_bf16")


def bfloat16_hardware(flags: frozenset[str] | None = None) -> bool:
    """Whether the CPU multiplies bfloat16 in hardware: Intel AMX's tile multiply (`amx_bf16`:
    Sapphire Rapids and later) or AVX512-BF16's dot products (`avx512_bf16`: AMD Zen 4 and later,
    Cooper Lake), on which oneDNN's bfloat16 convolutions beat its float32 ones and mixed bfloat16
    trains our nets faster (docs/performance.md: *Settings compared in this run*, *bfloat16 and
    accuracy*). Without them TensorFlow emulates bfloat16 and trains at half the float32 speed
    (docs/performance.md: *Settings run* on a Xeon with AVX-512 but no bfloat16 instructions)."""
    flags = cpu_flags() if flags is None else flags
    return any(flag in flags for flag in BFLOAT16_HARDWARE_FLAGS)


def memory_gib(meminfo: Path = Path("/proc/meminfo")) -> float | None:
    """Total memory in GiB from /proc/meminfo, or None where it is absent."""
    try:
        words = meminfo.read_text().split()
        return round(int(words[words.index("MemTotal:") + 1]) / 2**20, 1)
    except (OSError, ValueError, IndexError):
        return None


def machine() -> dict:
    """The one description of the host, for results.json and the benchmark records: platform,
    Python, `processor` (what `platform` says), `cpu` (the model name), core count, CPU flags,
    memory (None where unknown) and the 1/5/15-minute load averages now."""
    return {"platform": platform.platform(), "python": platform.python_version(),
            "processor": platform.processor() or platform.machine(), "cpu": cpu_model(),
            "cpu_count": os.cpu_count(), "cpu_flags": sorted(cpu_flags()),
            "memory_gib": memory_gib(), "load_average": list(os.getloadavg())}
