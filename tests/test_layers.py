"""keras_resnet.layers: BatchNormalization (Keras's BN trained by TF's fused kernel, Sec. 3.4),
option A's subsampling (Sec. 3.3) and the mean subtraction (Sec. 3.4 / 4.2)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_resnet.layers import BatchNormalization, SubtractMean, subsample


def paired_layers(axis=-1, **kwargs):
    """Ours and Keras's BN with the same random gamma/beta, built for NHWC (8, 5, 7, 6) input."""
    ours = BatchNormalization(axis=axis, momentum=0.9, epsilon=1e-5, **kwargs)
    theirs = keras.layers.BatchNormalization(axis=axis, momentum=0.9, epsilon=1e-5, **kwargs)
    rng = np.random.default_rng(1)
    channels = 6 if axis in (-1, 3) else 5
    gamma, beta = rng.normal(1, 0.2, channels), rng.normal(0, 0.2, channels)
    for layer in (ours, theirs):
        layer.build((8, 5, 7, 6))
        layer.gamma.assign(gamma)
        layer.beta.assign(beta)
    return ours, theirs


def train_steps(layer, batches, upstream):
    """Outputs and gradients (input, gamma, beta) of each training call, then inference output."""
    results = []
    for x in batches:
        x = tf.cast(x, layer.compute_dtype)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(tf.cast(y, tf.float32) * upstream)
        results += [y, *tape.gradient(loss, [x, layer.gamma, layer.beta])]
    results += [layer.moving_mean, layer.moving_variance, layer(batches[0], training=False)]
    return [np.asarray(tf.cast(r, tf.float32)) for r in results]


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_fused_batch_norm_equals_keras(policy):
    rng = np.random.default_rng(0)
    batches = [tf.constant(rng.normal(2, 3, (8, 5, 7, 6)), tf.float32) for _ in range(3)]
    upstream = tf.constant(rng.normal(size=(8, 5, 7, 6)), tf.float32)
    keras.mixed_precision.set_global_policy(policy)
    try:
        ours, theirs = paired_layers()
        ours_results = train_steps(ours, batches, upstream)
        theirs_results = train_steps(theirs, batches, upstream)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    # Moving statistics moved from their initial 0 / 1 to the biased batch statistics' average.
    assert np.abs(ours_results[-3]).max() > 0.5 and np.abs(ours_results[-2] - 1).max() > 1
    for got, want in zip(ours_results, theirs_results):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=2e-5 * np.abs(want).max())


def _graph_ops(layer, training: bool, shape=(8, 5, 7, 6)) -> set[str]:
    function = tf.function(lambda x: layer(x, training=training))
    return {
        op.type
        for op in function.get_concrete_function(tf.TensorSpec(shape)).graph.get_operations()
    }


def test_nhwc_batch_norm_trains_fused():
    ours, theirs = paired_layers()
    assert "FusedBatchNormV3" in _graph_ops(ours, True)
    assert "FusedBatchNormV3" not in _graph_ops(theirs, True)


def test_batch_norm_infers_with_keras_affine():
    """oneDNN folds an inference FusedBatchNormV3 into the convolution as post-ops that are slow on
    some CPUs (docs/performance.md, Serving): inference is Keras's graph, op for op."""
    ours, theirs = paired_layers()
    assert _graph_ops(ours, False) == _graph_ops(theirs, False)
    assert "FusedBatchNormV3" not in _graph_ops(ours, False)


def test_other_axes_and_renorm_fall_back():
    x = tf.constant(np.random.default_rng(2).normal(1, 2, (8, 5, 7, 6)), tf.float32)
    for kwargs in ({"axis": 1}, {"renorm": True}):
        ours, theirs = paired_layers(**kwargs)
        assert "FusedBatchNormV3" not in _graph_ops(ours, True)
        np.testing.assert_allclose(ours(x, training=True), theirs(x, training=True), rtol=1e-5,
                                   atol=1e-5)
        np.testing.assert_allclose(ours.moving_variance, theirs.moving_variance, rtol=1e-6)


