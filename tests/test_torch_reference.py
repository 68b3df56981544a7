"""benchmarks/torch_cifar_reference.py: Sec. 4.2's CIFAR recipe in PyTorch, as real processes on
real CIFAR-10 JPEGs, writing the model_dir files our trainer writes, resumable after a kill."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import keras_resnet
from cifar_helpers import extract_cifar
from keras_resnet.training import files, report, trainer
from keras_resnet.training.suites import SUITES

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "torch_cifar_reference.py"
TORCH_PYTHON = "/usr/bin/python3"
# 370 of 400 training images, 5 per class held out: 320 = 10 steps of 32 per epoch; 28 steps
# are 3 epochs, the last partial, and the lr drops at steps 14 and 21 (50% and 75%).
TINY = ("--batch_size=32", "--train_steps=28", "--validation_per_class=5",
        "--max_train_examples=370", "--max_test_examples=80", "--checkpoint_steps=4",
        "--threads=1")

pytestmark = pytest.mark.skipif(
    subprocess.run([TORCH_PYTHON, "-c", "import torch"], capture_output=True).returncode != 0,
    reason=f"{TORCH_PYTHON} lacks PyTorch (Debian: apt-get install python3-torch)")


@pytest.fixture(scope="module")
def cifar_folder(tmp_path_factory) -> Path:
    """An image-folder copy of CIFAR-10: 40 training and 10 test JPEGs per class."""
    return extract_cifar(tmp_path_factory.mktemp("cifar"), 40, 10)


def command(data_dir: Path, model_dir: Path, *flags: str) -> list[str]:
    return [sys.executable, str(SCRIPT), f"--data_dir={data_dir}", f"--model_dir={model_dir}",
            *TINY, *flags]


def run(*args, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(command(*args), capture_output=True, text=True, timeout=timeout,
                          cwd=REPO, check=False)


def check(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"


def snapshot(model_dir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(model_dir)): p.read_bytes()
            for p in sorted(model_dir.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def finished_run(cifar_folder, tmp_path_factory) -> Path:
    """ResNet-20, 28 steps without interruption."""
    model_dir = tmp_path_factory.mktemp("runs") / "full"
    check(run(cifar_folder, model_dir))
    return model_dir


@pytest.mark.slow
def test_files_follow_our_schema_and_schedule(finished_run):
    assert (finished_run / "metrics.csv").read_text().splitlines()[0] == \
        ",".join(trainer.CSV_COLUMNS)
    rows = files.read_metrics_csv(str(finished_run / "metrics.csv"))
    assert [(r["epoch"], r["step"]) for r in rows] == [(1, 10), (2, 20), (3, 28)]
    # The lr of each epoch's last step: 0.1 before step 14, 0.01 before 21, then 0.001.
    assert [r["lr"] for r in rows] == pytest.approx([0.1, 0.01, 0.001])
    for row in rows:
        assert set(row) == set(trainer.CSV_COLUMNS)
        assert 0 <= row["train_error"] <= 1 and row["loss"] > 0
        assert (50 * row["val_error"]) == pytest.approx(round(50 * row["val_error"]))
        assert (80 * row["test_error"]) == pytest.approx(round(80 * row["test_error"]))
    assert [r["wall_s"] for r in rows] == sorted(r["wall_s"] for r in rows)

    metadata = json.loads((finished_run / "metadata.json").read_text())
    assert (metadata["train_examples"], metadata["validation_examples"],
            metadata["test_examples"]) == (320, 50, 80)
    assert metadata["class_names"] == sorted(metadata["class_names"])
    assert len(metadata["class_names"]) == 10
    assert (metadata["image_size"], metadata["channels"], metadata["framework"]) == \
        ([32, 32], 3, "pytorch")
    assert metadata["recipe"]["weight_decay_on"] == "all"

    results = json.loads((finished_run / "results.json").read_text())
    assert results["steps"] == 28 and results["resumed_from_step"] == 0
    assert results["test_error"] == rows[-1]["test_error"]
    assert results["val_error"] == rows[-1]["val_error"]
    assert results["framework"] == "pytorch" and results["torch"].startswith("1.")
    assert results["precision"] == "float32" and results["train_wall_s"] > 0
    assert results["images_per_s"] > 0 and results["train_step_ms"] > 0
    hardware = results["hardware"]
    assert hardware["backend"] == "pytorch" and hardware["cpu_count"] >= 1
    assert hardware["cpu_model"] and len(hardware["load_average_at_end"]) == 3
    assert hardware["torch_threads"] == 1
    assert not (finished_run / "data.npz").exists()

    # The report's readers take these files as they are.
    record = report.RunRecord("torch_resnet20", finished_run, rows, results)
    assert record.final_train_error == rows[-1]["train_error"]
    assert record.precision == "float32"
    assert "-core" in report.machine(results) and "(pytorch" in report.machine(results)
    assert report.scale_text(SUITES["cifar_8k"], [record]).startswith(
        "CIFAR-10 (JPEG q75 copy): 320 training images, 50 validation, 80 test; 28 iterations")


@pytest.mark.slow
def test_killed_run_resumes_to_same_result(cifar_folder, finished_run, tmp_path):
    model_dir = tmp_path / "killed"
    process = subprocess.Popen(command(cifar_folder, model_dir), cwd=REPO, text=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    metrics = model_dir / "metrics.csv"
    deadline = time.time() + 240
    while process.poll() is None and time.time() < deadline:  # kill during the second epoch
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 2:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    assert process.wait(timeout=60) == -signal.SIGKILL, process.stderr.read()
    assert not (model_dir / "results.json").exists()
    assert (model_dir / "checkpoints" / "checkpoint.pt").exists()
    # A metrics.csv ahead of the checkpoint (its rows of steps 20 and 28): resuming drops them.
    (model_dir / "metrics.csv").write_bytes((finished_run / "metrics.csv").read_bytes())

    result = run(cifar_folder, model_dir)
    check(result)
    resumed = json.loads((model_dir / "results.json").read_text())["resumed_from_step"]
    assert 10 <= resumed < 28 and f"Resuming from step {resumed}" in result.stdout
    rows = files.read_metrics_csv(str(model_dir / "metrics.csv"))
    expected = files.read_metrics_csv(str(finished_run / "metrics.csv"))
    assert [r["step"] for r in rows] == [10, 20, 28]
    for row, reference in zip(rows, expected):  # same weights, batches and running sums
        for column in trainer.CSV_COLUMNS[:-1]:
            assert row[column] == pytest.approx(reference[column], rel=1e-5), (row, column)
    assert not (model_dir / "data.npz").exists()


@pytest.mark.slow
def test_other_flags_refused_finished_not_redone(cifar_folder,
                                                                         finished_run):
    before = snapshot(finished_run)
    result = run(cifar_folder, finished_run, "--lr=0.2", "--weight_decay_on=kernels")
    assert result.returncode == 2, result.stderr
    assert "--lr=0.1 (now 0.2), --weight_decay_on=all (now kernels)" in result.stderr
    assert snapshot(finished_run) == before
    result = run(cifar_folder, finished_run)
    check(result)
    assert result.stdout.startswith("Already finished: resnet20 (PyTorch) test error")
    assert snapshot(finished_run) == before


@pytest.mark.slow
def test_bad_input_names_the_flag(cifar_folder, tmp_path):
    result = run(cifar_folder, tmp_path / "a", "--torch_python=/no/python")
    assert result.returncode == 2
    assert result.stderr.strip() == ("error: --torch_python=/no/python: cannot import torch (no "
                                     "such file); give a Python with PyTorch (Debian: apt-get "
                                     "install python3-torch).")
    result = run(cifar_folder, tmp_path / "b", "--precision=float16")
    assert result.returncode != 0
    assert "--precision" in result.stderr and "float32|bfloat16" in result.stderr
    result = run(cifar_folder, tmp_path / "c", "--batch_size=400")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "error: --batch_size=400: larger than the 320 training images; allowed: at most 320.")
    assert not any(tmp_path.iterdir())  # nothing written for a run that cannot start


@pytest.mark.slow
def test_he_init_and_chosen_weight_decay():
    probe = """
