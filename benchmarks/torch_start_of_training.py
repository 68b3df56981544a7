"""The first iterations of Sec. 4.2's CIFAR recipe, our nets against the same nets in PyTorch.

Both frameworks start from the same weights (ours, copied into PyTorch) and see the same batches
(real CIFAR-10 images, per-pixel mean subtracted, the paper's pad-crop-flip augmentation done once
in numpy), with SGD lr 0.1, momentum 0.9 and weight decay 1e-4 on conv and fc kernels. It shows
whether a net that does not start converging at lr 0.1 (docs/results.md) behaves the same in a
second, independent framework: then it is the recipe at that depth, not this implementation.
`--dtype=float64` runs both frameworks in double precision (weights, loss and Keras's learning
rate variable): rounding starts near 1e-16 instead of 1e-7, so the first steps can be checked
tightly on any CPU; at lr 0.1 on small batches any difference grows fast from step to step
(tests/test_torch_equivalence.py checks the first steps).

    # the CIFAR-10 pool that `training/reproduce.py --suite=cifar_small` extracts:
    python benchmarks/torch_start_of_training.py \\
        --data_dir=runs/data/cifar10-jpeg_pool1500_testall_seed0/cifar10-jpeg \\
        --json=results/benchmarks/start-of-training_x86-2core.json \\
        --markdown=docs/start_of_training.md
    python benchmarks/torch_start_of_training.py --quick --data_dir=DIR --json=/tmp/s.json  # smoke
    python benchmarks/torch_start_of_training.py \\
        --page_from=results/benchmarks/start-of-training_x86-2core.json \\
        --markdown=docs/start_of_training.md   # the page again from the record, no training

PyTorch runs in a worker under a Python that has it (Debian's python3-torch: /usr/bin/python3).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if __package__ in (None, ""):  # run as a file: the benchmarks package is at the repository root
    sys.path.insert(0, str(REPO))
LEARNING_RATE = 0.1
MOMENTUM = 0.9
WEIGHT_DECAY = 1e-4


def error_and_loss(logits, labels) -> tuple[float, float]:
    """Batch error rate and mean cross-entropy of float64 numpy logits."""
    import numpy as np

    shifted = logits - logits.max(1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))
    return (float(np.mean(logits.argmax(1) != labels)),
            float(-log_probs[np.arange(len(labels)), labels].mean()))


# ------------------------------------------------------------------------- PyTorch worker


def torch_worker(work: Path, net: str, dtype: str) -> None:
    """Train the PyTorch net (in `dtype`) on work/batches.npz from work/<net>.init.npz; write its
    log."""
    import numpy as np
    import torch

    torch.manual_seed(0)
    torch.set_num_threads(os.cpu_count())
    depth = int(net.removeprefix("resnet").removeprefix("plain"))
    from benchmarks.contenders import torch_cifar_resnet

    model = torch_cifar_resnet(torch, depth, 10, shortcuts=net.startswith("resnet"))
    model = model.to(getattr(torch, dtype))
    init = np.load(work / f"{net}.init.npz")
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        for i, conv in enumerate(convs):
            conv.weight.copy_(torch.from_numpy(init[f"conv{i}"]))
        model.fc.weight.copy_(torch.from_numpy(init["fc_kernel"]))
        model.fc.bias.copy_(torch.from_numpy(init["fc_bias"]))
    for module in model.modules():  # Keras' BN: momentum 0.9 = PyTorch's 0.1, epsilon 1e-5
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum, module.eps = 0.1, 1e-5
    decayed = [p for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))
               for p in [m.weight]]
    others = [p for p in model.parameters() if all(p is not d for d in decayed)]
    optimizer = torch.optim.SGD([{"params": decayed, "weight_decay": WEIGHT_DECAY},
                                 {"params": others, "weight_decay": 0.0}],
                                lr=LEARNING_RATE, momentum=MOMENTUM)
    data = np.load(work / "batches.npz")
    mean = torch.from_numpy(data["mean"].astype(dtype)).permute(2, 0, 1)
    log = []
    model.train()
    for images, labels in zip(data["images"], data["labels"]):
        x = (torch.from_numpy(images.astype(dtype)).permute(0, 3, 1, 2) - mean).contiguous(
            memory_format=torch.channels_last)
        y = torch.from_numpy(labels).long()
        optimizer.zero_grad(set_to_none=True)
        logits = model(x)
        torch.nn.functional.cross_entropy(logits, y).backward()
        error, loss = error_and_loss(logits.detach().double().numpy(), labels)
        optimizer.step()
        log.append({"loss": loss, "error": error,
                    "conv1_norm": float(convs[0].weight.detach().norm())})
    (work / f"{net}.torch.json").write_text(json.dumps(log))


# ------------------------------------------------------------------------- ours, and the run


def ours(work: Path, net: str, dtype: str) -> list[dict]:
    """Build our net in `dtype`, save its initial weights in PyTorch's layout, train it on the
    batches."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    keras.utils.set_random_seed(0)
    floatx = keras.config.floatx()
    keras.config.set_floatx(dtype)  # weights, loss and the optimizer's learning rate variable
    try:
        return train_ours(work, net, dtype)
    finally:
        keras.config.set_floatx(floatx)


