"""Distribution for the trainers: tf.distribute strategies from flags, or JAX data parallelism.

TensorFlow is imported only inside the functions that need it, so the JAX path runs without it.
The global batch (the paper's 128 for CIFAR, Sec. 4.2; 256 for ImageNet, Sec. 3.4) is split over
the replicas; a global batch that does not divide is rejected.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

from keras_resnet.training.errors import UsageError

STRATEGIES = ("default", "one_device", "mirrored", "multi_worker_mirrored", "tpu")


class DistributionError(UsageError):
    """A strategy that cannot be set up as asked (bad flag combination, no TPU, no devices)."""


@dataclass
class Distribution:
    """What the trainer needs to know about how training is distributed."""

    name: str
    num_replicas: int = 1
    is_chief: bool = True
    task_id: int = 0
    strategy: Any = None  # tf.distribute.Strategy on TensorFlow, None on JAX
    devices: list[str] = field(default_factory=list)

    def scope(self):
        """Context for creating the model and optimizer (the strategy's scope on TensorFlow)."""
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    def describe(self) -> dict:
        return {"strategy": self.name, "num_replicas": self.num_replicas, "devices": self.devices,
                "is_chief": self.is_chief, "task_id": self.task_id}


def check_global_batch(global_batch: int, num_replicas: int, strategy: str) -> int:
    """Per-replica batch; raises if the global batch does not divide over the replicas."""
    if global_batch <= 0:
        raise DistributionError(f"--batch_size={global_batch}: must be a positive integer.")
    if global_batch % num_replicas:
        raise DistributionError(
            f"--batch_size={global_batch} does not divide over the {num_replicas} replicas of "
            f"--strategy={strategy}; use a multiple of {num_replicas} (e.g. "
            f"{(global_batch // num_replicas + 1) * num_replicas})."
        )
    return global_batch // num_replicas


def split_cpu(num_devices: int) -> None:
    """Split the host CPU into `num_devices` logical devices (to test data parallelism on a CPU).

    Must run before the backend initializes its devices.
    """
    if num_devices <= 1:
        return
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * num_devices
        )
    elif keras.backend.backend() == "jax":
        import jax

        jax.config.update("jax_num_cpu_devices", num_devices)


def tpu_resolver(tpu: str):
    """TPUClusterResolver for `--tpu` (a TPU name, `local`, or a `grpc://host:port` address)."""
    if not tpu:
        raise DistributionError(
            "--strategy=tpu needs --tpu=NAME (a Cloud TPU name), --tpu=local (a TPU VM) or "
            "--tpu=grpc://HOST:PORT."
        )
    import tensorflow as tf

    try:
        return tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
    except Exception as error:  # the resolver raises several types, all meaning "not found"
        raise DistributionError(
            f"--tpu={tpu}: cannot resolve the TPU: {_first_line(error)}"
        ) from None


def connect_tpu(tpu: str, timeout_s: float = 60.0):
    """Resolve, connect to and initialize the TPU system; a one-line error if none is reachable."""
    import tensorflow as tf

    resolver = tpu_resolver(tpu)
    if resolver.master():
        _check_reachable(resolver.master(), tpu, timeout_s)
    try:
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except Exception as error:
        raise DistributionError(
            f"--tpu={tpu}: no TPU reachable ({_first_line(error)}). Check the name or address, "
            f"or use --strategy=default."
        ) from None
    return resolver


def _check_reachable(master: str, tpu: str, timeout_s: float) -> None:
    """Fail fast with a clear error if the TPU's gRPC endpoint does not accept connections."""
    import socket
    from urllib.parse import urlparse

    address = urlparse(master if "://" in master else f"grpc://{master}")
    try:
        with socket.create_connection((address.hostname, address.port or 8470), timeout=timeout_s):
            pass
    except OSError as error:
        raise DistributionError(
            f"--tpu={tpu}: no TPU reachable at {master} ({error.strerror or error}). "
            f"Check the name or address, or use --strategy=default."
        ) from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"


