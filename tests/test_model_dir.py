"""A model_dir never loses a run: mismatched reruns are refused, damaged checkpoints fall back,
and the tools read model_dirs through tf.io.gfile (real processes, real files)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import cifar_helpers as helpers
from keras_resnet.training import resume
from keras_resnet.training.errors import UsageError

# 128 training images at batch 32: 4 steps per epoch, checkpoints at steps 4 and 8.
RUN = ["--model=resnet20", "--max_train_examples=160", "--max_test_examples=32",
       "--validation_size=32", "--batch_size=32", "--train_steps=8", "--checkpoint_steps=4",
       "--keep_checkpoints=10", "--eval_batch_size=64", "--nopad_to_32"]


def _files(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*"))
            if p.is_file()}


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A finished 8-step ResNet-20 run on real Fashion-MNIST."""
    model_dir = tmp_path_factory.mktemp("runs") / "r20"
    helpers.check(helpers.run(*helpers.fashion_mnist_args(model_dir, *RUN), timeout=300))
    return model_dir


def _copy(finished: Path, tmp_path: Path, crashed: bool = False) -> Path:
    """A copy of the finished run; `crashed`: as if killed before its end (no results.json)."""
    model_dir = tmp_path / "run"
    shutil.copytree(finished, model_dir)
    if crashed:
        (model_dir / "results.json").unlink()
        (model_dir / "model.keras").unlink()
    return model_dir


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])


@pytest.mark.slow
def test_mismatched_rerun_names_each_flag(finished, tmp_path):
    model_dir = _copy(finished, tmp_path)
    before = _files(model_dir)
    result = helpers.run(*helpers.fashion_mnist_args(model_dir, *RUN, "--model=resnet32",
                                                     "--lr=0.05"), timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: --model_dir={model_dir} holds a run with other defining flags (--lr=0.1 there, "
        f"0.05 now; --model=resnet20 there, resnet32 now); nothing was changed. Pick another "
        f"--model_dir, or rerun with the flags it was started with to resume it.")
    assert _files(model_dir) == before
    # flags that may change on resume are accepted: the finished run is recognised
    again = helpers.run(*helpers.fashion_mnist_args(model_dir, *RUN, "--keep_checkpoints=2",
                                                    "--log_steps=7", "--verbose=0"), timeout=120)
    helpers.check(again)
    assert "Already finished" in again.stdout and _files(model_dir) == before


@pytest.mark.slow
def test_damaged_checkpoint_falls_back(finished, tmp_path):
    model_dir = _copy(finished, tmp_path, crashed=True)
    newest = model_dir / "checkpoints" / "ckpt-00000008.weights.h5"
    _truncate(newest)
    damaged_bytes = newest.read_bytes()
    first_row = (model_dir / "metrics.csv").read_text().splitlines()[1]
    result = helpers.run(*helpers.fashion_mnist_args(model_dir, *RUN), timeout=300)
    helpers.check(result)
    assert f"warning: checkpoint {model_dir}/checkpoints/ckpt-00000008 is damaged " \
           f"(ckpt-00000008.weights.h5: OSError" in result.stderr
    assert "Resuming from step 4" in result.stdout
    results = helpers.results(model_dir)
    assert results["steps"] == 8 and results["resumed_from_step"] == 4
    assert (model_dir / "checkpoints" / "damaged" / newest.name).read_bytes() == damaged_bytes
    lines = (model_dir / "metrics.csv").read_text().splitlines()
    assert lines[1] == first_row and [line.split(",")[1] for line in lines[1:]] == ["4", "8"]


@pytest.mark.slow
def test_all_checkpoints_damaged_stops_run(finished, tmp_path):
    model_dir = _copy(finished, tmp_path, crashed=True)
    checkpoints = model_dir / "checkpoints"
    _truncate(checkpoints / "ckpt-00000008.weights.h5")
    (checkpoints / "ckpt-00000004.json").write_text('{"step": 4, "train_w')
    before = _files(model_dir)
    result = helpers.run(*helpers.fashion_mnist_args(model_dir, *RUN), timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith(f"error: no checkpoint in {checkpoints} loads "
                            f"(ckpt-00000008.weights.h5: OSError")
    assert "; ckpt-00000004.json: JSONDecodeError" in error
    assert error.endswith("Pass --start_over to train from step 0 anyway (the damaged checkpoints "
                          f"are moved to {checkpoints}/damaged), or pick another --model_dir.")
    assert _files(model_dir) == before

    again = helpers.run(*helpers.fashion_mnist_args(model_dir, *RUN, "--start_over"), timeout=300)
    helpers.check(again)
    assert helpers.results(model_dir)["resumed_from_step"] == 0
    assert sorted(p.name for p in (checkpoints / "damaged").iterdir()) == [
        "ckpt-00000004.json", "ckpt-00000004.weights.h5", "ckpt-00000008.json",
        "ckpt-00000008.weights.h5"]


def _tiny(units: int):
    import keras

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Dense(units)(inputs)))
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), loss="mse")
    model.optimizer.build(model.trainable_variables)
    return model


