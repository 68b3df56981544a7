"""tf.distribute strategies (and JAX data parallelism) for the trainers, as real processes."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import cifar_helpers as helpers
from keras_resnet.training import distribute

SMALL_RUN = ["--model=resnet20", "--max_train_examples=192", "--max_test_examples=100",
             "--validation_size=64", "--batch_size=32", "--train_steps=12", "--eval_batch_size=100",
             "--lr=0.01"]
# 128 training images / 32 = 4 steps per epoch: 3 epochs, 3 rows of metrics.csv.


def _losses(model_dir: Path) -> list[float]:
    with open(model_dir / "metrics.csv") as f:
        return [float(row["loss"]) for row in csv.DictReader(f)]


def test_global_batch_divides_over_replicas():
    assert distribute.check_global_batch(128, 4, "mirrored") == 32
    with pytest.raises(distribute.DistributionError,
                       match=r"--batch_size=130 does not divide over the 4 replicas of "
                             r"--strategy=mirrored; use a multiple of 4"):
        distribute.check_global_batch(130, 4, "mirrored")


def test_bad_device_counts_are_clear_errors():
    import tensorflow as tf
    visible = len(tf.config.list_logical_devices("GPU"))
    with pytest.raises(distribute.DistributionError,
                       match=rf"--num_gpus={visible + 1}, but only {visible} GPU\(s\) are visible"):
        distribute.get_distribution("mirrored", num_gpus=visible + 1)
    with pytest.raises(
        distribute.DistributionError,
        match=r"--num_gpus=1: for --strategy=mirrored only, not --strategy=one_device",
    ):
        distribute.get_distribution("one_device", num_gpus=1)
    with pytest.raises(
        distribute.DistributionError,
        match=r"--num_cpu_devices=2: for --strategy=mirrored only, not --strategy=default",
    ):
        distribute.get_distribution("default", num_cpu_devices=2)


@pytest.mark.slow
def test_mirrored_on_2_cpus_matches_one_device(tmp_path):
    single = helpers.run(*helpers.fashion_mnist_args(tmp_path / "single", *SMALL_RUN), timeout=300)
    helpers.check(single)
    mirrored = helpers.run(
        *helpers.fashion_mnist_args(
            tmp_path / "mirrored", *SMALL_RUN, "--strategy=mirrored", "--num_cpu_devices=2"
        ),
        timeout=300,
    )
    helpers.check(mirrored)
    results = helpers.results(tmp_path / "mirrored")
    assert results["distribution"]["num_replicas"] == 2 and results["steps"] == 12
    # Same data, order, augmentation and initial weights; BN statistics are per replica (16
    # images instead of 32), so the trajectories agree closely but not bit for bit.
    single_losses, mirrored_losses = _losses(tmp_path / "single"), _losses(tmp_path / "mirrored")
    assert len(single_losses) == len(mirrored_losses) == 3
    np.testing.assert_allclose(mirrored_losses, single_losses, rtol=0.05)
    assert single_losses[0] > single_losses[-1]


@pytest.mark.slow
def test_label_smoothing_trains_under_mirrored(tmp_path):
    result = helpers.run(*helpers.fashion_mnist_args(
        tmp_path, *SMALL_RUN, "--train_steps=4", "--strategy=mirrored", "--num_cpu_devices=2",
        "--label_smoothing=0.2"), timeout=300)
    helpers.check(result)
    results = helpers.results(tmp_path)
    assert results["flags"]["label_smoothing"] == 0.2 and results["steps"] == 4
    assert results["distribution"]["num_replicas"] == 2
    assert np.isfinite(_losses(tmp_path)).all() and np.isfinite(results["test_loss"])


@pytest.mark.slow
def test_batch_not_dividing_is_a_clear_error(tmp_path):
    result = helpers.run(*helpers.fashion_mnist_args(tmp_path, "--strategy=mirrored",
                                                     "--num_cpu_devices=2", "--batch_size=33"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(
        "error: --batch_size=33 does not divide over the 2 replicas of --strategy=mirrored")


@pytest.mark.slow
def test_two_workers_end_with_same_weights(tmp_path):
    import keras

    ports = helpers.free_ports(2)
    cluster = {"worker": [f"localhost:{port}" for port in ports]}
    model_dir = tmp_path / "multi"
    args = helpers.fashion_mnist_args(model_dir, *SMALL_RUN, "--strategy=multi_worker_mirrored",
                                      "--train_steps=6")
    logs = [open(tmp_path / f"worker{i}.log", "w") for i in range(2)]
    workers = [
        subprocess.Popen(helpers.command(*args), cwd=helpers.REPO, stdout=logs[i],
                         stderr=subprocess.STDOUT, text=True, env=helpers.env(
                             TF_CONFIG=json.dumps({"cluster": cluster,
                                                   "task": {"type": "worker", "index": i}})))
        for i in range(2)
    ]
    try:
        codes = [w.wait(timeout=300) for w in workers]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
        for log in logs:
            log.close()
    output = "\n".join((tmp_path / f"worker{i}.log").read_text()[-3000:] for i in range(2))
    assert codes == [0, 0], output
    chief, other = helpers.results(model_dir), helpers.results(model_dir / "worker-1")
    assert chief["distribution"]["num_replicas"] == 2 and chief["distribution"]["is_chief"]
    assert not other["distribution"]["is_chief"] and chief["steps"] == other["steps"] == 6
    chief_weights = keras.models.load_model(model_dir / "model.keras").get_weights()
    other_weights = keras.models.load_model(model_dir / "worker-1" / "model.keras").get_weights()
    assert len(chief_weights) == len(other_weights)
    for a, b in zip(chief_weights, other_weights):
        np.testing.assert_array_equal(a, b)
    assert (model_dir / "checkpoints").is_dir() and not (
        model_dir / "worker-1" / "metadata.json"
    ).exists()


def test_tpu_flag_reaches_the_resolver():
    port = helpers.free_ports(1)[0]
    address = f"grpc://127.0.0.1:{port}"
    assert distribute.tpu_resolver(address).master() == address
    with pytest.raises(distribute.DistributionError, match=f"--tpu={address}: no TPU reachable"):
        distribute.connect_tpu(address)
    with pytest.raises(distribute.DistributionError, match="--strategy=tpu needs --tpu=NAME"):
        distribute.tpu_resolver("")


@pytest.mark.slow
def test_tpu_strategy_without_tpu_is_one_line(tmp_path):
    """--tpu=local goes through TPUClusterResolver, connect and TPU-system initialization (in
    its own process: connecting changes TensorFlow's global context)."""
    result = helpers.run(f"--model_dir={tmp_path}", "--strategy=tpu", "--tpu=local", timeout=120)
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: --tpu=local: no TPU reachable (NotFoundError"), last
    assert "Traceback" not in result.stderr


JAX_RUNNER = (
    "import runpy, sys; sys.modules['tensorflow'] = None; sys.argv = sys.argv[1:]; "
    "runpy.run_path(sys.argv[0], run_name='__main__')"
)


@pytest.mark.slow
def test_jax_trains_data_parallel_without_tf(tmp_path):
    """KERAS_BACKEND=jax, TensorFlow made unimportable in the process, numpy input, and
    keras.distribution.DataParallel over 2 CPU devices (the one-device path is the same
    without the distribution)."""
    pytest.importorskip("jax")
    model_dir = tmp_path / "jax"
    args = helpers.fashion_mnist_args(model_dir, *SMALL_RUN, "--train_steps=6",
                                      "--strategy=mirrored", "--num_cpu_devices=2")
    result = subprocess.run(
        [sys.executable, "-c", JAX_RUNNER, str(helpers.SCRIPT), "--verbose=2", *args],
        cwd=helpers.REPO,
        env=helpers.env(KERAS_BACKEND="jax"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    helpers.check(result)
    results = helpers.results(model_dir)
    assert results["steps"] == 6 and results["hardware"]["backend"] == "jax"
    assert results["distribution"]["num_replicas"] == 2
    assert json.loads((model_dir / "metadata.json").read_text())["backend"] == "jax"
    assert (model_dir / "model.keras").exists() and not (model_dir / "logs").exists()
