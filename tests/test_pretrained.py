"""Pretrained weights: keras.applications' files and torchvision's state dicts load
into our nets and give the publishers' own outputs; files that do not fit fail clearly.

No weights can be downloaded here: the files are written with random weights (BN statistics
randomised, convolution biases non-zero) by keras's own legacy HDF5 writer and by torchvision
(Debian's CPU PyTorch, under the system Python), and both sides run on scikit-image's photos.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest
from keras.src.applications import resnet as applications
from keras.src.legacy.saving import legacy_h5_format
from safetensors.numpy import save_file

import keras_resnet
from keras_resnet import convert, pretrained
from pretrained_helpers import REPO, TORCH_PYTHON, photos, relative_difference
from pretrained_helpers import torchvision_files as write_torchvision_files


def randomise(model: keras.Model, seed: int = 0) -> None:
    """Random BN statistics and affine parameters, and non-zero convolution biases."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            shape = layer.gamma.shape
            layer.set_weights([rng.uniform(0.5, 1.5, shape), rng.normal(0, 0.1, shape),
                               rng.normal(0, 0.1, shape), rng.uniform(0.5, 1.5, shape)])
        elif isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)) and layer.use_bias:
            layer.bias.assign(rng.normal(0, 0.1, layer.bias.shape))


def write_legacy_h5(model: keras.Model, path: Path) -> Path:
    """`model`'s weights in keras.applications' published layout: keras's legacy HDF5 writer."""
    with h5py.File(path, "w") as file:
        legacy_h5_format.save_weights_to_hdf5_group(file, model)
    return path


@pytest.fixture(scope="module")
def keras_resnet50(tmp_path_factory):
    """keras.applications' ResNet50 (logits, 160x160) with random weights, and its legacy .h5."""
    keras.utils.set_random_seed(0)
    reference = keras.applications.ResNet50(weights=None, classifier_activation=None,
                                            input_shape=(160, 160, 3))
    randomise(reference)
    return reference, write_legacy_h5(reference, tmp_path_factory.mktemp("k") / "resnet50.h5")


def test_keras_resnet50_file_gives_its_outputs(keras_resnet50):
    reference, path = keras_resnet50
    images = photos(160)
    expected = reference.predict(applications.preprocess_input(images.astype("float32")), verbose=0)
    ours = keras_resnet.ResNet50(weights=path, classifier_activation=None,
                                 input_shape=(160, 160, 3))
    got = ours.predict(keras_resnet.preprocess_input(images, mode="caffe"), verbose=0)
    assert relative_difference(got, expected) < 1e-4
    assert np.ptp(expected) > 1.0  # the logits do vary: random weights reached the output
    # include_top=False, pooling="avg" reads the same file without its classifier.
    features = keras_resnet.ResNet50(weights=path, include_top=False, pooling="avg",
                                     input_shape=(160, 160, 3))
    pooled = keras.Model(reference.input, reference.get_layer("avg_pool").output)
    expected = pooled.predict(applications.preprocess_input(images.astype("float32")), verbose=0)
    got = features.predict(keras_resnet.preprocess_input(images), verbose=0)
    assert relative_difference(got, expected) < 1e-4


