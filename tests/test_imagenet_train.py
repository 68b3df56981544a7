"""`training/imagenet.py` and `training/evaluate.py` as real processes on tiny photo sets."""

import csv
import json

import keras
import numpy as np
import pytest

from imagenet_helpers import check, class_names, make_photo_set, photo, run_script
from keras_resnet.layers import SubtractMean

COMMON = ["--model=resnet18", "--image_size=64", "--batch_size=8", "--eval_batch_size=12",
          "--stats_images=24", "--verbose=2"]  # eval batch 12: the 12 val images


def load(model_dir) -> tuple[keras.Model, dict, dict]:
    model = keras.saving.load_model(model_dir / "model.keras")
    metadata = json.loads((model_dir / "metadata.json").read_text())
    results = json.loads((model_dir / "results.json").read_text())
    return model, metadata, results


@pytest.mark.slow
def test_resnet18_trains_on_a_folder_set(tmp_path):
    data_dir, model_dir = tmp_path / "data", tmp_path / "run"
    make_photo_set(str(data_dir), "folder")
    check(run_script("imagenet", *COMMON, f"--data_dir={data_dir}", f"--model_dir={model_dir}",
                     "--train_steps=2", "--eval_modes=1crop,10crop,multiscale"))
    model, metadata, results = load(model_dir)
    assert {k: metadata[k] for k in ("model", "dataset", "class_names", "image_size", "channels",
                                     "eval_resize", "mean", "backend")} == {
        "model": "resnet18", "dataset": "folder", "class_names": class_names(6),
        "image_size": [64, 64], "channels": 3, "eval_resize": 73, "mean": "pixel",
        "backend": "tensorflow"}
    assert results["steps"] == 2 and 0.0 <= results["test_error"] <= 1.0
    assert model.input_shape == (None, 64, 64, 3)
    mean_layer = model.layers[1]
    assert isinstance(mean_layer, SubtractMean) and tuple(mean_layer.mean.shape) == (64, 64, 3)
    assert 60 < float(np.mean(mean_layer.mean)) < 180  # a mean of raw 0..255 photo pixels
    probs = model.predict(np.stack([photo("coffee")[:64, :64].astype("float32")]), verbose=0)
    assert probs.dtype == np.float32 and probs.shape == (1, 6)
    np.testing.assert_allclose(probs.sum(), 1.0, rtol=1e-5)
    evaluation = json.loads((model_dir / "evaluation.json").read_text())
    assert sorted(evaluation) == ["10crop", "1crop", "multiscale"]
    for result in evaluation.values():
        assert result["images"] == 12
        assert 0.0 <= result["top5_error"] <= result["top1_error"] <= 1.0
    assert evaluation["1crop"]["top1_error"] == pytest.approx(results["test_error"])


@pytest.mark.slow
def test_resnet18_on_tfrecords_two_replicas(tmp_path):
    data_dir, model_dir = tmp_path / "shards", tmp_path / "run"
    make_photo_set(str(data_dir), "tfrecord")
    check(run_script("imagenet", *COMMON, f"--data_dir={data_dir}", f"--model_dir={model_dir}",
                     "--mean=channel", "--crop=inception", "--strategy=mirrored",
                     "--num_cpu_devices=2", "--eval_modes=", "--train_steps=2"))
    model, metadata, results = load(model_dir)
    assert results["steps"] == 2 and results["distribution"]["num_replicas"] == 2
    assert metadata["dataset"] == "imagenet" and metadata["class_names"] == class_names(6)
    assert metadata["mean"] == "channel" and tuple(model.layers[1].mean.shape) == (3,)
    assert not (model_dir / "evaluation.json").exists()

    output = tmp_path / "eval.json"
    check(run_script("evaluate", f"--model_dir={model_dir}", f"--data_dir={data_dir}",
                     "--modes=1crop,10crop", "--batch_size=6", f"--output={output}"))
    evaluation = json.loads(output.read_text())
    assert sorted(evaluation) == ["10crop", "1crop"]
    assert evaluation["1crop"]["images"] == evaluation["10crop"]["images"] == 12

    # the bare .keras file (no model_dir metadata) at a given crop size, on the first 5 images
    subset = tmp_path / "subset.json"
    check(run_script("evaluate", f"--model_path={model_dir / 'model.keras'}", "--image_size=64",
                     f"--data_dir={data_dir}", "--modes=1crop", "--max_images=5", "--batch_size=6",
                     f"--output={subset}"))
    assert json.loads(subset.read_text())["1crop"]["images"] == 5


@pytest.mark.slow
def test_lr_boundary_epochs_divide_the_lr(tmp_path):
    data_dir, model_dir = tmp_path / "data", tmp_path / "run"
    make_photo_set(str(data_dir), "folder")  # 36 training images: 4 steps per epoch at batch 8
    check(run_script("imagenet", *COMMON, f"--data_dir={data_dir}", f"--model_dir={model_dir}",
                     "--train_steps=12", "--lr_boundary_epochs=1,2", "--eval_modes="))
    with open(model_dir / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    base = 0.1 * 8 / 256  # --lr scaled linearly with the batch; no warm-up below batch 256
    assert [int(r["step"]) for r in rows] == [4, 8, 12]
    assert [float(r["lr"]) for r in rows] == pytest.approx([base, base / 10, base / 100])
    for bad, message in (("2,1", "must increase"), ("x", "must be comma-separated integers")):
        result = run_script("imagenet", *COMMON, f"--data_dir={data_dir}",
                            f"--model_dir={tmp_path / 'bad'}", f"--lr_boundary_epochs={bad}")
        assert result.returncode == 2
        assert (
            result.stderr.strip().splitlines()[-1]
            == f"error: --lr_boundary_epochs={bad}: {message}."
        )


@pytest.mark.slow
def test_tpu_flag_reaches_the_resolver(tmp_path):
    result = run_script(
        "imagenet",
        *COMMON,
        f"--data_dir={tmp_path}",
        f"--model_dir={tmp_path / 'run'}",
        "--strategy=tpu",
        "--tpu=grpc://127.0.0.1:1",
    )
    assert result.returncode == 2
    assert (
        "error: --tpu=grpc://127.0.0.1:1: no TPU reachable at grpc://127.0.0.1:1" in result.stderr
    )
