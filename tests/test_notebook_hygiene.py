"""Hygiene of the committed notebooks (``notebooks/NN_name.ipynb``).

The committed notebooks are the executed record of the analysis (``make notebooks``
re-executes them with ``python -m imr_analysis run --inplace``), so each must be:

* fully executed, cells numbered 1..n in order (a fresh top-to-bottom run);
* parameterised by exactly one ``parameters`` cell that holds only literal assignments;
* free of ``def`` and ``class`` (logic lives in the package, where it is unit-tested);
* free of stderr and error outputs (nbval compares outputs; warnings would break it);
* free of papermill/execution timing metadata (what ``--inplace`` strips);
* on the ``python3`` kernel, and named ``NN_snake_case.ipynb`` with a unique NN.

The checks are plain functions returning a list of problems; the last section tests
them on hand-made notebooks so a passing hygiene test means something. The nbval
sanitize file is tested here too.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest

from imr_analysis import paths

NOTEBOOKS_DIR = paths.notebooks_dir()
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
SANITIZE_FILE = Path(__file__).parent / "nbval_sanitize.cfg"

NAME_PATTERN = re.compile(r"^(\d{2})_[a-z0-9]+(?:_[a-z0-9]+)*\.ipynb$")
VOLATILE_NOTEBOOK_KEYS = ("papermill", "widgets")
VOLATILE_CELL_KEYS = ("papermill", "execution", "ExecuteTime")
PAPERMILL_TAGS = ("injected-parameters", "papermill-error-cell-tag")

_NO_NOTEBOOKS = pytest.mark.skip(
    reason=f"no committed notebooks in {NOTEBOOKS_DIR} yet: nothing to check"
)
NOTEBOOK_PARAMS = [pytest.param(p, id=p.name) for p in NOTEBOOKS] or [
    pytest.param(None, id="no-notebooks", marks=_NO_NOTEBOOKS)
]


# --------------------------------------------------------------------------------------
# checks: each returns a list of human-readable problems (empty = clean)
# --------------------------------------------------------------------------------------
def _code_cells(nb):
    return [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]


def _python_source(source: str) -> str:
    """Cell source as plain Python (IPython magics and shell escapes translated)."""
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager().transform_cell(source)


def _tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def execution_problems(nb) -> list[str]:
    """Every code cell with source executed, execution counts exactly 1..n in order."""
    problems = []
    counts = []
    for i, cell in _code_cells(nb):
        if not cell.source.strip():
            continue
        if cell.get("execution_count") is None:
            problems.append(f"cell {i} was not executed")
        else:
            counts.append(cell.execution_count)
    if counts and counts != list(range(1, len(counts) + 1)):
        problems.append(f"execution counts are {counts}, expected 1..{len(counts)} in order")
    return problems


def _is_literal_assignment(stmt: ast.stmt) -> bool:
    if isinstance(stmt, ast.Assign):
        targets, value = stmt.targets, stmt.value
    elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
        targets, value = [stmt.target], stmt.value
    else:
        return False
    if not all(isinstance(t, ast.Name) for t in targets):
        return False
    try:
        ast.literal_eval(value)
    except ValueError:
        return False
    return True


def parameters_cell_problems(nb) -> list[str]:
    """Exactly one code cell tagged ``parameters``, holding only literal assignments."""
    tagged = [(i, c) for i, c in enumerate(nb.cells) if "parameters" in _tags(c)]
    if len(tagged) != 1:
        return [f"{len(tagged)} cells tagged 'parameters' (expected exactly one)"]
    i, cell = tagged[0]
    if cell.cell_type != "code":
        return [f"the 'parameters' cell {i} is a {cell.cell_type} cell"]
    try:
        tree = ast.parse(_python_source(cell.source))
    except SyntaxError as exc:
        return [f"the 'parameters' cell does not parse: {exc}"]
    return [
        f"parameters cell line {stmt.lineno} is not an assignment of a literal: "
        f"{ast.get_source_segment(cell.source, stmt) or ast.dump(stmt)[:60]}"
        for stmt in tree.body
        if not _is_literal_assignment(stmt)
    ]


def definition_problems(nb) -> list[str]:
    """No ``def`` or ``class`` anywhere in a code cell (logic belongs to the package)."""
    problems = []
    for i, cell in _code_cells(nb):
        try:
            tree = ast.parse(_python_source(cell.source))
        except SyntaxError as exc:
            problems.append(f"cell {i} does not parse: {exc}")
            continue
        for node in sorted(ast.walk(tree), key=lambda n: getattr(n, "lineno", 0)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                kind = "class" if isinstance(node, ast.ClassDef) else "def"
                problems.append(f"cell {i} defines {kind} {node.name} (move it to imr_analysis)")
    return problems


def output_problems(nb) -> list[str]:
    """No stderr stream and no error outputs."""
    problems = []
    for i, cell in _code_cells(nb):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                problems.append(f"cell {i} (In [{cell.execution_count}]) wrote to stderr: "
                                f"{out.get('text', '')[:120]!r}")  # fmt: skip
            elif out.get("output_type") == "error":
                problems.append(f"cell {i} (In [{cell.execution_count}]) holds an error: "
                                f"{out.get('ename')}: {out.get('evalue')}")  # fmt: skip
    return problems


def metadata_problems(nb) -> list[str]:
    """No papermill / execution-timing / widget-state metadata, no papermill cells."""
    problems = [f"notebook metadata holds {k!r}" for k in VOLATILE_NOTEBOOK_KEYS if k in nb.metadata]
    for i, cell in enumerate(nb.cells):
        problems += [f"cell {i} metadata holds {k!r}" for k in VOLATILE_CELL_KEYS if k in cell.metadata]
        problems += [f"cell {i} is tagged {t!r}" for t in PAPERMILL_TAGS if t in _tags(cell)]
    return problems


def kernel_problems(nb) -> list[str]:
    """The kernelspec is the compendium's one kernel (name and display name), as ``make install`` installs it."""
    from imr_workflow.runner import KERNELSPEC

    spec = dict(nb.metadata.get("kernelspec", {}))
    return [] if spec == KERNELSPEC else [f"kernelspec is {spec!r}, expected {KERNELSPEC!r}"]