def test_keras2_weight_names_load_alike(keras_resnet50, tmp_path):
    # Files written by Keras 2 (keras.applications' published ones) name weights
    # "conv1_conv/kernel:0"; Keras 3's legacy writer "conv1_conv/kernel".
    keras2 = tmp_path / "keras2.h5"
    keras2.write_bytes(keras_resnet50[1].read_bytes())
    with h5py.File(keras2, "a") as file:
        for layer in file.attrs["layer_names"]:
            group = file[layer]
            names = [n if isinstance(n, str) else n.decode() for n in group.attrs["weight_names"]]
            for name in names:
                group.move(name, f"{name}:0")
            group.attrs["weight_names"] = [f"{n}:0".encode() for n in names]
        assert "conv1_conv/kernel:0" in file["conv1_conv"]
    renamed = keras_resnet.ResNet50(weights=keras2, input_shape=(160, 160, 3))
    original = keras_resnet.ResNet50(weights=keras_resnet50[1], input_shape=(160, 160, 3))
    for a, b in zip(renamed.get_weights(), original.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_keras_resnet101_notop_gives_features(tmp_path):
    keras.utils.set_random_seed(1)
    reference = keras.applications.ResNet101(weights=None, include_top=False,
                                             input_shape=(128, 128, 3))
    randomise(reference, seed=1)
    path = write_legacy_h5(reference, tmp_path / "resnet101_notop.h5")
    images = photos(128, ("coffee",))
    expected = reference.predict(applications.preprocess_input(images.astype("float32")), verbose=0)
    ours = keras_resnet.ResNet101(weights=path, include_top=False, input_shape=(128, 128, 3))
    got = ours.predict(keras_resnet.preprocess_input(images), verbose=0)
    assert got.shape == expected.shape == (1, 4, 4, 2048)
    assert relative_difference(got, expected) < 1e-4


# ----------------------------------------------------------------------------------------------
# torchvision


@pytest.fixture(scope="module")
def torchvision_files(tmp_path_factory) -> Path:
    """resnet18 and resnet50 from torchvision (random weights): .pth, .safetensors and logits."""
    return write_torchvision_files(tmp_path_factory.mktemp("torchvision"), ("resnet18", "resnet50"))


@pytest.mark.parametrize("name, stride", [("resnet18", "1x1"), ("resnet50", "3x3")])
def test_torchvision_safetensors_outputs(torchvision_files, name, stride):
    model = keras_resnet.get_model(name, weights=torchvision_files / f"{name}.safetensors",
                                   bottleneck_stride=stride, classifier_activation=None)
    got = model.predict(keras_resnet.preprocess_input(photos(224), mode="torch"), verbose=0)
    expected = np.load(torchvision_files / f"{name}.logits.npy")
    assert np.ptp(expected) > 1.0
    assert relative_difference(got, expected) < 1e-4


def torch_importable_by(directory: Path) -> dict[str, str]:
    """An environment in which the venv's Python imports Debian's PyTorch (and nothing else of
    the system's site-packages): `directory` holds a link to its torch package."""
    where = subprocess.run([TORCH_PYTHON, "-c", "import os, torch; print(os.path.dirname("
                            "torch.__file__))"], capture_output=True, text=True, check=True)
    (directory / "torch").symlink_to(where.stdout.strip())
    return {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{directory}",
            "TF_CPP_MIN_LOG_LEVEL": "2"}


@pytest.mark.slow
def test_torchvision_pth_outputs(
        torchvision_files, tmp_path):
    # The library reads .pth with PyTorch; the venv has none, so this runs it in a process that
    # imports Debian's.
    script = (
        "import sys, numpy as np, keras_resnet\n"
        "out = sys.argv[1]\n"
        "for name, stride in (('resnet18', '1x1'), ('resnet50', '3x3')):\n"
        "    model = keras_resnet.get_model(name, weights=f'{out}/{name}.pth', "
        "bottleneck_stride=stride, classifier_activation=None)\n"
        "    x = keras_resnet.preprocess_input(np.load(f'{out}/images.npy'), mode='torch')\n"
        "    np.save(f'{out}/{name}.keras_logits.npy', model.predict(x, verbose=0))\n")
    shim = tmp_path / "torch_only"
    shim.mkdir()
    result = subprocess.run([sys.executable, "-W", "ignore", "-c", script, str(torchvision_files)],
                            env=torch_importable_by(shim), capture_output=True, text=True,
                            timeout=300, check=False, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    for name in ("resnet18", "resnet50"):
        got = np.load(torchvision_files / f"{name}.keras_logits.npy")
        expected = np.load(torchvision_files / f"{name}.logits.npy")
        assert relative_difference(got, expected) < 1e-4, name


# ----------------------------------------------------------------------------------------------
# Files that do not fit


def test_v15_state_dict_names_the_stride(torchvision_files):
    with pytest.raises(ValueError, match=r"build it with bottleneck_stride='3x3'"):
        keras_resnet.ResNet50(weights=torchvision_files / "resnet50.safetensors")


def test_v15_keras_file_names_the_stride(keras_resnet50):
    with pytest.raises(ValueError, match=r"paper's layout.*bottleneck_stride='1x1'"):
        keras_resnet.ResNet50(weights=keras_resnet50[1], bottleneck_stride="3x3")


def test_failed_load_leaves_the_model(torchvision_files):
    model = keras_resnet.ResNet50()
    before = [w.copy() for w in model.get_weights()]
    with pytest.raises(ValueError, match="bottleneck_stride='3x3'"):  # after all shapes fit
        pretrained.load_weights(model, torchvision_files / "resnet50.safetensors", "resnet50")
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


@pytest.mark.parametrize("build, message", [
    (lambda path: keras_resnet.ResNet34(weights=path),
     r"has no kernel \(3, 3, 64, 64\) for layer 'conv2_block3_1_conv'"),
    (lambda path: keras_resnet.Plain18(weights=path),
     r"'layer2.0.downsample.0.weight' \(128, 64, 1, 1\) has no place in it \(no layer "
     r"'conv3_block1_0_conv' with a kernel\)"),
    (lambda path: keras_resnet.ResNet18(weights=path, classes=10),
     r"layer 'predictions' kernel has shape \(512, 10\); the torchvision / timm state dict's "
     r"'fc.weight' \(1000, 512\) gives \(512, 1000\)"),
])
def test_wrong_architecture_names_mismatch(torchvision_files, build,
                                                                   message):
    with pytest.raises(ValueError, match=r"resnet18.safetensors' does not fit model '\w+': .*"
                                         + message):
        build(torchvision_files / "resnet18.safetensors")


def test_foreign_state_dict_names_its_key(torchvision_files,
                                                                       tmp_path):
    with np.load(torchvision_files / "resnet18.npz") as state:  # + a squeeze-excitation tensor
        tensors = {**state, "layer1.0.se.fc1.weight": np.zeros((4, 64, 1, 1), np.float32)}
    save_file(tensors, str(tmp_path / "seresnet18.safetensors"))
    with pytest.raises(ValueError, match=r"is not a torchvision / timm ResNet state dict: its key "
                                         r"'layer1.0.se.fc1.weight' \(4, 64, 1, 1\) is not"):
        keras_resnet.ResNet18(weights=tmp_path / "seresnet18.safetensors")


def test_option_c_names_missing_projection(keras_resnet50):
    with pytest.raises(ValueError, match=r"has no kernel \(1, 1, 256, 256\) for layer "
                                         r"'conv2_block2_0_conv'"):
        keras_resnet.ResNet50(weights=keras_resnet50[1], shortcut="C")


@pytest.mark.parametrize("name", ["resnet18.safetensors", "resnet50.h5"])
def test_truncated_file_is_a_clear_error(torchvision_files, keras_resnet50, tmp_path, name):
    source = (torchvision_files / name if name.endswith(".safetensors") else keras_resnet50[1])
    truncated = tmp_path / name
    truncated.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    with pytest.raises(ValueError, match=rf"weights='{truncated}': cannot be read"):
        keras_resnet.get_model(name.split(".")[0], weights=truncated)


def test_pth_without_pytorch_says_install(torchvision_files, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` fails as without PyTorch
    with pytest.raises(ImportError, match=r"needs PyTorch \(pip install torch\).*\.safetensors"):
        keras_resnet.ResNet18(weights=torchvision_files / "resnet18.pth")


def test_unknown_weight_format_lists_allowed(tmp_path):
    with pytest.raises(ValueError, match=r"weights='model.npz': must be None, 'imagenet' or "
                                         r"the path of a '.weights.h5', '.keras'"):
        keras_resnet.ResNet18(weights="model.npz")


def test_imagenet_offline_names_url_and_hash(tmp_path):
    script = (
        "import json, time, keras_resnet\n"
        "out = {}\n"
        "for name, top in (('ResNet50', True), ('ResNet152', False), ('ResNet18', True)):\n"
        "    start = time.time()\n"
        "    try:\n"
        "        getattr(keras_resnet, name)(weights='imagenet', include_top=top)\n"
        "    except ValueError as error:\n"
        "        out[name] = [str(error), time.time() - start]\n"
        "print(json.dumps(out))\n")
    env = {**os.environ, "KERAS_HOME": str(tmp_path / "keras_home"), "PYTHONPATH": str(REPO),
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                            text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    errors = json.loads(result.stdout.strip().splitlines()[-1])
    for name, top, hashes in (("ResNet50", True, applications.WEIGHTS_HASHES["resnet50"]),
                              ("ResNet152", False, applications.WEIGHTS_HASHES["resnet152"])):
        message, seconds = errors[name]
        file = f"{name.lower()}_weights_tf_dim_ordering_tf_kernels{'' if top else '_notop'}.h5"
        assert f"could not fetch {applications.BASE_WEIGHTS_PATH}{file} " in message
        assert f"(md5 {hashes[0 if top else 1]})" in message
        assert f"pass its path: weights='/path/to/{file}'" in message
        assert seconds < 60
    assert "exist for resnet50, resnet101, resnet152" in errors["ResNet18"][0]
    assert not any((tmp_path / "keras_home" / "models").glob("*.h5"))  # nothing half-written


# ----------------------------------------------------------------------------------------------
# Conversion once, preprocessing and class names


def test_converted_weights_keep_preprocessing(torchvision_files,
                                                                           tmp_path, capsys):
    target = tmp_path / "r18.weights.h5"
    assert convert.main([str(torchvision_files / "resnet18.safetensors"), str(target),
                         "--model=resnet18"]) == 0
    assert f"wrote {target}: resnet18" in capsys.readouterr().out
    assert pretrained.preprocessing_mode(target) == "torch"
    direct = keras_resnet.ResNet18(weights=torchvision_files / "resnet18.safetensors")
    converted = keras_resnet.ResNet18(weights=target)
    for a, b in zip(direct.get_weights(), converted.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_convert_refuses_v15_without_stride(torchvision_files, tmp_path, capsys):
    target = tmp_path / "r50.weights.h5"
    assert convert.main([str(torchvision_files / "resnet50.safetensors"), str(target),
                         "--model=resnet50"]) == 2
    assert "build it with bottleneck_stride='3x3'" in capsys.readouterr().err
    assert not target.exists()


def test_preprocess_input_matches_publishers():
    images = photos(64).astype("float32")
    np.testing.assert_allclose(keras_resnet.preprocess_input(images),
                               applications.preprocess_input(images.copy()), atol=1e-4)
    torch_mode = keras_resnet.preprocess_input(keras.ops.convert_to_tensor(images), mode="torch")
    expected = (images / 255 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(torch_mode), expected, atol=1e-5)
    with pytest.raises(ValueError, match=r"mode='tf': must be 'caffe' .* or 'torch'"):
        keras_resnet.preprocess_input(images, mode="tf")


def test_decode_predictions_names_top_classes():
    scores = np.zeros((2, 1000), np.float32)
    scores[0, [1, 0, 2]] = [0.7, 0.2, 0.1]
    scores[1, 999] = 1.0
    decoded = keras_resnet.decode_predictions(scores, top=2)
    assert [s for s, _, _ in decoded[0]] == ["n01443537", "n01440764"]
    assert decoded[0][0][1].startswith("goldfish") and decoded[0][0][2] == pytest.approx(0.7)
    assert decoded[1][0][0] == "n15075141"  # the last class, toilet tissue
    with pytest.raises(ValueError, match=r"preds has shape \(2, 10\); must be \(batch, 1000\)"):
        keras_resnet.decode_predictions(scores[:, :10])
