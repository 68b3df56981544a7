"""Run `training/cifar10.py` as a real process for the CIFAR trainer's tests."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from keras_resnet.training.cifar_data import FASHION_MNIST_DIR

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "training" / "cifar10.py"
FASHION_MNIST = Path(FASHION_MNIST_DIR)
CIFAR_JPEG_TAR = REPO.parent / "shared" / "datasets" / "cifar10-jpeg.tar.gz"


def env(**extra: str) -> dict:
    """The environment for a trainer process: the repo importable, TF's C++ logs quiet."""
    base = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    base["PYTHONPATH"] = os.pathsep.join([str(REPO), base.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    base.update(extra)
    return base


def command(*args: str, script: Path = SCRIPT) -> list[str]:
    """The command line; the trainer prints one line per epoch (no progress bar) in tests."""
    return [sys.executable, str(script), *(["--verbose=2"] if script == SCRIPT else []), *args]


def run(*args: str, timeout: float = 300, script: Path = SCRIPT, **extra_env: str):
    """Run the script to completion; returns the CompletedProcess (stdout and stderr as text)."""
    return subprocess.run(command(*args, script=script), cwd=REPO, env=env(**extra_env),
                          capture_output=True, text=True, timeout=timeout)


def start(*args: str, stdout=None, **extra_env: str) -> subprocess.Popen:
    return subprocess.Popen(command(*args), cwd=REPO, env=env(**extra_env), stdout=stdout,
                            stderr=subprocess.STDOUT, text=True)


def check(result) -> None:
    """Fail with the process's output if it failed."""
    assert result.returncode == 0, (
        f"exit {result.returncode}\n{result.stdout[-4000:]}\n{result.stderr[-6000:]}"
    )


def results(model_dir: Path) -> dict:
    return json.loads((model_dir / "results.json").read_text())


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def fashion_mnist_args(model_dir: Path, *extra: str) -> list[str]:
    return ["--dataset=fashion_mnist", "--data_source=files", f"--model_dir={model_dir}", *extra]


def cifar_jpegs(train_per_class: int, test_per_class: int):
    """(split, class name, file name, JPEG bytes) of the first `train_per_class` /
    `test_per_class` images of each class of the shared CIFAR-10 copy, in archive order."""
    import tarfile

    if not CIFAR_JPEG_TAR.exists():
        raise FileNotFoundError(f"{CIFAR_JPEG_TAR} missing (the shared CIFAR-10 JPEG copy)")
    wanted, counts = {"train": train_per_class, "test": test_per_class}, {}
    with tarfile.open(CIFAR_JPEG_TAR) as tar:
        for member in tar:
            parts = member.name.split("/")
            if not member.isfile() or len(parts) != 4:
                continue
            _, split, label, name = parts
            if counts.get((split, label), 0) < wanted[split]:
                counts[split, label] = counts.get((split, label), 0) + 1
                yield split, label, name, tar.extractfile(member).read()
            if len(counts) == 20 and all(counts[k] == wanted[k[0]] for k in counts):
                return


def extract_cifar(target: Path, train_per_class: int, test_per_class: int) -> Path:
    """`cifar_jpegs` as an image folder target/cifar10-jpeg/{train,test}/<class>/."""
    root = target / "cifar10-jpeg"
    for split, label, name, data in cifar_jpegs(train_per_class, test_per_class):
        path = root / split / label / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root
