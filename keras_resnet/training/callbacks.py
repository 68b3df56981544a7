"""The trainer's Keras callbacks: the global step, per-epoch errors (Fig. 6: training and test
error against iterations), metrics.csv, checkpoints and iteration-level TensorBoard scalars.

Every file goes through `files` (tf.io.gfile where TensorFlow is installed).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import keras

from keras_resnet.training.files import (
    CHECKPOINT_PREFIX,
    append_line,
    list_checkpoints,
    list_dir,
    make_dirs,
    path_exists,
    read_metrics_csv,
    read_text,
    remove_file,
    rename,
    write_atomic,
    write_json,
)

CSV_COLUMNS = ("epoch", "step", "lr", "loss", "train_error", "val_loss", "val_error",
               "test_loss", "test_error", "wall_s")


def evaluate(model: keras.Model, data: Any, batch_size: int) -> dict:
    """The compiled metrics ('loss', 'accuracy', ...) on `(x, y)` arrays or a finite dataset."""
    if isinstance(data, tuple):
        x, y = data
        result = model.evaluate(x, y, batch_size=batch_size, verbose=0, return_dict=True)
    else:
        result = model.evaluate(data, verbose=0, return_dict=True)
    return {name: float(value) for name, value in result.items()}


class StepCounter(keras.callbacks.Callback):
    """The global step: training steps completed, counted from the batches `fit` runs (the
    optimizer's iteration counter stops on steps a float16 loss scaler skips). Put it first in
    the callback list so the others see the count of the step in progress."""

    def __init__(self, step: int = 0):
        super().__init__()
        self.step = step
        self._first_batch = 0

    def __call__(self) -> int:
        return self.step

    def on_train_batch_begin(self, batch, logs=None):
        self._first_batch = batch

    def on_train_batch_end(self, batch, logs=None):
        self.step += batch - self._first_batch + 1  # steps_per_execution batches per call


class EpochMetrics(keras.callbacks.Callback):
    """Adds `step`, `train_error`, `val_error` and (evaluating the test set) `test_loss` /
    `test_error` to the epoch logs, for metrics.csv, TensorBoard and Fig. 6."""

    def __init__(self, test: Any, eval_batch_size: int, run_start: float, wall_before: float,
                 step_fn: Callable[[], int]):
        super().__init__()
        self.test = test
        self.eval_batch_size = eval_batch_size
        self.step_fn = step_fn
        self.run_start = run_start
        self.wall_before = wall_before

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        logs["step"] = self.step_fn()
        if "accuracy" in logs:
            logs["train_error"] = 1.0 - float(logs["accuracy"])
        if "val_accuracy" in logs:
            logs["val_error"] = 1.0 - float(logs["val_accuracy"])
        if self.test is not None:
            result = evaluate(self.model, self.test, self.eval_batch_size)
            logs.update({f"test_{name}": value for name, value in result.items()})
            logs["test_error"] = 1.0 - result["accuracy"]
        logs["wall_s"] = self.wall_before + time.time() - self.run_start


class MetricsCSV(keras.callbacks.Callback):
    """Appends one row per epoch to metrics.csv. On resume, rows of steps after the restored
    checkpoint (written after it and before a crash) are dropped, as they are trained again;
    the file is rewritten only then, and only those rows go."""

    def __init__(self, path: str, start_step: int, columns: Sequence[str] = CSV_COLUMNS):
        super().__init__()
        self.path = path
        self.columns = tuple(columns)
        lines = read_text(path).splitlines() if path_exists(path) else []
        if not lines:
            write_atomic(path, ",".join(self.columns) + "\n")
            return
        rows = read_metrics_csv(path)
        keep = [line for line, row in zip(lines[1:], rows) if row.get("step", 0) <= start_step]
        if len(keep) < len(rows):
            write_atomic(path, "\n".join(lines[:1] + keep) + "\n")

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {}, epoch=epoch + 1)
        append_line(self.path, ",".join(_csv_cell(logs.get(c)) for c in self.columns))


def _csv_cell(value) -> str:
    if value is None:
        return ""
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


class Checkpointer(keras.callbacks.Callback):
    """Saves weights + optimizer state (`ckpt-STEP.weights.h5`) and the trainer state
    (`ckpt-STEP.json`: step, warm-up, wall time) at every epoch end and every `every_steps`;
    keeps the newest `keep`."""

    def __init__(self, directory: str, keep: int, every_steps: int, state: Callable[[], dict],
                 step_fn: Callable[[], int]):
        super().__init__()
        self.step_fn = step_fn
        self.directory = directory
        self.keep = keep
        self.every_steps = every_steps
        self.state = state
        self.last_saved = -1
        make_dirs(directory)
        for name in list_dir(directory):  # partial files of a killed run
            if ".tmp-" in name:
                remove_file(os.path.join(directory, name))

    def on_train_begin(self, logs=None):
        self.last_saved = self.step_fn()

    def on_train_batch_end(self, batch, logs=None):
        step = self.step_fn()
        if self.every_steps and step // self.every_steps > self.last_saved // self.every_steps:
            self.save(step)

    def on_epoch_end(self, epoch, logs=None):
        self.save(self.step_fn())

    def save(self, step: int) -> None:
        if step == self.last_saved:
            return
        base = os.path.join(self.directory, f"{CHECKPOINT_PREFIX}{step:08d}")
        tmp = f"{base}.tmp-{os.getpid()}.weights.h5"
        self.model.save_weights(tmp)  # Keras writes remote paths through a local temp file
        rename(tmp, base + ".weights.h5")
        write_json(base + ".json", dict(self.state(), step=step))
        self.last_saved = step
        for _, old in list_checkpoints(self.directory)[: -self.keep]:
            for suffix in (".json", ".weights.h5"):
                if path_exists(old + suffix):
                    remove_file(old + suffix)


class IterationScalars(keras.callbacks.Callback):
    """TensorBoard scalars against iterations (Fig. 6's x axis), in `log_dir`/iterations: loss,
    lr and running training error every `every` steps; train / validation / test error at each
    epoch end. (Keras' TensorBoard callback logs against epochs.) Needs TensorFlow installed;
    runs under any backend."""

    def __init__(self, log_dir: str, every: int, step_fn: Callable[[], int],
                 lr_fn: Callable[[int], float]):
        super().__init__()
        import tensorflow as tf

        self.summary = tf.summary
        self.writer = tf.summary.create_file_writer(os.path.join(log_dir, "iterations"))
        self.every = every
        self.step_fn = step_fn
        self.lr_fn = lr_fn

    def on_train_begin(self, logs=None):
        """The model's inference graph, for TensorBoard's Graphs tab (written once per run; only
        on the TensorFlow backend, where the model can be traced by tf.function)."""
        if getattr(self, "_graph_written", False) or keras.backend.backend() != "tensorflow":
            return
        import tensorflow as tf

        specs = [tf.TensorSpec([None, *x.shape[1:]], x.dtype) for x in self.model.inputs]
        graph = tf.function(lambda *x: self.model(list(x) if len(x) > 1 else x[0])) \
            .get_concrete_function(*specs).graph
        with self.writer.as_default():
            self.summary.graph(graph)
        self._graph_written = True

    def on_train_batch_end(self, batch, logs=None):
        step = self.step_fn()
        if logs and step % self.every == 0:
            with self.writer.as_default(step=step):
                self.summary.scalar("loss", float(logs["loss"]))
                self.summary.scalar("lr", self.lr_fn(step - 1))
                if "accuracy" in logs:
                    self.summary.scalar("train_error_running", 1.0 - float(logs["accuracy"]))

    def on_epoch_end(self, epoch, logs=None):
        with self.writer.as_default(step=self.step_fn()):
            for name in ("train_error", "val_error", "test_error"):
                if logs and name in logs:
                    self.summary.scalar(name, float(logs[name]))
        self.writer.flush()
