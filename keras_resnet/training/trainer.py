"""The training loop shared by the CIFAR (Sec. 4.2) and ImageNet (Sec. 3.4) trainers.

`run()` builds the model under the distribution's scope, compiles SGD with momentum, resumes
from the newest checkpoint in `model_dir/checkpoints` (weights, optimizer state and step; the
data position follows from the step), trains to exactly `total_steps`, and writes the model_dir
contract: checkpoints/, logs/ (TensorBoard), metrics.csv, metadata.json, results.json and the
final model.keras. Files are written atomically (`files`: temp file + rename), so a killed run
never leaves a half file. Where TensorFlow is installed, model_dir I/O goes through tf.io.gfile, so
model_dir may be a gs:// (or any tf.io.gfile) path; without TensorFlow (the JAX machine) it must be
a local path. A rerun with other defining flags is refused and damaged checkpoints are skipped
(`resume`); the callbacks that write the files are in `callbacks`, the precision in `precision`.
Only the chief writes model_dir's own files; another worker of a multi-worker run writes its
copies (for checking, e.g. that its weights equal the chief's) to model_dir/worker-ID/.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import keras

from keras_resnet import runtime
from keras_resnet.losses import SparseLabelSmoothingCrossentropy
from keras_resnet.training.callbacks import (
    CSV_COLUMNS,
    Checkpointer,
    EpochMetrics,
    IterationScalars,
    MetricsCSV,
    StepCounter,
    evaluate,
)
from keras_resnet.training.distribute import (
    Distribution,
    distribution_callbacks,
    is_tensorflow_installed,
    prepare_model,
)
from keras_resnet.training.errors import UsageError
from keras_resnet.training.files import make_dirs, read_json, rename, write_json
from keras_resnet.training.precision import POLICIES, resolve_mixed_precision, set_mixed_precision
from keras_resnet.training.resume import check_rerun, defining_flags, restore_latest
from keras_resnet.training.schedules import (
    LearningRateController,
    PiecewiseConstantWarmup,
    WarmupUntilError,
)


def training_loss(label_smoothing: float) -> keras.losses.Loss:
    """The trainer's loss: sparse cross-entropy, smoothed when label_smoothing > 0 (its range is
    checked by the loss)."""
    if label_smoothing:
        return SparseLabelSmoothingCrossentropy(label_smoothing)
    return keras.losses.SparseCategoricalCrossentropy()


@dataclass
class TrainConfig:
    """Everything `run()` needs besides the model and the data."""

    model_dir: str
    total_steps: int
    steps_per_epoch: int
    global_batch: int
    schedule: PiecewiseConstantWarmup
    warmup: WarmupUntilError | None = None
    momentum: float = 0.9
    mixed_precision: str = "none"
    jit_compile: bool = False
    steps_per_execution: int = 1
    keep_checkpoints: int = 3
    checkpoint_steps: int = 0
    log_steps: int = 100
    verbose: int | None = None
    seed: int = 0
    # Mix e of the uniform distribution into the one-hot targets (0: the paper's plain loss).
    label_smoothing: float = 0.0
    # Train from step 0 when checkpoints exist and none loads (all damaged); else that stops.
    start_over: bool = False
    # The script's flag values: results.json records them all, metadata.json those defining
    # the run (resume.defining_flags), which a rerun into the model_dir must repeat.
    flags: dict = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)
    # Metrics besides accuracy (e.g. top-5), made under the strategy scope; logged as NAME,
    # val_NAME and test_NAME in metrics.csv.
    extra_metrics: Callable[[], list] | None = None


@dataclass
class TrainData:
    """Inputs for `run()`.

    `train(first_step, num_steps)` returns what `fit` accepts (a tf.data.Dataset or a
    keras.utils.PyDataset) yielding exactly `num_steps` global batches, the ones of steps
    `first_step ...`: the data position of a resumed run. `validation` / `test` are `(x, y)`
    numpy arrays or a finite dataset of batches, or None.
    """

    train: Callable[[int, int], Any]
    num_train_examples: int
    validation: Any = None
    test: Any = None
    eval_batch_size: int = 256


@dataclass(frozen=True)
class Segment:
    """One `fit` call: Keras epochs [initial_epoch, epochs) of `steps_per_epoch` steps."""

    initial_epoch: int
    epochs: int
    steps_per_epoch: int
    first_step: int

    @property
    def num_steps(self) -> int:
        return (self.epochs - self.initial_epoch) * self.steps_per_epoch


def plan_segments(start_step: int, total_steps: int, steps_per_epoch: int) -> list[Segment]:
    """Split steps [start_step, total_steps) into fit calls whose epochs stay aligned with data
    epochs: a partial first epoch (resumed mid-epoch), the full epochs, a partial last epoch."""
    segments, step = [], start_step
    while step < total_steps:
        epoch = step // steps_per_epoch
        if step % steps_per_epoch == 0 and (epoch + 1) * steps_per_epoch <= total_steps:
            last = total_steps // steps_per_epoch
            segments.append(Segment(epoch, last, steps_per_epoch, step))
            step = last * steps_per_epoch
        else:
            count = min((epoch + 1) * steps_per_epoch, total_steps) - step
            segments.append(Segment(epoch, epoch + 1, count, step))
            step += count
    return segments


def check_batch_size(batch: int, num_examples: int, where: str = "") -> None:
    """Raise UsageError unless the training set holds one global batch (`where`: its location,
    for the message)."""
    if num_examples < batch:
        raise UsageError(f"--batch_size={batch} is larger than the {num_examples} training "
                         f"images{where}.")


def check_steps_per_execution(steps_per_execution: int, steps_per_epoch: int, total_steps: int,
                              start_step: int = 0) -> None:
    """Raise UsageError unless `steps_per_execution` divides every fit epoch's length and start.

    Keras runs `steps_per_execution` steps per call whatever is left of the epoch: an epoch of 16
    steps at 3 per call trains 18, takes the next epoch's batches and miscounts the step."""
    lengths = {"the steps per epoch": steps_per_epoch, "the run's total steps": total_steps}
    if start_step:
        lengths["the step it resumes from"] = start_step
    uneven = [f"{name} ({value})" for name, value in lengths.items() if value % steps_per_execution]
    if uneven:
        common = math.gcd(*lengths.values())
        divisors = [d for d in range(1, common + 1) if common % d == 0]
        raise UsageError(
            f"--steps_per_execution={steps_per_execution} does not divide {' and '.join(uneven)}: "
            f"Keras runs {steps_per_execution} steps per call whatever is left of an epoch. "
            f"Values that divide {', '.join(str(v) for v in lengths.values())}: "
            f"{', '.join(map(str, divisors))}.")


