"""The benchmark's tables in markdown, printed by the benchmark and used by the docs' generator."""

from __future__ import annotations

from benchmarks.contenders import SUBSAMPLING_LABELS
from benchmarks.stats import median, steal_adjusted

NAN = float("nan")


def each_round(values: list[float], digits: int) -> str:
    return ", ".join(f"{v:.{digits}f}" for v in values)


def limit_table(result: dict) -> list[str]:
    """The matrix-multiply limit: at the run's start and in each net's rounds."""
    lines = ["### Matrix-multiply limit (GFLOP/s, median of rounds)", "",
             "| framework | dtype | GFLOP/s |", "|---|---|---:|"]
    for framework, by_dtype in result.get("limit", {}).items():
        for dtype, row in by_dtype.items():
            lines.append(f"| {framework} | {dtype} | {row['gflops']:.0f} |")
    if "machine_limit" in result:
        limit = result["machine_limit"]
        lines += ["", (f"The limit is {limit['framework']}'s {limit['dtype']} matmul. Each net's "
                       "'% of limit' divides by the limit measured in that net's own rounds (the "
                       "matmul alternates with its contenders), below; this table is the run's "
                       "start.")]
    if result.get("training_limits"):
        lines += ["", "| rounds of | limit GFLOP/s | each round |", "|---|---:|---|"]
        for net, row in result["training_limits"].items():
            lines.append(f"| {net} | {row['gflops']:.0f} | {each_round(row['rounds'], 0)} |")
    return lines


