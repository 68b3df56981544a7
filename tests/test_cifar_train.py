"""`python training/cifar10.py` end to end, as real processes on real data (Sec. 4.2 recipe)."""

from __future__ import annotations

import csv
import json
import os
import platform
import signal
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest

import cifar_helpers as helpers
from keras_resnet import runtime
from keras_resnet.training import trainer
from keras_resnet.training.files import list_checkpoints

# Bars measured on this 2-core CPU (TF 2.21, Keras 3.15): FASHION_MNIST_ARGS gave 0.776 test
# accuracy, the CIFAR-10 JPEG run below 0.310 (chance: 0.1). Asserted with a margin.
FASHION_MNIST_BAR = 0.70
CIFAR10_JPEG_BAR = 0.20
# A short run: lr 0.02 (0.1 is too noisy for 150 steps), 28x28 images as they are.
FASHION_MNIST_ARGS = ["--model=resnet20", "--max_train_examples=6000", "--max_test_examples=1000",
                      "--validation_size=500", "--batch_size=64", "--train_steps=150",
                      "--lr=0.02", "--lr_boundaries=100,130", "--noaugment", "--nopad_to_32",
                      "--eval_batch_size=1000"]


def _require_fashion_mnist():
    if not (helpers.FASHION_MNIST / "train-images-idx3-ubyte.gz").exists():
        pytest.fail(f"{helpers.FASHION_MNIST} missing: install Debian's dataset-fashion-mnist "
                    f"(.ci/run does)")


@pytest.mark.slow
def test_resnet20_learns_fashion_mnist(tmp_path):
    _require_fashion_mnist()
    import keras

    from keras_resnet.layers import SubtractMean
    from keras_resnet.training import cifar_data

    model_dir = tmp_path / "fmnist"
    result = helpers.run(*helpers.fashion_mnist_args(model_dir, *FASHION_MNIST_ARGS), timeout=600)
    helpers.check(result)
    results = helpers.results(model_dir)
    print(f"Fashion-MNIST: test accuracy {1 - results['test_error']:.4f}, "
          f"{results['train_wall_s']:.0f} s training")
    assert results["steps"] == 150
    assert 1 - results["test_error"] > FASHION_MNIST_BAR, results["test_error"]
    summary = result.stdout.strip().splitlines()[-1]
    assert summary.startswith("resnet20 on fashion_mnist: test error") and "150 steps" in summary
    for key in ("train_wall_s", "images_per_s", "hardware", "flags"):
        assert key in results
    if platform.machine().lower() in runtime.X86_64 and runtime.ONEDNN_VARIABLE not in os.environ:
        assert results["hardware"]["onednn"] is True  # keras_resnet.runtime's default reached it
    assert results["flags"]["batch_size"] == 64 and results["flags"]["model"] == "resnet20"

    metadata = json.loads((model_dir / "metadata.json").read_text())
    assert metadata["model"] == "resnet20" and metadata["dataset"] == "fashion_mnist"
    assert metadata["image_size"] == [28, 28] and metadata["channels"] == 1
    assert metadata["eval_resize"] is None and metadata["mean"] == "pixel"
    assert metadata["padded_from"] is None  # --nopad_to_32
    assert metadata["backend"] == "tensorflow" and metadata["class_names"][9] == "Ankle boot"

    with open(model_dir / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2]  # 5500 // 64 = 85 steps per epoch
    assert [int(r["step"]) for r in rows] == [85, 150]
    assert float(rows[0]["lr"]) == pytest.approx(0.02) and float(rows[1]["lr"]) == pytest.approx(
        0.0002
    )
    assert all(r["train_error"] and r["val_error"] and r["test_error"] for r in rows)
    assert float(rows[-1]["test_error"]) == pytest.approx(results["test_error"], abs=1e-6)
    tags = _tensorboard_tags(model_dir / "logs")
    assert {"epoch_loss", "epoch_lr", "epoch_train_error", "epoch_test_error"} <= tags["train"]
    assert "epoch_error" in tags["validation"]
    assert {"loss", "lr", "train_error", "test_error"} <= tags["iterations"]
    assert tags["graph"], "the model's graph is in the TensorBoard logs"
    assert sorted(p.name for p in (model_dir / "checkpoints").glob("*.json")) == [
        "ckpt-00000085.json", "ckpt-00000150.json"]

    # model.keras predicts on raw pixels, with the training split's mean image inside.
    model = keras.models.load_model(model_dir / "model.keras")
    assert isinstance(model.layers[1], SubtractMean)
    data = cifar_data.load("fashion_mnist", "files", None, 6000, 1000)
    x_train, _, _, _ = cifar_data.split_validation(data.x_train, data.y_train, 500)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model.layers[1].mean),
                               cifar_data.mean_image(x_train), rtol=1e-6)
    probabilities = model.predict(data.x_test.astype("float32"), verbose=0)
    assert probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-4)
    accuracy = float(np.mean(probabilities.argmax(axis=1) == data.y_test))
    assert accuracy == pytest.approx(1 - results["test_error"], abs=1e-3)


