"""One benchmark run: its workers, the alternation of contenders round by round, the matmul
limit and the training section; `Run.result` is the JSON the benchmark writes."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from benchmarks.contenders import CIFAR_ONLY_IMPLS, IMAGENET_NETS
from benchmarks.goals import evaluate_goals
from benchmarks.protocol import Worker, find_torch_python, keras_worker, worker_env
from benchmarks.stats import cpu_ticks, machine, median, steal_percent


class Run:
    """One benchmark run: workers, contenders, rounds; `result` is the JSON."""

    def __init__(self, settings: dict):
        self.s = settings
        self.workers: dict[str, Worker] = {}
        self.result: dict[str, Any] = {"machine": machine(), "settings": settings, "notes": []}

    # -- workers

    def start_workers(self) -> None:
        versions = {}
        for backend in self.s["backends"]:
            self.workers[backend] = keras_worker(backend, backend, self.s["inter_op_threads"],
                                                 self.s["intra_op_threads"])
            versions[backend] = self.workers[backend].call("versions")
        if "torch" in self.s["impls"]:
            python, note = find_torch_python(self.s["torch_python"])
            self.result["torch"] = {"available": python is not None, "note": note}
            self.result["notes"].append(note)
            if python:
                self.workers["torch"] = Worker("torch", python, "torch", {
                    "threads": self.s["threads"], "torch_compile": self.s["torch_compile"],
                    "memory_format": self.s["torch_memory_format"]},
                    worker_env(OMP_NUM_THREADS=str(self.s["threads"] or os.cpu_count())))
                versions["torch"] = self.workers["torch"].call("versions")
        self.result["versions"] = versions
        self.resolve_precisions()

    def resolve_precisions(self) -> None:
        """`auto` in --precisions and --threads_precisions is the trainers' precision on this
        machine (`--mixed_precision=auto` of the Keras worker), and a precision named twice runs
        once; the goals are measured in it where it ran, else in float32."""
        trainers = self.result["versions"].get(self.s["backends"][0], {}).get(
            "trainers_precision", "float32")
        for name in ("precisions", "threads_precisions"):
            self.s[name] = list(dict.fromkeys(trainers if p == "auto" else p for p in self.s[name]))
        precisions = self.s["precisions"]
        self.result["trainers_precision"] = trainers
        self.result["goal_precision"] = trainers if trainers in precisions else (
            "float32" if "float32" in precisions else precisions[0])

    def close(self) -> None:
        for worker in self.workers.values():
            worker.close()
        self.result["machine"]["load_average_end"] = list(os.getloadavg())

    # -- timing helpers

    def alternate(self, contenders: list[dict], measure: Callable[[dict], float],
                  rounds: int) -> dict[str, list[float]]:
        """`measure` each contender once per round; the order rotates every round. Each
        contender's `steal_percent` gets the CPU steal of each of its rounds (a virtual machine's
        neighbours: the noise no alternation removes)."""
        values: dict[str, list[float]] = {c["id"]: [] for c in contenders}
        for contender in contenders:
            contender["steal_percent"] = []
        for r in range(rounds):
            for contender in contenders[r % len(contenders):] + contenders[: r % len(contenders)]:
                before = cpu_ticks()
                values[contender["id"]].append(measure(contender))
                steal = steal_percent(before, cpu_ticks())
                if steal is not None:
                    contender["steal_percent"].append(steal)
        return values

    def steps_for(self, seconds_per_step: float) -> int:
        """Steps that fill --seconds_per_round at `seconds_per_step`, at least --min_steps."""
        steps = round(self.s["seconds_per_round"] / max(seconds_per_step, 1e-6))
        return max(self.s["min_steps"], steps)

    # -- sections

    def limits(self) -> None:
        """Matmul GFLOP/s of each framework, alternated, in float32 and the run's precisions."""
        n = self.s["matmul_size"]
        contenders = []
        for framework, worker in self.workers.items():
            for dtype in sorted({"float32", *self.s["precisions"]}):
                contender = {"id": f"matmul/{framework}/{dtype}", "worker": framework,
                             "framework": framework, "dtype": dtype, "matmul_size": n}
                worker.call("setup_matmul", id=contender["id"], size=n, dtype=dtype)
                seconds = worker.call("time", id=contender["id"], steps=1)["seconds"]
                contender["steps"] = max(2, round(self.s["matmul_seconds"] / max(seconds, 1e-6)))
                contenders.append(contender)

        rates = self.alternate(contenders, self.measure_limit, self.s["rounds"])
        limit: dict[str, dict] = {}
        for c in contenders:
            limit.setdefault(c["framework"], {})[c["dtype"]] = {
                "gflops": median(rates[c["id"]]), "rounds": rates[c["id"]], "matmul_size": n,
                "matmuls_per_round": c["steps"]}
        self.result["limit"] = limit
        best = max(limit, key=lambda framework: limit[framework]["float32"]["gflops"])
        self.result["machine_limit"] = {"gflops": limit[best]["float32"]["gflops"],
                                        "framework": best, "dtype": "float32"}
        for c in contenders:  # the limit's matmul runs on beside each net's training rounds
            if (c["framework"], c["dtype"]) == (best, "float32"):
                self.limit_matmul = c
            else:
                self.workers[c["worker"]].call("release", id=c["id"])

    def limit_in_rounds(self) -> dict:
        """The limit's matmul as one more contender of an alternation, so that a net's % of the
        limit divides rates measured in the same rounds (the machine's speed drifts over a run)."""
        return {**self.limit_matmul, "limit": True}

    def measure_limit(self, c: dict) -> float:
        n = c["matmul_size"]
        seconds = self.workers[c["worker"]].call("time", id=c["id"], steps=c["steps"])["seconds"]
        return 2 * n**3 * c["steps"] / seconds / 1e9

    def training(self) -> None:
        """Training images/s of every contender, alternated round by round within each net, with
        the limit's matmul as one more contender: each net's % of the limit is of the limit
        measured in its own rounds."""
        rows, limits = [], {}
        for net in self.s["nets"]:
            imagenet = net in IMAGENET_NETS
            batch = self.s["imagenet_batch"] if imagenet else self.s["cifar_batch"]
            image = self.s["imagenet_size"] if imagenet else 32
            classes = 1000 if imagenet else 10
            contenders = []
            for precision in self.s["precisions"]:
                for framework in [*self.s["backends"], "torch"]:
                    if framework not in self.workers:
                        continue
                    impls = ["torch"] if framework == "torch" else [
                        i for i in self.s["impls"] if i != "torch"]
                    xla_options = (self.s["xla"] if framework == "tensorflow"
                                   else [framework == "jax"])
                    for impl in [i for i in impls if i in self.s["impls"]]:
                        if impl in CIFAR_ONLY_IMPLS and imagenet:
                            continue  # option B: nothing to subsample; no NCHW keras.applications
                        for xla in xla_options:
                            contenders.append(self._setup_training(
                                net, impl, framework, precision, xla, batch, image, classes))
            macs = next((c["macs_per_image"] for c in contenders if c["impl"] == "ours"), None)

            def measure(c: dict) -> float:
                if c.get("limit"):
                    return self.measure_limit(c)
                worker = self.workers[c["framework"]]
                seconds = worker.call("time", id=c["id"], steps=c["steps"])["seconds"]
                return c["batch"] * c["steps"] / seconds

            limit = self.limit_in_rounds()
            rates = self.alternate([*contenders, limit], measure, self.s["rounds"])
            net_limit = median(rates[limit["id"]])
            limits[net] = {"gflops": net_limit, "rounds": rates[limit["id"]],
                           "steal_percent": limit["steal_percent"]}
            for c in contenders:
                self.workers[c["framework"]].call("release", id=c["id"])
                c["macs_per_image"] = c.get("macs_per_image") or macs
                c["images_per_s"] = median(rates[c["id"]])
                c["rounds"] = rates[c["id"]]
                if c["macs_per_image"]:
                    c["gflops"] = c["images_per_s"] * c["macs_per_image"] * 2 * 3 / 1e9
                    c["limit_gflops"] = net_limit
                    c["percent_of_limit"] = 100 * c["gflops"] / net_limit
                rows.append(c)
        self.result["training"] = rows
        self.result["training_limits"] = limits

    def _setup_training(self, net: str, impl: str, framework: str, precision: str, xla: bool,
                        batch: int, image: int, classes: int, **extra: Any) -> dict:
        label = {"ours": "keras_resnet", "ours_keras_bn": "keras_resnet, Keras BN",
                 "ours_strided_shortcut": "keras_resnet, strided-slice shortcut",
                 "torch": "torchvision" if net in IMAGENET_NETS else "pytorch",
                 "reference": "keras.applications" if net in IMAGENET_NETS else "keras.io-style",
                 "reference_channels_first": "keras.io-style, channels_first"}[impl]
        contender = {"id": f"{net}/{impl}/{framework}/{precision}/xla={xla}", "net": net,
                     "impl": impl, "implementation": label, "framework": framework,
                     "precision": precision, "xla": xla, "batch": batch, "image_size": image}
        setup = self.workers[framework].call(
            "setup_train", id=contender["id"], impl=impl, net=net, image=image, channels=3,
            classes=classes, batch=batch, precision=precision, xla=xla,
            warmup_steps=self.s["warmup_steps"], **extra)
        contender.update(setup)
        contender["steps"] = self.steps_for(setup["step_s"])
        return contender

    def setup_ours_cifar(self, worker: Worker, contender_id: str, net: str, batch: int,
                          precision: str = "float32", **extra: Any) -> dict:
        """`setup_train` of our CIFAR net with XLA off (the sections that vary one setting of it:
        threads, autotune)."""
        return worker.call("setup_train", id=contender_id, impl="ours", net=net, image=32,
                           channels=3, classes=10, batch=batch, precision=precision, xla=False,
                           warmup_steps=self.s["warmup_steps"], **extra)

    def goals(self) -> None:
        """The goals in the run's goal precision, and in float32 where that differs."""
        self.result["goals"] = evaluate_goals(self.result)
        if self.result.get("goal_precision", "float32") != "float32":
            self.result["goals_float32"] = evaluate_goals(self.result, "float32")
