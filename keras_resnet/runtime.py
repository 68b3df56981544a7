"""TensorFlow runtime settings the library prefers, applied before TensorFlow loads.

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

ONEDNN_VARIABLE = "TF_ENABLE_ONEDNN_OPTS"
X86_64 = ("x86_64", "amd64")


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
