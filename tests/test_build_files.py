"""The Bazel BUILD files cover every module, script and test, and their labels resolve.

Bazel cannot fetch its rule sets offline here, so the files are read as what Starlark is, Python
syntax, with the rules recorded instead of run.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PYTHON_DIRS = ("keras_resnet", "training", "tests", "benchmarks", "serving", "docs")
RULES = ("py_library", "py_binary", "py_test")
SCRIPT = re.compile(r"^if __name__ == [\"']__main__[\"']:", re.M)


def setup_requirements() -> set[str]:
    """Distribution names setup.py declares, normalised (install_requires and extras)."""
    text = (REPO / "setup.py").read_text()
    names = re.findall(r'"([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?\s*(?:[<>=!~][^"]*)?"', text)
    return {re.sub(r"[-_.]+", "-", n).lower() for n in names}


def read_build_files() -> dict[str, dict]:
    """Every target of every BUILD file, by label ("//pkg:name")."""
    targets = {}
    for build in sorted(REPO.rglob("BUILD")):
        if ".venv" in build.parts:
            continue
        package = build.parent.relative_to(REPO).as_posix()
        package = "" if package == "." else package
        recorded = []

        def rule(kind, into=recorded):
            return lambda **attrs: into.append((kind, attrs))

        namespace = {kind: rule(kind) for kind in RULES}
        namespace["load"] = lambda *args: None
        namespace["requirement"] = lambda name: f"@pypi//{name}"
        tree = ast.parse(build.read_text(), filename=str(build))
        exec(compile(tree, str(build), "exec"), namespace)  # noqa: S102 - Starlark is Python syntax
        for kind, kwargs in recorded:
            label = f"//{package}:{kwargs['name']}"
            assert label not in targets, f"{label} declared twice"
            targets[label] = {"kind": kind, "package": package, "build": build, **kwargs}
    return targets


TARGETS = read_build_files()


def test_build_files_declare_targets():
    assert {t["build"].parent for t in TARGETS.values()} >= {REPO / "keras_resnet", REPO / "tests"}


def test_every_listed_source_exists():
    for label, target in TARGETS.items():
        files = [d for d in target.get("data", []) if not d.startswith((":", "//"))]
        for src in target.get("srcs", []) + files:
            assert (target["build"].parent / src).exists(), f"{label} lists missing source {src}"


def test_every_python_file_has_a_target():
    covered = {}
    for target in TARGETS.values():
        for src in target.get("srcs", []):
            covered[(target["build"].parent / src).resolve()] = target["kind"]
    for folder in PYTHON_DIRS:
        for path in sorted((REPO / folder).rglob("*.py")):
            assert path.resolve() in covered, f"{path.relative_to(REPO)} is in no BUILD target"
            kind = covered[path.resolve()]
            if path.parent.name == "tests" and path.name.startswith("test_"):
                assert kind == "py_test", f"{path.relative_to(REPO)} must be a py_test"
            elif folder != "keras_resnet" and SCRIPT.search(path.read_text()):
                assert kind == "py_binary", f"{path.relative_to(REPO)} is a script: py_binary"


def test_every_dep_label_resolves():
    known = setup_requirements() | {"pytest-xdist", "pytest"}
    for label, target in TARGETS.items():
        labels = [d for d in target.get("data", []) if d.startswith((":", "//"))]
        for dep in target.get("deps", []) + labels:
            if dep.startswith("@pypi//"):
                name = re.sub(r"[-_.]+", "-", dep.removeprefix("@pypi//")).lower()
                assert name in known, f"{label}: requirement {name!r} is not in setup.py"
                continue
            resolved = f"//{target['package']}{dep}" if dep.startswith(":") else dep
            if resolved.startswith("//") and ":" not in resolved:
                resolved += ":" + resolved.rsplit("/", 1)[-1]
            assert resolved in TARGETS, f"{label}: dep {dep!r} resolves to no declared target"


def test_scripts_name_main_tests_have_deps():
    for label, target in TARGETS.items():
        if target["kind"] == "py_binary":
            main = target.get("main", target["srcs"][0] if len(target["srcs"]) == 1 else None)
            assert main in target["srcs"], f"{label}: main {main!r} not in srcs"
        if target["kind"] == "py_test":
            assert target.get("deps"), f"{label} has no deps"


@pytest.mark.parametrize("bad,message", [
    ('py_library(name="x", srcs=["missing.py"])', "missing source"),
])
def test_checker_catches_a_missing_source(tmp_path, monkeypatch, bad, message):
    (tmp_path / "BUILD").write_text(bad)
    (tmp_path / "setup.py").write_text("")
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    targets = read_build_files()
    monkeypatch.setattr(sys.modules[__name__], "TARGETS", targets)
    with pytest.raises(AssertionError, match=message):
        test_every_listed_source_exists()