def training_table(result: dict) -> list[str]:
    """Training images/s, GFLOP/s and % of limit of every contender."""
    if not result.get("training"):
        return []
    lines = ["", "### Training (synthetic batch in memory, SGD momentum 0.9, median of rounds)",
             "", ("| net | implementation | framework | precision | XLA | batch | images/s | "
                  "GFLOP/s | % of limit | CPU steal % | images/s, steal-adjusted |"),
             "|---|---|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in result["training"]:
        steal = r.get("steal_percent") or []
        lines.append(
            f"| {r['net']} | {r['implementation']} | {r['framework']} | {r['precision']} | "
            f"{'on' if r['xla'] else 'off'} | {r['batch']} | {r['images_per_s']:.1f} | "
            f"{r.get('gflops', NAN):.1f} | {r.get('percent_of_limit', NAN):.0f} | "
            f"{median(steal) if steal else NAN:.1f} | {steal_adjusted(r['rounds'], steal):.1f} |")
    return lines


def shortcut_table(result: dict) -> list[str]:
    """Option A's subsampling alone, per kind."""
    rows = result.get("shortcut", {}).get("rows")
    if rows is None:
        return []
    lines = ["", ("### Option A's subsampling alone: forward + backward ms per call "
                  "(x[:, ::2, ::2, :] and its input gradient)"), "",
             "| input (NHWC) | subsampling | median ms | each round, ms |", "|---|---|---:|---|"]
    for r in rows:
        lines.append(f"| {'x'.join(map(str, r['shape']))} | {SUBSAMPLING_LABELS[r['kind']]} | "
                     f"{r['median_ms']:.2f} | {each_round(r['ms_rounds'], 2)} |")
    return lines


def threads_table(result: dict) -> list[str]:
    """Our net's training under each TensorFlow thread setting."""
    threads = result.get("threads", {})
    if "rows" not in threads:
        return []
    # Runs before --threads_precisions trained in one precision, given once for the section.
    precisions = threads.get("precisions", [threads.get("precision", "float32")])
    several = len(precisions) > 1
    lines = ["", (f"### TensorFlow threads: training {threads['net']} at batch "
                  f"{threads['batch']} in {' and '.join(precisions)}, one worker process per "
                  "setting (0: TensorFlow's default, one per core)"), "",
             ("| inter-op threads | intra-op threads | environment | "
              f"{'precision | ' if several else ''}images/s | CPU steal % | each round |"),
             f"|---:|---:|---|{'---|' if several else ''}---:|---:|---|"]
    for r in threads["rows"]:
        steal = r["steal_percent"]
        variables = " ".join(f"`{k}={v}`" for k, v in r.get("environment", {}).items()) or "-"
        lines.append(f"| {r['inter_op_threads']} | {r['intra_op_threads']} | {variables} | "
                     f"{r['precision'] + ' | ' if several else ''}{r['images_per_s']:.1f} | "
                     f"{median(steal) if steal else NAN:.1f} | {each_round(r['rounds'], 1)} |")
    return lines


def autotune_table(result: dict) -> list[str]:
    """Whole `fit` calls with tf.data's autotuner on and off."""
    autotune = result.get("autotune", {})
    if "rows" not in autotune:
        return []
    lines = ["", (f"### tf.data's autotuner: whole `fit` calls of {autotune['steps_per_fit']} "
                  f"steps ({autotune['net']}, batch {autotune['batch']})"), "",
             "| tf.data options | median s per fit | each round, s |", "|---|---:|---|"]
    for r in autotune["rows"]:
        options = "defaults (autotune on)" if r["autotune"] else "the trainers' (autotune off)"
        lines.append(f"| {options} | {r['median_fit_s']:.2f} | {each_round(r['fit_seconds'], 2)} |")
    return lines


def trainer_table(result: dict) -> list[str]:
    """training/cifar10.py's epoch against the bare fit + evaluate."""
    t = result.get("trainer", {})
    lines = ["", "### CIFAR trainer end to end vs the bare fit step", ""]
    if "skipped" in t or not t:
        return lines + [f"Not measured: {t.get('skipped', 'section not run')}."]
    return lines + [
        (f"One epoch of {t['steps_per_epoch']} steps of batch {t['batch']} "
         f"({t['train_images']:,} images) with the evaluation of {t['validation_images']:,} "
         f"validation and {t['test_images']:,} test images that the trainer runs after each "
         "epoch; the bare side is the same net's `fit` on one in-memory batch plus `evaluate` on "
         "as many images."), "",
        ("| net | batch | trainer epoch s | bare fit s | bare evaluate s | overhead | "
         "evaluation share of the epoch |"), "|---|---:|---:|---:|---:|---:|---:|",
        (f"| {t['net']} | {t['batch']} | {t['trainer_epoch_s']:.1f} | {t['bare_epoch_s']:.1f} | "
         f"{t['evaluation_s_per_epoch']:.1f} | {t['overhead_percent']:+.1f}% | "
         f"{t['evaluation_percent_of_epoch']:.1f}% |")]


def serving_table(result: dict) -> list[str]:
    """Batch-1 latency and batch throughput of the exported SavedModels."""
    serving = result.get("serving", {})
    lines = ["", "### Serving: serving_default of the exported SavedModel (JPEG bytes in)", ""]
    if "rows" not in serving:
        return lines + [f"Not measured: {serving.get('skipped', 'section not run')}."]
    lines += [("| net | implementation | input | batch-1 p50 ms | batch-1 p99 ms | batch | "
               "images/s |"), "|---|---|---|---:|---:|---:|---:|"]
    for r in serving["rows"]:
        lines.append(f"| {r['net']} | {r['implementation']} | {r['image_size']}px | "
                     f"{r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['batch']} | "
                     f"{r['batch_images_per_s']:.1f} |")
    return lines


def pipeline_table(result: dict) -> list[str]:
    """The ImageNet input pipeline against decode-only and PIL."""
    pipeline = result.get("pipeline", {})
    lines = ["", "### ImageNet input pipeline (images/s per core)", ""]
    if "images_per_s_per_core" not in pipeline:
        return lines + [f"Not measured: {pipeline.get('skipped', 'section not run')}."]
    lines += ["| contender | images/s per core |", "|---|---:|"]
    for name, rate in pipeline["images_per_s_per_core"].items():
        lines.append(f"| {name} | {rate:.1f} |")
    return lines


def goals_tables(result: dict) -> list[str]:
    """The goals in the run's goal precision, and in float32 where that differs."""
    precision = result.get("goal_precision", "float32")
    titles = {"goals": (f"Goals (training in {precision}, the trainers' default here; the limit "
                        "is the float32 matmul)"),
              "goals_float32": ("The same goals with every contender training in float32 (for "
                                "comparison)")}
    lines = []
    for key, title in titles.items():
        if not result.get(key):
            continue
        lines += ["", f"### {title}", "", "| goal | measured | target | met |",
                  "|---|---:|---|---|"]
        for g in result[key]:
            lines.append(f"| {g['goal']} | {g['value']:.2f} | {g['target']} | "
                         f"{'yes' if g['met'] else '**no**'} |")
    return lines


def markdown(result: dict) -> str:
    """All the run's tables, in the order the benchmark prints them."""
    tables = (limit_table, training_table, shortcut_table, threads_table, autotune_table,
              trainer_table, serving_table, pipeline_table, goals_tables)
    return "\n".join(line for table in tables for line in table(result)) + "\n"