def hardware() -> dict:
    """The devices training ran on, whether TensorFlow ran its oneDNN kernels, and how loaded the
    machine was (1/5/15-minute load averages as training ends; the run itself accounts for about
    its thread count), for results.json; the host from `runtime.machine`."""
    host = runtime.machine()
    info = {"backend": keras.backend.backend(), "platform": host["platform"],
            "processor": host["processor"], "cpu_model": host["cpu"],
            "cpu_count": host["cpu_count"],
            "cpu_bfloat16": [f for f in host["cpu_flags"] if f.startswith(("amx", "avx512_bf16"))],
            "load_average_at_end": [round(x, 2) for x in host["load_average"]]}
    if keras.backend.backend() == "jax":
        import jax

        info["devices"] = [f"{d.platform}:{getattr(d, 'device_kind', '')}" for d in jax.devices()]
    elif keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        info["tensorflow"] = tf.__version__
        info["onednn"] = runtime.onednn_enabled()
        info["devices"] = [
            tf.config.experimental.get_device_details(d).get("device_name", d.name)
            if d.device_type == "GPU" else d.name
            for d in tf.config.list_physical_devices()
        ]
    info["keras"] = keras.__version__
    return info


def summary_line(results: dict) -> str:
    """The one-line summary printed at the end of a run."""
    error = results.get("test_error")
    error_text = "n/a" if error is None else f"{100 * error:.2f}%"
    return (
        f"{results['model']} on {results['dataset']}: test error {error_text} "
        f"after {results['steps']} steps ({results['epochs']:.1f} epochs), "
        f"{results['train_wall_s']:.0f} s, {results['images_per_s']:.0f} images/s on "
        f"{results['distribution']['num_replicas']} replica(s) "
        f"[{results['distribution']['strategy']}]; "
        f"{results['model_dir']}"
    )


