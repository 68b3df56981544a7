"""A PyTorch reference for our CIFAR-10 errors: the same nets trained the same way (Sec. 4.2).

The paper's errors were measured on the lossless CIFAR-10; ours on a JPEG q75 copy. This script
trains the same CIFAR nets (3x3 conv 16 + BN + ReLU, three stages of basic blocks of 16/32/64
filters, option-A shortcuts, global average pool, fc; He-normal conv weights, N(0, 2 / fan_in))
in PyTorch on the same copy, with training/cifar10.py's data and recipe: the class-balanced
45k/5k split (--validation_per_class), the per-pixel training mean subtracted, the batch order
of `cifar_data.batch_indices`, the pad-4 / crop / flip of `cifar_data.augment_numpy` with a
mean-image border, batch 128, SGD momentum 0.9, lr 0.1 divided by 10 at 50% and 75% of the
steps, validation and test error after every epoch. The model_dir holds what our trainer writes
(metrics.csv with trainer.CSV_COLUMNS, metadata.json, results.json), so the report code reads it.

Its own recipe's defaults are PyTorch's usual ones; each flag switches one to ours:
  --weight_decay_on=all|kernels   all: torch's SGD weight decay on every parameter (BN gamma and
                                  beta, fc bias); kernels: conv and fc weights only, as ours.
  --classifier_init=torch|glorot  torch: nn.Linear's default; glorot: Glorot-uniform weight and
                                  zero bias, Keras's Dense default, as ours.
  --precision=float32|bfloat16    bfloat16: CPU autocast.
BN is PyTorch's default, which is ours: momentum 0.1 (Keras 0.9), epsilon 1e-5 (its running
variance is unbiased, ours biased: a factor of at most 1 + 1.2e-4 at batch 128). Left as they
are: PyTorch's SGD keeps momentum in gradient units (b = 0.9 b + g, w -= lr b), Keras's in
step units (v = 0.9 v - lr g, w += v): the same updates at a constant lr, but after each lr drop
Keras's velocity still carries the old lr for a few dozen steps. Reported losses are the
cross-entropy alone (our trainer's also hold the L2 term).

    python benchmarks/torch_cifar_reference.py --model=resnet56 \\
        --data_dir=runs/data/cifar10-jpeg_poolall_testall_seed0/cifar10-jpeg \\
        --model_dir=runs/cifar_8k/torch_resnet56 --checkpoint_steps=500

Add --threads=1 where another job shares the cores: beside a TensorFlow training on 2 cores,
PyTorch's 2 OpenMP threads (they wait for each other) trained ResNet-20 several times slower than
1 thread (docs/performance.md).

This driver (the project's Python) loads and splits the images once into model_dir/data.npz
(uint8 arrays, labels, mean image; deleted when the run finishes), then replaces itself
(os.execv) by the PyTorch worker under --torch_python, which reads keras_resnet's pure-numpy
cifar_data.py without the Keras package. Checkpoints (weights, optimizer, step, the epoch's running
sums, the metrics rows) are written atomically at every epoch end and every --checkpoint_steps:
rerunning the same command resumes, a finished run is not redone, and a model_dir started with
other recipe flags is refused, untouched.
"""

from __future__ import annotations

import io
import json
import os
import platform
import subprocess
import sys
import time
import types
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEPTHS = (20, 32, 44, 56)  # ResNet-110 warms up in our trainer (Sec. 4.2): not mirrored here
MODELS = tuple(f"{kind}{depth}" for kind in ("resnet", "plain") for depth in DEPTHS)
DATA_FILE = "data.npz"
CHECKPOINT = Path("checkpoints") / "checkpoint.pt"
# The flags that define a run; a model_dir started with others is refused.
RECIPE_FLAGS = ("model", "train_steps", "batch_size", "lr", "momentum", "weight_decay", "seed",
                "validation_per_class", "max_train_examples", "max_test_examples",
                "weight_decay_on", "classifier_init", "precision")
OTHER_FLAGS = ("data_dir", "model_dir", "eval_batch_size", "checkpoint_steps", "threads",
               "torch_python")


class UsageError(ValueError):
    """Bad input; the message names the flag, its value and what is allowed."""


# ------------------------------------------------------------------------------- PyTorch worker