def test_another_architecture_is_an_error(tmp_path):
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    _tiny(8).save_weights(checkpoints / "ckpt-00000004.weights.h5")
    (checkpoints / "ckpt-00000004.json").write_text(json.dumps({"step": 4}))
    before = _files(tmp_path)
    with pytest.raises(UsageError, match=r"ckpt-00000004.weights.h5 is readable but does not fit "
                                         r"the model being trained .* of another architecture"):
        resume.restore_latest(_tiny(16), str(checkpoints), start_over=True)
    assert _files(tmp_path) == before
    assert resume.restore_latest(_tiny(8), str(checkpoints)) == {"step": 4}


RAM_TOOLS = r"""
import json, os, runpy, sys
import numpy as np
import tensorflow as tf
from keras_resnet import export
from keras_resnet.training import figures

local, photos, ram = sys.argv[1], sys.argv[2], f"ram://runs/{os.getpid()}"
for name in ("model.keras", "metadata.json", "metrics.csv"):  # a run trained into a bucket
    tf.io.gfile.makedirs(f"{ram}/r20")
    tf.io.gfile.copy(os.path.join(local, name), f"{ram}/r20/{name}")
model, metadata = export.load_model_dir(f"{ram}/r20")
version = export.export_saved_model(model, metadata, f"{ram}/saved_models/r20")
config = export.write_models_config(f"{ram}/saved_models")
served = tf.saved_model.load(version).signatures["predict_images"]
images = np.random.default_rng(0).uniform(0, 255, (2, 28, 28, 1)).astype("float32")
difference = np.abs(served(images=tf.constant(images))["probabilities"].numpy()
                    - export.float32_copy(model).predict(images, verbose=0)).max()
print(json.dumps({"version": version, "difference": float(difference),
                  "config": tf.io.gfile.GFile(config).read(),
                  "label": figures.run_label(f"{ram}/r20"),
                  "curves": len(figures.training_curves_figure([f"{ram}/r20"]).axes[0].lines)}))

model, metadata = export.untrained_model("resnet18", image_size=64, classes=6)
metadata["class_names"] = [f"n{i:08d}" for i in range(6)]
tf.io.gfile.makedirs(f"{ram}/r18")
model.save(f"{ram}/r18/model.keras")
with tf.io.gfile.GFile(f"{ram}/r18/metadata.json", "w") as f:
    json.dump(metadata, f)
sys.argv = ["evaluate.py", f"--model_dir={ram}/r18", f"--data_dir={photos}", "--modes=1crop",
            "--batch_size=6"]
try:
    runpy.run_path("training/evaluate.py", run_name="__main__")
except SystemExit as exit:
    assert not exit.code, exit.code
with tf.io.gfile.GFile(f"{ram}/r18/evaluation.json") as f:
    print(json.dumps({"evaluation": json.load(f)}))
"""


@pytest.mark.slow
def test_tools_read_a_ram_model_dir(finished, tmp_path):
    """ram:// (TensorFlow's in-memory filesystem, the gfile path gs:// takes) lives in one
    process: the run is copied there, exported to ram://, and evaluate.py reads ram://."""
    from imagenet_helpers import make_photo_set

    photos = tmp_path / "photos"
    make_photo_set(str(photos), "folder")
    result = subprocess.run([sys.executable, "-c", RAM_TOOLS, str(finished), str(photos)],
                            cwd=helpers.REPO, env=helpers.env(), capture_output=True, text=True,
                            timeout=300)
    helpers.check(result)
    exported, evaluated = [json.loads(line) for line in result.stdout.splitlines()
                           if line.startswith("{")]
    assert exported["version"].endswith("/saved_models/r20/1") and exported["difference"] < 1e-5
    assert 'name: "r20"' in exported["config"] and exported["label"] == "resnet20"
    assert exported["curves"] == 2  # training and test error
    assert evaluated["evaluation"]["1crop"]["images"] == 12


@pytest.mark.slow
def test_tfds_offline_is_one_line_quickly(tmp_path):
    """Without network, --data_source=tfds says what to do instead of retrying for minutes."""
    start = time.time()
    result = helpers.run(f"--model_dir={tmp_path / 'run'}", "--dataset=cifar100",
                         "--data_source=tfds", f"--data_dir={tmp_path / 'tfds'}", timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    error = result.stderr.strip().splitlines()[-1]
    offline = "cannot be downloaded" in error and "tfds build cifar100 --data_dir=DIR" in error
    missing = "needs importlib_resources" in error  # a venv installed before setup.py listed it
    assert error.startswith("error: --data_source=tfds") and (offline or missing), error
    assert time.time() - start < 90 and not (tmp_path / "run").exists()


def test_defining_flags_skip_resumable_ones():
    flags = {"model": "resnet20", "lr_boundaries": ["1", "2"], "strategy": "mirrored",
             "train_steps": 5, "start_over": True, "seed": 0}
    assert resume.defining_flags(flags) == {"lr_boundaries": ["1", "2"], "model": "resnet20",
                                            "seed": 0}
    readme = (helpers.REPO / "docs" / "training.md").read_text()
    listed = readme[readme.index("These flags may change on resume"):
                    readme.index("A damaged checkpoint")]
    assert set(re.findall(r"`--(\w+)`", listed)) == resume.RESUMABLE_FLAGS - {"model_dir"}
