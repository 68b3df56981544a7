"""BN folded into the convolution before it computes the same inference function, with no BN
left."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_resnet import export, get_model
from keras_resnet.folding import fold_batch_norm, foldable_pairs


def randomize_batch_norm(model: keras.Model, seed: int = 0) -> None:
    """Moving statistics, gamma and beta far from their initial values, so folding matters."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            channels = layer.moving_mean.shape[0]
            layer.gamma.assign(rng.uniform(0.5, 1.5, channels).astype("float32"))
            layer.beta.assign(rng.normal(0, 0.2, channels).astype("float32"))
            layer.moving_mean.assign(rng.normal(0, 0.5, channels).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, channels).astype("float32"))


def batch_norms(model: keras.Model) -> list[str]:
    return [layer.name for layer in model.layers
            if isinstance(layer, keras.layers.BatchNormalization)]


@pytest.mark.parametrize("name, kwargs, shape", [
    ("resnet20", {}, (32, 32, 3)),                      # option A
    ("resnet18", {"input_shape": (64, 64, 3)}, (64, 64, 3)),  # option B, 7x7 stem
    ("resnet50", {"input_shape": (64, 64, 3), "shortcut": "C"}, (64, 64, 3)),  # bottlenecks
    ("plain20", {}, (32, 32, 3)),
])
def test_folded_net_computes_the_same(name, kwargs, shape):
    model = get_model(name, weights=None, classifier_activation=None, **kwargs)
    randomize_batch_norm(model)
    folded = fold_batch_norm(model)
    assert batch_norms(model) and not batch_norms(folded)
    assert len(foldable_pairs(model)) == len(batch_norms(model))
    images = np.random.default_rng(1).uniform(-1, 1, (4, *shape)).astype("float32")
    expected = model(images, training=False).numpy()
    logits = folded(images, training=False).numpy()
    np.testing.assert_allclose(logits, expected, rtol=0, atol=2e-4 * np.abs(expected).max())
    # Every folded convolution gained a bias; the layer names are kept.
    assert [layer.name for layer in folded.layers] == [layer.name for layer in model.layers]
    conv = folded.get_layer(foldable_pairs(model)[batch_norms(model)[0]])
    assert conv.use_bias


def test_preact_bns_reading_a_sum_stay():
    model = get_model("resnet20", weights=None, preact=True, classifier_activation=None)
    randomize_batch_norm(model, seed=2)
    folded = fold_batch_norm(model)
    kept = batch_norms(folded)
    # BN after the stem and inside each branch read a convolution; the pre-activations of later
    # units and the final BN read a sum, which has no convolution to fold into.
    assert kept and len(kept) < len(batch_norms(model))
    assert all("preact" in name or name == "post_bn" for name in kept), kept
    images = np.random.default_rng(3).uniform(-1, 1, (4, 32, 32, 3)).astype("float32")
    expected = model(images, training=False).numpy()
    np.testing.assert_allclose(folded(images, training=False).numpy(), expected, rtol=0,
                               atol=2e-4 * np.abs(expected).max())


def test_keras_applications_resnet50_folds():
    model = keras.applications.ResNet50(weights=None, input_shape=(64, 64, 3), classes=10,
                                        classifier_activation=None)
    randomize_batch_norm(model, seed=4)
    folded = fold_batch_norm(model)
    assert not batch_norms(folded)
    images = np.random.default_rng(5).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    expected = model(images, training=False).numpy()
    np.testing.assert_allclose(folded(images, training=False).numpy(), expected, rtol=0,
                               atol=2e-4 * np.abs(expected).max())


def test_folded_copy_is_a_snapshot():
    model = get_model("resnet20", weights=None)
    before = [w.copy() for w in model.get_weights()]
    folded = fold_batch_norm(model)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    assert not set(map(id, folded.weights)) & set(map(id, model.weights))


def test_subclassed_model_is_refused():
    class Net(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(
        TypeError, match="functional Keras model or a Sequential built with an Input, got Net[.]"
    ):
        fold_batch_norm(Net())


def test_only_a_built_sequential_folds():
    layers = [keras.layers.Conv2D(4, 3, use_bias=False), keras.layers.BatchNormalization(),
              keras.layers.ReLU(), keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)]
    model = keras.Sequential([keras.Input((8, 8, 3)), *layers])
    randomize_batch_norm(model, seed=6)
    folded = fold_batch_norm(model)
    assert batch_norms(model) and not batch_norms(folded)
    images = np.random.default_rng(7).uniform(-1, 1, (3, 8, 8, 3)).astype("float32")
    expected = model(images, training=False).numpy()
    np.testing.assert_allclose(folded(images, training=False).numpy(), expected, rtol=0,
                               atol=2e-4 * np.abs(expected).max())
    with pytest.raises(TypeError, match="Sequential built with an Input, got Sequential not built"):
        fold_batch_norm(keras.Sequential([keras.layers.Dense(2)]))


def test_export_serves_the_folded_net():
    model, metadata = export.untrained_model("resnet20")
    assert not batch_norms(export.ServingModule(model, metadata).model)
    assert batch_norms(export.ServingModule(model, metadata, fold_bn=False).model) == batch_norms(
        model
    )


def test_bfloat16_net_serves_in_float32():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        mixed, metadata = export.untrained_model("resnet20")
    finally:
        keras.mixed_precision.set_global_policy("float32")
    randomize_batch_norm(mixed)
    float32 = get_model("resnet20", weights=None)
    float32.set_weights(mixed.get_weights())
    assert {layer.dtype_policy.compute_dtype for layer in mixed.layers} >= {"bfloat16"}
    for fold_bn in (True, False):
        served = export.ServingModule(mixed, metadata, fold_bn=fold_bn).model
        assert {layer.dtype_policy.compute_dtype for layer in served.layers} == {"float32"}
        images = np.random.default_rng(1).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
        np.testing.assert_allclose(served.predict(images, verbose=0),
                                   float32.predict(images, verbose=0), atol=1e-5)
    assert export.float32_copy(float32) is float32