def structure_problems(nb) -> list[str]:
    """The notebook opens with a markdown cell (title, what it produces, its parameters)."""
    if not nb.cells or nb.cells[0].cell_type != "markdown":
        return ["the first cell is not a markdown cell (title, outputs, parameters)"]
    return []


def name_problems(names: list[str]) -> list[str]:
    """File names ``NN_snake_case.ipynb`` with unique NN."""
    problems = [f"{n} is not named NN_snake_case.ipynb" for n in names if not NAME_PATTERN.match(n)]
    seen: dict[str, str] = {}
    for n in names:
        m = NAME_PATTERN.match(n)
        if not m:
            continue
        if m.group(1) in seen:
            problems.append(f"{seen[m.group(1)]} and {n} share the number {m.group(1)}")
        seen[m.group(1)] = n
    return problems


ALL_CHECKS = (
    execution_problems,
    parameters_cell_problems,
    definition_problems,
    output_problems,
    metadata_problems,
    kernel_problems,
    structure_problems,
)


# --------------------------------------------------------------------------------------
# the committed notebooks
# --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def _read_cache():
    return {}


def _read(path: Path, cache: dict):
    if path not in cache:
        cache[path] = nbformat.read(path, as_version=4)
    return cache[path]


@pytest.mark.parametrize("path", NOTEBOOK_PARAMS)
@pytest.mark.parametrize("check", ALL_CHECKS, ids=lambda f: f.__name__.removesuffix("_problems"))
def test_committed_notebook(path, check, _read_cache):
    nb = _read(path, _read_cache)
    nbformat.validate(nb)
    problems = check(nb)
    assert not problems, f"{path.name}:\n  " + "\n  ".join(problems)


@pytest.mark.skipif(not NOTEBOOKS, reason=f"no committed notebooks in {NOTEBOOKS_DIR} yet")
def test_committed_notebook_names():
    problems = name_problems([p.name for p in NOTEBOOKS])
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------------------
# the checks catch what they should (hand-made notebooks)
# --------------------------------------------------------------------------------------
def _clean_notebook():
    v4 = nbformat.v4
    nb = v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (IMR compendium)", "language": "python"}
    params = v4.new_code_cell('raw_dir = ""\nalpha = 0.05\nservices = ["CMHC", "SerD"]\ndpi: int = 300',
                              execution_count=1)  # fmt: skip
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        v4.new_markdown_cell("# Title"),
        params,
        v4.new_code_cell("%matplotlib inline\nx = [alpha] * 2", execution_count=2),
        v4.new_code_cell("", execution_count=None),  # empty: need not run
        v4.new_code_cell(
            "x", execution_count=3,
            outputs=[v4.new_output("execute_result", data={"text/plain": "[0.05, 0.05]"},
                                   execution_count=3)],
        ),  # fmt: skip
    ]
    return nb


def test_clean_notebook_passes_every_check():
    nb = _clean_notebook()
    nbformat.validate(nb)
    assert [p for check in ALL_CHECKS for p in check(nb)] == []


