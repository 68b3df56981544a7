"""Training and serving speed of keras_resnet against keras.applications and PyTorch, one machine.

One run measures, side by side and alternating the contenders round by round (medians reported):
  limit     fp32 (and --precision) matrix-multiply GFLOP/s of each framework in use;
  training  images/s and achieved GFLOP/s (count_flops x 2 x 3) of our ResNet-50 against
            keras.applications.ResNet50 and torchvision's resnet50, and of our CIFAR ResNet-20/56/110
            against a hand-written keras.io-style Keras CIFAR ResNet and one in PyTorch
            (channels_last); SGD with momentum 0.9, synthetic data already in memory; and
            variants of our net, each the figure behind one choice of the model library;
  autotune  whole `fit` calls with tf.data's autotuner on and off (the trainers turn it off);
  trainer   training/cifar10.py end to end (real Fashion-MNIST in memory, augmentation, callbacks,
            per-epoch evaluation, checkpoints) against the bare `fit` step plus `evaluate` of the
            same net;
  serving   our exported SavedModel's serving_default (JPEG bytes in): batch-1 latency p50/p99 and
            batch images/s, against keras.applications.ResNet50 exported the same way;
  pipeline  benchmarks/input_pipeline.py (the ImageNet tf.data pipeline vs decode-only vs PIL).

Keras contenders run in one worker process per backend, PyTorch in a worker under a Python that
has torch (Debian's /usr/bin/python3 here); only one worker computes at a time.

    python benchmarks/train_throughput.py --json=runs/speed.json      # the full run
    python benchmarks/train_throughput.py --quick --json=/tmp/q.json  # smoke test (tiny sizes)
    python docs/make_performance.py --json=runs/speed.json            # docs/performance.md
"""

from __future__ import annotations

import csv
import functools
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PROTOCOL_PREFIX = "@@bench "
CIFAR_NETS = ("resnet20", "resnet32", "resnet44", "resnet56", "resnet110")
IMAGENET_NETS = ("resnet50",)
# reference: keras.applications / hand-written keras.io. Variants of our net, each the figure
# behind one choice of the model library: ours_keras_bn has Keras's own (unfused)
# BatchNormalization in place of keras_resnet.layers.BatchNormalization; ours_strided_shortcut
# subsamples option A's shortcut by the strided slice `x[:, ::2, ::2, :]` instead of
# keras_resnet.layers.subsample (the same values; CIFAR nets only). reference_channels_first is
# the keras.io net in channels_first (NCHW): the figure behind keras_resnet building channels_last
# models only (our net has no channels_first form to time; CIFAR nets only, not in the default
# --impls).
VARIANTS = ("ours_keras_bn", "ours_strided_shortcut")
IMPLS = ("ours", *VARIANTS, "reference", "reference_channels_first", "torch")
CIFAR_ONLY_IMPLS = ("ours_strided_shortcut", "reference_channels_first")
# Serving contenders: ours as keras_resnet.export writes it (BN folded into the convolutions);
# ours with its BN left in the graph, inferring by Keras's affine (the layer's inference path, for
# the BNs that cannot be folded) or by TensorFlow's fused kernel (FusedBatchNormV3,
# is_training=False); and keras.applications' net exported the same way with its BN as it is
# (keras.applications folds nothing).
SERVING_IMPLS = {"ours": "keras_resnet (BN folded)",
                 "ours_unfolded_bn": "keras_resnet, BN not folded",
                 "ours_fused_inference_bn": "keras_resnet, BN not folded, fused inference BN",
                 "reference": "keras.applications"}
SECTIONS = ("training", "shortcut", "threads", "autotune", "trainer", "serving", "pipeline")
# Option A's subsampling, timed alone (section shortcut): keras_resnet.layers.subsample, the
# strided slice and a 1x1 max-pool of stride 2, all taking the same pixels.
SUBSAMPLINGS = ("keras_resnet", "strided_slice", "max_pool")
SUBSAMPLING_LABELS = {"keras_resnet": "keras_resnet.layers.subsample (reshape + slice)",
                      "strided_slice": "strided slice", "max_pool": "1x1 max-pool, stride 2"}
BACKENDS = ("tensorflow", "jax")
PRECISIONS = ("float32", "bfloat16")
MOMENTUM = 0.9
LEARNING_RATE = 0.01
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")

# Goals of issue 10 on the 2-core CPU (TensorFlow backend): (description, value key, target).
GOALS = (
    ("ResNet-50 ours / keras.applications, training", "resnet50_over_applications", 1.00),
    ("ResNet-50 ours, % of matmul limit", "resnet50_percent_of_limit", 40.0),
    ("ResNet-20 ours / PyTorch, training", "resnet20_over_torch", 1.00),
    ("ResNet-56 ours / PyTorch, training", "resnet56_over_torch", 1.00),
    ("ResNet-110 ours / PyTorch, training", "resnet110_over_torch", 1.00),
    ("ResNet-20 ours, % of matmul limit", "resnet20_percent_of_limit", 45.0),
    ("ResNet-56 ours, % of matmul limit", "resnet56_percent_of_limit", 62.0),
    ("Trainer epoch over the bare fit + evaluate of the same images, overhead % (at most)",
     "trainer_overhead_percent", -5.0),
    ("Input pipeline / PIL loop, per core", "pipeline_over_pil", 2.0),
    ("Input pipeline / decode-only, per core", "pipeline_over_decode_only", 0.70),
    ("Serving batch-1 p50 latency, ours / keras.applications (at most)", "serving_p50_ratio", -1.0),
)


class BenchmarkError(RuntimeError):
    """A worker or a measured program failed."""


# =============================================================================================
# Workers: one process per framework, answering JSON requests one line at a time.
# Top-level imports are stdlib only: the PyTorch worker runs under a Python without Keras/absl.
# =============================================================================================


def serve_requests(handlers: dict[str, Callable[[dict], dict]]) -> None:
    """Answer requests read from stdin; replies go to the real stdout, everything else to stderr."""
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # stray prints (progress bars, C++ logs) must not corrupt the protocol
    sys.stdout = sys.stderr
    for line in sys.stdin:
        request = json.loads(line)
        if request["op"] == "quit":
            break
        try:
            reply = handlers[request["op"]](request)
        except Exception:  # reported to the orchestrator, which raises it
            reply = {"error": traceback.format_exc()}
        replies.write(PROTOCOL_PREFIX + json.dumps(reply) + "\n")
        replies.flush()


def cpu_ticks() -> dict[str, int]:
    """This machine's CPU time so far (all cores, in clock ticks) by kind, from /proc/stat."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return {}
    names = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
    return dict(zip(names, map(int, fields)))


def steal_adjusted(rates: list[float], steal: list[float]) -> float:
    """Median of each round's rate divided by the share of the CPU left to this machine
    (1 - steal): a first-order correction for the hypervisor's steal; NaN without steal figures."""
    if not rates or len(steal) != len(rates):
        return float("nan")
    return median([rate / max(1 - s / 100, 1e-6) for rate, s in zip(rates, steal)])


def steal_percent(before: dict[str, int], after: dict[str, int]) -> float | None:
    """Share of the CPU time between two `cpu_ticks()` that the hypervisor took (steal)."""
    total = sum(after.values()) - sum(before.values())
    if not before or total <= 0:
        return None
    return 100 * (after["steal"] - before["steal"]) / total


def _timed(run: Callable[[], None], count: int, sync: Callable[[], None]) -> float:
    start = time.perf_counter()
    for _ in range(count):
        run()
    sync()
    return time.perf_counter() - start


# ---------------------------------------------------------------------------- Keras worker


