"""Writes the README's table of networks (parameters, multiply-adds) from the built models;
plain nets (Sec. 4.1) share their residual counterpart's row.

    python docs/model_table.py            # print the table
    python docs/model_table.py --write    # replace the table in README.md
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import keras
import numpy as np

import keras_resnet

README = Path(__file__).resolve().parents[1] / "README.md"
BEGIN, END = "<!-- model-table:begin -->", "<!-- model-table:end -->"


def measure(name: str) -> tuple[int, float]:
    """(trainable parameters, G multiply-adds per image) of a network at its defaults."""
    model = keras_resnet.get_model(name)
    params = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    gmacs = keras_resnet.count_flops(model) / 1e9
    keras.backend.clear_session()
    return params, gmacs


def model_rows() -> list[str]:
    """One markdown row per depth: the residual net and its plain counterpart (if any), at the
    default input size and shortcut."""
    names = keras_resnet.list_models()
    rows = []
    for name in (n for n in names if n.startswith("resnet")):
        spec = keras_resnet.get_spec(name)
        plain = f"plain{name.removeprefix('resnet')}"
        nets = [name] + ([plain] if plain in names else [])
        figures = [measure(n) for n in nets]
        functions = " / ".join(f"`{keras_resnet.get_spec(n).constructor_name}`" for n in nets)
        data = "ImageNet 224x224" if spec.family == "imagenet" else "CIFAR-10 32x32"
        blocks = f"{spec.block} {'-'.join(map(str, spec.repeats))}"
        params = " / ".join(f"{p:,}" for p, _ in figures)
        gmacs = " / ".join(f"{g:.3f}" for _, g in figures)
        rows.append(f"| {functions} | {data} | {blocks} | {spec.default_shortcut} | {params} | "
                    f"{gmacs} |")
    return rows


def table() -> str:
    header = ["| residual / plain net | input | blocks per stage | shortcut | parameters | GMACs |",
              "|---|---|---|---|---:|---:|"]
    return "\n".join(header + model_rows())


def with_table(readme_text: str, table_text: str) -> str:
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
    if not pattern.search(readme_text):
        raise ValueError(f"README has no {BEGIN} ... {END} markers")
    return pattern.sub(lambda _: f"{BEGIN}\n{table_text}\n{END}", readme_text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="update README.md in place")
    args = parser.parse_args()
    text = table()
    if args.write:
        README.write_text(with_table(README.read_text(), text))
    else:
        print(text)


if __name__ == "__main__":
    main()
