"""Writes the README's table of networks (parameters, multiply-adds) from the built models.

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


def model_rows() -> list[str]:
    """One markdown row per registered network, at its default input size and shortcut."""
    rows = []
    for name in keras_resnet.list_models():
        spec = keras_resnet.get_spec(name)
        model = keras_resnet.get_model(name)
        params = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
        gmacs = keras_resnet.count_flops(model) / 1e9
        function = spec.constructor_name
        data = "ImageNet 224x224" if spec.family == "imagenet" else "CIFAR-10 32x32"
        blocks = f"{spec.block} {'-'.join(map(str, spec.repeats))}"
        rows.append(f"| `{function}` | {data} | {blocks} | {spec.default_shortcut or '-'} | "
                    f"{params:,} | {gmacs:.3f} |")
        keras.backend.clear_session()
    return rows


def table() -> str:
    header = ["| function | input | blocks per stage | shortcut | parameters | GMACs |",
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
