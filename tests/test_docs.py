"""The README's network table is the generator's output, not typed by hand (issue 2)."""

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def load_generator():
    spec = importlib.util.spec_from_file_location("model_table", REPO / "docs" / "model_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_network_table_is_up_to_date():
    generator = load_generator()
    readme = (REPO / "README.md").read_text()
    assert generator.with_table(readme, generator.table()) == readme, \
        "README table is stale: run python docs/model_table.py --write"
