"""keras_resnet.runtime: TensorFlow's oneDNN kernels on x86-64 unless the user chose otherwise."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from keras_resnet import runtime

REPO = Path(__file__).resolve().parents[1]
x86_64_only = pytest.mark.skipif(platform.machine().lower() not in runtime.X86_64,
                                 reason="the default applies to x86-64 processors only")


def tensorflow_state(code: str, **env: str) -> dict:
    """Runs `code` in a fresh Python whose environment has no TF_ENABLE_ONEDNN_OPTS (plus `env`);
    returns the variable and whether TensorFlow runs oneDNN, as the code left them."""
    base = {k: v for k, v in os.environ.items() if k != runtime.ONEDNN_VARIABLE}
    base.update(PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2", **env)
    probe = (f"{code}\nimport json, os\nfrom keras_resnet import runtime\n"
             "print(json.dumps({'variable': os.environ.get(runtime.ONEDNN_VARIABLE), "
             "'onednn': runtime.onednn_enabled()}))")
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, env=base, capture_output=True,
                            text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@x86_64_only
def test_import_first_turns_onednn_on():
    assert tensorflow_state("import keras_resnet\nimport keras") == {
        "variable": "1",
        "onednn": True,
    }


def test_explicit_user_choice_is_kept():
    state = tensorflow_state("import keras_resnet", TF_ENABLE_ONEDNN_OPTS="0")
    assert state == {"variable": "0", "onednn": False}


def test_import_after_tensorflow_changes_none():
    state = tensorflow_state("import tensorflow\nimport keras_resnet")
    assert state["variable"] is None  # TensorFlow decided at import; a late variable would lie


@x86_64_only
@pytest.mark.parametrize("script", ["cifar10", "imagenet", "evaluate"])
def test_scripts_import_keras_resnet_first(script):
    """Importing a script's modules (not running it) leaves TF with oneDNN on."""
    code = (f"import runpy, sys\nsys.argv = ['{script}.py', '--helpshort']\n"
            f"try:\n    runpy.run_path('training/{script}.py', run_name='__main__')\n"
            "except SystemExit:\n    pass")
    assert tensorflow_state(code) == {"variable": "1", "onednn": True}


@pytest.mark.parametrize(
    "flags_line, expected",
    [
        ("flags\t\t: fpu avx2 avx512f avx512_bf16 amx_bf16 amx_tile amx_int8", True),
        ("flags\t\t: fpu avx2 avx512f avx512_bf16", True),  # AVX512-BF16 without AMX (Zen 4)
        (
            "flags\t\t: fpu avx2 avx512f avx512_vnni avx512_bf16x",
            False,
        ),  # a longer name is not the flag
        ("flags\t\t: fpu avx2 avx512f avx512_vnni", False),  # AVX-512 without bfloat16 (Ice Lake)
        ("flags\t\t: fpu sse2 avx2 fma", False),
    ],
)
def test_amx_or_avx512_bf16_is_bf16_hardware(
    tmp_path, flags_line, expected
):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: Some CPU\n{flags_line}\n\n"
                       f"processor\t: 1\n{flags_line}\n")
    flags = runtime.cpu_flags(cpuinfo)
    assert "avx2" in flags and "Some" not in flags
    assert runtime.bfloat16_hardware(flags) is expected


def test_cpu_model_from_cpuinfo_or_platform(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: AMD EPYC 9B14\nflags\t\t: fpu\n")
    assert runtime.cpu_model(cpuinfo) == "AMD EPYC 9B14"
    assert runtime.cpu_model(tmp_path / "absent") == (platform.processor() or platform.machine())


def test_missing_cpuinfo_means_no_bf16(tmp_path):
    assert runtime.cpu_flags(tmp_path / "absent") == frozenset()
    assert runtime.bfloat16_hardware(frozenset()) is False


def test_machine_describes_the_host(tmp_path):
    (tmp_path / "meminfo").write_text("MemTotal:       2097152 kB\nMemFree:  1 kB\n")
    assert runtime.memory_gib(tmp_path / "meminfo") == 2.0
    assert runtime.memory_gib(tmp_path / "absent") is None
    host = runtime.machine()
    assert host["cpu_count"] == os.cpu_count() and len(host["load_average"]) == 3
    assert host["cpu"] == runtime.cpu_model() and host["cpu_flags"] == sorted(runtime.cpu_flags())