def _tensorboard_tags(log_dir: Path) -> dict:
    """Scalar tags per run folder of a TensorBoard log dir, and whether a graph was written."""
    from tensorboard.backend.event_processing import event_accumulator

    tags, graph = {}, False
    for run in ("train", "validation", "iterations"):
        accumulator = event_accumulator.EventAccumulator(
            str(log_dir / run), size_guidance={"tensors": 0}
        )
        accumulator.Reload()
        tags[run] = set(accumulator.Tags()["tensors"]) | set(accumulator.Tags()["scalars"])
        graph = graph or accumulator.Tags()["graph"]
    return dict(tags, graph=graph)


@pytest.fixture(scope="module")
def cifar10_jpeg_subset(tmp_path_factory) -> Path:
    """400 training and 100 test images per class from the JPEG copy of CIFAR-10."""
    if not helpers.CIFAR_JPEG_TAR.exists():
        pytest.fail(f"{helpers.CIFAR_JPEG_TAR} missing (the shared/ folder beside the repo)")
    root = tmp_path_factory.mktemp("cifar10-jpeg")
    limits = {"train": 400, "test": 100}
    with tarfile.open(helpers.CIFAR_JPEG_TAR) as tar:
        members = [m for m in tar if m.isfile() and m.name.endswith(".jpg")
                   and int(Path(m.name).stem) < limits[Path(m.name).parts[1]]]
        tar.extractall(root, members=members, filter="data")
    return root / "cifar10-jpeg"


@pytest.mark.slow
def test_resnet20_learns_cifar10_jpeg_folder(tmp_path, cifar10_jpeg_subset):
    model_dir = tmp_path / "cifar"
    result = helpers.run("--dataset=cifar10", "--data_source=folder",
                         f"--data_dir={cifar10_jpeg_subset}", f"--model_dir={model_dir}",
                         "--model=resnet20", "--validation_size=0", "--batch_size=64",
                         "--train_steps=100", "--lr=0.02", "--lr_boundaries=70,90", "--noaugment",
                         "--eval_batch_size=1000",
                         timeout=600)
    helpers.check(result)
    results = helpers.results(model_dir)
    print(f"CIFAR-10 JPEG subset: test accuracy {1 - results['test_error']:.4f}, "
          f"{results['train_wall_s']:.0f} s training")
    metadata = json.loads((model_dir / "metadata.json").read_text())
    assert metadata["train_examples"] == 4000 and metadata["test_examples"] == 1000
    assert metadata["class_names"][:2] == ["airplane", "automobile"]
    assert results["steps"] == 100
    assert 1 - results["test_error"] > CIFAR10_JPEG_BAR, results["test_error"]


def _files(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*"))
            if p.is_file()}


def _sixteen_step_epochs(model_dir: Path, *extra: str) -> list[str]:
    """A ResNet-20 run of 512 training images at batch 32 (16 steps per epoch), every checkpoint
    kept."""
    return helpers.fashion_mnist_args(
        model_dir, "--model=resnet20", "--max_train_examples=576", "--max_test_examples=200",
        "--validation_size=64", "--batch_size=32", "--keep_checkpoints=100", *extra)


