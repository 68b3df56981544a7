"""The reproduction suites of Sec. 4.2 (CIFAR-10): which nets, data and recipe each suite trains,
and which of the paper's claims its report checks. `training/reproduce.py` trains them;
`keras_resnet.training.report` writes docs/results.md from their records."""

from __future__ import annotations

from dataclasses import dataclass, field

# Table 6 of the paper: CIFAR-10 test error (%) of the full-schedule ResNets (best of 5 runs for
# ResNet-110, whose mean is 6.61 +- 0.16). The plain nets' errors appear only as Fig. 6's curves.
PAPER_TEST_ERROR = {"resnet20": 8.75, "resnet32": 7.51, "resnet44": 7.17, "resnet56": 6.97,
                    "resnet110": 6.43}
PAPER_SCHEDULE = ("64,000 iterations of batch 128 on a 45k/5k split of the 50k training images; "
                  "lr 0.1, divided by 10 at 32k and 48k iterations")
TORCH_PREFIX = "torch_"  # records of the PyTorch reference: torch_resnet20, ...


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
    """One claim of the paper, measured on `metric` (train_error / test_error: final, from the
    records; response_std: Fig. 7, the mean over the 3x3 layers). `lower` is a run; the claim
    holds if its metric is below that of the run `upper`, at most the number `upper`, or, with
    a `tolerance`, within `tolerance` of run `upper`'s."""

    text: str
    metric: str
    lower: str
    upper: str | float
    tolerance: float | None = None


@dataclass(frozen=True)
class Suite:
    """A table of runs: the same data and trainer flags for every model; `references`: models
    also trained by the same-recipe PyTorch reference (benchmarks/torch_cifar_reference.py)."""

    name: str
    title: str
    models: tuple[str, ...]
    data: DataSpec
    train_flags: dict = field(default_factory=dict)
    claims: tuple[Claim, ...] = ()
    budget: str = ""
    fig7: str | None = None  # file stem of Fig. 7 in the docs dir (None: no Fig. 7)
    references: tuple[str, ...] = ()
    hidden: bool = False  # for the tests; not described in the report unless run

    @property
    def batch_size(self) -> int:
        return int(self.train_flags.get("batch_size", 128))

    @property
    def runs(self) -> tuple[str, ...]:
        """The models, then the PyTorch references (torch_MODEL)."""
        return self.models + tuple(TORCH_PREFIX + m for m in self.references)


def pretty(model: str) -> str:
    """plain56 -> plain-56, resnet56 -> ResNet-56 (the paper's names); torch_resnet56 ->
    ResNet-56 (PyTorch)."""
    if model.startswith(TORCH_PREFIX):
        return f"{pretty(model[len(TORCH_PREFIX):])} (PyTorch)"
    if model.startswith("plain"):
        return f"plain-{model[len('plain'):]}"
    return f"ResNet-{model[len('resnet'):]}"


def cifar_claims(depths: tuple[int, int]) -> tuple[Claim, ...]:
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


def reference_claims(models: tuple[str, ...], tolerance: float) -> tuple[Claim, ...]:
    """Same recipe, same result: each model's test error within `tolerance` of the PyTorch
    reference's."""
    return tuple(Claim(f"Same recipe, same result: {pretty(m)}'s test error is within "
                       f"{100 * tolerance:.1f} points of the same net trained in PyTorch",
                       "test_error", m, TORCH_PREFIX + m, tolerance) for m in models)


RECIPE = {"batch_size": 128, "lr": 0.1, "weight_decay": 1e-4, "momentum": 0.9, "augment": True}
CIFAR10_JPEG = "CIFAR-10 (JPEG q75 copy)"
SUITES: dict[str, Suite] = {s.name: s for s in (
    Suite(
        name="cifar_8k",
        title="Plain vs. residual nets, 20 and 56 layers, on all of CIFAR-10, 1/8 of the schedule",
        models=("plain20", "plain56", "resnet20", "resnet56"),
        # The paper's data and recipe (45k/5k split, 500 validation images per class; lr 0.1
        # divided by 10 at 50% and 75%) for 8,000 iterations, 1/8 of its 64k, in the trainers'
        # precision (`auto`).
        data=DataSpec("cifar10", CIFAR10_JPEG, validation_per_class=500),
        train_flags={"train_steps": 8000, **RECIPE, "checkpoint_steps": 500},
        claims=cifar_claims((20, 56)) + reference_claims(("resnet20", "resnet56"), 0.007),
        budget="about 3.5 hours on a 2-core CPU machine, and 3 hours for the PyTorch references "
               "(the wall times below)",
        fig7="fig7_cifar_8k",
        references=("resnet20", "resnet56"),
    ),
    Suite(
        name="fmnist",
        title="ResNet-20 on all of Fashion-MNIST",
        models=("resnet20",),
        data=DataSpec("fashion_mnist", "Fashion-MNIST (Debian's idx files, padded to 32x32)"),
        train_flags={"epochs": 20, **RECIPE, "train_on_all": True, "checkpoint_steps": 100,
                     "mixed_precision": "none"},
        claims=(Claim("Fashion-MNIST test accuracy >= 95.0% (the public benchmark table lists "
                      "ResNet-18 at 94.9%)", "test_error", "resnet20", 0.05),),
        budget="about 60 minutes on a 2-core CPU machine",
    ),
    Suite(
        name="paper",
        title="The paper's CIFAR-10 experiment (Sec. 4.2, Fig. 6, Table 6)",
        models=("plain20", "plain32", "plain44", "plain56",
                "resnet20", "resnet32", "resnet44", "resnet56", "resnet110"),
        data=DataSpec("cifar10", CIFAR10_JPEG, validation_per_class=500),
        train_flags={"train_steps": 64000, **RECIPE, "checkpoint_steps": 2000},
        claims=cifar_claims((20, 56)) + (
            Claim("Depth helps with shortcuts (Table 6): ResNet-110 ends with a lower test error "
                  "than ResNet-56", "test_error", "resnet110", "resnet56"),),
        budget="hours of GPU time per net (the paper: 2 GPUs); not run on the CPU machines",
        fig7="fig7_layer_responses_paper",
    ),
    Suite(
        name="tiny",
        title="Tiny end-to-end check of the runner (tests only)",
        models=("plain20", "resnet20"),
        data=DataSpec("cifar10", CIFAR10_JPEG, train_per_class=30, validation_per_class=5,
                      test_per_class=10),
        train_flags={"train_steps": 27, "batch_size": 32, "lr": 0.1, "weight_decay": 1e-4,
                     "mixed_precision": "none"},  # 27 steps: 3 epochs of 300 // 32 = 9
        claims=(Claim("ResNet-20 ends with a lower training error than plain-20", "train_error",
                      "resnet20", "plain20"),
                Claim("Fig. 7: ResNet-20's 3x3 responses are smaller than plain-20's",
                      "response_std", "resnet20", "plain20"),
                *reference_claims(("resnet20",), 0.5)),
        budget="about a minute",
        fig7="fig7_layer_responses_tiny",
        references=("resnet20",),
        hidden=True,
    ),
)}