def test_unexecuted_and_out_of_order_cells_are_caught():
    nb = _clean_notebook()
    nb.cells[2].execution_count = None
    assert execution_problems(nb) == [
        "cell 2 was not executed",
        "execution counts are [1, 3], expected 1..2 in order",
    ]
    nb = _clean_notebook()
    nb.cells[2].execution_count, nb.cells[4].execution_count = 5, 4
    assert "expected 1..3 in order" in execution_problems(nb)[0]


def test_parameters_cell_rules():
    nb = _clean_notebook()
    nb.cells[1].source += "\nout = paths.tables_dir()"
    assert "not an assignment of a literal" in parameters_cell_problems(nb)[0]
    nb = _clean_notebook()
    nb.cells[2].metadata["tags"] = ["parameters"]
    assert parameters_cell_problems(nb) == ["2 cells tagged 'parameters' (expected exactly one)"]
    nb = _clean_notebook()
    del nb.cells[1].metadata["tags"]
    assert parameters_cell_problems(nb) == ["0 cells tagged 'parameters' (expected exactly one)"]


def test_definitions_are_caught_even_nested():
    nb = _clean_notebook()
    nb.cells[2].source = "if True:\n    def helper():\n        return 1\nclass K:\n    pass"
    problems = definition_problems(nb)
    assert len(problems) == 2 and "def helper" in problems[0] and "class K" in problems[1]


def test_stderr_and_errors_are_caught():
    nb = _clean_notebook()
    nb.cells[2].outputs = [
        nbformat.v4.new_output("stream", name="stderr", text="FutureWarning: x\n"),
        nbformat.v4.new_output("error", ename="ValueError", evalue="bad", traceback=[]),
    ]
    problems = output_problems(nb)
    assert len(problems) == 2 and "stderr" in problems[0] and "ValueError: bad" in problems[1]


def test_volatile_metadata_is_caught():
    nb = _clean_notebook()
    nb.metadata["papermill"] = {"duration": 1.0}
    nb.cells[2].metadata["execution"] = {"iopub.status.busy": "2024-01-01T00:00:00Z"}
    nb.cells[4].metadata["tags"] = ["injected-parameters"]
    assert metadata_problems(nb) == [
        "notebook metadata holds 'papermill'",
        "cell 2 metadata holds 'execution'",
        "cell 4 is tagged 'injected-parameters'",
    ]


def test_kernel_and_structure_are_caught():
    nb = _clean_notebook()
    nb.metadata["kernelspec"]["name"] = "imr-env"
    assert kernel_problems(nb) and "'imr-env'" in kernel_problems(nb)[0]
    nb = _clean_notebook()
    nb.metadata["kernelspec"]["display_name"] = "Python 3 (ipykernel)"
    assert kernel_problems(nb) and "Python 3 (ipykernel)" in kernel_problems(nb)[0]
    nb.cells = nb.cells[1:]
    assert structure_problems(nb)


def test_runner_stripping_satisfies_the_metadata_checks():
    from imr_workflow.runner import strip_volatile_metadata

    nb = _clean_notebook()
    nb.metadata["papermill"] = {"duration": 1.0}
    nb.metadata["widgets"] = {}
    for c in nb.cells:
        c.metadata["papermill"] = {"status": "completed"}
        c.metadata["execution"] = {"iopub.execute_input": "2024-01-01T00:00:00Z"}
    nb.cells[2].execution_count, nb.cells[4].execution_count = 7, 9
    strip_volatile_metadata(nb)
    assert metadata_problems(nb) == [] and execution_problems(nb) == []


def test_name_rules():
    assert name_problems(["01_clean.ipynb", "02_table1_demographics.ipynb"]) == []
    assert name_problems(["1_x.ipynb", "03_Table.ipynb", "04-fig.ipynb"]) == [
        "1_x.ipynb is not named NN_snake_case.ipynb",
        "03_Table.ipynb is not named NN_snake_case.ipynb",
        "04-fig.ipynb is not named NN_snake_case.ipynb",
    ]
    assert name_problems(["05_a.ipynb", "05_b.ipynb"]) == [
        "05_a.ipynb and 05_b.ipynb share the number 05"]  # fmt: skip


# --------------------------------------------------------------------------------------
# nbval sanitize file
# --------------------------------------------------------------------------------------
def _sanitizer():
    from nbval.plugin import get_sanitize_patterns  # the parser nbval itself uses

    patterns = get_sanitize_patterns(SANITIZE_FILE.read_text(encoding="utf-8"))
    compiled = [(re.compile(rx), rep) for rx, rep in patterns]

    def sanitize(text: str) -> str:
        for rx, rep in compiled:
            text = rx.sub(rep, text)
        return text

    return patterns, sanitize


