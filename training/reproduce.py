"""Reproduce the CIFAR-10 claims of He et al. 2015, Sec. 4.2, at a stated scale, and write the
report (docs/results.md, Fig. 6 and Fig. 7 PNGs, the Fig. 7 CSV) from the runs' files:

    python training/reproduce.py --suite=cifar_small     # 4 nets on a CIFAR-10 subset, 2 CPU cores
    python training/reproduce.py --suite=fmnist          # ResNet-20 on all of Fashion-MNIST
    KERAS_BACKEND=jax python training/reproduce.py --suite=paper   # the paper's schedule, on a GPU
    python training/reproduce.py --suite=cifar_small --report_only

Claims checked: degradation of plain nets (Fig. 6 left), depth helps with shortcuts (Fig. 6
right, Table 6), ResNets' 3x3 layer responses are smaller than plain nets' (Fig. 7).
Every run trains in its own `training/cifar10.py` process and model_dir (RUNS_DIR/SUITE/MODEL):
a finished run is skipped and an interrupted one resumes from its newest checkpoint, so the runner
can be stopped and restarted at any time, also on another machine given the model_dirs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from absl import app, flags

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # quiet TensorFlow here and in the trainers

REPO = Path(__file__).resolve().parents[1]
TRAINER = REPO / "training" / "cifar10.py"
CIFAR_JPEG_TAR = REPO.parent / "shared" / "datasets" / "cifar10-jpeg.tar.gz"
CIFAR_CLASSES = 10
RUNNER_FILE = "runner.json"  # the flags (without paths) the runner started a model_dir with

# Table 6 of the paper: CIFAR-10 test error (%) of the full-schedule ResNets (best of 5 runs for
# ResNet-110, whose mean is 6.61 +- 0.16). The plain nets' errors appear only as Fig. 6's curves.
PAPER_TEST_ERROR = {"resnet20": 8.75, "resnet32": 7.51, "resnet44": 7.17, "resnet56": 6.97,
                    "resnet110": 6.43}
PAPER_SCHEDULE = ("64,000 iterations of batch 128 on a 45k/5k split of the 50k training images; "
                  "lr 0.1, divided by 10 at 32k and 48k iterations")


class RunnerError(RuntimeError):
    """Bad input or a model_dir that does not belong to this suite; the message says what to do."""


@dataclass(frozen=True)
class DataSpec:
    """A suite's images. CIFAR-10 suites draw a seeded class-balanced pool of
    `train_per_class + validation_per_class` training images per class from the JPEG copy (None:
    all 5,000); the trainer then holds out `validation_per_class` random images of each class of
    the pool for validation (--validation_per_class: Sec. 4.2's 45k/5k split, class-balanced)."""

    dataset: str  # training/cifar10.py --dataset
    label: str
    train_per_class: int | None = None
    validation_per_class: int = 0
    test_per_class: int | None = None  # None: all 1,000 per class
    seed: int = 0


@dataclass(frozen=True)
class Claim:
    """One claim of the paper, measured: `metric` of `lower` is below that of `upper` (a model
    name), or at most `upper` (a number). Metrics: train_error / test_error (final, from the
    runs' files), response_std (Fig. 7: mean over the 3x3 layers)."""

    text: str
    metric: str
    lower: str
    upper: str | float


@dataclass(frozen=True)
class Suite:
    """A table of runs: the same data and trainer flags for every model."""

    name: str
    title: str
    models: tuple[str, ...]
    data: DataSpec
    train_flags: dict = field(default_factory=dict)
    claims: tuple[Claim, ...] = ()
    budget: str = ""
    fig7: str | None = None  # file stem of Fig. 7 in the docs dir (None: no Fig. 7)
    hidden: bool = False  # for the tests; not described in the report unless run

    @property
    def batch_size(self) -> int:
        return int(self.train_flags.get("batch_size", 128))


def _cifar_claims(depths: tuple[int, int]) -> tuple[Claim, ...]:
    """The paper's CIFAR-10 claims (Fig. 6, Table 6, Fig. 7) for a shallow and a deep depth."""
    shallow, deep = depths
    p, r = f"plain{shallow}", f"resnet{shallow}"
    pd, rd = f"plain{deep}", f"resnet{deep}"
    return (
        Claim(f"Degradation (Fig. 6 left): plain-{deep} ends with a higher training error than "
              f"plain-{shallow}", "train_error", p, pd),
        Claim(f"Degradation (Fig. 6 left): plain-{deep} ends with a higher test error than "
              f"plain-{shallow}", "test_error", p, pd),
        Claim(f"Depth helps with shortcuts (Fig. 6 right): ResNet-{deep} ends with a lower "
              f"training error than ResNet-{shallow}", "train_error", rd, r),
        Claim(f"Depth helps with shortcuts (Table 6): ResNet-{deep} ends with a lower test error "
              f"than ResNet-{shallow}", "test_error", rd, r),
        Claim(f"Shortcuts fix degradation: ResNet-{deep} ends with a lower training error than "
              f"plain-{deep}", "train_error", rd, pd),
        Claim(f"Shortcuts fix degradation: ResNet-{deep} ends with a lower test error than "
              f"plain-{deep}", "test_error", rd, pd),
        Claim(f"Fig. 7: ResNet-{shallow}'s 3x3 responses are smaller than plain-{shallow}'s "
              f"(mean over layers)", "response_std", r, p),
        Claim(f"Fig. 7: ResNet-{deep}'s 3x3 responses are smaller than plain-{deep}'s "
              f"(mean over layers)", "response_std", rd, pd),
    )


# The suites. The CPU budgets come from throughput measured on the 2-core machine while three
# other engineers loaded it (load average 4.5-9.5), as CPU time (/proc), which the load distorts
# less than wall time: training/cifar10.py, batch 128, epochs of 1,280 training + 500 test images:
# ResNet-20 6.0 CPU s, ResNet-56 18.5 CPU s per epoch; Keras evaluate, batch 500: 1.28 / 3.63
# CPU ms per image; hence 4.2 / 13.0 CPU ms per training image. Plain nets cost as much as ResNets
# of the same depth. Wall time on the quiet machine is taken as CPU time / 1.6 (two TF threads
# at 80%); if it runs slower, fewer epochs keep the budget (the formulas below).
# The CPU suites train in float32 on every machine, as their documented runs did (the trainers'
# `--mixed_precision=auto` would pick bfloat16 on CPUs with AMX or AVX512-BF16); the paper suite
# takes the default.
FLOAT32 = {"mixed_precision": "none"}
SUITES: dict[str, Suite] = {s.name: s for s in (
    Suite(
        name="cifar_small",
        title="Plain vs. residual nets, 20 and 56 layers, on a CIFAR-10 subset",
        models=("plain20", "plain56", "resnet20", "resnet56"),
        # Per epoch, the 4 runs: 2 x (4.2 + 13.0) ms x 10,000 training images + 2 x (1.28 + 3.63)
        # ms x 15,000 validation and test images = 491 CPU s, 307 s of wall time; 12 epochs (936
        # iterations) = 61 min, plus about 3 min of data extraction, start-up and saving: within
        # 75 minutes. A 5,000-image subset would allow 19 epochs but only 741 iterations (the
        # evaluation of the 15,000 held-out images per epoch dominates): the larger subset it is.
        data=DataSpec("cifar10", "CIFAR-10 (JPEG q75 copy)", train_per_class=1000,
                      validation_per_class=500),
        train_flags={"epochs": 12, "batch_size": 128, "lr": 0.1, "weight_decay": 1e-4,
                     "momentum": 0.9, "augment": True, **FLOAT32},
        claims=_cifar_claims((20, 56)),
        budget="about 75 minutes on a 2-core CPU machine",
        fig7="fig7_layer_responses",
    ),
    Suite(
        name="cifar_8k",
        title="Plain vs. residual nets, 20 and 56 layers, on all of CIFAR-10, 1/8 of the schedule",
        models=("plain20", "plain56", "resnet20", "resnet56"),
        # The paper's data and recipe (45k/5k split, 500 validation images per class; lr 0.1
        # divided by 10 at 50% and 75%) for 8,000 iterations, 1/8 of its 64k; the trainers'
        # precision (`auto`). Wall time per net: results/cifar_8k/README.md.
        data=DataSpec("cifar10", "CIFAR-10 (JPEG q75 copy)", validation_per_class=500),
        train_flags={"train_steps": 8000, "batch_size": 128, "lr": 0.1, "weight_decay": 1e-4,
                     "momentum": 0.9, "augment": True, "checkpoint_steps": 500},
        claims=_cifar_claims((20, 56)),
        budget="about 4 hours on a 2-core CPU machine",
        fig7="fig7_cifar_8k",
    ),
    Suite(
        name="fmnist",
        title="ResNet-20 on all of Fashion-MNIST",
        models=("resnet20",),
        # Per epoch: 60,000 x 4.2 ms + 10,000 x 1.28 ms = 265 CPU s, 165 s of wall time; 20
        # epochs (9,360 iterations) = 55 min, plus start-up: within 60 minutes.
        data=DataSpec("fashion_mnist", "Fashion-MNIST (Debian's idx files, padded to 32x32)"),
        train_flags={"epochs": 20, "batch_size": 128, "lr": 0.1, "weight_decay": 1e-4,
                     "momentum": 0.9, "augment": True, "train_on_all": True,
                     "checkpoint_steps": 100, **FLOAT32},
        claims=(Claim("Fashion-MNIST test accuracy >= 95.0% (the public benchmark table lists "
                      "ResNet-18 at 94.9%)", "test_error", "resnet20", 0.05),),
        budget="about 60 minutes on a 2-core CPU machine",
    ),
    Suite(
        name="paper",
        title="The paper's CIFAR-10 experiment (Sec. 4.2, Fig. 6, Table 6)",
        models=("plain20", "plain32", "plain44", "plain56",
                "resnet20", "resnet32", "resnet44", "resnet56", "resnet110"),
        data=DataSpec("cifar10", "CIFAR-10 (JPEG q75 copy)", validation_per_class=500),
        train_flags={"train_steps": 64000, "batch_size": 128, "lr": 0.1, "weight_decay": 1e-4,
                     "momentum": 0.9, "augment": True, "checkpoint_steps": 2000},
        claims=_cifar_claims((20, 56)) + (
            Claim("Depth helps with shortcuts (Table 6): ResNet-110 ends with a lower test error "
                  "than ResNet-56", "test_error", "resnet110", "resnet56"),),
        budget="hours of GPU time per net (the paper: 2 GPUs); not run on the CPU machines",
        fig7="fig7_layer_responses_paper",
    ),
    Suite(
        name="tiny",
        title="Tiny end-to-end check of the runner (tests only)",
        models=("plain20", "resnet20"),
        data=DataSpec("cifar10", "CIFAR-10 (JPEG q75 copy)", train_per_class=30,
                      validation_per_class=5, test_per_class=10),
        train_flags={"epochs": 3, "batch_size": 32, "lr": 0.1, "weight_decay": 1e-4, **FLOAT32},
        claims=(Claim("ResNet-20 ends with a lower training error than plain-20", "train_error",
                      "resnet20", "plain20"),
                Claim("Fig. 7: ResNet-20's 3x3 responses are smaller than plain-20's",
                      "response_std", "resnet20", "plain20")),
        budget="about a minute",
        fig7="fig7_layer_responses_tiny",
        hidden=True,
    ),
)}

flags.DEFINE_enum("suite", None, list(SUITES), "The suite to train and report.", required=True)
flags.DEFINE_list("models", None, "Train only these models of the suite (default: all); e.g. to "
                  "split a suite over machines that share --runs_dir.")
flags.DEFINE_string("runs_dir", str(REPO / "runs"), "Model_dirs go to RUNS_DIR/SUITE/MODEL, "
                    "prepared data to RUNS_DIR/data.")
flags.DEFINE_string("docs_dir", str(REPO / "docs"), "Where results.md and the figures go.")
flags.DEFINE_string("cifar_tar", str(CIFAR_JPEG_TAR), "The CIFAR-10 JPEG copy (.tar.gz).")
flags.DEFINE_string("fashion_mnist_dir", None, "Fashion-MNIST's idx .gz files (default: the "
                    "trainer's, keras_resnet.training.cifar_data.FASHION_MNIST_DIR).")
flags.DEFINE_bool("report", True, "Write the report after training.")
flags.DEFINE_bool("report_only", False, "Only write the report from the existing model_dirs.")
flags.DEFINE_integer("response_images", 1000, "Test images for Fig. 7's layer responses.",
                     lower_bound=1)
FLAGS = flags.FLAGS


# --------------------------------------------------------------------------- data

def prepare_data(suite: Suite, runs_dir: Path, cifar_tar: Path,
                 fashion_mnist_dir: str | None) -> tuple[str, str]:
    """(--data_source, --data_dir) for the suite's trainer runs; CIFAR-10 subsets are extracted
    once from the JPEG copy into RUNS_DIR/data/KEY and reused."""
    if suite.data.dataset == "fashion_mnist":
        from keras_resnet.training.cifar_data import FASHION_MNIST_DIR

        return "files", fashion_mnist_dir or FASHION_MNIST_DIR
    spec = suite.data
    pool = "all" if spec.train_per_class is None else \
        spec.train_per_class + spec.validation_per_class
    test = "all" if spec.test_per_class is None else spec.test_per_class
    target = runs_dir / "data" / f"cifar10-jpeg_pool{pool}_test{test}_seed{spec.seed}"
    if (target / "manifest.json").exists():
        print(f"Using prepared data {target}", flush=True)
        return "folder", str(target / "cifar10-jpeg")
    if not cifar_tar.is_file():
        raise RunnerError(f"--cifar_tar={cifar_tar}: no such file; expected the CIFAR-10 JPEG copy "
                          f"(shared/datasets/cifar10-jpeg.tar.gz beside the repository).")
    print(f"Extracting a class-balanced subset of {cifar_tar} to {target}", flush=True)
    limits = {"train": None if pool == "all" else pool, "test": spec.test_per_class}
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    try:
        with tarfile.open(cifar_tar) as tar:
            members = [m for m in tar if m.isfile() and m.name.lower().endswith(".jpg")]
            chosen = select_balanced(members, limits, spec.seed)
            # In archive order: a gzip stream seeks backwards by decompressing from the start.
            tar.extractall(tmp, members=sorted(chosen, key=lambda m: m.offset), filter="data")
    except (tarfile.TarError, OSError, EOFError) as error:
        raise RunnerError(f"--cifar_tar={cifar_tar}: unreadable ({type(error).__name__}: "
                          f"{error}).") from None
    counts = {split: len([m for m in chosen if Path(m.name).parts[1] == split])
              for split in limits}
    (tmp / "manifest.json").write_text(json.dumps(
        {"source": str(cifar_tar), "per_class": limits, "seed": spec.seed, "images": counts,
         "files": sorted(m.name for m in chosen)}, indent=1) + "\n")
    os.replace(tmp, target)
    return "folder", str(target / "cifar10-jpeg")


def select_balanced(members: list[tarfile.TarInfo], limits: dict[str, int | None],
                    seed: int) -> list[tarfile.TarInfo]:
    """Per split and class (ROOT/SPLIT/CLASS/FILE), a seeded random `limits[split]` files
    (all if None)."""
    groups: dict[tuple[str, str], list[tarfile.TarInfo]] = {}
    for member in members:
        parts = Path(member.name).parts
        if len(parts) == 4 and parts[1] in limits:
            groups.setdefault((parts[1], parts[2]), []).append(member)
    classes = sorted({name for _, name in groups})
    if len(classes) != CIFAR_CLASSES or len(groups) != len(limits) * CIFAR_CLASSES:
        raise RunnerError(f"--cifar_tar: expected ROOT/{{{','.join(limits)}}}/<10 classes>/*.jpg, "
                          f"found {len(groups)} split/class folders.")
    chosen = []
    for (split, name), group in sorted(groups.items()):
        group.sort(key=lambda m: m.name)
        limit = limits[split]
        if limit is not None and limit > len(group):
            raise RunnerError(f"--cifar_tar: {split}/{name} has {len(group)} images; the suite "
                              f"asks for {limit}.")
        rng = np.random.default_rng([seed, sorted(limits).index(split), classes.index(name)])
        keep = range(len(group)) if limit is None else np.sort(rng.permutation(len(group))[:limit])
        chosen += [group[i] for i in keep]
    return chosen


# --------------------------------------------------------------------------- runs

def run_flags(suite: Suite, model: str) -> dict:
    """The training/cifar10.py flags of one run, without its paths (--data_dir, --model_dir)."""
    run = {"model": model, "dataset": suite.data.dataset, "seed": suite.data.seed, "verbose": 2}
    if not suite.train_flags.get("train_on_all"):
        run["validation_per_class"] = suite.data.validation_per_class
    return {**run, **suite.train_flags}


def command_line(run: dict) -> list[str]:
    """The training/cifar10.py command of a run's flags (booleans as --name / --noname)."""
    args = []
    for name, value in run.items():
        if isinstance(value, bool):
            args.append(f"--{name}" if value else f"--no{name}")
        else:
            args.append(f"--{name}={value}")
    return [sys.executable, str(TRAINER), *args]


def read_json(path: Path) -> dict | None:
    """The JSON file's contents, or None if it is missing or unreadable (through tf.io.gfile)."""
    from keras_resnet.training.files import read_json as read

    return read(str(path))


def check_model_dir(model_dir: Path, run: dict) -> bool:
    """True if the run in `model_dir` is finished. Raises if the model_dir was started with
    other flags (a different suite definition), as resuming it would mix two schedules."""
    started = read_json(model_dir / RUNNER_FILE)
    if started is not None and started != run:
        differing = sorted(k for k in set(started) | set(run) if started.get(k) != run.get(k))
        before = ", ".join(f"--{k}={started.get(k)}" for k in differing)
        now = ", ".join(f"--{k}={run.get(k)}" for k in differing)
        raise RunnerError(f"{model_dir} was started with other flags ({before}; this suite asks "
                          f"{now}): pass another --runs_dir or delete it.")
    return started is not None and read_json(model_dir / "results.json") is not None


def train_suite(suite: Suite, models: list[str], runs_dir: Path, cifar_tar: Path,
                fashion_mnist_dir: str) -> None:
    """Train the suite's runs one after another, skipping finished ones and resuming
    interrupted ones. Every model_dir is checked before any data is prepared or run trained."""
    runs = {m: run_flags(suite, m) for m in models}
    finished = {m: check_model_dir(runs_dir / suite.name / m, runs[m]) for m in models}
    data = None if all(finished.values()) else \
        prepare_data(suite, runs_dir, cifar_tar, fashion_mnist_dir)
    for index, model in enumerate(models, 1):
        model_dir = runs_dir / suite.name / model
        prefix = f"[{suite.name} {index}/{len(models)}] {model}"
        if finished[model]:
            print(f"{prefix}: finished, skipped ({model_dir})", flush=True)
            continue
        model_dir.mkdir(parents=True, exist_ok=True)
        (model_dir / RUNNER_FILE).write_text(json.dumps(runs[model], indent=1, sort_keys=True))
        print(f"{prefix}: training ({model_dir})", flush=True)
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
        paths = {"data_source": data[0], "data_dir": data[1], "model_dir": str(model_dir)}
        process = subprocess.run(command_line({**runs[model], **paths}), cwd=REPO, env=env)
        if process.returncode != 0:
            raise RunnerError(f"{prefix}: training/cifar10.py exited with {process.returncode}; "
                              f"its output is above. Rerunning the suite resumes the run.")


# --------------------------------------------------------------------------- report

def pretty(model: str) -> str:
    """plain56 -> plain-56, resnet56 -> ResNet-56 (the paper's names)."""
    if model.startswith("plain"):
        return f"plain-{model[len('plain'):]}"
    return f"ResNet-{model[len('resnet'):]}"


def percent(value: float | None) -> str:
    """An error rate as a percentage with two decimals, as in Table 6."""
    return "n/a" if value is None else f"{100 * value:.2f}%"


def machine(results: dict) -> str:
    """GPUs if any, else the CPU cores, and the Keras backend, from results.json's hardware."""
    hardware = results.get("hardware", {})
    gpus = [d for d in hardware.get("devices", []) if "CPU" not in d.upper()]
    where = ", ".join(gpus) if gpus else \
        f"{hardware.get('cpu_count', '?')}-core {hardware.get('processor', '')} CPU"
    load = hardware.get("load_average_at_end")
    load_text = f", 15-min load {load[2]:.1f} at the end" if load else ""
    return f"{where} ({hardware.get('backend', '?')}{load_text})"


@dataclass
class RunRecord:
    """What the report uses of one model_dir."""

    model: str
    model_dir: Path
    rows: list[dict]
    results: dict | None

    @property
    def final_train_error(self) -> float | None:
        return self.rows[-1].get("train_error") if self.rows else None

    @property
    def best_validation_row(self) -> dict | None:
        rows = [r for r in self.rows if "val_error" in r]
        return min(rows, key=lambda r: (r["val_error"], r["epoch"])) if rows else None


def load_runs(suite: Suite, runs_dir: Path) -> list[RunRecord]:
    """The suite's model_dirs that have at least one epoch in metrics.csv, in suite order."""
    from keras_resnet.training.files import read_metrics_csv

    records = []
    for model in suite.models:
        model_dir = runs_dir / suite.name / model
        rows = read_metrics_csv(str(model_dir / "metrics.csv"))
        if rows:
            records.append(RunRecord(model, model_dir, rows, read_json(model_dir / "results.json")))
    return records


def scale_text(suite: Suite, records: list[RunRecord]) -> str:
    """The scale of a suite's runs, from their metadata and results (what ran, not the table)."""
    metadata = read_json(records[0].model_dir / "metadata.json") or {}
    steps = sorted({r.results["steps"] for r in records if r.results})
    steps_text = "/".join(f"{s:,}" for s in steps) if steps else "unfinished"
    balanced = " (class-balanced pool)" if suite.data.train_per_class is not None else ""
    return (f"{suite.data.label}: {metadata.get('train_examples', 0):,} training images{balanced}, "
            f"{metadata.get('validation_examples', 0):,} validation, "
            f"{metadata.get('test_examples', 0):,} test; {steps_text} iterations of batch "
            f"{suite.batch_size}, lr 0.1 divided by 10 at 50% and 75% of training, weight decay "
            f"1e-4, momentum 0.9")


def short_scale(suite: Suite, records: list[RunRecord]) -> str:
    """The scale in a figure title."""
    metadata = read_json(records[0].model_dir / "metadata.json") or {}
    steps = max((r.results["steps"] for r in records if r.results), default=0)
    return (f"{suite.data.label.split(' (')[0]}, {metadata.get('train_examples', 0):,} train "
            f"images, {steps:,} iter.")


def layer_responses(suite: Suite, records: list[RunRecord], data: tuple[str, str],
                    num_images: int) -> tuple[dict[str, list[tuple[str, float]]], int]:
    """Fig. 7's responses of the suite's finished runs on (at most `num_images` of) its test
    images, and the number of images used."""
    import keras

    from keras_resnet.training import cifar_data, figures

    images = cifar_data.load(suite.data.dataset, data[0], data[1], max_train=1,
                             max_test=num_images).x_test
    if images.shape[1] < 32:
        images = cifar_data.pad_to(images, 32)
    responses = {}
    for record in records:
        if record.results is None:
            continue
        model = keras.models.load_model(str(record.model_dir / "model.keras"))
        responses[pretty(record.model)] = figures.layer_responses(model, images)
    return responses, len(images)


# conv1 kernel norm / He-init expectation above which a run is reported as an unstable start.
UNSTABLE_GROWTH = 3.0


def weight_growth(records: list[RunRecord]) -> tuple[list[str], dict[str, float]]:
    """Markdown rows, and the growth ratio per net: each finished net's conv1 kernel L2 norm against its He-init expectation
    (sqrt(2 x filters): E|w|^2 = k*k*c_in*filters * 2/(k*k*c_in)) and its largest |BN gamma|.
    BN makes a layer's output blind to its kernel's scale, so a kernel that grew k-fold learns at
    1/k^2 of the learning rate: large growth is the mark of an unstable start (Sec. 4.2)."""
    import keras

    rows, ratios = [], {}
    for record in records:
        if record.results is None:
            continue
        model = keras.models.load_model(str(record.model_dir / "model.keras"))
        kernel = np.asarray(model.get_layer("conv1_conv").kernel)
        expected = float(np.sqrt(2 * kernel.shape[-1]))
        gammas = [float(np.abs(np.asarray(layer.gamma)).max()) for layer in model.layers
                  if isinstance(layer, keras.layers.BatchNormalization)]
        norm = float(np.linalg.norm(kernel))
        ratios[pretty(record.model)] = norm / expected
        rows.append(f"| {pretty(record.model)} | {norm:.1f} | {expected:.1f} | {norm / expected:.1f}x | "
                    f"{max(gammas):.2f} |")
    return rows, ratios


def trainable_parameters(record: RunRecord) -> int:
    """Trainable parameters of the run's net, built for its input shape and classes."""
    import keras_resnet

    metadata = read_json(record.model_dir / "metadata.json") or {}
    shape = (*metadata.get("image_size", (32, 32)), metadata.get("channels", 3))
    net = keras_resnet.get_model(record.model, weights=None, input_shape=shape,
                                 classes=len(metadata.get("class_names", range(CIFAR_CLASSES))))
    return int(sum(np.prod(w.shape) for w in net.trainable_weights))


def measured(claim: Claim, values: dict[str, dict[str, float]]) -> tuple[str, str]:
    """(verdict, the numbers) of a claim; verdict 'shown', 'not shown' or 'not measured'."""
    metric = values.get(claim.metric, {})
    lower = metric.get(claim.lower)
    if isinstance(claim.upper, str):
        upper = metric.get(claim.upper)
        if lower is None or upper is None:
            return "not measured", "runs missing"
        fmt = (lambda v: f"{v:.4f}") if claim.metric == "response_std" else percent
        return ("shown" if lower < upper else "not shown",
                f"{pretty(claim.lower)} {fmt(lower)} vs. {pretty(claim.upper)} {fmt(upper)}")
    if lower is None:
        return "not measured", "run missing"
    return ("shown" if lower <= claim.upper else "not shown",
            f"{pretty(claim.lower)} {claim.metric.replace('_', ' ')} {percent(lower)} "
            f"(at most {percent(claim.upper)})")


def suite_section(suite: Suite, records: list[RunRecord], data: tuple[str, str] | None,
                  docs_dir: Path, num_images: int) -> list[str]:
    """The markdown of one suite, writing its figures into `docs_dir`."""
    from keras_resnet.training import figures
    import keras_resnet

    command = f"python training/reproduce.py --suite={suite.name}"
    if suite.name == "paper":
        command = f"KERAS_BACKEND=jax {command}"
    lines = [f"## `{suite.name}`: {suite.title}", ""]
    if not records:
        return lines + [f"Not run yet ({suite.budget}): `{command}`.", ""]
    lines += [f"Scale: {scale_text(suite, records)}. The paper: {PAPER_SCHEDULE}.", "",
              f"Command: `{command}` ({suite.budget}).", ""]
    lines += ["| net | layers | parameters | final training error | test error | best val. "
              "epoch (val. / test error) | steps | wall time | machine | paper, Table 6 "
              "(full schedule) |",
              "|---|---:|---:|---:|---:|---|---:|---:|---|---:|"]
    for record in records:
        spec = keras_resnet.get_spec(record.model)
        best = record.best_validation_row
        best_text = "n/a (no validation split)" if best is None else (
            f"{int(best['epoch'])} ({percent(best['val_error'])} / "
            f"{percent(best.get('test_error'))})")
        paper = PAPER_TEST_ERROR.get(record.model) if suite.data.dataset == "cifar10" else None
        paper_text = (f"{paper:.2f}%" if paper is not None else "Fig. 6 curves only"
                      if suite.data.dataset == "cifar10" else "n/a (not in the paper)")
        if record.results is None:
            done = (f"unfinished: step {int(record.rows[-1]['step'])}", "", "")
            test = percent(record.rows[-1].get("test_error"))
        else:
            done = (f"{record.results['steps']:,}",
                    f"{record.results['train_wall_s'] / 60:.1f} min", machine(record.results))
            test = percent(record.results["test_error"])
        lines.append(f"| {pretty(record.model)} | {spec.depth} | "
                     f"{trainable_parameters(record):,} | "
                     f"{percent(record.final_train_error)} | {test} | {best_text} | {done[0]} | "
                     f"{done[1]} | {done[2]} | {paper_text} |")
    lines += ["", "Final training error: the running mean over the last epoch (augmented images, "
              "training-mode BN), as in Fig. 6. Test error: the final model. The best validation "
              "epoch is chosen on the validation split only. Wall time: training with the "
              "per-epoch evaluations, without start-up.", ""]

    label = short_scale(suite, records)
    panels = []
    for kind, heading in (("plain", "plain nets"), ("resnet", "ResNets")):
        group = [r for r in records if r.model.startswith(kind)]
        if group:
            png = docs_dir / f"fig6_{suite.name}_{kind}.png"
            figures.plot_training_curves([str(r.model_dir) for r in group], str(png),
                                         [pretty(r.model) for r in group],
                                         f"{heading}, {label}")
            panels.append(f"![Fig. 6, {heading}]({png.name})")
    lines += ["Fig. 6 at this scale (dashed: training error, bold: test error; plain nets left, "
              "ResNets right):", "", "| " + " | ".join(panels) + " |",
              "|" + "---|" * len(panels), ""]

    values = {"train_error": {r.model: r.final_train_error for r in records if r.results},
              "test_error": {r.model: r.results["test_error"] for r in records if r.results}}
    if suite.fig7 and data is not None:
        responses, used = layer_responses(suite, records, data, num_images)
        if responses:
            figures.write_layer_responses(responses, str(docs_dir / f"{suite.fig7}.png"),
                                          str(docs_dir / f"{suite.fig7}.csv"),
                                          f"3x3 layer responses, {label}")
            values["response_std"] = {
                r.model: float(np.mean([std for _, std in responses[pretty(r.model)]]))
                for r in records if pretty(r.model) in responses}
            lines += [f"Fig. 7 at this scale: std of each 3x3 layer's response (after BN, before "
                      f"the addition and ReLU) on {used:,} test images, "
                      f"top in layer order, bottom sorted by magnitude "
                      f"([CSV]({suite.fig7}.csv)):", "", f"![Fig. 7]({suite.fig7}.png)", ""]
    growth, ratios = weight_growth(records)
    if growth:
        lines += ["Weights at the end of training (a diagnostic of stable starts; BN makes each "
                  "layer blind to its kernel's scale, so a kernel that grew k-fold learns at 1/k^2 "
                  "of the learning rate):", "",
                  "| net | conv1 kernel L2 norm | He-init expectation | ratio | largest BN gamma |",
                  "|---|---:|---:|---:|---:|", *growth, ""]
    lines += ["Claims, as measured:", ""]
    verdicts = [measured(claim, values) for claim in suite.claims]
    lines += [f"- **{verdict}**: {claim.text}: {numbers}."
              for claim, (verdict, numbers) in zip(suite.claims, verdicts)]
    if any(verdict == "not shown" for verdict, _ in verdicts):
        lines += ["", "A claim marked *not shown* did not appear at this scale, which trains for "
                  "a small fraction of the paper's 64k iterations (and, for CIFAR-10 subsets, on "
                  "fewer images); the `paper` suite's full schedule is the scale at which the "
                  "paper shows it."]
        grown = [f"{net} ({ratio:.1f}x)" for net, ratio in ratios.items() if ratio > UNSTABLE_GROWTH]
        if grown:
            lines[-1] += (f" Here the conv1 kernels of {', '.join(grown)} ended more than "
                          f"{UNSTABLE_GROWTH:g}x their initial norm: those nets did not start "
                          "converging at lr 0.1 within this short schedule. The paper meets the "
                          "same problem with ResNet-110 and warms it up at lr 0.01 for about 400 "
                          "iterations (Sec. 4.2); its 64k iterations also give weight decay time to "
                          "undo such growth.")
        if suite.data.dataset == "cifar10" and (docs_dir / "start_of_training.md").exists():
            lines[-1] += (" [start_of_training.md](start_of_training.md) trains the first "
                          "iterations of these nets in PyTorch from the same weights on the same "
                          "batches, to tell the recipe at this depth from this implementation "
                          "(`benchmarks/torch_start_of_training.py`).")
        train_errors = values["train_error"]
        for claim, (verdict, _) in zip(suite.claims, verdicts):
            train_error = train_errors.get(claim.lower)
            if (verdict == "not shown" and claim.metric == "test_error"
                    and not isinstance(claim.upper, str) and train_error is not None
                    and train_error > claim.upper):
                lines[-1] += (f" {pretty(claim.lower)}'s final training error "
                              f"({percent(train_error)}) is itself above the {percent(claim.upper)} "
                              "bound: the net still underfits at this schedule, and more epochs "
                              "are what should show the claim.")
    return lines + [""]


def write_report(suites: list[Suite], runs_dir: Path, docs_dir: Path, cifar_tar: Path,
                 fashion_mnist_dir: str, num_images: int) -> Path:
    """docs_dir/results.md and the figures, from the model_dirs of `suites` under `runs_dir`."""
    docs_dir.mkdir(parents=True, exist_ok=True)
    lines = ["# Reproducing the CIFAR-10 claims of He et al. 2015 (Sec. 4.2)", "",
             "Generated by `python training/reproduce.py --suite=NAME` (or `--report_only`) from "
             "the runs' results.json and metrics.csv; every number below comes from those files. "
             "Scaled-down suites are labelled with their scale: they test the paper's claims, not "
             "its absolute errors.", ""]
    for suite in suites:
        records = load_runs(suite, runs_dir)
        data = prepare_data(suite, runs_dir, cifar_tar, fashion_mnist_dir) \
            if suite.fig7 and any(r.results for r in records) else None
        lines += suite_section(suite, records, data, docs_dir, num_images)
    path = docs_dir / "results.md"
    tmp = path.with_name(f"results.md.tmp-{os.getpid()}")
    tmp.write_text("\n".join(lines))
    os.replace(tmp, path)
    print(f"Wrote {path}", flush=True)
    return path


# --------------------------------------------------------------------------- main

def main(argv: list[str]) -> int:
    del argv
    suite = SUITES[FLAGS.suite]
    models = FLAGS.models or list(suite.models)
    unknown = [m for m in models if m not in suite.models]
    if unknown:
        print(f"error: --models={','.join(models)}: {', '.join(unknown)} not in suite "
              f"{suite.name!r}; allowed: {', '.join(suite.models)}.", file=sys.stderr)
        return 2
    runs_dir, docs_dir = Path(FLAGS.runs_dir).resolve(), Path(FLAGS.docs_dir).resolve()
    cifar_tar = Path(FLAGS.cifar_tar)
    try:
        if not FLAGS.report_only:
            train_suite(suite, models, runs_dir, cifar_tar, FLAGS.fashion_mnist_dir)
        if FLAGS.report or FLAGS.report_only:
            report = [s for s in SUITES.values() if not s.hidden or s is suite]
            write_report(report, runs_dir, docs_dir, cifar_tar, FLAGS.fashion_mnist_dir,
                         FLAGS.response_images)
    except RunnerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    app.run(main)
