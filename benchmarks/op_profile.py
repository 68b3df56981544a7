"""Where a training step of our net spends its time on TensorFlow: time per op type, profiled.

Runs `model.fit` steps of `keras_resnet.get_model(net)` (SGD momentum, one in-memory batch, the
trainers' tf.data options) under the TensorFlow profiler, reads the trace (the `.xplane.pb` that
TensorBoard's Profile tab shows, left in --logdir) and sums the duration of the executed ops by
op type. Durations of ops that ran at the same time on TensorFlow's inter-op threads add up, so
the shares say where the compute goes, not a critical path.

    python benchmarks/op_profile.py --net=resnet56 --json=runs/op_profile.json
    python benchmarks/op_profile.py --net=resnet56 --precision=bfloat16 \
        --json=runs/op_profile_bf16.json
    python benchmarks/op_profile.py --quick --json=/tmp/op.json      # smoke test
"""

from __future__ import annotations

import collections
import json
import sys
import tempfile
import time
from pathlib import Path

from absl import app, flags

FLAGS = flags.FLAGS
# Events on the same threads that span the executor's processing of many ops, not one op.
EXECUTOR_SPANS = frozenset({"Process"})


def profile_steps(
    net: str, batch: int, steps: int, logdir: Path, precision: str = "float32"
) -> float:
    """Trains `steps` steps of `net` (in `precision`: float32, or mixed bfloat16 as the trainers
    train it) under the profiler; returns their wall seconds."""
    import keras
    import numpy as np
    import tensorflow as tf

    import keras_resnet
    from keras_resnet.training.cifar_data import tf_data_options

    keras.mixed_precision.set_global_policy(
        "mixed_bfloat16" if precision == "bfloat16" else "float32"
    )
    model = keras_resnet.get_model(net, weights=None)
    keras.mixed_precision.set_global_policy("float32")
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy(),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    rng = np.random.default_rng(0)
    shape = (batch, *model.input_shape[1:])
    x = rng.uniform(0, 1, shape).astype("float32")
    y = rng.integers(0, model.output_shape[-1], batch).astype("int32")
    data = tf.data.Dataset.from_tensors((x, y)).repeat().with_options(tf_data_options())
    model.fit(data, epochs=1, steps_per_epoch=2, verbose=0)  # tracing, outside the trace
    tf.profiler.experimental.start(str(logdir))
    start = time.perf_counter()
    model.fit(data, epochs=1, steps_per_epoch=steps, verbose=0)
    wall = time.perf_counter() - start
    tf.profiler.experimental.stop()
    return wall


def op_seconds(logdir: Path) -> dict[str, float]:
    """Seconds per op type in the newest trace under `logdir` (events named 'name:OpType')."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    traces = sorted(logdir.glob("**/*.xplane.pb"), key=lambda p: p.stat().st_mtime)
    if not traces:
        raise RuntimeError(f"no .xplane.pb trace under {logdir}")
    space = xplane_pb2.XSpace()
    space.ParseFromString(traces[-1].read_bytes())
    seconds: collections.Counter[str] = collections.Counter()
    for plane in space.planes:
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):  # the executor's threads run the ops
                continue
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                op_type = name.rsplit(":", 1)[-1]
                # zero-length events are the tracer's markers (StartRegion, Record, ...), not ops
                if ":" in name and op_type not in EXECUTOR_SPANS and event.duration_ps > 0:
                    seconds[op_type] += event.duration_ps / 1e12
    if not seconds:
        raise RuntimeError(f"{traces[-1]} has no op events on tf_Compute threads")
    return dict(seconds)


def summarize(seconds: dict[str, float], top: int) -> list[dict]:
    """The `top` op types by time, then 'other', each with its share of the op time."""
    total = sum(seconds.values())
    ranked = sorted(seconds.items(), key=lambda item: -item[1])
    rows = [{"op_type": name, "seconds": value, "percent": 100 * value / total}
            for name, value in ranked[:top]]
    rest = sum(value for _, value in ranked[top:])
    if rest:
        rows.append({"op_type": "other", "seconds": rest, "percent": 100 * rest / total})
    return rows


def markdown(result: dict) -> str:
    precision = result.get("precision", "float32")
    cpu = f" on {result['cpu']}" if "cpu" in result else ""
    lines = [
        (
            f"Op time of {result['steps']} training steps of {result['net']} ({precision}) "
            f"at batch {result['batch']}{cpu}: {result['op_seconds_total']:.2f} s of ops in "
            f"{result['wall_s']:.2f} s "
            f"of wall time ({result['images_per_s']:.1f} images/s under the profiler)."
        ),
        "",
        "| op type | seconds | % of op time |",
        "|---|---:|---:|",
    ]
    lines += [
        f"| {r['op_type']} | {r['seconds']:.3f} | {r['percent']:.1f} |" for r in result["ops"]
    ]
    return "\n".join(lines) + "\n"


def define_flags() -> None:
    """The script's absl flags (defined only when run, not when imported)."""
    flags.DEFINE_string("net", "resnet56", "Net to profile (keras_resnet.list_models()).")
    flags.DEFINE_enum("precision", "float32", ["float32", "bfloat16"],
                      "float32, or mixed bfloat16 (bfloat16 convolutions, float32 weights).")
    flags.DEFINE_integer("batch", 128, "Batch size.", lower_bound=1)
    flags.DEFINE_integer("steps", 5, "Profiled training steps.", lower_bound=1)
    flags.DEFINE_integer(
        "top", 15, "Op types listed by name; the rest are summed as 'other'.", lower_bound=1
    )
    flags.DEFINE_string("logdir", None, "Where the trace goes (default: a temporary directory).")
    flags.DEFINE_string("json", None, "Write the results here.")
    flags.DEFINE_bool(
        "quick", False, "Smoke test: batch 4, 1 step (flags given explicitly still apply)."
    )


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        print(f"error: unexpected arguments {argv[1:]}", file=sys.stderr)
        return 2
    import keras_resnet
    from keras_resnet import runtime

    if FLAGS.net not in keras_resnet.list_models():
        print(
            f"error: --net={FLAGS.net}: unknown; allowed: {', '.join(keras_resnet.list_models())}",
            file=sys.stderr,
        )
        return 2
    batch = 4 if FLAGS.quick and not FLAGS["batch"].present else FLAGS.batch
    steps = 1 if FLAGS.quick and not FLAGS["steps"].present else FLAGS.steps
    logdir = Path(FLAGS.logdir or tempfile.mkdtemp(prefix="op_profile-"))
    wall = profile_steps(FLAGS.net, batch, steps, logdir, FLAGS.precision)
    seconds = op_seconds(logdir)
    result = {"net": FLAGS.net, "precision": FLAGS.precision, "cpu": runtime.cpu_model(),
              "batch": batch, "steps": steps, "wall_s": wall,
              "images_per_s": batch * steps / wall, "op_seconds_total": sum(seconds.values()),
              "ops": summarize(seconds, FLAGS.top), "logdir": str(logdir),
              "command": " ".join(["python benchmarks/op_profile.py", *sys.argv[1:]])}
    print(markdown(result))
    if FLAGS.json:
        Path(FLAGS.json).parent.mkdir(parents=True, exist_ok=True)
        Path(FLAGS.json).write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {FLAGS.json}")
    return 0


if __name__ == "__main__":
    define_flags()
    app.run(main)