def run(
    config: TrainConfig,
    distribution: Distribution,
    build_model: Callable[[], keras.Model],
    data: TrainData,
) -> dict:
    """Train (or resume) to `config.total_steps` and write the model_dir contract; returns
    results.json's contents. A finished run is not trained again; a model_dir holding a run
    with other defining flags is refused before anything in it changes."""
    model_dir = config.model_dir if "://" in config.model_dir else os.path.abspath(config.model_dir)
    check_rerun(model_dir, config.flags, config.metadata)
    results_path = os.path.join(model_dir, "results.json")
    finished = read_json(results_path)
    if finished and finished.get("steps", -1) >= config.total_steps:
        print(f"Already finished: {summary_line(finished)}", flush=True)
        return finished
    check_steps_per_execution(
        config.steps_per_execution, config.steps_per_epoch, config.total_steps
    )

    write_dir = model_dir if distribution.is_chief else os.path.join(
        model_dir, f"worker-{distribution.task_id}")
    make_dirs(write_dir)
    checkpoint_dir = os.path.join(model_dir, "checkpoints")
    precision = resolve_mixed_precision(config.mixed_precision, distribution)
    recorded = read_json(os.path.join(model_dir, "metadata.json")) or {}
    started_in = recorded.get("mixed_precision")
    if config.mixed_precision == "auto" and started_in in POLICIES:
        precision = started_in  # a resumed run keeps the precision `auto` chose at its start
    metadata = dict(config.metadata, backend=keras.backend.backend(), mixed_precision=precision,
                    flags=recorded.get("flags") or defining_flags(config.flags))

    keras.utils.set_random_seed(config.seed)
    set_mixed_precision(precision)
    with distribution.scope():
        model = build_model()
        extra_metrics = config.extra_metrics() if config.extra_metrics else []
        optimizer = keras.optimizers.SGD(learning_rate=float(config.schedule.value(0)),
                                         momentum=config.momentum)
        if precision == "float16":
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        model.compile(
            optimizer=optimizer,
            loss=training_loss(config.label_smoothing),
            metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy"), *extra_metrics],
            jit_compile=True if keras.backend.backend() == "jax" else config.jit_compile,
            steps_per_execution=config.steps_per_execution,
        )
        optimizer.build(model.trainable_variables)
        prepare_model(model, distribution)
        state = restore_latest(model, checkpoint_dir, config.start_over,
                               distribution.is_chief)
    if distribution.is_chief:
        write_json(os.path.join(model_dir, "metadata.json"), metadata)
    start_step = int(state.get("step", 0))
    check_steps_per_execution(
        config.steps_per_execution, config.steps_per_epoch, config.total_steps, start_step
    )
    if state and config.warmup is not None and state.get("warmup_ended_at") is not None:
        config.warmup.ended_at = int(state["warmup_ended_at"])
    wall_before = float(state.get("train_wall_s", 0.0))
    if start_step:
        print(f"Resuming from step {start_step} ({checkpoint_dir})", flush=True)

    run_start = time.time()

    def trainer_state() -> dict:
        return {"warmup_ended_at": None if config.warmup is None else config.warmup.ended_at,
                "train_wall_s": wall_before + time.time() - run_start}

    counter = StepCounter(start_step)
    lr_controller = LearningRateController(config.schedule, config.warmup, step_fn=counter)
    callbacks: list[keras.callbacks.Callback] = [
        counter,
        *distribution_callbacks(distribution),
        lr_controller,
        EpochMetrics(data.test, data.eval_batch_size, run_start, wall_before, step_fn=counter),
        MetricsCSV(
            os.path.join(write_dir, "metrics.csv"),
            start_step,
            CSV_COLUMNS
            + tuple(f"{prefix}{m.name}" for m in extra_metrics for prefix in ("", "val_", "test_")),
        ),
        Checkpointer(
            checkpoint_dir if distribution.is_chief else os.path.join(write_dir, "checkpoints"),
            config.keep_checkpoints,
            config.checkpoint_steps,
            trainer_state,
            step_fn=counter,
        ),
    ]
    if is_tensorflow_installed():  # TensorBoard summaries are written with tf.summary
        log_dir = os.path.join(write_dir, "logs")
        callbacks.append(keras.callbacks.TensorBoard(log_dir=log_dir, update_freq="epoch",
                                                     write_graph=True))
        callbacks.append(IterationScalars(log_dir, config.log_steps, counter, lr_controller.lr_at))
    verbose = config.verbose if config.verbose is not None else (1 if sys.stdout.isatty() else 2)

    for segment in plan_segments(start_step, config.total_steps, config.steps_per_epoch):
        model.fit(
            data.train(segment.first_step, segment.num_steps),
            initial_epoch=segment.initial_epoch,
            epochs=segment.epochs,
            steps_per_epoch=segment.steps_per_epoch,
            validation_data=data.validation,
            validation_batch_size=data.eval_batch_size,
            callbacks=callbacks,
            verbose=verbose,
            shuffle=False,
        )
    this_run_wall = time.time() - run_start
    train_wall = wall_before + this_run_wall
    steps = counter.step

    test = evaluate(model, data.test, data.eval_batch_size) if data.test is not None else None
    model_path = os.path.join(write_dir, "model.keras")
    tmp_model = os.path.join(write_dir, f"model.tmp-{os.getpid()}.keras")
    model.save(tmp_model)
    rename(tmp_model, model_path)
    trained_here = max(steps - start_step, 0)
    results = {
        "model": metadata.get("model"),
        "dataset": metadata.get("dataset"),
        "test_error": None if test is None else 1.0 - test["accuracy"],
        "test_loss": None if test is None else test["loss"],
        "test_metrics": test,
        "steps": steps,
        "epochs": steps / config.steps_per_epoch,
        "global_batch": config.global_batch,
        "train_wall_s": train_wall,
        "images_per_s": trained_here * config.global_batch / max(this_run_wall, 1e-9),
        "resumed_from_step": start_step,
        "mixed_precision": precision,
        "distribution": distribution.describe(),
        "hardware": hardware(),
        "flags": config.flags,
        "model_dir": model_dir,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    write_json(os.path.join(write_dir, "results.json"), results)
    print(summary_line(results), flush=True)
    return results