@pytest.mark.slow
def test_kill_9_then_rerun_resumes(tmp_path):
    _require_fashion_mnist()
    model_dir = tmp_path / "killed"
    args = _sixteen_step_epochs(model_dir, "--train_steps=40", "--checkpoint_steps=5")
    with open(tmp_path / "first.log", "w") as log:
        process = helpers.start(*args, stdout=log)
        deadline = time.time() + 300
        checkpoints = model_dir / "checkpoints"
        while not (checkpoints / "ckpt-00000020.json").exists():
            assert process.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
            assert time.time() < deadline, "no checkpoint at step 20 in time"
            time.sleep(0.2)
        os.kill(process.pid, signal.SIGKILL)  # in epoch 2 (steps 16..32), after step 20
        process.wait()
    assert not (model_dir / "results.json").exists()
    before = _files(model_dir)
    before_checkpoints = list_checkpoints(str(checkpoints))
    killed_at = before_checkpoints[-1][0]  # the newest complete checkpoint
    assert 20 <= killed_at < 40

    resumed = helpers.run(*args, timeout=300)
    helpers.check(resumed)
    assert f"Resuming from step {killed_at}" in resumed.stdout
    results = helpers.results(model_dir)
    assert results["steps"] == 40 and results["resumed_from_step"] == killed_at
    after = _files(model_dir)
    complete = {f"checkpoints/{Path(base).name}{suffix}" for _, base in before_checkpoints
                for suffix in (".json", ".weights.h5")}
    for name, content in before.items():  # complete checkpoints and logs from before the kill
        if name in complete or name.startswith("logs/"):
            assert after.get(name) == content, f"{name} changed or vanished"
    with open(model_dir / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [16, 32, 40]
    first_row = before["metrics.csv"].decode().splitlines()[1]
    assert (model_dir / "metrics.csv").read_text().splitlines()[1] == first_row
    steps = sorted(int(p.stem.split("-")[1]) for p in checkpoints.glob("*.json"))
    assert steps == [5, 10, 15, 16, 20, 25, 30, 32, 35, 40]

    again = helpers.run(*args, timeout=120)  # a finished run is not trained again
    helpers.check(again)
    assert "Already finished" in again.stdout
    assert _files(model_dir) == after


def _optimizer_iterations(checkpoint: Path) -> int:
    """The optimizer's update count saved in a checkpoint (Keras 3 keeps it as optimizer/vars/0)."""
    import h5py
    with h5py.File(checkpoint, "r") as f:
        return int(f["optimizer/vars/0"][()])


@pytest.mark.slow
def test_steps_per_execution_counts_and_resumes(tmp_path):
    """4 steps per compiled call: epochs end where the data's do, the counted step is the
    optimizer's update count, and a resumed run goes on from it."""
    _require_fashion_mnist()
    model_dir = tmp_path / "spe4"
    args = _sixteen_step_epochs(model_dir, "--checkpoint_steps=8", "--steps_per_execution=4")
    helpers.check(helpers.run(*args, "--train_steps=40", timeout=300))
    with open(model_dir / "metrics.csv") as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == [16, 32, 40]
    steps = sorted(int(p.stem.split("-")[1]) for p in (model_dir / "checkpoints").glob("*.json"))
    assert steps == [8, 16, 24, 32, 40]
    assert _optimizer_iterations(model_dir / "checkpoints" / "ckpt-00000040.weights.h5") == 40

    resumed = helpers.run(*args, "--train_steps=48", timeout=300)
    helpers.check(resumed)
    assert "Resuming from step 40" in resumed.stdout
    assert helpers.results(model_dir)["steps"] == 48
    assert _optimizer_iterations(model_dir / "checkpoints" / "ckpt-00000048.weights.h5") == 48


@pytest.mark.slow
def test_steps_per_execution_must_divide(
    tmp_path,
):
    _require_fashion_mnist()
    result = helpers.run(*helpers.fashion_mnist_args(
        tmp_path / "spe3", "--max_train_examples=576", "--validation_size=64", "--batch_size=32",
        "--train_steps=40", "--steps_per_execution=3"), timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "error: --steps_per_execution=3 does not divide the steps per epoch (16) and the run's "
        "total steps (40): Keras runs 3 steps per call whatever is left of an epoch. "
        "Values that divide 16, "
        "40: 1, 2, 4, 8."
    )
    assert "Traceback" not in result.stderr and not (tmp_path / "spe3" / "checkpoints").exists()
    # a run started at another setting resumes only from a step the new one divides
    with pytest.raises(trainer.UsageError, match=r"does not divide the step it resumes from \(6\)"):
        trainer.check_steps_per_execution(4, 16, 48, start_step=6)
    trainer.check_steps_per_execution(4, 16, 48, start_step=8)


FLAG_PARSER = """
import runpy, sys
from absl import flags
runpy.run_path(sys.argv[1], run_name="cifar10_flags")
for bad in sys.argv[2:]:
    try:
        flags.FLAGS(["cifar10.py", "--model_dir=x", bad])
        print("accepted", bad)
    except flags.Error as error:
        print(error)
    flags.FLAGS.unparse_flags()
"""


@pytest.mark.slow
def test_unknown_choice_is_a_flag_error():
    """The script's real absl flags, parsed in one process (as `app.run` parses them)."""
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", FLAG_PARSER, str(helpers.SCRIPT), "--model=resnet21",
         "--dataset=imagenet", "--strategy=horovod", "--data_source=hub", "--model=resnet110"],
        cwd=helpers.REPO, env=helpers.env(), capture_output=True, text=True, timeout=120)
    helpers.check(result)
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("flag --model=resnet21: value should be one of")
    assert "resnet110" in lines[0] and "plain56" in lines[0] and "resnet50" not in lines[0]
    assert lines[1].startswith("flag --dataset=imagenet: value should be one of")
    assert "cifar100" in lines[1] and "fashion_mnist" in lines[1]
    assert lines[2].startswith("flag --strategy=horovod") and "multi_worker_mirrored" in lines[2]
    assert lines[3].startswith("flag --data_source=hub") and "folder" in lines[3]
    assert lines[4] == "accepted --model=resnet110"


