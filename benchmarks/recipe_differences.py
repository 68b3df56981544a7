"""What each remaining difference between our CIFAR recipe and the PyTorch reference's changes.

The same-recipe PyTorch reference (benchmarks/torch_cifar_reference.py) keeps PyTorch's usual
defaults where ours differ: weight decay on every parameter (ours: conv and fc kernels only,
Sec. 3.4), nn.Linear's initialisation of the classifier (ours: Keras's Glorot-uniform) and float32
(ours: mixed bfloat16 where the CPU has it). Short runs of the same schedule, compressed (lr 0.1
divided by 10 at 50% and 75% of `--train_steps`), switch each to ours alone, then all three, beside
our trainer itself; same data, split, batch order, augmentation and seed. One record:

    python benchmarks/recipe_differences.py \\
        --data_dir=runs/data/cifar10-jpeg_poolall_testall_seed0/cifar10-jpeg \\
        --runs_dir=runs/recipe_differences --json=results/cifar_8k/recipe_differences_resnet20.json

Each run has its own model_dir under --runs_dir: a finished run is skipped and an interrupted one
resumes, so the script can be stopped and restarted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from absl import app, flags

REPO = Path(__file__).resolve().parents[1]
# name -> (description, PyTorch reference flags, or None for our trainer)
VARIANTS = {
    "reference": ("PyTorch reference, its own defaults", {}),
    "decay_kernels_only": ("reference, weight decay on conv and fc kernels only (ours)",
                           {"weight_decay_on": "kernels"}),
    "glorot_classifier": ("reference, Glorot-uniform classifier (ours)",
                          {"classifier_init": "glorot"}),
    "bfloat16": ("reference, bfloat16 autocast", {"precision": "bfloat16"}),
    "all_three": ("reference with all three as ours",
                  {"weight_decay_on": "kernels", "classifier_init": "glorot",
                   "precision": "bfloat16"}),
    "ours": ("our trainer (training/cifar10.py, --mixed_precision=auto)", None),
}

flags.DEFINE_enum("model", "resnet20", ["resnet20", "resnet56"], "The CIFAR net.")
flags.DEFINE_string("data_dir", None, "CIFAR-10 as DIR/{train,test}/<class>/*.jpg.",
                    required=True)
flags.DEFINE_string("runs_dir", str(REPO / "runs" / "recipe_differences"), "Model_dirs go to "
                    "RUNS_DIR/MODEL/VARIANT.")
flags.DEFINE_string("json", None, "The record to write.", required=True)
flags.DEFINE_integer("train_steps", 1053, "Steps of each run (1053: 3 epochs of the 45k split).",
                     lower_bound=1)
flags.DEFINE_integer("batch_size", 128, "Batch size.", lower_bound=1)
flags.DEFINE_integer("validation_per_class", 500, "Training images of each class held out for "
                     "validation (Sec. 4.2: 500).", lower_bound=1)
flags.DEFINE_list("variants", list(VARIANTS), f"Variants to run: {', '.join(VARIANTS)}.")
flags.DEFINE_integer("threads", 1, "PyTorch's threads (1 beside another training).",
                     lower_bound=0)
flags.DEFINE_string("torch_python", "/usr/bin/python3", "A Python with PyTorch.")
FLAGS = flags.FLAGS


def command(variant: str, model_dir: Path) -> list[str]:
    """The training command of one variant."""
    common = [f"--model={FLAGS.model}", f"--data_dir={FLAGS.data_dir}",
              f"--model_dir={model_dir}", f"--train_steps={FLAGS.train_steps}",
              f"--batch_size={FLAGS.batch_size}",
              f"--validation_per_class={FLAGS.validation_per_class}", "--seed=0"]
    switches = VARIANTS[variant][1]
    if switches is None:
        return [sys.executable, str(REPO / "training" / "cifar10.py"), *common,
                "--dataset=cifar10", "--data_source=folder", "--verbose=2"]
    return [sys.executable, str(REPO / "benchmarks" / "torch_cifar_reference.py"), *common,
            f"--threads={FLAGS.threads}", f"--torch_python={FLAGS.torch_python}",
            *(f"--{name}={value}" for name, value in switches.items())]


def summary(model_dir: Path) -> dict:
    """Per-epoch errors and the final ones, from the run's metrics.csv and results.json."""
    from keras_resnet.training.files import read_json, read_metrics_csv

    rows = read_metrics_csv(str(model_dir / "metrics.csv"))
    results = read_json(str(model_dir / "results.json")) or {}
    keep = ("epoch", "step", "train_error", "val_error", "test_error")
    return {"description": VARIANTS[model_dir.name][0],
            "epochs": [{k: r[k] for k in keep if k in r} for r in rows],
            "test_error": results.get("test_error"),
            "train_wall_s": results.get("train_wall_s"),
            "precision": results.get("mixed_precision") or results.get("precision")}


def main(argv: list[str]) -> int:
    del argv
    unknown = [v for v in FLAGS.variants if v not in VARIANTS]
    if unknown:
        print(f"error: --variants: {', '.join(unknown)} unknown; allowed: "
              f"{', '.join(VARIANTS)}.", file=sys.stderr)
        return 2
    env = dict(os.environ, PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="2")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    record = {"model": FLAGS.model, "train_steps": FLAGS.train_steps, "variants": {}}
    for variant in FLAGS.variants:
        model_dir = Path(FLAGS.runs_dir) / FLAGS.model / variant
        model_dir.mkdir(parents=True, exist_ok=True)
        print(f"[{variant}] {model_dir}", flush=True)
        if subprocess.run(command(variant, model_dir), cwd=REPO, env=env).returncode != 0:
            print(f"error: variant {variant} failed; its output is above.", file=sys.stderr)
            return 1
        record["variants"][variant] = summary(model_dir)
        Path(FLAGS.json).parent.mkdir(parents=True, exist_ok=True)
        Path(FLAGS.json).write_text(json.dumps(record, indent=1) + "\n")  # after every run
    from keras_resnet.training.report import recipe_differences_table

    print("\n".join(recipe_differences_table(record)))
    return 0


if __name__ == "__main__":
    app.run(main)