def test_batch_norm_config_round_trips():
    ours, _ = paired_layers()
    config = keras.saving.serialize_keras_object(ours)
    assert config["registered_name"] == "keras_resnet>BatchNormalization"
    restored = keras.saving.deserialize_keras_object(config)
    assert type(restored) is BatchNormalization
    assert restored.get_config() == ours.get_config()


SUBSAMPLE_CASES = [((2, 32, 32, 16), 2), ((2, 16, 16, 32), 2), ((2, 12, 9, 3), 3),
                   ((2, 15, 15, 4), 2), ((2, 9, 8, 2), 2), ((1, 5, 5, 1), 1)]


@pytest.mark.parametrize("static_size", [True, False])
@pytest.mark.parametrize("shape,stride", SUBSAMPLE_CASES)
def test_subsample_equals_the_strided_slice(shape, stride, static_size):
    """Even, odd and unknown sizes: the values and input gradients of `x[:, ::s, ::s, :]`."""
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=shape), tf.float32)
    spec_shape = (None, *shape[1:]) if static_size else (None, None, None, shape[-1])

    def with_gradient(function):
        @tf.function(input_signature=[tf.TensorSpec(spec_shape)])
        def run(inputs):
            with tf.GradientTape() as tape:
                tape.watch(inputs)
                y = function(inputs)
                weights = tf.reshape(tf.range(tf.size(y), dtype=tf.float32), tf.shape(y))
                loss = tf.reduce_sum(y * weights)
            return y, tape.gradient(loss, inputs)

        return [t.numpy() for t in run(x)]

    got = with_gradient(lambda inputs: subsample(inputs, stride))
    want = with_gradient(lambda inputs: inputs[:, ::stride, ::stride, :])
    rounded_up = (shape[0], -(-shape[1] // stride), -(-shape[2] // stride), shape[3])
    assert got[0].shape == want[0].shape == rounded_up
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)


def test_subsample_avoids_strided_slice():
    """The fast path of the CIFAR nets' shapes: a contiguous Slice, whose gradient is a Pad, not
    StridedSlice / StridedSliceGrad (slower on CPU, docs/performance.md)."""

    def op_types(shape):
        @tf.function(input_signature=[tf.TensorSpec(shape)])
        def run(inputs):
            with tf.GradientTape() as tape:
                tape.watch(inputs)
                y = subsample(inputs, 2)
            return tape.gradient(y, inputs)

        return {op.type for op in run.get_concrete_function().graph.get_operations()}

    fast = op_types((None, 32, 32, 16))
    assert "Slice" in fast and not {"StridedSlice", "StridedSliceGrad"} & fast
    assert "StridedSliceGrad" in op_types((None, 15, 15, 16))  # odd size: the strided slice


@pytest.mark.parametrize("policy, dtype", [("mixed_bfloat16", "bfloat16"), ("float32", "float32"),
                                           ("float64", "float64")])
def test_mean_subtracted_before_the_cast(policy, dtype):
    """Under mixed bfloat16, pixels near 255 and the mean (255.0 -> 255, 253.4 -> 253) would round
    to steps of 1 before a bfloat16 subtraction; the layer centres them in float32 first."""
    pixels = np.array([[[[255.0], [200.0]], [[17.0], [254.0]]]], "float32")
    mean = np.array([[[253.4], [199.3]], [[16.6], [250.7]]], "float32")
    keras.mixed_precision.set_global_policy(policy)
    try:
        layer = SubtractMean(mean)
        centred = layer(pixels)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert keras.backend.standardize_dtype(centred.dtype) == dtype
    want = keras.ops.cast(keras.ops.convert_to_tensor(pixels - mean, "float64"), dtype)
    np.testing.assert_array_equal(np.asarray(keras.ops.cast(centred, "float64")),
                                  np.asarray(keras.ops.cast(want, "float64")))