@pytest.mark.slow
def test_missing_data_is_one_line_naming_path(tmp_path):
    result = helpers.run(f"--model_dir={tmp_path / 'run'}", "--dataset=cifar10",
                         f"--data_dir={tmp_path}", timeout=120)
    assert result.returncode == 2
    error = result.stderr.strip().splitlines()[-1]
    assert (
        error.startswith("error: Data not found:")
        and str(tmp_path / "cifar-10-batches-py") in error
    )
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_jax_backend_trains_and_resumes(tmp_path):
    """KERAS_BACKEND=jax with TensorFlow importable: TensorBoard scalars are written (no graph:
    that needs tf.function), a rerun with more steps resumes from the checkpoint, and
    --label_smoothing trains under JAX and reaches results.json."""
    _require_fashion_mnist()
    jax = pytest.importorskip("jax")
    model_dir = tmp_path / "jax"
    args = helpers.fashion_mnist_args(
        model_dir, "--model=resnet20", "--max_train_examples=128", "--max_test_examples=32",
        "--validation_size=32", "--batch_size=16", "--eval_batch_size=32", "--log_steps=1",
        "--label_smoothing=0.1")
    first = helpers.run(*args, "--train_steps=3", timeout=180, KERAS_BACKEND="jax")
    helpers.check(first)
    assert helpers.results(model_dir)["hardware"]["backend"] == "jax"
    # on a CPU-only machine the trainer says that TensorFlow is the faster backend there
    cpu_only = all(device.platform == "cpu" for device in jax.local_devices())
    assert ("warning: KERAS_BACKEND=jax with CPU devices only" in first.stderr) == cpu_only
    resumed = helpers.run(*args, "--train_steps=5", timeout=180, KERAS_BACKEND="jax")
    helpers.check(resumed)
    assert "Resuming from step 3" in resumed.stdout
    results = helpers.results(model_dir)
    assert results["steps"] == 5 and results["resumed_from_step"] == 3
    assert results["flags"]["label_smoothing"] == 0.1
    assert [p.name for p in sorted((model_dir / "checkpoints").glob("*.json"))] == [
        "ckpt-00000003.json", "ckpt-00000005.json"]
    tags = _tensorboard_tags(model_dir / "logs")
    assert {"loss", "lr", "train_error"} <= tags["iterations"] and not tags["graph"]


