"""Every notebook is paired with a py:percent script (notebooks/jupytext.toml), and the pair agrees.

The .ipynb is the source; its script is what a reviewer reads in a diff. A notebook edited
without jupytext leaves its script stale: ``make notebooks`` rewrites the scripts.
"""

from __future__ import annotations

from pathlib import Path

import jupytext
import pytest

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))


def test_every_notebook_has_a_script_and_every_script_a_notebook():
    scripts = sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.py"))
    assert NOTEBOOKS and [p.stem for p in NOTEBOOKS] == [p.stem for p in scripts]
    assert 'formats = "ipynb,py:percent"' in (NOTEBOOKS_DIR / "jupytext.toml").read_text()


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_script_is_in_sync_with_its_notebook(notebook):
    expected = jupytext.writes(jupytext.read(notebook), fmt="py:percent")
    assert notebook.with_suffix(".py").read_text(encoding="utf-8") == expected, (
        f"{notebook.with_suffix('.py').name} differs from {notebook.name}: run 'make notebooks'")


def test_a_changed_cell_is_seen(tmp_path):
    notebook = jupytext.read(NOTEBOOKS[1])
    code = next(c for c in notebook.cells if c.cell_type == "code" and "parameters" not in c.metadata.get("tags", []))
    code.source += "\nprint('edited')"
    script = NOTEBOOKS[1].with_suffix(".py").read_text(encoding="utf-8")
    assert jupytext.writes(notebook, fmt="py:percent") != script
