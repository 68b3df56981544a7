"""Every `python` command shown in README.md and docs/training.md runs as written: those that can
run offline do, for a few steps on small real data (Fashion-MNIST, the CIFAR-10 JPEG copy); the
others (a TFDS download, a TPU, ImageNet) have their flags parsed by the script's own flags."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import cifar_helpers as helpers

README = helpers.REPO / "README.md"
TRAINING_PAGE = helpers.REPO / "docs" / "training.md"  # the README's training details
# Appended to the training commands that run here: a few steps on a small subset.
SMALL = ["--max_train_examples=320", "--max_test_examples=64", "--validation_size=64",
         "--batch_size=128", "--eval_batch_size=64", "--verbose=2"]
QUICKSTART = ("python training/cifar10.py --model=resnet20 --dataset=fashion_mnist "
              "--data_source=files --epochs=2 --model_dir=runs/quickstart")
EXPORT = "python training/export.py --model_dir=runs/quickstart"
CURVES = "python training/plot_curves.py --model_dirs=runs/plain20,runs/resnet20 --output=fig6.png"
RESPONSES = ("python training/layer_responses.py --model_dirs=runs/plain20,runs/resnet20 "
             "--output=fig7")
FOLDER = ("python training/cifar10.py --model=resnet56 --dataset=cifar10 --data_source=folder "
          "--data_dir=data/cifar10-jpeg --model_dir=runs/r56")
# Also run: the README's way to tell this package from PyPI's keras-resnet, and --helpfull.
MODELS = 'python -c "import keras_resnet; print(keras_resnet.list_models())"'
HELP = "python training/cifar10.py --helpfull"
# Commands that need what this machine lacks: their flags are parsed.
FLAGS_ONLY = {
    "python training/cifar10.py --model=resnet110 --strategy=mirrored --data_source=tfds "
    "--model_dir=runs/r110": "downloads CIFAR-10 from TFDS",
    "python training/imagenet.py --strategy=tpu --tpu=my-tpu --data_dir=gs://bucket/imagenet "
    "--model=resnet50 --model_dir=gs://bucket/runs/r50": "a TPU and ImageNet in a bucket",
    "python training/evaluate.py --model_dir=runs/r50 --data_dir=... "
    "--modes=1crop,10crop,multiscale": "a trained ResNet-50 and ImageNet",
    "python training/reproduce.py --suite=cifar_8k": "hours of training (test_reproduce.py "
    "runs the tiny suite)",
    "python training/export.py --model=resnet50 --weights=imagenet": "downloads the paper's model",
    "python training/evaluate.py --model=resnet50 --weights=r50_tv.weights.h5 "
    "--bottleneck_stride=3x3 --data_source=folder --data_dir=data/imagenet --modes=1crop,10crop":
    "a converted torchvision file and ImageNet",
    "python -m keras_resnet.convert resnet50.pth r50_tv.weights.h5 --model=resnet50 "
    "--bottleneck_stride=3x3": "a torchvision checkpoint (test_pretrained.py converts one)",
}
# Run by another test: tests/test_docs.py checks the table this command writes.
ELSEWHERE = {"python docs/model_table.py --write"}


def readme_commands() -> set[str]:
    """The `python ...` commands of README.md's and docs/training.md's bash blocks (joined
    continuation lines, comments dropped, `.venv/bin/python` as `python`) and inline code."""
    text = README.read_text() + TRAINING_PAGE.read_text()
    commands = set()
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            for part in re.sub(r"\s+#.*$", "", line).split("&&"):
                part = " ".join(part.split()).replace(".venv/bin/python ", "python ")
                if part.startswith("python "):
                    commands.add(part)
    commands |= {m for m in re.findall(r"`(python [^`]+)`", text)}
    return commands


def test_every_readme_command_is_run_or_flag_checked_here():
    runs = {QUICKSTART, EXPORT, CURVES, RESPONSES, FOLDER}
    assert readme_commands() == runs | set(FLAGS_ONLY) | ELSEWHERE


def _run(command: str, cwd: Path, *extra: str, timeout: float = 400, check: bool = True):
    """The README command in `cwd` (its relative paths resolve there), scripts from the repo."""
    args = [sys.executable if a == "python" else str(helpers.REPO / a) if a.startswith(
        ("training/", "docs/")) else a for a in shlex.split(command)]
    result = subprocess.run([*args, *extra], cwd=cwd, env=helpers.env(), capture_output=True,
                            text=True, timeout=timeout)
    if check:
        helpers.check(result)
    return result


@pytest.mark.slow
def test_quickstart_commands_run(tmp_path):
    _run(QUICKSTART, tmp_path, *SMALL)
    assert helpers.results(tmp_path / "runs" / "quickstart")["steps"] == 4  # 2 epochs of 2 steps
    exported = _run(EXPORT, tmp_path)
    assert (tmp_path / "saved_models" / "resnet20_fashion_mnist" / "1" / "saved_model.pb").exists()
    assert "Exported resnet20" in exported.stdout
    for name in ("plain20", "resnet20"):  # the figures' runs: copies of the quickstart run
        shutil.copytree(tmp_path / "runs" / "quickstart", tmp_path / "runs" / name)
    _run(CURVES, tmp_path)
    _run(RESPONSES, tmp_path, "--num_images=64")
    assert {p.name for p in tmp_path.iterdir()} >= {"fig6.png", "fig7.png", "fig7.csv"}
    assert "resnet110" in _run(MODELS, tmp_path).stdout
    shown = _run(HELP, tmp_path, check=False)  # absl's --helpfull exits with status 1
    assert shown.returncode == 1 and "--[no]start_over" in shown.stdout


@pytest.mark.slow
def test_image_folder_command_runs(tmp_path):
    helpers.extract_cifar(tmp_path / "data", 32, 8)  # 32 train, 8 test images per class
    _run(FOLDER, tmp_path, *SMALL, "--train_steps=2")
    assert helpers.results(tmp_path / "runs" / "r56")["steps"] == 2


FLAG_PARSER = """
import importlib, runpy, shlex, sys
from absl import flags
words = shlex.split(sys.argv[1])
if words[1] == "-m":  # a module with an argparse `parse`
    importlib.import_module(words[2]).parse(words[3:])
    print("parsed", words[2])
else:
    runpy.run_path(words[1], run_name="readme_flags")
    flags.FLAGS(words[1:])
    print("parsed", words[1])
"""


@pytest.mark.slow
@pytest.mark.parametrize("command", sorted(FLAGS_ONLY))
def test_commands_needing_data_parse(command):
    result = subprocess.run([sys.executable, "-c", FLAG_PARSER, command], cwd=helpers.REPO,
                            env=helpers.env(), capture_output=True, text=True, timeout=120)
    helpers.check(result)
    words = shlex.split(command)
    assert result.stdout.strip().splitlines()[-1] == f"parsed {words[2 if words[1] == '-m' else 1]}"
