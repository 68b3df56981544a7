"""Shared by the pretrained-weight tests: real photos, and torchvision's ResNets with random
weights written by torchvision itself (tests/torchvision_reference.py, under the system Python
with Debian's PyTorch)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
from PIL import Image
from safetensors.numpy import save_file

from imagenet_helpers import photo

REPO = Path(__file__).resolve().parents[1]
TORCH_PYTHON = "/usr/bin/python3"  # Debian's python3-torch / python3-torchvision (.ci/run)


def photos(size: int, names=("astronaut", "chelsea")) -> np.ndarray:
    """scikit-image's sample photos resized to size x size, uint8 RGB (N, size, size, 3)."""
    return np.stack([np.asarray(Image.fromarray(photo(n)).resize((size, size), Image.BILINEAR))
                     for n in names])


def relative_difference(ours: np.ndarray, reference: np.ndarray) -> float:
    """Largest absolute difference relative to the largest reference magnitude."""
    return float(np.abs(ours - reference).max() / np.abs(reference).max())


def torchvision_files(out: Path, names: tuple[str, ...], size: int = 224) -> Path:
    """torchvision's `names` with random weights in `out`: NAME.pth, NAME.safetensors (written
    by the safetensors package from the same tensors) and NAME.logits.npy on `photos(size)`
    (images.npy)."""
    np.save(out / "images.npy", photos(size))
    result = subprocess.run([TORCH_PYTHON, str(REPO / "tests" / "torchvision_reference.py"),
                             str(out), str(out / "images.npy"), *names],
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, f"{TORCH_PYTHON} with torchvision: {result.stderr[-2000:]}"
    for name in names:
        with np.load(out / f"{name}.npz") as state:
            save_file(dict(state), str(out / f"{name}.safetensors"))
    return out