def import_cifar_data() -> types.ModuleType:
    """keras_resnet/training/cifar_data.py (numpy only) without running keras_resnet/__init__.py,
    which imports Keras: the two packages are registered as bare namespaces first."""
    for name, path in (("keras_resnet", REPO / "keras_resnet"),
                       ("keras_resnet.training", REPO / "keras_resnet" / "training")):
        if name not in sys.modules:
            package = types.ModuleType(name)
            package.__path__ = [str(path)]
            sys.modules[name] = package
    from keras_resnet.training import cifar_data

    return cifar_data


def build_net(torch: Any, model: str, classifier_init: str, seed: int) -> Any:
    """The CIFAR net of Sec. 4.2 with He-normal conv weights (untruncated N(0, 2 / fan_in), as
    ours) and the fc layer initialised by `classifier_init` (torch or glorot)."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from benchmarks.contenders import torch_cifar_resnet  # stdlib-only imports, no Keras

    torch.manual_seed(seed)
    net = torch_cifar_resnet(torch, int(model.removeprefix("resnet").removeprefix("plain")), 10,
                             shortcuts=model.startswith("resnet"))
    for module in net.modules():
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
    if classifier_init == "glorot":
        torch.nn.init.xavier_uniform_(net.fc.weight)
        torch.nn.init.zeros_(net.fc.bias)
    return net.to(memory_format=torch.channels_last)


def make_optimizer(torch: Any, net: Any, recipe: dict) -> Any:
    """SGD with momentum; weight decay on every parameter (`all`) or on conv and fc weights."""
    decayed = list(net.parameters())
    if recipe["weight_decay_on"] == "kernels":
        decayed = [m.weight for m in net.modules()
                   if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    others = [p for p in net.parameters() if all(p is not d for d in decayed)]
    groups = [{"params": decayed, "weight_decay": recipe["weight_decay"]}]
    if others:
        groups.append({"params": others, "weight_decay": 0.0})
    return torch.optim.SGD(groups, lr=recipe["lr"], momentum=recipe["momentum"])


def as_input(torch: Any, images: Any, mean: Any) -> Any:
    """Raw float32 NHWC pixels minus the mean image, as an NCHW tensor in channels_last."""
    return torch.from_numpy(images - mean).permute(0, 3, 1, 2)


def evaluate(torch: Any, net: Any, x: Any, y: Any, mean: Any, batch: int,
             bf16: bool) -> tuple[float, float]:
    """(mean cross-entropy, error) of the net in inference mode (BN's moving statistics)."""
    import numpy as np

    net.eval()
    loss, wrong = 0.0, 0
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for start in range(0, len(x), batch):
            logits = net(as_input(torch, x[start: start + batch].astype(np.float32), mean)).float()
            labels = torch.from_numpy(y[start: start + batch]).long()
            loss += float(torch.nn.functional.cross_entropy(logits, labels, reduction="sum"))
            wrong += int((logits.argmax(1) != labels).sum())
    net.train()
    return loss / len(x), wrong / len(x)


def csv_cell(value: float | None) -> str:
    """A metrics.csv cell as our trainer writes it: empty, an integer, or repr(float)."""
    if value is None:
        return ""
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def hardware(torch: Any) -> dict:
    """The CPU and its load as training ends, for results.json."""
    cpu_model = platform.processor() or platform.machine()
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu_model = names[0] if names else cpu_model
    return {"backend": "pytorch", "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(), "cpu_model": cpu_model,
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
            "devices": [f"CPU:{cpu_model}"]}


def train(config: dict) -> None:
    """Train (or resume) to config['total_steps'], writing metrics.csv, checkpoints and, at the
    end, results.json; delete the prepared data."""
    import numpy as np
    import torch

    cifar_data = import_cifar_data()
    torch.set_num_threads(config["threads"] or os.cpu_count())
    recipe, model_dir = config["recipe"], Path(config["model_dir"])
    columns, total, per_epoch = config["columns"], config["total_steps"], config["steps_per_epoch"]
    bf16 = recipe["precision"] == "bfloat16"
    batch, seed = recipe["batch_size"], recipe["seed"]
    data = dict(np.load(model_dir / DATA_FILE))
    mean = data["mean"]
    net = build_net(torch, recipe["model"], recipe["classifier_init"], seed)
    optimizer = make_optimizer(torch, net, recipe)
    state = {"step": 0, "sums": [0.0, 0.0, 0], "wall_s": 0.0, "rows": []}
    checkpoint = model_dir / CHECKPOINT
    if checkpoint.exists():
        saved = torch.load(checkpoint)
        net.load_state_dict(saved.pop("net"))
        optimizer.load_state_dict(saved.pop("optimizer"))
        state = saved
        print(f"Resuming from step {state['step']} ({checkpoint})", flush=True)
    start_step, wall_before, run_start = state["step"], state["wall_s"], time.time()
    metrics = model_dir / "metrics.csv"  # the rows up to the checkpoint's step
    lines = [",".join(columns)] + [",".join(csv_cell(r.get(c)) for c in columns)
                                   for r in state["rows"]]
    write_atomic(metrics, ("\n".join(lines) + "\n").encode())

    def save() -> None:
        checkpoint.parent.mkdir(exist_ok=True)
        state["wall_s"] = wall_before + time.time() - run_start
        buffer = io.BytesIO()
        torch.save(dict(state, net=net.state_dict(), optimizer=optimizer.state_dict()), buffer)
        write_atomic(checkpoint, buffer.getvalue())

    def lr_at(step: int) -> float:
        return config["lr_values"][sum(step >= b for b in config["boundaries"])]

    x_train, y_train = data["x_train"], data["y_train"]
    step_seconds = 0.0
    net.train()
    for step in range(start_step, total):
        started = time.perf_counter()
        rows = cifar_data.batch_indices(len(x_train), batch, seed, step, 1)[0]
        images = cifar_data.augment_numpy(x_train[rows], np.random.default_rng([seed, step]),
                                          fill=mean)
        labels = torch.from_numpy(y_train[rows]).long()
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step)
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = net(as_input(torch, images, mean)).float()
        loss = torch.nn.functional.cross_entropy(logits, labels)
        loss.backward()
        optimizer.step()
        step_seconds += time.perf_counter() - started
        sums = state["sums"]
        sums[0] += float(loss)
        sums[1] += float((logits.argmax(1) != labels).float().mean())
        sums[2] += 1
        state["step"] = done = step + 1
        if done % per_epoch and done != total:
            if config["checkpoint_steps"] and done % config["checkpoint_steps"] == 0:
                save()
            continue
        row = {"epoch": (done - 1) // per_epoch + 1, "step": done, "lr": lr_at(step),
               "loss": sums[0] / sums[2], "train_error": sums[1] / sums[2]}
        for split in ("val", "test"):
            if len(data[f"x_{split}"]):
                row[f"{split}_loss"], row[f"{split}_error"] = evaluate(
                    torch, net, data[f"x_{split}"], data[f"y_{split}"], mean,
                    config["eval_batch_size"], bf16)
        row["wall_s"] = wall_before + time.time() - run_start
        state["rows"].append(row)
        state["sums"] = [0.0, 0.0, 0]
        save()
        with open(metrics, "a") as f:
            f.write(",".join(csv_cell(row.get(c)) for c in columns) + "\n")
        print(f"epoch {row['epoch']} step {done}/{total} lr {row['lr']:g} " + " ".join(
            f"{name} {row[name]:.4f}" for name in columns[3:-1] if name in row)
            + f" wall {row['wall_s']:.0f} s, {1000 * step_seconds / (done - start_step):.0f} "
            "ms/step", flush=True)

    this_run = time.time() - run_start
    last = state["rows"][-1]
    trained = total - start_step
    results = {
        "model": recipe["model"], "dataset": "cifar10", "framework": "pytorch",
        "torch": torch.__version__,
        "test_error": last["test_error"], "test_loss": last["test_loss"],
        "test_metrics": {"loss": last["test_loss"], "accuracy": 1.0 - last["test_error"]},
        "val_error": last.get("val_error"), "val_loss": last.get("val_loss"),
        "steps": total, "epochs": total / per_epoch, "global_batch": batch,
        "train_wall_s": state["wall_s"], "images_per_s": trained * batch / max(this_run, 1e-9),
        "train_step_ms": 1000 * step_seconds / trained if trained else None,
        "resumed_from_step": start_step, "precision": recipe["precision"],
        "mixed_precision": "bfloat16" if bf16 else "none",
        "distribution": {"strategy": "none", "num_replicas": 1},
        "hardware": hardware(torch), "flags": config["flags"], "recipe": recipe,
        "model_dir": str(model_dir),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    write_atomic(model_dir / "results.json",
                 (json.dumps(results, indent=2, sort_keys=True) + "\n").encode())
    (model_dir / DATA_FILE).unlink()
    print(f"{recipe['model']} (PyTorch): test error {100 * last['test_error']:.2f}% after {total} "
          f"steps, {state['wall_s']:.0f} s; {model_dir}", flush=True)


# ------------------------------------------------------------------------------- driver

def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def check_model_dir(model_dir: Path, recipe: dict) -> bool:
    """True if the run in `model_dir` is finished; UsageError if it was started with other
    recipe flags or by another trainer."""
    metadata = read_json(model_dir / "metadata.json")
    if metadata is None:
        return False
    started = metadata.get("recipe")
    if started is None:
        raise UsageError(f"--model_dir={model_dir} holds a run of another trainer (its "
                         f"metadata.json has no PyTorch recipe): use another --model_dir.")
    differing = [k for k in RECIPE_FLAGS if started.get(k) != recipe[k]]
    if differing:
        raise UsageError(
            f"--model_dir={model_dir} was started with other flags: "
            + ", ".join(f"--{k}={started.get(k)} (now {recipe[k]})" for k in differing)
            + ": rerun with those flags to resume, or use another --model_dir.")
    results = read_json(model_dir / "results.json")
    return bool(results) and results.get("steps", -1) >= recipe["train_steps"]


def check_torch_python(python: str) -> None:
    probe = subprocess.run([python, "-c", "import torch"], check=False, capture_output=True,
                           text=True) if os.path.isfile(python) else None
    if probe is None or probe.returncode:
        why = "no such file" if probe is None else (probe.stderr.strip().splitlines() or ["?"])[-1]
        raise UsageError(f"--torch_python={python}: cannot import torch ({why}); give a Python "
                         "with PyTorch (Debian: apt-get install python3-torch).")


def prepare(flag_values: dict) -> dict | None:
    """Check the flags and the model_dir, write metadata.json and the data file if missing;
    the worker's config, or None if the run is finished."""
    recipe = {name: flag_values[name] for name in RECIPE_FLAGS}
    model_dir = Path(flag_values["model_dir"]).resolve()
    if check_model_dir(model_dir, recipe):
        results = read_json(model_dir / "results.json")
        print(f"Already finished: {recipe['model']} (PyTorch) test error "
              f"{100 * results['test_error']:.2f}% after {results['steps']} steps; {model_dir}")
        (model_dir / DATA_FILE).unlink(missing_ok=True)  # left if killed as it finished
        return None
    check_torch_python(flag_values["torch_python"])
    import numpy as np

    from keras_resnet.training import cifar_data, schedules, trainer

    batch = recipe["batch_size"]
    if not ((model_dir / DATA_FILE).exists() and (model_dir / "metadata.json").exists()):
        try:
            data = cifar_data.load("cifar10", "folder", flag_values["data_dir"],
                                   recipe["max_train_examples"], recipe["max_test_examples"])
            x_train, y_train, x_val, y_val = cifar_data.split_validation_per_class(
                data.x_train, data.y_train, recipe["validation_per_class"])  # seed 0, as ours
        except cifar_data.DataError as error:  # a keras_resnet UsageError: one line, not ours
            raise UsageError(str(error)) from None
        if len(x_train) < batch:
            raise UsageError(f"--batch_size={batch}: larger than the {len(x_train)} training "
                             f"images; allowed: at most {len(x_train)}.")
        if x_val is None:
            x_val, y_val = x_train[:0], y_train[:0]
        metadata = {
            "model": recipe["model"], "dataset": "cifar10", "framework": "pytorch",
            "backend": "pytorch", "precision": recipe["precision"],
            "mixed_precision": "bfloat16" if recipe["precision"] == "bfloat16" else "none",
            "class_names": data.class_names, "image_size": list(x_train.shape[1:3]),
            "channels": int(x_train.shape[3]), "padded_from": None, "eval_resize": None,
            "mean": "pixel", "augment_border": "mean image", "data_source": "folder",
            "data_dir": str(Path(flag_values["data_dir"]).resolve()),
            "train_examples": len(x_train), "validation_examples": len(x_val),
            "test_examples": len(data.x_test), "recipe": recipe,
            "loss": "cross-entropy without the weight-decay term",
        }
        model_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(model_dir / "metadata.json",
                     (json.dumps(metadata, indent=2, sort_keys=True) + "\n").encode())
        buffer = io.BytesIO()
        np.savez(buffer, x_train=x_train, y_train=y_train, x_val=x_val, y_val=y_val,
                 x_test=data.x_test, y_test=data.y_test, mean=cifar_data.mean_image(x_train))
        write_atomic(model_dir / DATA_FILE, buffer.getvalue())
    metadata = read_json(model_dir / "metadata.json")
    total = recipe["train_steps"]
    boundaries = list(schedules.CIFAR_BOUNDARIES)
    if total != schedules.CIFAR_TOTAL_STEPS:  # 50% and 75%, as training/cifar10.py scales them
        boundaries = schedules.scaled_boundaries(boundaries, total, schedules.CIFAR_TOTAL_STEPS)
    return {"recipe": recipe, "model_dir": str(model_dir), "total_steps": total,
            "steps_per_epoch": metadata["train_examples"] // batch, "boundaries": boundaries,
            "lr_values": schedules.cifar_schedule(recipe["lr"], boundaries).values,
            "columns": list(trainer.CSV_COLUMNS), "eval_batch_size": flag_values["eval_batch_size"],
            "checkpoint_steps": flag_values["checkpoint_steps"], "threads": flag_values["threads"],
            "flags": flag_values}


def main(argv: list[str]) -> int:
    from absl import flags

    if len(argv) > 1:
        print(f"error: unexpected arguments {argv[1:]}", file=sys.stderr)
        return 2
    values = {name: flags.FLAGS[name].value for name in RECIPE_FLAGS + OTHER_FLAGS}
    try:
        config = prepare(values)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if config is None:
        return 0
    sys.stdout.flush()
    sys.stderr.flush()
    python = values["torch_python"]
    os.execv(python, [python, str(Path(__file__).resolve()), "--torch_worker", json.dumps(config)])


if __name__ == "__main__":
    if sys.argv[1:2] == ["--torch_worker"]:  # under --torch_python: torch and numpy, no Keras
        train(json.loads(sys.argv[2]))
        sys.exit(0)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from absl import app, flags

    flags.DEFINE_enum("model", "resnet20", list(MODELS), "CIFAR net (option-A shortcuts).")
    flags.DEFINE_string("data_dir", None, "CIFAR-10 as DIR/{train,test}/<class>/*.jpg.",
                        required=True)
    flags.DEFINE_string("model_dir", None, "Where metrics.csv, metadata.json, results.json and "
                        "checkpoints go.", required=True)
    flags.DEFINE_integer("train_steps", 8000, "Training steps (the cifar_8k suite: 8000).",
                         lower_bound=1)
    flags.DEFINE_integer("batch_size", 128, "Batch size.", lower_bound=1)
    flags.DEFINE_float("lr", 0.1, "Base learning rate, divided by 10 at 50% and 75% of the steps.",
                       lower_bound=0.0)
    flags.DEFINE_float("momentum", 0.9, "SGD momentum.", lower_bound=0.0)
    flags.DEFINE_float("weight_decay", 1e-4, "SGD weight decay.", lower_bound=0.0)
    flags.DEFINE_integer("seed", 0, "Seed of the weights, batch order and augmentation (the "
                         "split is seed 0's whatever the seed, as in training/cifar10.py).")
    flags.DEFINE_integer("validation_per_class", 500, "Training images of each class held out "
                         "for validation (0: none).", lower_bound=0)
    flags.DEFINE_integer("max_train_examples", None, "A random subset of the training images.",
                         lower_bound=1)
    flags.DEFINE_integer("max_test_examples", None, "A random subset of the test images.",
                         lower_bound=1)
    flags.DEFINE_enum("weight_decay_on", "all", ["all", "kernels"], "all: every parameter "
                      "(PyTorch's usual recipe); kernels: conv and fc weights only (ours).")
    flags.DEFINE_enum("classifier_init", "torch", ["torch", "glorot"], "fc initialisation: "
                      "torch: nn.Linear's default; glorot: Glorot-uniform, zero bias (ours).")
    flags.DEFINE_enum("precision", "float32", ["float32", "bfloat16"], "bfloat16: CPU autocast.")
    flags.DEFINE_integer("eval_batch_size", 500, "Batch size of validation and test.",
                         lower_bound=1)
    flags.DEFINE_integer("checkpoint_steps", 0, "Also checkpoint every this many steps (0: at "
                         "epoch ends only).", lower_bound=0)
    flags.DEFINE_integer("threads", 0, "PyTorch's threads (0: one per core). Beside another job "
                         "on the cores, 1 thread can train several times faster (OpenMP threads "
                         "wait for each other).", lower_bound=0)
    flags.DEFINE_string("torch_python", "/usr/bin/python3", "A Python with PyTorch for the worker.")
    app.run(main)