def train_ours(work: Path, net: str, dtype: str) -> list[dict]:
    """`ours` under Keras's floatx `dtype`."""
    import keras
    import numpy as np
    import tensorflow as tf

    import keras_resnet

    model = keras_resnet.get_model(net, weights=None, weight_decay=WEIGHT_DECAY,
                                   classifier_activation=None)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    dense = model.get_layer("predictions")
    np.savez(
        work / f"{net}.init.npz",
        fc_kernel=np.asarray(dense.kernel).T,
        fc_bias=np.asarray(dense.bias),
        **{f"conv{i}": np.asarray(c.kernel).transpose(3, 2, 0, 1) for i, c in enumerate(convs)},
    )
    optimizer = keras.optimizers.SGD(LEARNING_RATE, momentum=MOMENTUM)
    cross_entropy = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            logits = model(x, training=True)
            loss = cross_entropy(y, logits) + tf.add_n(model.losses)  # + L2(wd / 2) of kernels
        optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables),
                                      model.trainable_variables))
        return logits

    data = np.load(work / "batches.npz")
    log = []
    for images, labels in zip(data["images"], data["labels"]):
        logits = step(images.astype(dtype) - data["mean"].astype(dtype), labels.astype("int32"))
        error, loss = error_and_loss(np.asarray(logits, dtype="float64"), labels)
        log.append({"loss": loss, "error": error,
                    "conv1_norm": float(np.linalg.norm(np.asarray(convs[0].kernel)))})
    return log


def make_batches(work: Path, data_dir: str, train_images: int, iterations: int, batch: int,
                 seed: int) -> int:
    """Augmented batches of real CIFAR-10 images, shared by both frameworks; returns the pool
    size."""
    import numpy as np

    from keras_resnet.training import cifar_data

    data = cifar_data.load("cifar10", "folder", data_dir, max_train=train_images, max_test=1,
                           seed=seed)
    x, y = data.x_train, data.y_train
    if len(x) < batch:
        raise ValueError(f"--data_dir={data_dir}: {len(x)} training images, fewer than one batch "
                         f"of {batch}.")
    rng = np.random.default_rng(seed)
    order: list[int] = []
    images, labels = [], []
    for _ in range(iterations):
        if len(order) < batch:
            order += list(rng.permutation(len(x)))
        index, order = order[:batch], order[batch:]
        images.append(cifar_data.augment_numpy(x[index], rng).astype("uint8"))
        labels.append(y[index].astype("int64"))
    np.savez(work / "batches.npz", images=np.stack(images), labels=np.stack(labels),
             mean=x.astype("float32").mean(0))
    return len(x)


