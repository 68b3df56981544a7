"""Pretrained weights through the commands: `training/export.py --weights` serves them
behind the image-bytes signature and `training/evaluate.py --weights` scores an image folder,
both with the preprocessing of the weights (torchvision's ResNet-18, random weights)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import keras_resnet
from imagenet_helpers import photo
from keras_resnet.training import imagenet_input
from pretrained_helpers import REPO, relative_difference, torchvision_files

SIZE = 64  # input size of the served / evaluated nets: small, for speed
PHOTOS = ("astronaut", "chelsea", "coffee")


@pytest.fixture(scope="module")
def resnet18_file(tmp_path_factory) -> Path:
    return torchvision_files(tmp_path_factory.mktemp("tv"), ("resnet18",)) / "resnet18.safetensors"


def jpeg(name: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(photo(name)).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def run(script: str, *args: str) -> subprocess.CompletedProcess:
    """training/SCRIPT with `args` in a process of its own; it must succeed."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run([sys.executable, str(REPO / "training" / script), *args], cwd=REPO,
                            env=env, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def center_views(files: list[bytes]) -> np.ndarray:
    """The ImageNet 1-crop views (shorter side 256/224 * SIZE, centre SIZE crop), raw pixels."""
    resize = imagenet_input.eval_resize(SIZE)
    return np.stack([imagenet_input.center_view(f, SIZE, resize).numpy() for f in files])


@pytest.mark.slow
def test_torchvision_weights_serve(resnet18_file, tmp_path):
    # Converted once by the command; the .weights.h5 remembers its preprocessing ("torch"),
    # which the exported SavedModel then applies to the decoded 1-crop pixels.
    converted = tmp_path / "r18.weights.h5"
    subprocess.run([sys.executable, "-m", "keras_resnet.convert", str(resnet18_file),
                    str(converted), "--model=resnet18"], cwd=REPO, check=True, timeout=600,
                   env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True)
    run("export.py", "--model=resnet18", f"--weights={converted}", f"--image_size={SIZE}",
        f"--export_base={tmp_path / 'resnet18'}", "--nomodels_config")
    served = tf.saved_model.load(str(tmp_path / "resnet18" / "1")).signatures["serving_default"]
    files = [jpeg(name) for name in PHOTOS]
    outputs = served(image_bytes=tf.constant(files))
    model = keras_resnet.raw_pixel_model("resnet18", resnet18_file, image_size=SIZE)
    assert model.get_layer("preprocess_input").mode == "torch"  # known from the weights
    expected = model.predict(center_views(files), verbose=0)
    assert relative_difference(outputs["probabilities"].numpy(), expected) < 1e-4
    names = [[n for _, n, _ in row] for row in keras_resnet.decode_predictions(expected)]
    assert outputs["class_names"].numpy().astype(str).tolist() == names


@pytest.mark.slow
def test_evaluate_scores_a_synset_folder(resnet18_file, tmp_path):
    # The folders are named after the net's own 1-crop top class of each photo, so a correct
    # label mapping (folder synset -> index among the 1000) scores top-1 error 0.
    files = [jpeg(name) for name in PHOTOS]
    model = keras_resnet.raw_pixel_model("resnet18", resnet18_file, image_size=SIZE)
    top = model.predict(center_views(files), verbose=0).argmax(axis=1)
    synsets = keras_resnet.preprocessing.imagenet_classes()["synsets"]
    for i, (data, label) in enumerate(zip(files, top)):
        folder = tmp_path / "data" / "val" / synsets[label]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i}.JPEG").write_bytes(data)
    output = tmp_path / "evaluation.json"
    run("evaluate.py", "--model=resnet18", f"--weights={resnet18_file}", f"--image_size={SIZE}",
        "--data_source=folder", f"--data_dir={tmp_path / 'data'}", "--modes=1crop,multiscale",
        f"--output={output}")
    results = json.loads(output.read_text())
    assert results["1crop"] == {"images": 3, "top1_error": 0.0, "top5_error": 0.0}
    assert results["multiscale"]["images"] == 3