class KerasWorker:
    """Keras contenders under one backend: training steps, matmul limit, serving, evaluation."""

    def __init__(self, config: dict):
        os.environ["KERAS_BACKEND"] = config["backend"]
        import keras_resnet  # noqa: F401  before keras: TensorFlow loads with the library's runtime
        import keras  # defaults (keras_resnet.runtime), for every contender of this worker

        self.keras = keras
        self.backend = keras.backend.backend()
        self.config = config
        if self.backend == "tensorflow":
            import tensorflow as tf

            tf.config.threading.set_intra_op_parallelism_threads(config["intra_op_threads"])
            tf.config.threading.set_inter_op_parallelism_threads(config["inter_op_threads"])
        self.contenders: dict[str, Callable[[int], float]] = {}
        self.evaluators: dict[str, Callable[[], float]] = {}
        self.serving: dict[str, Callable[[int, int], dict]] = {}
        self.tmp = Path(tempfile.mkdtemp(prefix="train_throughput-"))

    def handlers(self) -> dict[str, Callable[[dict], dict]]:
        return {"versions": self.versions, "setup_train": self.setup_train, "time": self.time,
                "setup_matmul": self.setup_matmul, "setup_shortcut": self.setup_shortcut,
                "setup_serving": self.setup_serving,
                "serve": self.serve, "evaluate": self.evaluate, "release": self.release}

    def versions(self, request: dict) -> dict:
        import numpy as np

        info = {"keras": self.keras.__version__, "backend": self.backend, "numpy": np.__version__}
        if self.backend == "tensorflow":
            import tensorflow as tf

            info["tensorflow"] = tf.__version__
            from keras_resnet import runtime

            variable = os.environ.get(runtime.ONEDNN_VARIABLE, "unset")
            info["onednn"] = f"{'on' if runtime.onednn_enabled() else 'off'} " \
                             f"({runtime.ONEDNN_VARIABLE}={variable})"
        else:
            import jax

            info["jax"] = jax.__version__
            info["devices"] = [str(d) for d in jax.devices()]
        from keras_resnet.training import distribute, precision

        # What the trainers' --mixed_precision=auto trains in here.
        auto = precision.resolve_mixed_precision("auto", distribute.get_distribution())
        info["trainers_precision"] = "float32" if auto == "none" else auto
        return info

    # -- models

    def build(self, impl: str, net: str, image: int, channels: int, classes: int,
              weight_decay: float = 0.0, mean: bool = False):
        """Our net, keras.applications' ResNet50 or the hand-written keras.io CIFAR ResNet."""
        import numpy as np

        import keras_resnet

        keras = self.keras
        shape = (image, image, channels)
        if impl in ("ours", *VARIANTS):
            inputs = keras.Input(shape, name="image")
            x = keras_resnet.layers.SubtractMean(np.zeros(shape, np.float32))(inputs) if mean else inputs
            model = keras_resnet.get_model(net, input_tensor=x, classes=classes, weights=None,
                                           weight_decay=weight_decay)
            if impl == "ours":
                return model
            return keras.models.clone_model(model, clone_function=functools.partial(variant_layer, impl))
        if net in IMAGENET_NETS:
            return keras.applications.ResNet50(weights=None, input_shape=shape, classes=classes)
        data_format = "channels_first" if impl == "reference_channels_first" else "channels_last"
        return handwritten_cifar_resnet(keras, keras_resnet.get_spec(net).depth, shape, classes,
                                        data_format)

    def setup_train(self, request: dict) -> dict:
        """Build and compile a contender, run its first steps (tracing), keep its step function."""
        import numpy as np

        from keras_resnet.flops import count_flops

        keras = self.keras
        keras.mixed_precision.set_global_policy(
            "mixed_bfloat16" if request["precision"] == "bfloat16" else "float32")
        model = self.build(request["impl"], request["net"], request["image"], request["channels"],
                           request["classes"], request.get("weight_decay", 0.0),
                           request.get("mean", False))
        keras.mixed_precision.set_global_policy("float32")
        rng = np.random.default_rng(0)
        batch = request["batch"]
        x = rng.uniform(0, 255 if request.get("mean") else 1,
                        (batch, request["image"], request["image"], request["channels"])).astype("float32")
        y = rng.integers(0, request["classes"], batch).astype("int32")
        optimizer = keras.optimizers.SGD(LEARNING_RATE, momentum=MOMENTUM)
        if self.backend == "jax":
            step = jax_train_step(model, optimizer, x, y)
        else:
            model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(),
                          metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
                          jit_compile=request["xla"])
            step = tf_fit_steps(model, x, y, autotune=request.get("autotune", False))
        start = time.perf_counter()
        step(request["warmup_steps"])
        first = time.perf_counter() - start
        step_s = step(1)  # after tracing: what a step costs, to size the timed rounds
        self.contenders[request["id"]] = step
        if request.get("eval_images"):
            self.evaluators[request["id"]] = self._evaluator(model, x, y, request["eval_images"],
                                                             request["eval_batch"])
        return {"macs_per_image": count_flops(model), "params": model.count_params(),
                "warmup_s": first, "step_s": step_s}

    def _evaluator(self, model, x, y, images: int, batch: int) -> Callable[[], float]:
        import numpy as np

        from keras_resnet.training.cifar_data import tf_eval_dataset

        reps = -(-images // len(x))
        data = tf_eval_dataset(np.concatenate([x] * reps)[:images], np.concatenate([y] * reps)[:images],
                               batch)  # what the CIFAR trainer evaluates on TensorFlow
        model.evaluate(data, verbose=0)

        def run() -> float:
            start = time.perf_counter()
            model.evaluate(data, verbose=0)
            return time.perf_counter() - start

        return run

    def time(self, request: dict) -> dict:
        return {"seconds": self.contenders[request["id"]](request["steps"])}

    def evaluate(self, request: dict) -> dict:
        return {"seconds": self.evaluators[request["id"]]()}

    def release(self, request: dict) -> dict:
        self.contenders.pop(request["id"], None)
        self.evaluators.pop(request["id"], None)
        return {}

    def setup_matmul(self, request: dict) -> dict:
        """A `size`^2 matmul repeated; `time` steps are matmuls."""
        import numpy as np

        n, dtype = request["size"], request["dtype"]
        a = np.random.default_rng(0).standard_normal((n, n)).astype("float32")
        if self.backend == "jax":
            import jax
            import jax.numpy as jnp

            a = jnp.asarray(a, dtype=dtype)
            matmul = jax.jit(lambda m: m @ m)
            result = [matmul(a)]

            def run(count: int) -> float:
                return _timed(lambda: result.__setitem__(0, matmul(a)), count,
                              lambda: result[0].block_until_ready())
        else:
            import tensorflow as tf

            a = tf.cast(tf.constant(a), dtype)
            result = [tf.matmul(a, a)]

            def run(count: int) -> float:  # eager ops run synchronously on the CPU
                return _timed(lambda: result.__setitem__(0, tf.matmul(a, a)), count,
                              lambda: result[0][0, 0].numpy())
        run(2)
        self.contenders[request["id"]] = run
        return {}

    def setup_shortcut(self, request: dict) -> dict:
        """Forward and backward of option A's subsampling alone on one NHWC batch (`subsampling`
        kind); `time` steps are calls. TensorFlow backend."""
        import numpy as np
        import tensorflow as tf

        rng = np.random.default_rng(0)
        shape, stride = request["shape"], request["stride"]
        x = tf.constant(rng.normal(size=shape), tf.float32)
        function = subsampling(request["kind"])
        upstream = tf.constant(rng.normal(size=function(x, stride).shape), tf.float32)

        @tf.function
        def call():
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = function(x, stride)
            return tape.gradient(y, x, output_gradients=upstream)

        result = [call()]

        def run(count: int) -> float:
            return _timed(lambda: result.__setitem__(0, call()), count,
                          lambda: result[0][0, 0, 0, 0].numpy())

        run(1)
        self.contenders[request["id"]] = run
        return {"call_s": run(1)}

    # -- serving

    def setup_serving(self, request: dict) -> dict:
        """Export our net or keras.applications' through keras_resnet.export (BN folded for
        `ours` alone); load the SavedModel."""
        import numpy as np
        import tensorflow as tf

        from keras_resnet import export

        impl = request["impl"]
        model, metadata = export.untrained_model(request["net"], image_size=request["image"])
        if impl == "reference":
            model = self.build("reference", request["net"], request["image"], 3, model.output_shape[-1])
        elif impl == "ours_fused_inference_bn":
            model = self.keras.models.clone_model(
                model, clone_function=functools.partial(variant_layer, impl))
        start = time.perf_counter()
        path = export.export_saved_model(model, metadata, self.tmp / request["id"].replace("/", "_"),
                                         fold_bn=impl == "ours")
        export_s = time.perf_counter() - start
        function = tf.saved_model.load(str(path)).signatures["serving_default"]
        jpeg = tf.io.encode_jpeg(np.asarray(photograph(request["image"]))).numpy()
        one = tf.constant([jpeg])
        many = tf.constant([jpeg] * request["batch"])
        for inputs in (one, many):
            function(image_bytes=inputs)["probabilities"].numpy()

        def run(latency_calls: int, batch_calls: int) -> dict:
            latencies = []
            for _ in range(latency_calls):
                start = time.perf_counter()
                function(image_bytes=one)["probabilities"].numpy()
                latencies.append(time.perf_counter() - start)
            start = time.perf_counter()
            for _ in range(batch_calls):
                function(image_bytes=many)["probabilities"].numpy()
            return {"latencies_s": latencies, "batch_s": time.perf_counter() - start}

        self.serving[request["id"]] = run
        return {"export_s": export_s, "jpeg_bytes": len(jpeg)}

    def serve(self, request: dict) -> dict:
        return self.serving[request["id"]](request["latency_calls"], request["batch_calls"])


def photograph(size: int):
    """A real colour photograph (scikit-image's cat), cropped square and resized to 2x `size`."""
    import numpy as np
    import skimage.data
    from PIL import Image

    image = skimage.data.chelsea()
    side = min(image.shape[:2])
    image = Image.fromarray(image[:side, :side]).resize((2 * size, 2 * size), Image.BILINEAR)
    return np.asarray(image)


def variant_layer(variant: str, layer):
    """clone_model's layer copier for a variant of our net: the one layer kind it replaces
    (Keras's BatchNormalization, the fused-inference BN, or the strided-slice option-A shortcut),
    every other as is."""
    import keras

    import keras_resnet

    if variant == "ours_keras_bn" and isinstance(layer, keras_resnet.layers.BatchNormalization):
        return keras.layers.BatchNormalization.from_config(layer.get_config())
    if variant == "ours_fused_inference_bn" and isinstance(layer, keras_resnet.layers.BatchNormalization):
        return fused_inference_bn_class().from_config(layer.get_config())
    if variant == "ours_strided_shortcut" and isinstance(layer, keras_resnet.layers.ZeroPadShortcut):
        return strided_shortcut_class().from_config(layer.get_config())
    return layer.__class__.from_config(layer.get_config())


def subsampling(kind: str) -> Callable:
    """Option A's subsampling `x[:, ::s, ::s, :]` as keras_resnet does it, as the strided slice
    itself, or as a 1x1 max-pool of stride s: the same pixels and gradients."""
    from keras import ops

    import keras_resnet

    return {"keras_resnet": keras_resnet.layers.subsample,
            "strided_slice": lambda x, s: x[:, ::s, ::s, :] if s > 1 else x,
            "max_pool": lambda x, s: (ops.max_pool(x, pool_size=1, strides=s, padding="same")
                                      if s > 1 else x)}[kind]


@functools.cache
def fused_inference_bn_class():
    """keras_resnet's BatchNormalization inferring with TensorFlow's fused kernel as well."""
    import keras_resnet

    class FusedInferenceBatchNormalization(keras_resnet.layers.BatchNormalization):
        def call(self, inputs, training=None, mask=None):
            if training and self.trainable:
                return super().call(inputs, training=training, mask=mask)
            import tensorflow as tf

            outputs = tf.raw_ops.FusedBatchNormV3(
                x=inputs, scale=tf.cast(self.gamma, tf.float32), offset=tf.cast(self.beta, tf.float32),
                mean=tf.cast(self.moving_mean, tf.float32),
                variance=tf.cast(self.moving_variance, tf.float32), epsilon=self.epsilon,
                data_format="NHWC", is_training=False)[0]
            return tf.cast(outputs, self.compute_dtype)

    return FusedInferenceBatchNormalization


@functools.cache
def strided_shortcut_class():
    """keras_resnet's option A shortcut with the strided slice in place of layers.subsample."""
    from keras import ops

    import keras_resnet

    class StridedZeroPadShortcut(keras_resnet.layers.ZeroPadShortcut):
        def call(self, inputs):
            x = subsampling("strided_slice")(inputs, self.strides)
            return ops.pad(x, [[0, 0], [0, 0], [0, 0], [0, self.filters - x.shape[-1]]])

    return StridedZeroPadShortcut


def tf_fit_steps(model, x, y, autotune: bool = False) -> Callable[[int], float]:
    """`model.fit` (what the trainers run) over `steps` steps of one in-memory batch, with the
    trainers' tf.data options (no autotuner, whose thread delays the end of each `fit`), or with
    tf.data's default options (`autotune=True`), to measure that choice."""
    import tensorflow as tf

    from keras_resnet.training.cifar_data import tf_data_options

    data = tf.data.Dataset.from_tensors((x, y)).repeat()
    if not autotune:
        data = data.with_options(tf_data_options())

    def run(steps: int) -> float:
        start = time.perf_counter()
        model.fit(data, epochs=1, steps_per_epoch=steps, verbose=0)
        return time.perf_counter() - start

    return run


def jax_train_step(model, optimizer, x, y) -> Callable[[int], float]:
    """A jitted stateless SGD step with the batch on the device (the JAX trainers' fast path)."""
    import jax
    import jax.numpy as jnp
    import keras

    loss_object = keras.losses.SparseCategoricalCrossentropy()
    optimizer.build(model.trainable_variables)
    state = [[v.value for v in model.trainable_variables],
             [v.value for v in model.non_trainable_variables],
             [v.value for v in optimizer.variables]]
    x, y = jnp.asarray(x), jnp.asarray(y)

    def loss(trainable, non_trainable, images, labels):
        outputs, non_trainable = model.stateless_call(trainable, non_trainable, images, training=True)
        return loss_object(labels, outputs), non_trainable

    @functools.partial(jax.jit, donate_argnums=(0, 1, 2))  # the state is updated in place
    def step(trainable, non_trainable, optimizer_variables, images, labels):
        (value, non_trainable), grads = jax.value_and_grad(loss, has_aux=True)(
            trainable, non_trainable, images, labels)
        trainable, optimizer_variables = optimizer.stateless_apply(optimizer_variables, grads, trainable)
        return trainable, non_trainable, optimizer_variables, value

    def run(steps: int) -> float:
        start = time.perf_counter()
        value = None
        for _ in range(steps):
            outputs = step(*state, x, y)
            state[:], value = outputs[:3], outputs[3]
        value.block_until_ready()
        return time.perf_counter() - start

    return run


def handwritten_cifar_resnet(keras, depth: int, input_shape: tuple[int, int, int], classes: int,
                             data_format: str = "channels_last"):
    """The common keras.io CIFAR ResNet v1: Conv2D(same)-BN-ReLU layers, 1x1 conv projections.
    With `data_format="channels_first"` it takes the same channels-last images and transposes
    them once (what a channels-first net does with decoded images), then runs in NCHW."""
    layers = keras.layers
    channel_axis = 1 if data_format == "channels_first" else -1

    def unit(x, filters, kernel=3, strides=1, activation=True, batch_norm=True):
        x = layers.Conv2D(filters, kernel, strides=strides, padding="same", data_format=data_format,
                          kernel_initializer="he_normal")(x)
        if batch_norm:
            x = layers.BatchNormalization(axis=channel_axis)(x)
        return layers.Activation("relu")(x) if activation else x

    inputs = keras.Input(input_shape)
    x = layers.Permute((3, 1, 2))(inputs) if data_format == "channels_first" else inputs
    x = unit(x, 16)
    filters = 16
    for stage in range(3):
        for block in range((depth - 2) // 6):
            strides = 2 if stage > 0 and block == 0 else 1
            y = unit(unit(x, filters, strides=strides), filters, activation=False)
            if strides > 1:
                x = unit(x, filters, kernel=1, strides=strides, activation=False, batch_norm=False)
            x = layers.Activation("relu")(layers.add([x, y]))
        filters *= 2
    x = layers.Flatten()(layers.AveragePooling2D(8, data_format=data_format)(x))
    outputs = layers.Dense(classes, activation="softmax", kernel_initializer="he_normal")(x)
    suffix = "_channels_first" if data_format == "channels_first" else ""
    return keras.Model(inputs, outputs, name=f"keras_io_resnet{depth}{suffix}")


# ---------------------------------------------------------------------------- PyTorch worker


class TorchWorker:
    """torchvision's resnet50 and a CIFAR ResNet (option A), channels_last by default, SGD momentum."""

    def __init__(self, config: dict):
        import torch

        self.torch = torch
        torch.set_num_threads(config["threads"] or os.cpu_count())
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.compile = config["torch_compile"]
        self.memory_format = getattr(torch, config["memory_format"])
        self.contenders: dict[str, Callable[[int], float]] = {}

    def handlers(self) -> dict[str, Callable[[dict], dict]]:
        return {"versions": self.versions, "setup_train": self.setup_train, "time": self.time,
                "setup_matmul": self.setup_matmul, "release": self.release}

    def versions(self, request: dict) -> dict:
        import torchvision

        build = self.torch.__config__.show()
        blas = next((part.split("=", 1)[1] for part in build.replace(",", " ").split()
                     if part.startswith("BLAS_INFO=")), "unknown")
        return {"torch": self.torch.__version__, "torchvision": torchvision.__version__,
                "device": self.device, "threads": self.torch.get_num_threads(),
                "memory_format": str(self.memory_format).removeprefix("torch."),
                "python": sys.executable, "blas": blas,
                "mkldnn": bool(self.torch.backends.mkldnn.is_available())}

    def _sync(self) -> None:
        if self.device == "cuda":
            self.torch.cuda.synchronize()

    def setup_train(self, request: dict) -> dict:
        import torchvision

        torch = self.torch
        torch.manual_seed(0)
        if request["net"] in IMAGENET_NETS:
            model = torchvision.models.resnet50(num_classes=request["classes"])
        else:
            model = torch_cifar_resnet(torch, int(request["net"].removeprefix("resnet")),
                                       request["classes"])
        model = model.to(self.device, memory_format=self.memory_format).train()
        optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=MOMENTUM)
        forward = torch.compile(model) if self.compile else model
        size, batch = request["image"], request["batch"]
        x = torch.rand(batch, request["channels"], size, size, device=self.device).contiguous(
            memory_format=self.memory_format)
        y = torch.randint(0, request["classes"], (batch,), device=self.device)
        loss_fn = torch.nn.CrossEntropyLoss()
        bf16 = request["precision"] == "bfloat16"

        def one_step() -> None:
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(self.device, dtype=torch.bfloat16, enabled=bf16):
                loss = loss_fn(forward(x), y)
            loss.backward()
            optimizer.step()

        def run(steps: int) -> float:
            return _timed(one_step, steps, self._sync)

        start = time.perf_counter()
        run(request["warmup_steps"])
        warmup_s = time.perf_counter() - start
        self.contenders[request["id"]] = run
        return {"params": sum(p.numel() for p in model.parameters()),
                "warmup_s": warmup_s, "step_s": run(1)}

    def setup_matmul(self, request: dict) -> dict:
        torch = self.torch
        dtype = getattr(torch, request["dtype"])
        a = torch.randn(request["size"], request["size"], device=self.device).to(dtype)
        out = torch.empty_like(a)

        def run(count: int) -> float:
            return _timed(lambda: torch.mm(a, a, out=out), count, self._sync)

        run(2)
        self.contenders[request["id"]] = run
        return {}

    def time(self, request: dict) -> dict:
        return {"seconds": self.contenders[request["id"]](request["steps"])}

    def release(self, request: dict) -> dict:
        self.contenders.pop(request["id"], None)
        return {}


def torch_cifar_resnet(torch, depth: int, classes: int, shortcuts: bool = True):
    """Sec. 4.2's CIFAR ResNet in PyTorch: 3x3 convs, BN, option-A shortcuts (subsample + zeros);
    `shortcuts=False` gives the plain net of the same depth."""
    nn, functional = torch.nn, torch.nn.functional

    class Unit(nn.Module):
        def __init__(self, inputs: int, filters: int, stride: int):
            super().__init__()
            self.conv1 = nn.Conv2d(inputs, filters, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(filters)
            self.conv2 = nn.Conv2d(filters, filters, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(filters)
            self.stride, self.extra = stride, filters - inputs

        def forward(self, x):
            y = functional.relu(self.bn1(self.conv1(x)))
            y = self.bn2(self.conv2(y))
            if not shortcuts:
                return functional.relu(y)
            if self.stride > 1 or self.extra:
                x = functional.pad(x[:, :, ::self.stride, ::self.stride], (0, 0, 0, 0, 0, self.extra))
            return functional.relu(x + y)

    class CifarResNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16),
                                      nn.ReLU())
            units, inputs = [], 16
            for stage, filters in enumerate((16, 32, 64)):
                for block in range((depth - 2) // 6):
                    units.append(Unit(inputs, filters, 2 if stage and not block else 1))
                    inputs = filters
            self.units = nn.Sequential(*units)
            self.fc = nn.Linear(64, classes)

        def forward(self, x):
            return self.fc(self.units(self.stem(x)).mean((2, 3)))

    return CifarResNet()


def worker_main(kind: str) -> None:
    config = json.loads(sys.stdin.readline())
    if kind == "torch":
        serve_requests(TorchWorker(config).handlers())
        return
    worker = KerasWorker(config)
    try:
        serve_requests(worker.handlers())
    finally:
        shutil.rmtree(worker.tmp, ignore_errors=True)  # the exported SavedModels


# =============================================================================================
# The orchestrator.
# =============================================================================================


class Worker:
    """A worker process and its request/reply channel."""

    def __init__(self, name: str, python: str, kind: str, config: dict, env: dict[str, str]):
        self.name = name
        self.process = subprocess.Popen(
            [python, str(Path(__file__).resolve()), "worker", kind], cwd=REPO, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        self._send(config)

    def _send(self, message: dict) -> None:
        self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()

    def call(self, op: str, **request: Any) -> dict:
        self._send(dict(request, op=op))
        for line in self.process.stdout:
            if line.startswith(PROTOCOL_PREFIX):
                reply = json.loads(line[len(PROTOCOL_PREFIX):])
                if "error" in reply:
                    raise BenchmarkError(f"{self.name} worker, {op} {request}:\n{reply['error']}")
                return reply
        raise BenchmarkError(f"{self.name} worker exited with code {self.process.wait()} during "
                             f"{op} {request} (its stderr is above)")

    def close(self) -> None:
        if self.process.poll() is None:
            self._send({"op": "quit"})
            self.process.stdin.close()
            self.process.wait(timeout=60)


def worker_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env


def keras_worker(name: str, backend: str, inter_op_threads: int, intra_op_threads: int,
                 **env: str) -> Worker:
    """A Keras worker process on `backend` with TensorFlow's thread counts (0: its default) and
    extra environment variables."""
    return Worker(name, sys.executable, "keras",
                  {"backend": backend, "inter_op_threads": inter_op_threads,
                   "intra_op_threads": intra_op_threads},
                  worker_env(KERAS_BACKEND=backend, **env))


def find_torch_python(candidates: list[str]) -> tuple[str | None, str]:
    """The first Python that imports torch and torchvision, and a note saying which or why none."""
    tried = []
    for python in candidates:
        if not python or not shutil.which(python):
            tried.append(f"{python or '(empty)'}: not found")
            continue
        probe = subprocess.run([python, "-c", "import torch, torchvision"], check=False,
                               capture_output=True, text=True)
        if probe.returncode == 0:
            return python, f"PyTorch from {python}"
        tried.append(f"{python}: {probe.stderr.strip().splitlines()[-1] if probe.stderr else 'fails'}")
    return None, "PyTorch absent: " + "; ".join(tried)


def median(values: list[float]) -> float:
    return statistics.median(values)


def machine() -> dict:
    """What the run ran on, for the docs: CPU model and flags, cores, memory, load."""
    info = {"platform": platform.platform(), "python": platform.python_version(),
            "cpu_count": os.cpu_count(), "load_average_start": list(os.getloadavg())}
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        fields = dict(line.split(":", 1) for line in cpuinfo.splitlines() if ":" in line)
        fields = {k.strip(): v.strip() for k, v in fields.items()}
        info["cpu"] = fields.get("model name", platform.processor())
        flags = set(fields.get("flags", "").split())
        info["cpu_flags"] = sorted(f for f in flags if f.startswith(("avx", "amx", "fma")))
        meminfo = Path("/proc/meminfo").read_text().split()
        info["memory_gib"] = round(int(meminfo[meminfo.index("MemTotal:") + 1]) / 2**20, 1)
    except (OSError, ValueError):
        info["cpu"] = platform.processor() or platform.machine()
    return info


class Run:
    """One benchmark run: workers, contenders, rounds; `result` is the JSON."""

    def __init__(self, settings: dict):
        self.s = settings
        self.workers: dict[str, Worker] = {}
        self.result: dict[str, Any] = {"machine": machine(), "settings": settings, "notes": []}

    # -- workers

    def start_workers(self) -> None:
        versions = {}
        for backend in self.s["backends"]:
            self.workers[backend] = keras_worker(backend, backend, self.s["inter_op_threads"],
                                                 self.s["intra_op_threads"])
            versions[backend] = self.workers[backend].call("versions")
        if "torch" in self.s["impls"]:
            python, note = find_torch_python(self.s["torch_python"])
            self.result["torch"] = {"available": python is not None, "note": note}
            self.result["notes"].append(note)
            if python:
                self.workers["torch"] = Worker("torch", python, "torch", {
                    "threads": self.s["threads"], "torch_compile": self.s["torch_compile"],
                    "memory_format": self.s["torch_memory_format"]},
                    worker_env(OMP_NUM_THREADS=str(self.s["threads"] or os.cpu_count())))
                versions["torch"] = self.workers["torch"].call("versions")
        self.result["versions"] = versions
        self.resolve_precisions()

    def resolve_precisions(self) -> None:
        """`auto` in --precisions and --threads_precisions is the trainers' precision on this
        machine (`--mixed_precision=auto` of the Keras worker), and a precision named twice runs
        once; the goals are measured in it where it ran, else in float32."""
        trainers = self.result["versions"].get(self.s["backends"][0], {}).get(
            "trainers_precision", "float32")
        for name in ("precisions", "threads_precisions"):
            self.s[name] = list(dict.fromkeys(trainers if p == "auto" else p for p in self.s[name]))
        precisions = self.s["precisions"]
        self.result["trainers_precision"] = trainers
        self.result["goal_precision"] = trainers if trainers in precisions else (
            "float32" if "float32" in precisions else precisions[0])

    def close(self) -> None:
        for worker in self.workers.values():
            worker.close()
        self.result["machine"]["load_average_end"] = list(os.getloadavg())

    # -- timing helpers

    def alternate(self, contenders: list[dict], measure: Callable[[dict], float],
                  rounds: int) -> dict[str, list[float]]:
        """`measure` each contender once per round; the order rotates every round. Each
        contender's `steal_percent` gets the CPU steal of each of its rounds (a virtual machine's
        neighbours: the noise no alternation removes)."""
        values: dict[str, list[float]] = {c["id"]: [] for c in contenders}
        for contender in contenders:
            contender["steal_percent"] = []
        for r in range(rounds):
            for contender in contenders[r % len(contenders):] + contenders[: r % len(contenders)]:
                before = cpu_ticks()
                values[contender["id"]].append(measure(contender))
                steal = steal_percent(before, cpu_ticks())
                if steal is not None:
                    contender["steal_percent"].append(steal)
        return values

    def steps_for(self, seconds_per_step: float) -> int:
        return max(self.s["min_steps"], round(self.s["seconds_per_round"] / max(seconds_per_step, 1e-6)))

    # -- sections

    def limits(self) -> None:
        """Matrix-multiply GFLOP/s of each framework, alternated, at fp32 and the run's precisions."""
        n = self.s["matmul_size"]
        contenders = []
        for framework, worker in self.workers.items():
            for dtype in sorted({"float32", *self.s["precisions"]}):
                contender = {"id": f"matmul/{framework}/{dtype}", "worker": framework,
                             "framework": framework, "dtype": dtype, "matmul_size": n}
                worker.call("setup_matmul", id=contender["id"], size=n, dtype=dtype)
                seconds = worker.call("time", id=contender["id"], steps=1)["seconds"]
                contender["steps"] = max(2, round(self.s["matmul_seconds"] / max(seconds, 1e-6)))
                contenders.append(contender)

        rates = self.alternate(contenders, self.measure_limit, self.s["rounds"])
        limit: dict[str, dict] = {}
        for c in contenders:
            limit.setdefault(c["framework"], {})[c["dtype"]] = {
                "gflops": median(rates[c["id"]]), "rounds": rates[c["id"]], "matmul_size": n,
                "matmuls_per_round": c["steps"]}
        self.result["limit"] = limit
        best = max(limit, key=lambda framework: limit[framework]["float32"]["gflops"])
        self.result["machine_limit"] = {"gflops": limit[best]["float32"]["gflops"], "framework": best,
                                        "dtype": "float32"}
        for c in contenders:  # the limit's matmul runs on beside each net's training rounds
            if (c["framework"], c["dtype"]) == (best, "float32"):
                self.limit_matmul = c
            else:
                self.workers[c["worker"]].call("release", id=c["id"])

    def limit_in_rounds(self) -> dict:
        """The limit's matmul as one more contender of an alternation, so that a net's % of the
        limit divides rates measured in the same rounds (the machine's speed drifts over a run)."""
        return {**self.limit_matmul, "limit": True}

    def measure_limit(self, c: dict) -> float:
        n = c["matmul_size"]
        seconds = self.workers[c["worker"]].call("time", id=c["id"], steps=c["steps"])["seconds"]
        return 2 * n**3 * c["steps"] / seconds / 1e9

    def training(self) -> None:
        """Training images/s of every contender, alternated round by round within each net, with
        the limit's matmul as one more contender: each net's % of the limit is of the limit
        measured in its own rounds."""
        rows, limits = [], {}
        for net in self.s["nets"]:
            imagenet = net in IMAGENET_NETS
            batch = self.s["imagenet_batch"] if imagenet else self.s["cifar_batch"]
            image = self.s["imagenet_size"] if imagenet else 32
            classes = 1000 if imagenet else 10
            contenders = []
            for precision in self.s["precisions"]:
                for framework in [*self.s["backends"], "torch"]:
                    if framework not in self.workers:
                        continue
                    impls = ["torch"] if framework == "torch" else [
                        i for i in self.s["impls"] if i != "torch"]
                    xla_options = self.s["xla"] if framework == "tensorflow" else [framework == "jax"]
                    for impl in [i for i in impls if i in self.s["impls"]]:
                        if impl in CIFAR_ONLY_IMPLS and imagenet:
                            continue  # option B shortcuts: nothing to subsample; no NCHW keras.applications
                        for xla in xla_options:
                            contenders.append(self._setup_training(
                                net, impl, framework, precision, xla, batch, image, classes))
            macs = next((c["macs_per_image"] for c in contenders if c["impl"] == "ours"), None)

            def measure(c: dict) -> float:
                if c.get("limit"):
                    return self.measure_limit(c)
                seconds = self.workers[c["framework"]].call("time", id=c["id"], steps=c["steps"])["seconds"]
                return c["batch"] * c["steps"] / seconds

            limit = self.limit_in_rounds()
            rates = self.alternate([*contenders, limit], measure, self.s["rounds"])
            net_limit = median(rates[limit["id"]])
            limits[net] = {"gflops": net_limit, "rounds": rates[limit["id"]],
                           "steal_percent": limit["steal_percent"]}
            for c in contenders:
                self.workers[c["framework"]].call("release", id=c["id"])
                c["macs_per_image"] = c.get("macs_per_image") or macs
                c["images_per_s"] = median(rates[c["id"]])
                c["rounds"] = rates[c["id"]]
                if c["macs_per_image"]:
                    c["gflops"] = c["images_per_s"] * c["macs_per_image"] * 2 * 3 / 1e9
                    c["limit_gflops"] = net_limit
                    c["percent_of_limit"] = 100 * c["gflops"] / net_limit
                rows.append(c)
        self.result["training"] = rows
        self.result["training_limits"] = limits

    def _setup_training(self, net: str, impl: str, framework: str, precision: str, xla: bool,
                        batch: int, image: int, classes: int, **extra: Any) -> dict:
        label = {"ours": "keras_resnet", "ours_keras_bn": "keras_resnet, Keras BN",
                 "ours_strided_shortcut": "keras_resnet, strided-slice shortcut",
                 "torch": "torchvision" if net in IMAGENET_NETS else "pytorch",
                 "reference": "keras.applications" if net in IMAGENET_NETS else "keras.io-style",
                 "reference_channels_first": "keras.io-style, channels_first"}[impl]
        contender = {"id": f"{net}/{impl}/{framework}/{precision}/xla={xla}", "net": net,
                     "impl": impl, "implementation": label, "framework": framework,
                     "precision": precision, "xla": xla, "batch": batch, "image_size": image}
        setup = self.workers[framework].call(
            "setup_train", id=contender["id"], impl=impl, net=net, image=image, channels=3,
            classes=classes, batch=batch, precision=precision, xla=xla,
            warmup_steps=self.s["warmup_steps"], **extra)
        contender.update(setup)
        contender["steps"] = self.steps_for(setup["step_s"])
        return contender

    def _setup_ours_cifar(self, worker: Worker, contender_id: str, net: str, batch: int,
                          precision: str = "float32", **extra: Any) -> dict:
        """`setup_train` of our CIFAR net with XLA off (the sections that vary one setting of it:
        threads, autotune)."""
        return worker.call("setup_train", id=contender_id, impl="ours", net=net, image=32, channels=3,
                           classes=10, batch=batch, precision=precision, xla=False,
                           warmup_steps=self.s["warmup_steps"], **extra)

    def shortcut(self) -> None:
        """Forward + backward ms of option A's subsampling alone, per kind, alternated, at the
        CIFAR nets' two subsampling shapes (32x32x16 and 16x16x32, stride 2)."""
        if "tensorflow" not in self.workers:
            self.result["shortcut"] = {"skipped": "the comparison is of TensorFlow's kernels"}
            return
        worker, batch, contenders = self.workers["tensorflow"], self.s["cifar_batch"], []
        for size, channels in ((32, 16), (16, 32)):
            shape = [batch, size, size, channels]
            for kind in SUBSAMPLINGS:
                contender = {"id": f"shortcut/{kind}/{size}", "kind": kind, "shape": shape, "stride": 2}
                call_s = worker.call("setup_shortcut", id=contender["id"], kind=kind, shape=shape,
                                     stride=2)["call_s"]
                contender["calls"] = max(10, round(self.s["seconds_per_round"] / 5 / max(call_s, 1e-6)))
                contenders.append(contender)

        def measure(c: dict) -> float:
            return 1e3 * worker.call("time", id=c["id"], steps=c["calls"])["seconds"] / c["calls"]

        ms = self.alternate(contenders, measure, self.s["rounds"])
        rows = []
        for c in contenders:
            worker.call("release", id=c["id"])
            rows.append({"kind": c["kind"], "shape": c["shape"], "stride": c["stride"],
                         "calls_per_round": c["calls"], "ms_rounds": ms[c["id"]],
                         "median_ms": median(ms[c["id"]]), "steal_percent": c["steal_percent"]})
        self.result["shortcut"] = {"rows": rows}

    def threads(self) -> None:
        """Training images/s of our CIFAR net (--threads_net, in each of --threads_precisions; auto:
        the trainers' precision) under TensorFlow thread settings (inter-op x intra-op; 0 is
        TensorFlow's default, one per core), each optionally with one environment variable (e.g. a
        oneDNN option), one worker process per setting, alternated."""
        if "tensorflow" not in self.workers:
            self.result["threads"] = {"skipped": "thread settings are TensorFlow's"}
            return
        net, batch, workers, contenders = self.s["threads_net"], self.s["cifar_batch"], {}, []
        trainers, precisions = self.result["trainers_precision"], self.s["threads_precisions"]
        try:
            for setting in self.s["thread_settings"]:
                inter, intra, variables = parse_thread_setting(setting)
                worker = workers[setting] = keras_worker(f"tensorflow {setting}", "tensorflow", inter,
                                                         intra, **variables)
                versions = worker.call("versions")
                for precision in precisions:
                    contender = {"id": f"threads/{setting}/{precision}", "setting": setting,
                                 "precision": precision, "inter_op_threads": inter,
                                 "intra_op_threads": intra, "environment": variables,
                                 "versions": versions}
                    contender.update(
                        self._setup_ours_cifar(worker, contender["id"], net, batch, precision))
                    contender["steps"] = self.steps_for(contender["step_s"])
                    contenders.append(contender)

            def measure(c: dict) -> float:
                seconds = workers[c["setting"]].call("time", id=c["id"], steps=c["steps"])["seconds"]
                return batch * c["steps"] / seconds

            rates = self.alternate(contenders, measure, self.s["rounds"])
        finally:
            for worker in workers.values():
                worker.close()
        rows = [{k: c[k] for k in ("setting", "precision", "inter_op_threads", "intra_op_threads",
                                   "environment", "versions", "steal_percent")}
                | {"images_per_s": median(rates[c["id"]]), "rounds": rates[c["id"]]} for c in contenders]
        self.result["threads"] = {"net": net, "batch": batch, "precisions": precisions,
                                  "trainers_precision": trainers, "rows": rows}

    def autotune(self) -> None:
        """Whole `fit` calls of our net with and without tf.data's autotuner, alternated: the
        autotuner's thread holds up the end of each call (the trainers turn it off)."""
        if "tensorflow" not in self.workers:
            self.result["autotune"] = {"skipped": "tf.data runs on the TensorFlow backend"}
            return
        net, batch, steps = "resnet20", self.s["cifar_batch"], self.s["autotune_steps"]
        worker, contenders = self.workers["tensorflow"], []
        for autotune in (False, True):
            contender = {"id": f"autotune/{net}/{autotune}", "autotune": autotune}
            contender.update(self._setup_ours_cifar(worker, contender["id"], net, batch,
                                                    autotune=autotune))
            contenders.append(contender)

        def measure(c: dict) -> float:
            return worker.call("time", id=c["id"], steps=steps)["seconds"]

        seconds = self.alternate(contenders, measure, self.s["rounds"])
        rows = []
        for c in contenders:
            worker.call("release", id=c["id"])
            rows.append({"autotune": c["autotune"], "fit_seconds": seconds[c["id"]],
                         "median_fit_s": median(seconds[c["id"]]), "steal_percent": c["steal_percent"]})
        self.result["autotune"] = {"net": net, "batch": batch, "steps_per_fit": steps, "rows": rows}

    def trainer(self) -> None:
        """training/cifar10.py end to end vs the bare fit step of the same net, alternated."""
        if "tensorflow" not in self.workers:
            self.result["trainer"] = {"skipped": "needs the TensorFlow backend (the bare step is fit)"}
            return
        if not (FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").exists():
            self.result["trainer"] = {"skipped": f"{FASHION_MNIST_DIR} missing (Debian's "
                                      "dataset-fashion-mnist)"}
            return
        net, batch = self.s["trainer_net"], self.s["trainer_batch"]
        steps_per_epoch, epochs = self.s["trainer_steps_per_epoch"], self.s["trainer_epochs"]
        train = steps_per_epoch * batch
        # The paper's proportions: 45k training, 5k validation and 10k test images per epoch.
        validation, test = max(1, train // 9), max(1, 2 * train // 9)
        eval_batch = min(500, validation + test)
        bare_id = f"trainer/{net}/bare"
        precision = self.result["goal_precision"]  # both sides, as the trainers' default
        setup = self.workers["tensorflow"].call(
            "setup_train", id=bare_id, impl="ours", net=net, image=32, channels=1, classes=10,
            batch=batch, precision=precision, xla=False, warmup_steps=self.s["warmup_steps"],
            weight_decay=1e-4, mean=True, eval_images=validation + test, eval_batch=eval_batch)
        bare_steps = steps_per_epoch * (epochs - 1)
        workdir = Path(tempfile.mkdtemp(prefix="trainer-bench-"))
        args = ["--dataset=fashion_mnist", "--data_source=files", f"--model={net}",
                f"--batch_size={batch}", f"--max_train_examples={train + validation}",
                f"--validation_size={validation}", f"--max_test_examples={test}",
                f"--train_steps={steps_per_epoch * epochs}", f"--eval_batch_size={eval_batch}",
                f"--mixed_precision={'none' if precision == 'float32' else precision}", "--verbose=0"]
        runs = {"trainer": [], "bare": [], "evaluation": []}

        def measure(c: dict) -> float:
            if c["id"] == "bare":
                seconds = self.workers["tensorflow"].call("time", id=bare_id, steps=bare_steps)["seconds"]
                runs["evaluation"].append(
                    self.workers["tensorflow"].call("evaluate", id=bare_id)["seconds"])
                return bare_steps * batch / seconds
            model_dir = workdir / f"run{len(runs['trainer'])}"  # a fresh run each round
            runs["trainer"].append(str(model_dir))
            return trainer_rate(args + [f"--model_dir={model_dir}"], batch, self.s["subprocess_timeout"])

        contenders = [{"id": "trainer"}, {"id": "bare"}]
        rates = self.alternate(contenders, measure, self.s["trainer_rounds"])
        self.workers["tensorflow"].call("release", id=bare_id)
        shutil.rmtree(workdir, ignore_errors=True)
        trainer_rate_, bare_rate = median(rates["trainer"]), median(rates["bare"])
        epoch_train_s = steps_per_epoch * batch / bare_rate
        epoch_eval_s = median(runs["evaluation"])
        epoch_trainer_s = steps_per_epoch * batch / trainer_rate_
        # The trainer's epoch does the bare step's work plus one evaluation of the validation and
        # test images; what it costs beyond both is the input pipeline, callbacks and checkpoints.
        self.result["trainer"] = {
            "net": net, "batch": batch, "dataset": "fashion_mnist (real, in memory, padded to 32x32)",
            "steps_per_epoch": steps_per_epoch, "epochs": epochs,
            "train_images": train, "validation_images": validation, "test_images": test,
            "trainer_images_per_s": trainer_rate_, "bare_images_per_s": bare_rate,
            "trainer_epoch_s": epoch_trainer_s, "bare_epoch_s": epoch_train_s,
            "evaluation_s_per_epoch": epoch_eval_s,
            "overhead_percent": 100 * (epoch_trainer_s / (epoch_train_s + epoch_eval_s) - 1),
            "evaluation_percent_of_epoch": 100 * epoch_eval_s / epoch_trainer_s,
            "rounds": rates, "steal_percent": {c["id"]: c["steal_percent"] for c in contenders},
            "command": ["python", "training/cifar10.py", *args],
            "macs_per_image": setup["macs_per_image"],
        }

    def serving(self) -> None:
        """serving_default of our SavedModel, its fused-inference-BN variant's and
        keras.applications' (same export), alternated."""
        if "tensorflow" not in self.workers:
            self.result["serving"] = {"skipped": "SavedModel export needs the TensorFlow backend"}
            return
        worker, image, net = self.workers["tensorflow"], self.s["serving_size"], "resnet50"
        contenders = []
        for impl, label in SERVING_IMPLS.items():
            contender = {"id": f"serving/{net}/{impl}", "impl": impl, "implementation": label}
            contender.update(worker.call("setup_serving", id=contender["id"], impl=impl, net=net,
                                         image=image, batch=self.s["serving_batch"]))
            contenders.append(contender)
        samples: dict[str, dict[str, list[float]]] = {c["id"]: {"latencies_s": [], "batch_s": []}
                                                      for c in contenders}

        def measure(c: dict) -> float:
            out = worker.call("serve", id=c["id"], latency_calls=self.s["latency_calls"],
                              batch_calls=self.s["batch_calls"])
            samples[c["id"]]["latencies_s"] += out["latencies_s"]
            samples[c["id"]]["batch_s"].append(out["batch_s"])
            return out["batch_s"]

        self.alternate(contenders, measure, self.s["rounds"])
        rows = []
        for c in contenders:
            latencies = sorted(samples[c["id"]]["latencies_s"])
            batch_rates = [self.s["serving_batch"] * self.s["batch_calls"] / s
                           for s in samples[c["id"]]["batch_s"]]
            rows.append(dict(c, net=net, image_size=image, batch=self.s["serving_batch"],
                             p50_ms=1e3 * percentile(latencies, 50),
                             p99_ms=1e3 * percentile(latencies, 99), latency_samples=len(latencies),
                             batch_images_per_s=median(batch_rates), batch_rounds=batch_rates))
        self.result["serving"] = {"signature": "serving_default (JPEG bytes -> 1-crop -> net)",
                                  "rows": rows}

    def pipeline(self) -> None:
        """benchmarks/input_pipeline.py, run as its own process (it owns its measurements)."""
        if "tensorflow" not in self.workers:
            self.result["pipeline"] = {"skipped": "the tf.data pipeline needs TensorFlow"}
            return
        out = Path(tempfile.mkdtemp(prefix="pipeline-bench-")) / "pipeline.json"
        command = [sys.executable, str(REPO / "benchmarks" / "input_pipeline.py"),
                   "--contenders=fused,decode_only,pil", f"--json={out}",
                   *(["--quick"] if self.s["quick"] else [f"--rounds={self.s['rounds']}"])]
        completed = subprocess.run(command, check=False, cwd=REPO, env=worker_env(), capture_output=True, text=True,
                                   timeout=self.s["subprocess_timeout"])
        if completed.returncode != 0:
            raise BenchmarkError(f"{' '.join(command)} failed:\n{completed.stderr[-4000:]}")
        data = json.loads(out.read_text())
        shutil.rmtree(out.parent, ignore_errors=True)
        data["command"] = ["python", "benchmarks/input_pipeline.py", command[2], *command[4:]]
        self.result["pipeline"] = data

    # -- summary

    def goals(self) -> None:
        self.result["goals"] = evaluate_goals(self.result)
        if self.result.get("goal_precision", "float32") != "float32":
            self.result["goals_float32"] = evaluate_goals(self.result, "float32")


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def trainer_rate(args: list[str], batch: int, timeout: float) -> float:
    """Images/s of training/cifar10.py after its first epoch, from metrics.csv's wall_s column."""
    model_dir = Path(next(a for a in args if a.startswith("--model_dir=")).split("=", 1)[1])
    command = [sys.executable, str(REPO / "training" / "cifar10.py"), *args]
    completed = subprocess.run(command, check=False, cwd=REPO, env=worker_env(), capture_output=True, text=True,
                               timeout=timeout)
    if completed.returncode != 0:
        raise BenchmarkError(f"{' '.join(command)} failed:\n{completed.stderr[-4000:]}")
    with open(model_dir / "metrics.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f)]
    if len(rows) < 2:
        raise BenchmarkError(f"{model_dir}/metrics.csv has {len(rows)} epochs; need 2 or more")
    first, last = rows[0], rows[-1]
    steps = int(float(last["step"])) - int(float(first["step"]))
    return steps * batch / (float(last["wall_s"]) - float(first["wall_s"]))


def _training_row(result: dict, net: str, impl: str, framework: str = "tensorflow",
                  precision: str = "float32") -> dict | None:
    """The XLA-off row of `net` / `impl` / `framework` / `precision` (the goals' configuration)."""
    rows = [r for r in result.get("training", []) if r["net"] == net and r["impl"] == impl
            and r["framework"] == framework and r["precision"] == precision and not r["xla"]]
    return rows[0] if rows else None


def goal_values(result: dict, precision: str | None = None) -> dict[str, float]:
    """The figures the goals of issue 10 are stated in (absent where not measured), in `precision`
    (default: the run's goal precision, the trainers' default on the machine: the issue's "fp32
    unless faster otherwise"). Every contender of a ratio trains in that precision (PyTorch under
    autocast); the limit stays the float32 matmul."""
    precision = precision or result.get("goal_precision", "float32")
    values = {}
    for net in ("resnet20", "resnet56", "resnet110", "resnet50"):
        ours = _training_row(result, net, "ours", precision=precision)
        if not ours:
            continue
        if "percent_of_limit" in ours:
            values[f"{net}_percent_of_limit"] = ours["percent_of_limit"]
        reference = _training_row(result, net, "reference", precision=precision)
        if reference and net == "resnet50":
            values["resnet50_over_applications"] = ours["images_per_s"] / reference["images_per_s"]
        torch = _training_row(result, net, "torch", framework="torch", precision=precision)
        if torch:
            values[f"{net}_over_torch"] = ours["images_per_s"] / torch["images_per_s"]
    trainer = result.get("trainer", {})
    if "overhead_percent" in trainer:
        values["trainer_overhead_percent"] = trainer["overhead_percent"]
    pipeline = result.get("pipeline", {}).get("images_per_s_per_core", {})
    if {"fused", "pil"} <= pipeline.keys():
        values["pipeline_over_pil"] = pipeline["fused"] / pipeline["pil"]
    if {"fused", "decode_only"} <= pipeline.keys():
        values["pipeline_over_decode_only"] = pipeline["fused"] / pipeline["decode_only"]
    serving = {r["impl"]: r for r in result.get("serving", {}).get("rows", [])}
    if {"ours", "reference"} <= serving.keys():
        values["serving_p50_ratio"] = serving["ours"]["p50_ms"] / serving["reference"]["p50_ms"]
    return values


def evaluate_goals(result: dict, precision: str | None = None) -> list[dict]:
    """Each goal with its measured value (training figures in `precision`, default the run's goal
    precision); a negative target means 'at most |target|'."""
    values = goal_values(result, precision)
    goals = []
    for text, key, target in GOALS:
        if key not in values:
            continue
        value = values[key]
        met = value <= -target if target < 0 else value >= target
        goals.append({"goal": text, "key": key, "value": value,
                      "target": f"<= {-target:g}" if target < 0 else f">= {target:g}", "met": met})
    return goals


# ---------------------------------------------------------------------------- the table


def markdown(result: dict) -> str:
    """The run's tables, in markdown (printed by the benchmark, embedded by docs/make_performance.py)."""
    lines = ["### Matrix-multiply limit (GFLOP/s, median of rounds)", "",
             "| framework | dtype | GFLOP/s |", "|---|---|---:|"]
    for framework, by_dtype in result.get("limit", {}).items():
        for dtype, row in by_dtype.items():
            lines.append(f"| {framework} | {dtype} | {row['gflops']:.0f} |")
    if "machine_limit" in result:
        limit = result["machine_limit"]
        lines += ["", (f"The limit is {limit['framework']}'s {limit['dtype']} matmul. Each net's "
                       "'% of limit' divides by the limit measured in that net's own rounds (the "
                       "matmul alternates with its contenders), below; this table is the run's "
                       "start.")]
    if result.get("training_limits"):
        lines += ["", "| rounds of | limit GFLOP/s | each round |", "|---|---:|---|"]
        for net, row in result["training_limits"].items():
            lines.append(f"| {net} | {row['gflops']:.0f} | "
                         f"{', '.join(f'{v:.0f}' for v in row['rounds'])} |")
    if result.get("training"):
        lines += ["", "### Training (synthetic batch in memory, SGD momentum 0.9, median of rounds)", "",
                  ("| net | implementation | framework | precision | XLA | batch | images/s | "
                   "GFLOP/s | % of limit | CPU steal % | images/s, steal-adjusted |"),
                  "|---|---|---|---|---|---:|---:|---:|---:|---:|---:|"]
        for r in result["training"]:
            steal = r.get("steal_percent") or []
            lines.append(
                f"| {r['net']} | {r['implementation']} | {r['framework']} | {r['precision']} | "
                f"{'on' if r['xla'] else 'off'} | {r['batch']} | {r['images_per_s']:.1f} | "
                f"{r.get('gflops', float('nan')):.1f} | {r.get('percent_of_limit', float('nan')):.0f} | "
                f"{median(steal) if steal else float('nan'):.1f} | "
                f"{steal_adjusted(r['rounds'], steal):.1f} |")
    shortcut = result.get("shortcut", {})
    if "rows" in shortcut:
        lines += ["", ("### Option A's subsampling alone: forward + backward ms per call "
                       "(x[:, ::2, ::2, :] and its input gradient)"), "",
                  "| input (NHWC) | subsampling | median ms | each round, ms |", "|---|---|---:|---|"]
        for r in shortcut["rows"]:
            lines.append(f"| {'x'.join(map(str, r['shape']))} | {SUBSAMPLING_LABELS[r['kind']]} | "
                         f"{r['median_ms']:.2f} | {', '.join(f'{v:.2f}' for v in r['ms_rounds'])} |")
    threads = result.get("threads", {})
    if "rows" in threads:
        # Runs before --threads_precisions trained in one precision, given once for the section.
        precisions = threads.get("precisions", [threads.get("precision", "float32")])
        several = len(precisions) > 1
        lines += ["", (f"### TensorFlow threads: training {threads['net']} at batch {threads['batch']} "
                       f"in {' and '.join(precisions)}, one worker process per setting "
                       "(0: TensorFlow's default, one per core)"), "",
                  ("| inter-op threads | intra-op threads | environment | "
                   f"{'precision | ' if several else ''}images/s | CPU steal % | each round |"),
                  f"|---:|---:|---|{'---|' if several else ''}---:|---:|---|"]
        for r in threads["rows"]:
            steal = r["steal_percent"]
            variables = " ".join(f"`{k}={v}`" for k, v in r.get("environment", {}).items()) or "-"
            lines.append(f"| {r['inter_op_threads']} | {r['intra_op_threads']} | {variables} | "
                         f"{r['precision'] + ' | ' if several else ''}{r['images_per_s']:.1f} | "
                         f"{median(steal) if steal else float('nan'):.1f} | "
                         f"{', '.join(f'{v:.1f}' for v in r['rounds'])} |")
    autotune = result.get("autotune", {})
    if "rows" in autotune:
        lines += ["", (f"### tf.data's autotuner: whole `fit` calls of {autotune['steps_per_fit']} steps "
                       f"({autotune['net']}, batch {autotune['batch']})"), "",
                  "| tf.data options | median s per fit | each round, s |", "|---|---:|---|"]
        for r in autotune["rows"]:
            options = "defaults (autotune on)" if r["autotune"] else "the trainers' (autotune off)"
            lines.append(f"| {options} | {r['median_fit_s']:.2f} | "
                         f"{', '.join(f'{v:.2f}' for v in r['fit_seconds'])} |")
    trainer = result.get("trainer", {})
    lines += ["", "### CIFAR trainer end to end vs the bare fit step", ""]
    if "skipped" in trainer or not trainer:
        lines.append(f"Not measured: {trainer.get('skipped', 'section not run')}.")
    else:
        lines += [(f"One epoch of {trainer['steps_per_epoch']} steps of batch {trainer['batch']} "
                   f"({trainer['train_images']:,} images) with the evaluation of "
                   f"{trainer['validation_images']:,} validation and {trainer['test_images']:,} test "
                   "images that the trainer runs after each epoch; the bare side is the same net's "
                   "`fit` on one in-memory batch plus `evaluate` on as many images."), "",
                  ("| net | batch | trainer epoch s | bare fit s | bare evaluate s | overhead | "
                   "evaluation share of the epoch |"), "|---|---:|---:|---:|---:|---:|---:|",
                  (f"| {trainer['net']} | {trainer['batch']} | {trainer['trainer_epoch_s']:.1f} | "
                   f"{trainer['bare_epoch_s']:.1f} | {trainer['evaluation_s_per_epoch']:.1f} | "
                   f"{trainer['overhead_percent']:+.1f}% | {trainer['evaluation_percent_of_epoch']:.1f}% |")]
    serving = result.get("serving", {})
    lines += ["", "### Serving: serving_default of the exported SavedModel (JPEG bytes in)", ""]
    if "rows" not in serving:
        lines.append(f"Not measured: {serving.get('skipped', 'section not run')}.")
    else:
        lines += ["| net | implementation | input | batch-1 p50 ms | batch-1 p99 ms | batch | images/s |",
                  "|---|---|---|---:|---:|---:|---:|"]
        for r in serving["rows"]:
            lines.append(f"| {r['net']} | {r['implementation']} | {r['image_size']}px | {r['p50_ms']:.1f} | "
                         f"{r['p99_ms']:.1f} | {r['batch']} | {r['batch_images_per_s']:.1f} |")
    pipeline = result.get("pipeline", {})
    lines += ["", "### ImageNet input pipeline (images/s per core)", ""]
    if "images_per_s_per_core" not in pipeline:
        lines.append(f"Not measured: {pipeline.get('skipped', 'section not run')}.")
    else:
        lines += ["| contender | images/s per core |", "|---|---:|"]
        for name, rate in pipeline["images_per_s_per_core"].items():
            lines.append(f"| {name} | {rate:.1f} |")
    goal_precision = result.get("goal_precision", "float32")
    for key, title in (("goals", f"Goals (training in {goal_precision}, the trainers' default "
                                 "here; the limit is the float32 matmul)"),
                       ("goals_float32", "The same goals with every contender training in float32 "
                                         "(for comparison)")):
        if not result.get(key):
            continue
        lines += ["", f"### {title}", "", "| goal | measured | target | met |", "|---|---:|---|---|"]
        for g in result[key]:
            lines.append(f"| {g['goal']} | {g['value']:.2f} | {g['target']} | "
                         f"{'yes' if g['met'] else '**no**'} |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------- flags and main


FLAG_NAMES: list[str] = []


def define_flags() -> None:
    """The benchmark's absl flags (defined only when run as a script, not in a worker)."""
    from absl import flags

    before = set(flags.FLAGS)
    flags.DEFINE_bool("quick", False, "Smoke test: ResNet-20 only (ResNet-50 served at 64px), tiny "
                      "batches, 2 rounds of 1 step; flags given explicitly still apply.")
    flags.DEFINE_string("json", None, "Write the results here.")
    flags.DEFINE_list("sections", list(SECTIONS), f"Which of {SECTIONS} to run (limit always runs).")
    flags.DEFINE_list("backends", ["tensorflow"], f"Keras backends, of {BACKENDS}.")
    flags.DEFINE_list("nets", ["resnet20", "resnet56", "resnet110", "resnet50"],
                      f"Nets to train, of {CIFAR_NETS + IMAGENET_NETS}.")
    flags.DEFINE_list("impls", [i for i in IMPLS if i != "reference_channels_first"],
                      f"Implementations, of {IMPLS}.")
    flags.DEFINE_list("precisions", ["float32", "auto"], f"Compute precisions, of {PRECISIONS} or "
                      "auto: the trainers' --mixed_precision=auto on this machine (bfloat16 on CPUs "
                      "with AMX or AVX512-BF16), in which the goals are measured.")
    flags.DEFINE_list("xla", ["off"], "Keras jit_compile on TensorFlow: off, on, or both.")
    flags.DEFINE_integer("cifar_batch", 128, "Batch of the CIFAR nets.", lower_bound=1)
    flags.DEFINE_integer("imagenet_batch", 32, "Batch of ResNet-50.", lower_bound=1)
    flags.DEFINE_integer("imagenet_size", 224, "ResNet-50 input size.", lower_bound=32)
    flags.DEFINE_integer("rounds", 5, "Rounds; contenders alternate within each.", lower_bound=1)
    flags.DEFINE_float("seconds_per_round", 10.0, "Target seconds per contender per round.",
                       lower_bound=0.0)
    flags.DEFINE_integer("min_steps", 2, "Fewest timed steps per contender per round.", lower_bound=1)
    flags.DEFINE_integer("warmup_steps", 2, "Untimed steps after building (tracing).", lower_bound=1)
    flags.DEFINE_integer("matmul_size", 2048, "Side of the matmul measuring the limit.", lower_bound=16)
    flags.DEFINE_float("matmul_seconds", 2.0, "Seconds of matmuls per round.", lower_bound=0.0)
    flags.DEFINE_integer("threads", 0, "PyTorch threads (0: one per core).", lower_bound=0)
    flags.DEFINE_integer("intra_op_threads", 0, "TensorFlow intra-op threads (0: TF's default).",
                         lower_bound=0)
    flags.DEFINE_integer("inter_op_threads", 0, "TensorFlow inter-op threads (0: TF's default).",
                         lower_bound=0)
    flags.DEFINE_list("torch_python", [sys.executable, "/usr/bin/python3"],
                      "Pythons to try for the PyTorch worker, in order.")
    flags.DEFINE_bool("torch_compile", False, "torch.compile the PyTorch nets (PyTorch >= 2).")
    flags.DEFINE_enum("torch_memory_format", "channels_last", ["channels_last", "contiguous_format"],
                      "Memory format of the PyTorch nets and batches.")
    flags.DEFINE_list("thread_settings",
                      ["0x0", "1x0", "0x1", "3x0", "0x0:TF_ENABLE_ONEDNN_OPTS=0"],
                      "TensorFlow settings of the threads section: INTERxINTRA (inter-op x intra-op "
                      "threads, 0: TensorFlow's default), optionally :NAME=VALUE, one environment "
                      "variable of the worker (e.g. 0x0:TF_ENABLE_ONEDNN_OPTS=0).")
    flags.DEFINE_enum("threads_net", "resnet20", list(CIFAR_NETS), "CIFAR net of the threads section.")
    flags.DEFINE_list("threads_precisions", ["auto"],
                      f"Precisions of the threads section, of {PRECISIONS} or auto (the trainers'); "
                      "each setting trains in each.")
    flags.DEFINE_integer("autotune_steps", 10, "Steps per fit call of the autotune comparison.",
                         lower_bound=1)
    flags.DEFINE_string("trainer_net", "resnet20", "Net of the trainer-overhead comparison.")
    flags.DEFINE_integer("trainer_batch", 128, "Batch of the trainer comparison.", lower_bound=1)
    flags.DEFINE_integer("trainer_steps_per_epoch", 351, "Trainer epoch length in steps (default: "
                         "the paper's 45k training images at batch 128).", lower_bound=1)
    flags.DEFINE_integer("trainer_epochs", 2, "Trainer epochs (the first is not timed).", lower_bound=2)
    flags.DEFINE_integer("trainer_rounds", 2, "Trainer / bare-step rounds.", lower_bound=1)
    flags.DEFINE_integer("subprocess_timeout", 1800, "Seconds allowed per subprocess.", lower_bound=1)
    flags.DEFINE_integer("serving_size", 224, "Input size of the served ResNet-50.", lower_bound=32)
    flags.DEFINE_integer("serving_batch", 32, "Batch of the serving throughput figure.", lower_bound=1)
    flags.DEFINE_integer("latency_calls", 20, "Batch-1 calls per round.", lower_bound=1)
    flags.DEFINE_integer("batch_calls", 3, "Batched calls per round.", lower_bound=1)
    FLAG_NAMES.extend(sorted(set(flags.FLAGS) - before))


QUICK = {"rounds": 2, "seconds_per_round": 0.0, "min_steps": 1, "warmup_steps": 1,
         "nets": ["resnet20"], "cifar_batch": 8, "imagenet_batch": 2, "imagenet_size": 64,
         "matmul_size": 256, "matmul_seconds": 0.05, "autotune_steps": 1, "trainer_batch": 8,
         "trainer_steps_per_epoch": 3, "trainer_epochs": 2, "trainer_rounds": 1, "serving_size": 64,
         "serving_batch": 2, "latency_calls": 2, "batch_calls": 1,
         "thread_settings": ["0x0", "1x1:TF_ENABLE_ONEDNN_OPTS=0"]}


def parse_thread_setting(setting: str) -> tuple[int, int, dict[str, str]]:
    """'INTERxINTRA' or 'INTERxINTRA:NAME=VALUE' as (inter-op, intra-op, {NAME: VALUE})."""
    threads, _, variable = setting.partition(":")
    counts = threads.split("x")
    name, equals, value = variable.partition("=")
    if len(counts) != 2 or not all(c.isdigit() for c in counts) or (
            variable and not (equals and name.isidentifier())):
        raise ValueError(f"--thread_settings: {setting!r} is not INTERxINTRA (two counts >= 0, 0: "
                         "TensorFlow's default) with an optional :NAME=VALUE environment variable, "
                         "e.g. 0x0,1x2,0x0:TF_ENABLE_ONEDNN_OPTS=0.")
    return int(counts[0]), int(counts[1]), ({name: value} if variable else {})


def settings_from_flags(flag_values) -> dict:
    """The run's settings: flags, with --quick's overrides for flags not given explicitly."""
    settings = {name: flag_values[name].value for name in FLAG_NAMES}
    if settings["quick"]:
        for name, value in QUICK.items():
            if not flag_values[name].present:
                settings[name] = value
    checks = {"sections": SECTIONS, "backends": BACKENDS, "nets": CIFAR_NETS + IMAGENET_NETS,
              "impls": IMPLS, "precisions": (*PRECISIONS, "auto"),
              "threads_precisions": (*PRECISIONS, "auto"), "xla": ("off", "on")}
    for name, allowed in checks.items():
        unknown = [v for v in settings[name] if v not in allowed]
        if unknown or not settings[name]:
            raise ValueError(f"--{name}={','.join(settings[name])}: unknown {unknown or 'empty'}; "
                             f"allowed: {', '.join(allowed)}.")
    for setting in settings["thread_settings"]:
        parse_thread_setting(setting)
    settings["xla"] = [v == "on" for v in settings["xla"]]
    if "jax" in settings["backends"]:
        try:
            import jax  # noqa: F401
        except ImportError as error:
            raise ValueError(f"--backends includes jax, but JAX is not installed ({error}).") from None
    return settings


def run_benchmark(settings: dict) -> dict:
    run = Run(settings)
    walls = run.result["section_wall_s"] = {}
    try:
        for section in ("start_workers", "limits", *[s for s in SECTIONS if s in settings["sections"]]):
            start = time.perf_counter()
            getattr(run, section)()
            walls[section] = time.perf_counter() - start
        run.goals()
    finally:
        run.close()
    return run.result


def main(argv: list[str]) -> int:
    from absl import flags

    if len(argv) > 1:
        print(f"error: unexpected arguments {argv[1:]}", file=sys.stderr)
        return 2
    try:
        settings = settings_from_flags(flags.FLAGS)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    result = run_benchmark(settings)
    result["command"] = " ".join(["python benchmarks/train_throughput.py", *sys.argv[1:]])
    print(markdown(result))
    if settings["json"]:
        path = Path(settings["json"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "worker":
        worker_main(sys.argv[2])
    else:
        from absl import app

        define_flags()
        app.run(main)