def _tf_config_task() -> tuple[str, int, bool]:
    """(task type, index, is chief) from TF_CONFIG; the chief is 'chief' or else worker 0."""
    config = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")
    task = config.get("task", {})
    task_type, task_id = task.get("type", "worker"), int(task.get("index", 0))
    has_chief = "chief" in config.get("cluster", {})
    is_chief = task_type == "chief" or (task_type == "worker" and task_id == 0 and not has_chief)
    return task_type, task_id, is_chief


def get_distribution(
    strategy: str = "default",
    num_gpus: int | None = None,
    tpu: str = "",
    num_cpu_devices: int = 1,
) -> Distribution:
    """The distribution for `--strategy` on the current Keras backend.

    TensorFlow: `default` (no strategy), `one_device` (GPU 0 if any, else CPU), `mirrored` (all
    local GPUs, the first `--num_gpus`, or the logical CPUs of `--num_cpu_devices`),
    `multi_worker_mirrored` (cluster from TF_CONFIG), `tpu`. JAX: `default`/`one_device`, or
    `mirrored` = `keras.distribution.DataParallel` over the local devices.
    """
    if strategy not in STRATEGIES:
        raise DistributionError(
            f"--strategy={strategy!r}: unknown; allowed: {', '.join(STRATEGIES)}."
        )
    device_counts = ([f"--num_gpus={num_gpus}"] if num_gpus else []) + (
        [f"--num_cpu_devices={num_cpu_devices}"] if num_cpu_devices > 1 else [])
    if device_counts and strategy != "mirrored":
        raise DistributionError(f"{' and '.join(device_counts)}: for --strategy=mirrored only, not "
                                f"--strategy={strategy}.")
    split_cpu(num_cpu_devices)
    backend = keras.backend.backend()
    if backend == "jax":
        return _jax_distribution(strategy, num_gpus)
    if backend != "tensorflow":
        raise DistributionError(
            f"KERAS_BACKEND={backend}: the trainers support tensorflow and jax."
        )
    import tensorflow as tf

    if strategy == "default":
        return Distribution(
            "default", devices=[d.name for d in tf.config.list_logical_devices()][:1]
        )
    if strategy == "one_device":
        gpus = tf.config.list_logical_devices("GPU")
        device = gpus[0].name if gpus else tf.config.list_logical_devices("CPU")[0].name
        return Distribution("one_device", 1, strategy=tf.distribute.OneDeviceStrategy(device),
                            devices=[device])
    if strategy == "mirrored":
        gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
        if num_gpus:
            if num_gpus > len(gpus):
                raise DistributionError(
                    f"--num_gpus={num_gpus}, but only {len(gpus)} GPU(s) are visible: {gpus}."
                )
            gpus = gpus[:num_gpus]
        devices = gpus or [d.name for d in tf.config.list_logical_devices("CPU")]
        mirrored = tf.distribute.MirroredStrategy(devices=devices)
        return Distribution(
            "mirrored", mirrored.num_replicas_in_sync, strategy=mirrored, devices=devices
        )
    if strategy == "multi_worker_mirrored":
        if not os.environ.get("TF_CONFIG"):
            raise DistributionError(
                "--strategy=multi_worker_mirrored needs the TF_CONFIG environment variable "
                "(cluster and task); see tf.distribute.MultiWorkerMirroredStrategy."
            )
        _, task_id, is_chief = _tf_config_task()
        multi = tf.distribute.MultiWorkerMirroredStrategy()
        return Distribution("multi_worker_mirrored", multi.num_replicas_in_sync, is_chief=is_chief,
                            task_id=task_id, strategy=multi,
                            devices=[d.name for d in tf.config.list_logical_devices()])
    resolver = connect_tpu(tpu)
    tpu_strategy = tf.distribute.TPUStrategy(resolver)
    return Distribution("tpu", tpu_strategy.num_replicas_in_sync, strategy=tpu_strategy,
                        devices=[d.name for d in tf.config.list_logical_devices("TPU")])


