"""Saving, loading, weights files, mixed precision, training and both backends."""

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import keras_resnet
from keras_resnet.layers import SubtractMean
from keras_resnet.training.cifar_data import FASHION_MNIST_DIR

REPO = Path(__file__).resolve().parents[1]
FASHION_MNIST = Path(FASHION_MNIST_DIR)


def images(n: int, size: int = 32, channels: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 1, (n, size, size, channels)).astype("float32")


def test_keras_file_round_trip_in_safe_mode(tmp_path):
    model = keras_resnet.ResNet20()  # option A: the custom ZeroPadShortcut layer
    x = images(4)
    path = tmp_path / "resnet20.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]


@pytest.mark.parametrize("suffix", [".weights.h5", ".keras"])
def test_weights_argument_loads_a_file(tmp_path, suffix):
    source = keras_resnet.ResNet18(input_shape=(64, 64, 3), classes=3)
    path = tmp_path / f"r18{suffix}"
    source.save_weights(path) if suffix == ".weights.h5" else source.save(path)
    model = keras_resnet.ResNet18(input_shape=(64, 64, 3), classes=3, weights=str(path))
    x = images(2, 64)
    np.testing.assert_allclose(model.predict(x, verbose=0), source.predict(x, verbose=0), atol=1e-6)


def test_weights_of_a_trained_model_load(tmp_path):
    net = keras_resnet.ResNet20(input_shape=(28, 28, 1))
    inputs = keras.Input((28, 28, 1))
    trained = keras.Model(inputs, net(SubtractMean(np.full((28, 28, 1), 0.5))(inputs)))
    trained.save(tmp_path / "model.keras")
    bare = keras_resnet.ResNet20(input_shape=(28, 28, 1), weights=str(tmp_path / "model.keras"))
    x = images(2, 28, 1)
    np.testing.assert_allclose(bare.predict(x - 0.5, verbose=0), trained.predict(x, verbose=0),
                               atol=1e-6)


@pytest.mark.slow
def test_mixed_precision_has_float32_output():
    for policy in ("mixed_bfloat16", "mixed_float16"):
        keras.config.set_dtype_policy(policy)
        model = keras_resnet.ResNet20(input_shape=(16, 16, 3))
        assert model.get_layer("conv2_block1_1_conv").compute_dtype == policy.split("_")[1]
        assert model.output.dtype == "float32"
        model.compile(keras.optimizers.SGD(0.1, momentum=0.9), "sparse_categorical_crossentropy")
        history = model.fit(images(16, 16), np.arange(16) % 10, epochs=1, batch_size=8, verbose=0)
        assert np.isfinite(history.history["loss"][0])
        keras.config.set_dtype_policy("float32")


@pytest.mark.slow
def test_resnet20_learns_fashion_mnist():
    import gzip

    assert FASHION_MNIST.exists(), "apt-get install dataset-fashion-mnist"
    with gzip.open(FASHION_MNIST / "train-images-idx3-ubyte.gz") as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28, 1)[:1024]
    with gzip.open(FASHION_MNIST / "train-labels-idx1-ubyte.gz") as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)[:1024]
    keras.utils.set_random_seed(0)
    model = keras_resnet.ResNet20(input_shape=(28, 28, 1))
    model.compile(keras.optimizers.SGD(0.1, momentum=0.9), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(x / 255.0, y, batch_size=64, epochs=3, verbose=0)
    assert history.history["loss"][-1] < 0.7 * history.history["loss"][0]
    assert history.history["accuracy"][-1] > 0.6


JAX_SCRIPT = """
import json, sys
from pathlib import Path
import numpy as np
import keras, keras_resnet
assert keras.backend.backend() == "jax"
work = Path(sys.argv[1])
for i, (name, kwargs) in enumerate(json.loads((work / "cases.json").read_text())):
    model = keras_resnet.get_model(name, **kwargs)
    model.load_weights(work / f"{i}.weights.h5")
    x = np.load(work / f"{i}.x.npy")
    np.save(work / f"{i}.y.npy", model.predict(x, verbose=0))
    if i == 0:  # and it trains under JAX
        model.compile(keras.optimizers.SGD(0.01, momentum=0.9), "sparse_categorical_crossentropy")
        loss = model.fit(x, np.zeros(len(x), "int32"), epochs=2, verbose=0).history["loss"]
        assert np.all(np.isfinite(loss)) and loss[1] < loss[0], loss
"""

BACKEND_CASES = [("resnet20", {}), ("resnet20", {"preact": True, "shortcut": "B"}),
                 ("resnet50", {"input_shape": [32, 32, 3], "classes": 5})]


@pytest.mark.slow
def test_tensorflow_and_jax_backends_agree(tmp_path):
    pytest.importorskip("jax")
    models = []
    for i, (name, kwargs) in enumerate(BACKEND_CASES):
        model = keras_resnet.get_model(name, **kwargs)
        # Non-trivial BN statistics, so inference-mode BN is exercised, not the identity.
        rng = np.random.default_rng(i)
        for layer in model.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.moving_mean.assign(rng.normal(0, 0.1, layer.moving_mean.shape))
                layer.moving_variance.assign(rng.uniform(0.5, 2, layer.moving_variance.shape))
        np.save(tmp_path / f"{i}.x.npy", images(3, seed=i) * 255 - 128)
        model.save_weights(tmp_path / f"{i}.weights.h5")
        models.append(model)
    (tmp_path / "cases.json").write_text(json.dumps(BACKEND_CASES))
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(REPO)}
    subprocess.run([sys.executable, "-c", JAX_SCRIPT, str(tmp_path)], env=env, check=True,
                   timeout=600)
    for i, model in enumerate(models):
        expected = model.predict(np.load(tmp_path / f"{i}.x.npy"), verbose=0)
        np.testing.assert_allclose(np.load(tmp_path / f"{i}.y.npy"), expected, rtol=1e-4, atol=1e-5)


def test_label_smoothing_model_loads(tmp_path):
    model = keras_resnet.ResNet20()
    model.compile("sgd", keras_resnet.losses.SparseLabelSmoothingCrossentropy(0.1))
    model.save(tmp_path / "smoothed.keras")
    script = ("import sys, keras, keras_resnet; m = keras.models.load_model(sys.argv[1]); "
              "print(type(m.loss).__name__, m.loss.label_smoothing)")
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path / "smoothed.keras")],
                            capture_output=True, text=True, check=True, timeout=300)
    assert result.stdout.split() == ["SparseLabelSmoothingCrossentropy", "0.1"]
