"""Learning-rate schedules of the paper (Sec. 3.4, 4.2) and of Goyal et al. 2017, plus the
warm-up-until-error rule of Sec. 4.2 for ResNet-110 and deeper.

Schedules are serializable `keras.optimizers.schedules.LearningRateSchedule`s that can be called
with a Python int (see `value`) or inside a compiled train step. The trainer drives the
optimizer's learning-rate variable from a schedule with `LearningRateController`, which also
implements the data-dependent warm-up (that rule cannot be a pure function of the step).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras
from keras import ops

from keras_resnet.training.errors import UsageError

# Sec. 4.2: "0.1, divided by 10 at 32k and 48k iterations, and terminate training at 64k".
CIFAR_BOUNDARIES = (32000, 48000)
CIFAR_TOTAL_STEPS = 64000
# Sec. 4.2: ResNet-110 warms up at 0.01 "until the training error is below 80% (about 400
# iterations)".
WARMUP_ERROR_THRESHOLD = 0.8
WARMUP_DEPTH = 110


@keras.saving.register_keras_serializable(package="keras_resnet")
class PiecewiseConstantWarmup(keras.optimizers.schedules.LearningRateSchedule):
    """Piecewise-constant lr with an optional warm-up over the first `warmup_steps` steps.

    `values[i]` applies for `boundaries[i-1] <= step < boundaries[i]` (so the drop happens *at*
    the boundary step, e.g. 0.1 at step 31999 and 0.01 at step 32000). During warm-up the lr is
    `warmup_lr` (`warmup="constant"`, Sec. 4.2) or ramps linearly from `warmup_lr` to `values[0]`
    (`warmup="linear"`, Goyal et al. 2017, Sec. 2.2 "gradual warmup").
    """

    def __init__(
        self,
        boundaries: Sequence[int],
        values: Sequence[float],
        warmup_steps: int = 0,
        warmup_lr: float | None = None,
        warmup: str = "constant",
        name: str | None = None,
    ):
        super().__init__()
        boundaries = [int(b) for b in boundaries]
        values = [float(v) for v in values]
        if len(values) != len(boundaries) + 1:
            raise ValueError(
                f"PiecewiseConstantWarmup: need len(values) == len(boundaries) + 1, got "
                f"boundaries={boundaries}, values={values}."
            )
        if boundaries != sorted(boundaries):
            raise ValueError(
                f"PiecewiseConstantWarmup: boundaries must increase, got {boundaries}."
            )
        if warmup not in ("constant", "linear"):
            raise ValueError(
                f"PiecewiseConstantWarmup: warmup={warmup!r}; allowed: 'constant', 'linear'."
            )
        self.boundaries = boundaries
        self.values = values
        self.warmup_steps = int(warmup_steps)
        self.warmup_lr = values[0] if warmup_lr is None else float(warmup_lr)
        self.warmup = warmup
        self.name = name

    def value(self, step: int) -> float:
        """The lr at integer `step`, in plain Python."""
        if step < self.warmup_steps:
            if self.warmup == "constant":
                return self.warmup_lr
            return self.warmup_lr + (self.values[0] - self.warmup_lr) * step / self.warmup_steps
        index = sum(1 for b in self.boundaries if step >= b)
        return self.values[index]

    def __call__(self, step):
        step = ops.cast(step, "float32")
        lr = ops.convert_to_tensor(self.values[0], "float32")
        for boundary, value in zip(self.boundaries, self.values[1:]):
            lr = ops.where(step >= boundary, ops.convert_to_tensor(value, "float32"), lr)
        if self.warmup_steps > 0:
            if self.warmup == "constant":
                warm = ops.convert_to_tensor(self.warmup_lr, "float32")
            else:
                warm = self.warmup_lr + (self.values[0] - self.warmup_lr) * step / self.warmup_steps
            lr = ops.where(step < self.warmup_steps, warm, lr)
        return lr

    def get_config(self) -> dict:
        return {
            "boundaries": self.boundaries,
            "values": self.values,
            "warmup_steps": self.warmup_steps,
            "warmup_lr": self.warmup_lr,
            "warmup": self.warmup,
            "name": self.name,
        }


def cifar_schedule(
    base_lr: float = 0.1,
    boundaries: Sequence[int] = CIFAR_BOUNDARIES,
    decay: float = 0.1,
) -> PiecewiseConstantWarmup:
    """Sec. 4.2: `base_lr`, divided by 10 at each boundary (32k and 48k iterations)."""
    values = [base_lr * decay**i for i in range(len(boundaries) + 1)]
    return PiecewiseConstantWarmup(boundaries, values)


def scaled_boundaries(boundaries: Sequence[int], total_steps: int, paper_total: int) -> list[int]:
    """Boundaries rescaled proportionally when training for `total_steps` instead of
    `paper_total`."""
    return [max(1, int(round(b * total_steps / paper_total))) for b in boundaries]


def goyal_schedule(
    global_batch: int,
    steps_per_epoch: int,
    boundary_epochs: Sequence[int] = (30, 60, 80),
    base_lr_per_256: float = 0.1,
    warmup_epochs: int = 5,
    decay: float = 0.1,
) -> PiecewiseConstantWarmup:
    """Goyal et al. 2017: lr = 0.1 * batch / 256 (linear scaling rule), gradual linear warm-up
    from 0.1 over `warmup_epochs`, divided by 10 at `boundary_epochs` (ImageNet, Sec. 3.4)."""
    peak = base_lr_per_256 * global_batch / 256.0
    values = [peak * decay**i for i in range(len(boundary_epochs) + 1)]
    boundaries = [e * steps_per_epoch for e in boundary_epochs]
    warmup_steps = warmup_epochs * steps_per_epoch if peak > base_lr_per_256 else 0
    return PiecewiseConstantWarmup(
        boundaries, values, warmup_steps=warmup_steps, warmup_lr=base_lr_per_256, warmup="linear"
    )


def use_warmup(mode: str, depth: int) -> bool:
    """`--warmup`: 'on', 'off', or 'auto' = on for ResNet-110 and deeper (Sec. 4.2)."""
    if mode not in ("auto", "on", "off"):
        raise UsageError(f"--warmup={mode!r}; allowed: auto, on, off.")
    return mode == "on" or (mode == "auto" and depth >= WARMUP_DEPTH)


class WarmupUntilError:
    """Sec. 4.2's rule: use `warmup_lr` until the training error is below `threshold`.

    The training error is measured over the last `window` steps (from the running epoch means
    Keras reports), so the lag of an epoch-long running mean does not prolong the warm-up.
    `ended_at` is the step at which the warm-up ended (None while warming up); it is part of the
    training state the trainer saves, so a resumed run does not warm up again.
    """

    def __init__(self, warmup_lr: float = 0.01, threshold: float = WARMUP_ERROR_THRESHOLD,
                 window: int = 50, max_steps: int | None = None):
        self.warmup_lr = float(warmup_lr)
        self.threshold = float(threshold)
        self.window = int(window)
        self.max_steps = max_steps
        self.ended_at: int | None = None
        self._history: list[tuple[int, float]] = []  # (batches seen this epoch, running accuracy)

    @property
    def active(self) -> bool:
        return self.ended_at is None

    def reset_epoch(self) -> None:
        self._history = []

    def update(self, step: int, batches_seen: int, running_accuracy: float) -> None:
        """Record the running accuracy after `batches_seen` batches of this epoch; end the
        warm-up at global `step` once the error over the last `window` batches of the epoch is
        below the threshold, or at `max_steps`."""
        if not self.active:
            return
        older = [h for h in self._history if batches_seen - h[0] >= self.window]
        k0, a0 = older[-1] if older else (0, 0.0)
        recent_accuracy = (batches_seen * running_accuracy - k0 * a0) / max(batches_seen - k0, 1)
        self._history = [h for h in self._history if batches_seen - h[0] <= self.window]
        self._history.append((batches_seen, running_accuracy))
        enough = batches_seen >= self.window  # no decision on a few noisy batches
        if (enough and 1.0 - recent_accuracy < self.threshold) or (
            self.max_steps is not None and step >= self.max_steps
        ):
            self.ended_at = int(step)


class LearningRateController(keras.callbacks.Callback):
    """Sets the optimizer's learning rate before every step from `schedule` (and the optional
    `WarmupUntilError` rule). Driving a float lr variable rather than passing the schedule to
    the optimizer keeps the data-dependent warm-up possible and works alike on TensorFlow and JAX.
    """

    def __init__(self, schedule: PiecewiseConstantWarmup, warmup: WarmupUntilError | None = None,
                 step_fn: Callable[[], int] | None = None):
        super().__init__()
        self.schedule = schedule
        self.warmup = warmup
        self.step_fn = step_fn
        self.last_lr: float | None = None

    def lr_at(self, step: int) -> float:
        if self.warmup is not None and self.warmup.active:
            return self.warmup.warmup_lr
        return self.schedule.value(step)

    def _step(self) -> int:
        """Steps completed (`step_fn`, else the optimizer's iteration counter)."""
        if self.step_fn is not None:
            return self.step_fn()
        return int(ops.convert_to_numpy(self.model.optimizer.iterations))

    def _set(self, step: int) -> None:
        lr = self.lr_at(step)
        if lr != self.last_lr:
            self.model.optimizer.learning_rate.assign(lr)
            self.last_lr = lr

    def on_train_begin(self, logs=None):
        self.last_lr = None
        self._set(self._step())

    def on_epoch_begin(self, epoch, logs=None):
        if self.warmup is not None:
            self.warmup.reset_epoch()

    def on_train_batch_begin(self, batch, logs=None):
        self._set(self._step())

    def on_train_batch_end(self, batch, logs=None):
        if self.warmup is not None and self.warmup.active and logs and "accuracy" in logs:
            self.warmup.update(self._step(), batch + 1, float(logs["accuracy"]))

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["lr"] = float(self.lr_at(max(self._step() - 1, 0)))


def parse_boundaries(flag: str, values: Sequence[str]) -> list[int]:
    """A boundary flag's values (steps or epochs at which the lr is divided by 10) as positive,
    increasing integers, or UsageError naming the flag and what it allows."""
    given = f"--{flag}={','.join(values)}"
    try:
        boundaries = [int(v) for v in values]
    except ValueError:
        raise UsageError(f"{given}: must be comma-separated integers.") from None
    if any(b <= 0 for b in boundaries):
        raise UsageError(f"{given}: must be positive (the lr drops at these points of the run).")
    if any(b >= c for b, c in zip(boundaries, boundaries[1:])):
        raise UsageError(f"{given}: must increase.")
    return boundaries


def steps_for(
    total_steps: int | None, epochs: int | None, steps_per_epoch: int, default: int
) -> int:
    """Total training steps from `--train_steps` or `--epochs` (at most one), else `default`."""
    if total_steps and epochs:
        raise UsageError(f"--train_steps={total_steps} and --epochs={epochs}: give at most one.")
    if epochs:
        return int(epochs) * steps_per_epoch
    if total_steps:
        return int(total_steps)
    return int(default)


__all__ = [
    "CIFAR_BOUNDARIES", "CIFAR_TOTAL_STEPS", "WARMUP_DEPTH", "WARMUP_ERROR_THRESHOLD",
    "PiecewiseConstantWarmup", "cifar_schedule", "goyal_schedule", "scaled_boundaries",
    "WarmupUntilError", "LearningRateController", "parse_boundaries", "steps_for", "use_warmup",
]