def prepare_model(model: keras.Model, distribution: Distribution) -> None:
    """Work around keras-team/keras#20585 (Keras 3 `fit` under MultiWorkerMirroredStrategy);
    call after compile. Two Keras steps fail there: (1) `fit` builds the compiled metrics from
    one batch reduced with `strategy.reduce`, which fails for a nested (x, y) batch: build them
    from this worker's first replica's batch instead (only shapes matter); (2) the per-step logs
    are reduced with `strategy.reduce("MEAN", v, axis=0)`, which fails for scalars: return them
    with shape [1] (the metrics are mirrored variables aggregated over all replicas, so every
    replica holds the same global value and the mean leaves it unchanged)."""
    if distribution.name != "multi_worker_mirrored":
        return
    import tensorflow as tf

    strategy = distribution.strategy

    def local_batch(value):
        if isinstance(value, tf.distribute.DistributedValues):
            return strategy.experimental_local_results(value)[0]
        return value

    def maybe_symbolic_build(iterator=None, data_batch=None):
        if iterator is not None:
            for _, _, batches in iterator:
                data_batch = tf.nest.map_structure(local_batch, next(batches))
                break
        with strategy.scope():
            model._symbolic_build(data_batch=data_batch)

    def with_vector_logs(step):
        def wrapped(data):
            return {name: tf.reshape(value, [1]) for name, value in step(data).items()}

        return wrapped

    model._maybe_symbolic_build = maybe_symbolic_build
    model.train_step = with_vector_logs(model.train_step)
    model.test_step = with_vector_logs(model.test_step)


def distribution_callbacks(distribution: Distribution) -> list:
    """Callbacks a distribution needs during `fit` (before any that evaluate or save).

    Under `multi_worker_mirrored`, Keras 3's BN moving statistics are updated by each worker
    from its own shard and drift apart (the trainable weights stay identical): average them over
    all replicas at every epoch end, so all workers evaluate and save the same model.
    """
    if distribution.name != "multi_worker_mirrored":
        return []
    return [AverageNonTrainable(distribution.strategy)]


class AverageNonTrainable(keras.callbacks.Callback):
    """At epoch end, set every float non-trainable variable (BN moving mean / variance) to its
    mean over all replicas of `strategy` (one all-reduce)."""

    def __init__(self, strategy):
        super().__init__()
        self.strategy = strategy

    def on_epoch_end(self, epoch, logs=None):
        import tensorflow as tf

        variables = [v for v in self.model.non_trainable_variables
                     if "float" in str(v.dtype)]
        if not variables:
            return

        def local_values():
            return tf.concat([tf.reshape(tf.cast(v.value, tf.float32), [-1]) for v in variables], 0)

        mean = self.strategy.reduce("MEAN", self.strategy.run(local_values), axis=None)
        offset = 0
        for v in variables:
            size = int(np.prod(v.shape))
            v.assign(tf.cast(tf.reshape(mean[offset: offset + size], v.shape), v.dtype))
            offset += size


def _jax_distribution(strategy: str, num_gpus: int | None) -> Distribution:
    import jax

    if strategy in ("multi_worker_mirrored", "tpu"):
        raise DistributionError(
            f"--strategy={strategy} is TensorFlow-only; with KERAS_BACKEND=jax use default, "
            f"one_device or mirrored (keras.distribution.DataParallel over local devices)."
        )
    devices = jax.local_devices()
    if all(d.platform == "cpu" for d in devices):
        print(
            "warning: KERAS_BACKEND=jax with CPU devices only: XLA's CPU kernels train these nets "
            "several times slower than TensorFlow's (docs/performance.md, record "
            "results/benchmarks/speed-backends_amx-xeon-2core.json); KERAS_BACKEND=tensorflow is "
            "the faster choice on a CPU.",
            file=sys.stderr,
            flush=True,
        )
    if strategy != "mirrored":
        return Distribution(strategy, 1, devices=[str(devices[0])])
    if num_gpus:
        if num_gpus > len(devices):
            raise DistributionError(
                f"--num_gpus={num_gpus}, but only {len(devices)} device(s): {devices}."
            )
        devices = devices[:num_gpus]
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
    return Distribution("mirrored", len(devices), devices=[str(d) for d in devices])


def keras_backend() -> str:
    """The Keras backend in use ('tensorflow', 'jax', ...)."""
    return keras.backend.backend()


def is_tensorflow_installed() -> bool:
    """Whether TensorFlow can be imported (the JAX path runs without it)."""
    import importlib.util

    try:
        return importlib.util.find_spec("tensorflow") is not None
    except (ImportError, ValueError):  # e.g. blocked with sys.modules["tensorflow"] = None
        return False