def test_label_smoothing_loss_matches_formula():
    """(1 - e) * (-log p_y) + e * mean_k(-log p_k), averaged over the batch, on probabilities."""
    from keras_resnet.training import trainer

    p = np.array([[0.7, 0.1, 0.1, 0.1], [0.2, 0.5, 0.2, 0.1], [0.05, 0.05, 0.3, 0.6]], "float32")
    y = np.array([0, 2, 3])
    for e in (0.0, 0.1, 0.5):
        expected = np.mean((1 - e) * -np.log(p[np.arange(3), y]) + e * np.mean(-np.log(p), axis=1))
        loss = trainer.training_loss(e)
        assert float(loss(y, p)) == pytest.approx(expected, rel=1e-5)
        assert float(loss(y[:, None], p)) == pytest.approx(expected, rel=1e-5)
    assert isinstance(trainer.training_loss(0.1), trainer.SparseLabelSmoothingCrossentropy)
    restored = trainer.SparseLabelSmoothingCrossentropy.from_config(
        trainer.training_loss(0.1).get_config())
    assert restored.label_smoothing == 0.1
    for bad in (1.0, -0.1):  # the loss checks its range (keras_resnet.losses)
        with pytest.raises(ValueError,
                           match=rf"label_smoothing={bad}; allowed: 0 <= label_smoothing < 1"):
            trainer.training_loss(bad)


@pytest.mark.slow
def test_label_smoothing_outside_0_1_is_refused():
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", FLAG_PARSER, str(helpers.SCRIPT), "--label_smoothing=1.0",
         "--label_smoothing=-0.1", "--label_smoothing=0.1"],
        cwd=helpers.REPO, env=helpers.env(), capture_output=True, text=True, timeout=120)
    helpers.check(result)
    lines = result.stdout.strip().splitlines()
    assert lines[0] == ("flag --label_smoothing=1.0: --label_smoothing=1.0; allowed: "
                        "0 <= label_smoothing < 1.")
    assert lines[1] == ("flag --label_smoothing=-0.1: --label_smoothing=-0.1; allowed: "
                        "0 <= label_smoothing < 1.")
    assert lines[2] == "accepted --label_smoothing=0.1"