import json, sys, torch
sys.path.insert(0, "benchmarks")
import torch_cifar_reference as ref
out = {}
for model in ("resnet20", "plain56"):
    for init in ("torch", "glorot"):
        net = ref.build_net(torch, model, init, seed=0)
        convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
        wide = torch.cat([c.weight.flatten() for c in convs if c.weight.shape[1] == 64])
        groups = {on: [sum(p.numel() for p in g["params"]) if g["weight_decay"] else -1
                       for g in ref.make_optimizer(torch, net, {
                           "weight_decay_on": on, "weight_decay": 1e-4, "lr": 0.1,
                           "momentum": 0.9}).param_groups] for on in ("all", "kernels")}
        out[f"{model}/{init}"] = {
            "params": sum(p.numel() for p in net.parameters()), "convs": len(convs),
            "wide_std": float(wide.std()), "wide_mean": float(wide.mean()),
            "kernels": sum(c.weight.numel() for c in convs) + net.fc.weight.numel(),
            "fc_bias_zero": bool((net.fc.bias == 0).all()), "groups": groups,
            "fc_std": float(net.fc.weight.std())}
print(json.dumps(out))
"""
    result = subprocess.run([TORCH_PYTHON, "-c", probe], capture_output=True, text=True,
                            cwd=REPO, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    nets = json.loads(result.stdout)
    for name in ("resnet20", "plain56"):  # as many parameters as ours (ResNet-20: Table 6's 0.27M)
        ours = keras_resnet.get_model(name, weights=None)
        assert nets[f"{name}/torch"]["params"] == sum(int(np.prod(w.shape))
                                                      for w in ours.trainable_weights)
    assert nets["resnet20/torch"]["convs"] == 19 and nets["plain56/torch"]["convs"] == 55
    for net in nets.values():
        # N(0, 2 / fan_in), fan_in = 3 * 3 * 64: std 0.0589, estimated from >= 36,864 weights.
        assert net["wide_std"] == pytest.approx((2 / 576) ** 0.5, rel=0.02)
        assert abs(net["wide_mean"]) < 0.002
        all_params, kernels = net["groups"]["all"], net["groups"]["kernels"]
        assert all_params == [net["params"]]
        assert kernels == [net["kernels"], -1] and net["kernels"] < net["params"]
    # Glorot-uniform 64 -> 10: std sqrt(2 / 74) = 0.164; nn.Linear's default: 1 / sqrt(3 * 64).
    assert nets["resnet20/glorot"]["fc_std"] == pytest.approx((2 / 74) ** 0.5, rel=0.1)
    assert nets["resnet20/torch"]["fc_std"] == pytest.approx((1 / 192) ** 0.5, rel=0.1)
    assert nets["resnet20/glorot"]["fc_bias_zero"] and not nets["resnet20/torch"]["fc_bias_zero"]