def summarize(log: list[dict], window: int) -> dict:
    """Mean loss and error over the last `window` iterations, and conv1's growth."""
    tail = log[-window:]
    return {"final_loss": sum(r["loss"] for r in tail) / len(tail),
            "final_error": sum(r["error"] for r in tail) / len(tail),
            "first_loss": log[0]["loss"], "conv1_norm_final": log[-1]["conv1_norm"]}


def markdown(result: dict, record: str) -> str:
    """The page of a run: its settings and, per net and framework, loss, error and conv1's norm;
    `record` is where its JSON (with the per-iteration logs) lies."""
    s = result["settings"]
    lines = [
        "# The start of training: keras_resnet against PyTorch, same weights, same batches",
        "",
        f"Generated from `{record}`, written by `{result['command']}`; do not edit by hand.",
        "",
        (
            f"Real CIFAR-10 images ({result['pool']:,}-image pool, per-pixel mean subtracted, "
            f"pad-crop-flip augmentation), {s['iterations']} iterations of batch {s['batch']} in "
            f"{s.get('dtype', 'float32')}, "
            f"SGD lr {LEARNING_RATE}, momentum {MOMENTUM}, weight decay {WEIGHT_DECAY:g} on conv "
            "and fc kernels; both frameworks start from the same weights (ours, copied) and see "
            f"the same batches. Figures over the last {s['window']} iterations: training-mode "
            f"loss and error of each batch before its update. Machine: {result['machine']}."
        ),
        "",
        (
            "| net | framework | first-batch loss | loss, last iterations | error, last "
            "iterations | conv1 kernel norm: init -> end |"
        ),
        "|---|---|---:|---:|---:|---|",
    ]
    for net, by_framework in result["nets"].items():
        for framework, row in by_framework.items():
            lines.append(
                f"| {net} | {framework} | {row['first_loss']:.3f} | {row['final_loss']:.3f} | "
                f"{100 * row['final_error']:.1f}% | {row['conv1_norm_init']:.1f} -> "
                f"{row['conv1_norm_final']:.1f} |"
            )
    lines += ["", f"Per-iteration figures are in `{record}`."]
    return "\n".join(lines) + "\n"


def record_name(path: Path) -> str:
    """The record's path as the page names it: from the repository root where it lies inside."""
    path = path.resolve()
    return path.relative_to(REPO).as_posix() if path.is_relative_to(REPO) else str(path)