def test_ram_model_dir_trains_and_resumes():
    """A non-local model_dir (TensorFlow's in-memory ram://, through tf.io.gfile as gs:// would
    go): checkpoints, metrics.csv, JSON files, logs and model.keras are written there, and a
    second run() in the same process (ram:// lives in the process) resumes from its checkpoint."""
    import keras
    import tensorflow as tf

    from keras_resnet.training import cifar_data, distribute, files, schedules, trainer

    model_dir = f"ram://model_dirs/run-{os.getpid()}-{time.time_ns()}"
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 255, (64, 8, 8, 1)).astype("float32"), rng.integers(0, 3, 64)

    def build_model():
        inputs = keras.Input((8, 8, 1))
        return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(
            keras.layers.Flatten()(keras.layers.Rescaling(1 / 255)(inputs))))

    def config(total_steps: int) -> trainer.TrainConfig:
        return trainer.TrainConfig(model_dir=model_dir, total_steps=total_steps, steps_per_epoch=4,
                                   global_batch=16, schedule=schedules.cifar_schedule(0.1, [100]),
                                   verbose=0, metadata={"model": "tiny", "dataset": "random"})

    data = trainer.TrainData(
        train=lambda first, count: cifar_data.tf_train_dataset(x, y, 16, 0, first, count, False),
        num_train_examples=64, validation=(x[:16], y[:16]), test=(x[:16], y[:16]))
    first = trainer.run(config(4), distribute.get_distribution(), build_model, data)
    assert first["steps"] == 4 and first["model_dir"] == model_dir
    resumed = trainer.run(config(6), distribute.get_distribution(), build_model, data)
    assert resumed["steps"] == 6 and resumed["resumed_from_step"] == 4
    assert files.read_json(f"{model_dir}/results.json")["steps"] == 6
    assert files.read_json(f"{model_dir}/metadata.json")["dataset"] == "random"
    assert [row["step"] for row in files.read_metrics_csv(f"{model_dir}/metrics.csv")] == [4, 6]
    assert [step for step, _ in files.list_checkpoints(f"{model_dir}/checkpoints")] == [4, 6]
    assert sorted(files.list_dir(f"{model_dir}/logs")) == ["iterations", "train", "validation"]
    assert tf.io.gfile.glob(f"{model_dir}/logs/iterations/events.out.tfevents.*")
    model = keras.saving.load_model(f"{model_dir}/model.keras")
    np.testing.assert_allclose(model.predict(x[:4], verbose=0).sum(axis=1), 1.0, rtol=1e-5)
    for directory in (model_dir, f"{model_dir}/checkpoints"):
        assert not [n for n in files.list_dir(directory) if ".tmp-" in n]


@pytest.mark.slow
def test_two_validation_flags_are_refused(tmp_path):
    _require_fashion_mnist()
    result = helpers.run(*helpers.fashion_mnist_args(
        tmp_path / "run", "--max_train_examples=100", "--validation_size=10",
        "--validation_per_class=1"), timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "error: --validation_size=10 and --validation_per_class=1: give one of them.")


@pytest.mark.slow
def test_train_on_all_uses_every_image(tmp_path):
    _require_fashion_mnist()
    model_dir = tmp_path / "all"
    helpers.check(helpers.run(*helpers.fashion_mnist_args(
        model_dir, "--max_train_examples=256", "--max_test_examples=20", "--train_on_all",
        "--batch_size=32", "--train_steps=1", "--eval_batch_size=100"), timeout=180))
    metadata = json.loads((model_dir / "metadata.json").read_text())
    assert (metadata["train_examples"], metadata["validation_examples"]) == (256, 0)
    with open(model_dir / "metrics.csv") as f:
        row = next(csv.DictReader(f))
    assert row["val_error"] == "" and row["test_error"] != ""
    for split in ("--validation_size=10", "--validation_per_class=3"):
        result = helpers.run(*helpers.fashion_mnist_args(
            tmp_path / "bad", "--max_train_examples=256", "--train_on_all", split), timeout=120)
        assert result.returncode == 2
        assert (
            result.stderr.strip().splitlines()[-1]
            == f"error: --train_on_all and {split}: give one of them."
        )