def test_sanitize_file_parses_every_block():
    patterns, _ = _sanitizer()
    text = SANITIZE_FILE.read_text(encoding="utf-8")
    assert len(patterns) == text.count("\nregex: ") == text.count("\nreplace: ") >= 5


@pytest.mark.parametrize(
    ("volatile", "expected"),
    [
        ("<Figure at 0x7f3a2b1c9d80>", "<Figure at 0xADDRESS>"),
        ("<matplotlib.axes._axes.Axes at 0x10f2e4a90>", "<matplotlib.axes._axes.Axes at 0xADDRESS>"),
        ("wrote /tmp/pytest-of-ci/pytest-3/out/tables/t1.csv", "wrote <TMPDIR>"),
        ("saved /home/ann/imr/figures/fig1.png", "saved <ROOT>/figures/fig1.png"),
        ("saved /Users/ann/imr/tables/t2.md", "saved <ROOT>/tables/t2.md"),
        ("cache in /home/ann/.cache/x", "cache in <HOME>/.cache/x"),
        ("[2/6] 02_table1 ... ok (3.1 s)", "[2/6] 02_table1 ... ok (<TIME>)"),
        ("Wall time: 12.3 ms", "Wall time: <TIME>"),
    ],
)  # fmt: skip
def test_sanitize_replaces_volatile_text(volatile, expected):
    _, sanitize = _sanitizer()
    assert sanitize(volatile) == expected


def test_sanitize_reads_the_record_and_scratch_runs_alike():
    """The runner's kernels write the committed record, nbval's run writes under scratch/: the same outputs."""
    _, sanitize = _sanitizer()
    pairs = [(paths.RECORD_LINE, paths.SCRATCH_LINE),
             ("wrote tables/table1.csv\nwrote figures/f.png", "wrote scratch/tables/table1.csv\nwrote scratch/figures/f.png"),
             ("cohort: data/processed/cohort.parquet", "cohort: scratch/data/processed/cohort.parquet"),
             ("tables read: tables", "tables read: scratch/tables")]
    for record, scratch in pairs:
        assert sanitize(record) == sanitize(scratch) != record
    assert sanitize(f"{paths.SCRATCH_LINE}\ncohort: data/processed/cohort.parquet") == (
        "outputs: <the committed record, or scratch/ outside the runner>\n"
        "cohort: <record or scratch>/data/processed/cohort.parquet")
    for other in ["outputs: the folders given as parameters", "wrote scratch/notes.txt", "n wrote scratch/tables",
                  "wrote <outside the compendium>/t.csv"]:
        assert sanitize(other) == other


@pytest.mark.parametrize(
    "result_text",
    [
        "U = 1234.5, p = 0.0312 (95% CI 0.12 to 0.45), n = 150",
        "age 45.2 (12.1) years; duration 3.5 (2.0) s.d.",
        "mean difference -0.35 (-0.61, -0.09); 0x1f is not an address",
        "saved tables/table1.csv and figures/fig2.png",
        "<table><tr><td>data/raw</td><td>12</td></tr></table>",
        "  CMHC  SerD  EDP\n0  41    12    3",
    ],
)
def test_sanitize_never_touches_results(result_text):
    _, sanitize = _sanitizer()
    assert sanitize(result_text) == result_text


def test_one_kernel_name_everywhere():
    """The Makefile installs, and nbval runs, the kernel the runner writes into every notebook."""
    from imr_workflow.runner import KERNEL_DISPLAY_NAME, KERNEL_NAME

    makefile = (paths.project_root() / "Makefile").read_text(encoding="utf-8")
    assert re.search(rf"^KERNEL_NAME\s*:=\s*{re.escape(KERNEL_NAME)}\s*$", makefile, re.M)
    assert re.search(rf"^KERNEL_DISPLAY\s*:=\s*{re.escape(KERNEL_DISPLAY_NAME)}\s*$", makefile, re.M)
    assert '--name $(KERNEL_NAME) --display-name "$(KERNEL_DISPLAY)"' in makefile
    assert "--nbval-kernel-name $(KERNEL_NAME)" in makefile


def test_make_lab_works_as_root_and_as_a_user():
    """JupyterLab refuses root without --allow-root; a user must not get the flag."""
    import os
    import subprocess

    out = subprocess.run(["make", "-n", "lab"], cwd=paths.project_root(),
                         capture_output=True, text=True, check=True).stdout
    lab = [line for line in out.splitlines() if "jupyter lab" in line]
    assert len(lab) == 1
    assert ("--allow-root" in lab[0]) == (os.geteuid() == 0)