def main(argv: list[str]) -> int:
    import platform

    import numpy as np
    from absl import flags

    FLAGS = flags.FLAGS
    if len(argv) > 1:
        raise SystemExit(f"error: unexpected arguments {argv[1:]}")
    if FLAGS.page_from:
        if not FLAGS.markdown:
            raise SystemExit("error: --page_from needs --markdown, the page to write.")
        record = Path(FLAGS.page_from)
        result = json.loads(record.read_text())
        Path(FLAGS.markdown).write_text(markdown(result, record_name(record)))
        return 0
    if not (FLAGS.data_dir and FLAGS.json):
        raise SystemExit("error: --data_dir and --json are needed to run (or --page_from).")
    quick = FLAGS.quick
    iterations = 3 if quick and not FLAGS["iterations"].present else FLAGS.iterations
    batch = 8 if quick and not FLAGS["batch"].present else FLAGS.batch
    nets = ["resnet20"] if quick and not FLAGS["nets"].present else FLAGS.nets
    from keras_resnet.specs import CIFAR_DEPTHS, CIFAR_PLAIN_DEPTHS

    cifar_nets = [f"resnet{d}" for d in CIFAR_DEPTHS] + [f"plain{d}" for d in CIFAR_PLAIN_DEPTHS]
    for net in nets:
        if net not in cifar_nets:
            raise SystemExit(f"error: --nets={','.join(nets)}: {net!r} unknown; allowed: "
                             f"{', '.join(cifar_nets)}.")
    from benchmarks.protocol import find_torch_python

    python, note = find_torch_python(FLAGS.torch_python)
    if python is None:
        raise SystemExit(f"error: PyTorch is needed for this comparison ({note}); on Debian: "
                         "apt-get install python3-torch python3-torchvision")
    window = max(1, min(FLAGS.window, iterations))
    with tempfile.TemporaryDirectory(prefix="start-of-training-") as tmp:
        work = Path(tmp)
        pool = make_batches(work, FLAGS.data_dir, FLAGS.train_images, iterations, batch, FLAGS.seed)
        result = {
            "command": " ".join(["python benchmarks/torch_start_of_training.py", *sys.argv[1:]]),
            "machine": f"{os.cpu_count()}-core {platform.processor() or platform.machine()} CPU",
            "pool": pool,
            "notes": [note],
            "settings": {
                "iterations": iterations,
                "batch": batch,
                "seed": FLAGS.seed,
                "dtype": FLAGS.dtype,
                "window": window,
                "train_images": FLAGS.train_images,
            },
            "nets": {},
            "logs": {},
        }
        for net in nets:
            log_ours = ours(work, net, FLAGS.dtype)
            init_norm = float(np.linalg.norm(np.load(work / f"{net}.init.npz")["conv0"]))
            completed = subprocess.run([python, __file__, "--torch_worker", str(work), net,
                                        FLAGS.dtype],
                                       check=False, capture_output=True, text=True, cwd=REPO)
            if completed.returncode != 0:
                raise SystemExit(
                    f"error: the PyTorch worker failed on {net}:\n{completed.stderr[-3000:]}"
                )
            log_torch = json.loads((work / f"{net}.torch.json").read_text())
            result["nets"][net] = {
                framework: dict(summarize(log, window), conv1_norm_init=init_norm)
                for framework, log in (("keras_resnet", log_ours), ("pytorch", log_torch))
            }
            result["logs"][net] = {"keras_resnet": log_ours, "pytorch": log_torch}
            print(json.dumps({net: result["nets"][net]}), flush=True)
    Path(FLAGS.json).write_text(json.dumps(result, indent=1))
    page = markdown(result, record_name(Path(FLAGS.json)))
    if FLAGS.markdown:
        Path(FLAGS.markdown).write_text(page)
    print(page)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--torch_worker"]:  # under a Python with torch, without Keras or absl
        torch_worker(Path(sys.argv[2]), sys.argv[3], sys.argv[4])
        sys.exit(0)
    from absl import app, flags

    flags.DEFINE_string(
        "data_dir", None, "CIFAR-10 in the image-folder layout (DIR/train/<class>/*)."
    )
    flags.DEFINE_list("nets", ["resnet20", "resnet56", "plain56"], "CIFAR nets to compare.")
    flags.DEFINE_integer("iterations", 200, "Training iterations per net.", lower_bound=1)
    flags.DEFINE_integer("batch", 128, "Batch size (the paper: 128).", lower_bound=1)
    flags.DEFINE_integer(
        "train_images", 10000, "Training images to draw batches from.", lower_bound=1
    )
    flags.DEFINE_integer("window", 50, "Last iterations averaged in the summary.", lower_bound=1)
    flags.DEFINE_integer("seed", 0, "Seed of the subset, the batches and our initial weights.")
    flags.DEFINE_bool("quick", False, "Smoke test: resnet20, 3 iterations of batch 8.")
    flags.DEFINE_enum("dtype", "float32", ["float32", "float64"],
                      "Precision of weights and compute in both frameworks.")
    flags.DEFINE_list("torch_python", [sys.executable, "/usr/bin/python3"],
                      "Pythons to try for PyTorch, first that imports torch wins.")
    flags.DEFINE_string("json", None, "Write the result (with per-iteration logs) here.")
    flags.DEFINE_string("markdown", None, "Also write the table as a markdown page here.")
    flags.DEFINE_string("page_from", None, "Write --markdown from this record of an earlier run "
                        "instead of running.")
    app.run(main)