@pytest.mark.slow
def test_non_increasing_lr_boundaries_refused(tmp_path):
    _require_fashion_mnist()
    result = helpers.run(*helpers.fashion_mnist_args(
        tmp_path / "run", "--max_train_examples=256", "--validation_size=32",
        "--lr_boundaries=48,32"), timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == "error: --lr_boundaries=48,32: must increase."


@pytest.mark.slow
def test_validation_per_class_run_holds_out(tmp_path):
    _require_fashion_mnist()
    model_dir = tmp_path / "run"
    result = helpers.run(*helpers.fashion_mnist_args(
        model_dir, "--max_train_examples=200", "--max_test_examples=20", "--validation_per_class=3",
        "--batch_size=32", "--train_steps=1", "--eval_batch_size=100"), timeout=180)
    helpers.check(result)
    metadata = json.loads((model_dir / "metadata.json").read_text())
    assert metadata["validation_examples"] == 30 and metadata["train_examples"] == 170


AMX_FLAGS = frozenset({"avx512f", "avx512_bf16", "amx_bf16", "amx_tile"})
ZEN4_FLAGS = frozenset({"avx512f", "avx512_vnni", "avx512_bf16"})
ICELAKE_FLAGS = frozenset({"avx512f", "avx512_vnni"})
AVX2_FLAGS = frozenset({"avx2", "fma"})


@pytest.mark.parametrize("mode, strategy, devices, cpu_flags, expected", [
    ("auto", "default", ["/device:CPU:0"], AMX_FLAGS, "bfloat16"),
    ("auto", "default", ["/device:CPU:0"], ZEN4_FLAGS, "bfloat16"),
    ("auto", "default", ["/device:CPU:0"], ICELAKE_FLAGS, "none"),
    ("auto", "default", ["/device:CPU:0"], AVX2_FLAGS, "none"),
    ("auto", "mirrored", ["/device:GPU:0", "/device:GPU:1"], AMX_FLAGS, "none"),
    ("auto", "tpu", ["/device:TPU:0"], AVX2_FLAGS, "bfloat16"),
    ("none", "default", ["/device:CPU:0"], AMX_FLAGS, "none"),
    ("float16", "mirrored", ["/device:GPU:0"], AVX2_FLAGS, "float16"),
])
def test_auto_precision_follows_the_hardware(
        mode, strategy, devices, cpu_flags, expected):
    from keras_resnet.training import distribute, precision

    distribution = distribute.Distribution(strategy, len(devices), devices=devices)
    assert precision.resolve_mixed_precision(mode, distribution, cpu_flags) == expected


def test_unknown_precision_lists_the_choices():
    from keras_resnet.training import distribute, errors, precision

    with pytest.raises(errors.UsageError, match="'bf16'; allowed: auto, none, bfloat16, float16"):
        precision.resolve_mixed_precision("bf16", distribute.Distribution("default"))


def test_run_records_and_keeps_its_precision(tmp_path):
    """Started in bfloat16, the run's model.keras computes in bfloat16 and results.json says so;
    resumed with `auto` it stays in bfloat16 on any machine (metadata.json recorded it)."""
    import keras

    from keras_resnet.training import cifar_data, distribute, schedules, trainer

    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 255, (64, 8, 8, 1)).astype("float32"), rng.integers(0, 3, 64)

    def build_model():
        inputs = keras.Input((8, 8, 1))
        hidden = keras.layers.Conv2D(4, 3)(keras.layers.Rescaling(1 / 255)(inputs))
        return keras.Model(inputs, keras.layers.Dense(3, activation="softmax", dtype="float32")(
            keras.layers.Flatten()(hidden)))

    def config(total_steps: int, mixed_precision: str) -> trainer.TrainConfig:
        return trainer.TrainConfig(model_dir=str(tmp_path), total_steps=total_steps,
                                   steps_per_epoch=4, global_batch=16, verbose=0,
                                   schedule=schedules.cifar_schedule(0.1, [100]),
                                   mixed_precision=mixed_precision,
                                   metadata={"model": "tiny", "dataset": "random"})

    data = trainer.TrainData(
        train=lambda first, count: cifar_data.tf_train_dataset(x, y, 16, 0, first, count, False),
        num_train_examples=64, validation=(x[:16], y[:16]), test=(x[:16], y[:16]))
    try:
        first = trainer.run(config(4, "bfloat16"), distribute.get_distribution(), build_model, data)
        assert first["mixed_precision"] == "bfloat16"
        saved = keras.saving.load_model(tmp_path / "model.keras")
        assert saved.layers[2].dtype_policy.compute_dtype == "bfloat16"
        resumed = trainer.run(config(8, "auto"), distribute.get_distribution(), build_model, data)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert resumed["resumed_from_step"] == 4 and resumed["mixed_precision"] == "bfloat16"
    assert json.loads((tmp_path / "metadata.json").read_text())["mixed_precision"] == "bfloat16"
