"""The package's layers (import-linter contracts in pyproject.toml) cover every module and can fail."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]


def _contract(kind: str) -> list[dict]:
    return [c for c in CONFIG["contracts"] if c["type"] == kind]


def _lint(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT), "--no-cache"], cwd=root, env=env, capture_output=True, text=True)


def _layers(package: str) -> dict:
    """The layers contract whose lowest layer is in ``package``."""
    (contract,) = [c for c in _contract("layers") if c["layers"][-1].startswith(f"{package}.")]
    return contract


def _named(contract: dict) -> set[str]:
    return {m.strip() for layer in contract["layers"] for m in layer.split("|")}


def test_every_module_sits_in_a_layer():
    on_disk = {f"imr_analysis.{p.stem}" for p in (ROOT / "imr_analysis").glob("*.py") if p.stem != "__init__"}
    assert _named(_layers("imr_analysis")) == on_disk | {"imr_workflow"}


def test_every_workflow_module_sits_in_a_layer():
    on_disk = {f"imr_workflow.{p.stem}" for p in (ROOT / "imr_workflow").glob("*.py") if p.stem != "__init__"}
    assert _named(_layers("imr_workflow")) == on_disk


def test_every_analysis_module_is_kept_from_the_generator_and_the_published_figures():
    audit_and_above = {"imr_analysis.reproduce", "imr_analysis.replicate", "imr_analysis.pool", "imr_analysis.__main__",
                       "imr_analysis.published"}
    (forbidden,) = [c for c in _contract("forbidden") if c["name"].startswith("The analysis never imports")]
    on_disk = {f"imr_analysis.{p.stem}" for p in (ROOT / "imr_analysis").glob("*.py") if p.stem != "__init__"}
    assert set(forbidden["source_modules"]) == on_disk - audit_and_above
    assert set(forbidden["forbidden_modules"]) == {"imr_synth", "imr_analysis.published"}


@pytest.fixture(scope="module")
def copy_of_the_packages(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("layers")
    for package in ("imr_analysis", "imr_synth", "imr_workflow"):
        shutil.copytree(ROOT / package, root / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", root)
    return root


def _with_line(root: Path, module: str, line: str):
    path = root / module
    original = path.read_text()
    path.write_text(original + line)
    return lambda: path.write_text(original)


def test_the_shipped_package_keeps_its_contracts(copy_of_the_packages):
    result = _lint(copy_of_the_packages)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("module, line, broken", [
    # a lazy import of a higher layer, inside a function
    ("imr_analysis/scores.py", "\n\ndef _late():\n    from . import table1\n", "Layers"),
    ("imr_analysis/table1.py", "\nfrom . import table2\n", "Layers"),  # siblings in the wrong direction
    ("imr_analysis/table1.py", "\n\ndef _late():\n    import imr_synth\n", "never imports the generator"),
    ("imr_analysis/figure1.py", "\nfrom .published import load_published\n", "never imports the generator"),
    ("imr_synth/generator.py", "\nfrom imr_analysis import cohort\n", "only the codebook"),
    ("imr_analysis/cohort.py", "\n\ndef _late():\n    from imr_workflow import runner\n", "Layers"),
    ("imr_workflow/explore.py", "\n\ndef _late():\n    from imr_workflow import runner\n", "The workflow"),
    ("imr_workflow/colophon.py", "\nfrom imr_workflow import explore\n", "The workflow"),
    ("imr_workflow/explore.py", "\nfrom imr_analysis import reproduce\n", "The explorer shows the analysis"),
])
def test_a_forbidden_import_breaks_a_contract(copy_of_the_packages, module, line, broken):
    restore = _with_line(copy_of_the_packages, module, line)
    try:
        result = _lint(copy_of_the_packages)
    finally:
        restore()
    assert result.returncode != 0
    assert broken in result.stdout.split("Broken contracts")[-1]
