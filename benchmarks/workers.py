"""The worker processes: Keras contenders under one backend, or PyTorch's, answering requests.

    python -m benchmarks.workers keras|torch   # started by benchmarks.protocol.Worker

Top-level imports are stdlib and this package only: the PyTorch worker runs under a Python
without Keras or absl.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.contenders import (
    IMAGENET_NETS,
    LEARNING_RATE,
    MOMENTUM,
    VARIANTS,
    handwritten_cifar_resnet,
    jax_train_step,
    photograph,
    subsampling,
    tf_fit_steps,
    torch_cifar_resnet,
    variant_layer,
)
from benchmarks.protocol import serve_requests, timed


class KerasWorker:
    """Keras contenders under one backend: training steps, matmul limit, serving, evaluation."""

    def __init__(self, config: dict):
        os.environ["KERAS_BACKEND"] = config["backend"]
        # keras_resnet before keras: TensorFlow loads with the library's runtime defaults
        # (keras_resnet.runtime), for every contender of this worker.
        import keras_resnet  # noqa: F401

        # isort: split
        import keras

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
            x = inputs
            if mean:
                x = keras_resnet.layers.SubtractMean(np.zeros(shape, np.float32))(inputs)
            model = keras_resnet.get_model(net, input_tensor=x, classes=classes, weights=None,
                                           weight_decay=weight_decay)
            if impl == "ours":
                return model
            return keras.models.clone_model(
                model, clone_function=functools.partial(variant_layer, impl))
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
        shape = (batch, request["image"], request["image"], request["channels"])
        x = rng.uniform(0, 255 if request.get("mean") else 1, shape).astype("float32")
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
        data = tf_eval_dataset(np.concatenate([x] * reps)[:images],
                               np.concatenate([y] * reps)[:images],
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
                return timed(lambda: result.__setitem__(0, matmul(a)), count,
                              lambda: result[0].block_until_ready())
        else:
            import tensorflow as tf

            a = tf.cast(tf.constant(a), dtype)
            result = [tf.matmul(a, a)]

            def run(count: int) -> float:  # eager ops run synchronously on the CPU
                return timed(lambda: result.__setitem__(0, tf.matmul(a, a)), count,
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
            return timed(lambda: result.__setitem__(0, call()), count,
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
            model = self.build("reference", request["net"], request["image"], 3,
                               model.output_shape[-1])
        elif impl == "ours_fused_inference_bn":
            model = self.keras.models.clone_model(
                model, clone_function=functools.partial(variant_layer, impl))
        start = time.perf_counter()
        folder = self.tmp / request["id"].replace("/", "_")
        path = export.export_saved_model(model, metadata, folder, fold_bn=impl == "ours")
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


class TorchWorker:
    """torchvision's resnet50 and a CIFAR ResNet (option A), channels_last by default, SGD."""

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
            return timed(one_step, steps, self._sync)

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
            return timed(lambda: torch.mm(a, a, out=out), count, self._sync)

        run(2)
        self.contenders[request["id"]] = run
        return {}

    def time(self, request: dict) -> dict:
        return {"seconds": self.contenders[request["id"]](request["steps"])}

    def release(self, request: dict) -> dict:
        self.contenders.pop(request["id"], None)
        return {}


def worker_main(kind: str) -> None:
    """Read the config line, then answer requests until told to quit."""
    config = json.loads(sys.stdin.readline())
    if kind == "torch":
        serve_requests(TorchWorker(config).handlers())
        return
    worker = KerasWorker(config)
    try:
        serve_requests(worker.handlers())
    finally:
        shutil.rmtree(worker.tmp, ignore_errors=True)  # the exported SavedModels


if __name__ == "__main__":
    worker_main(sys.argv[1])
