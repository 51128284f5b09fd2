"""The committed record is written only on purpose: the runner's kernels write data/processed, tables and
figures; any other run of a notebook writes under the git-ignored scratch/ and says so first
(imr_analysis.paths, publish.setup). Each test works in its own copy of the compendium (IMR_PROJECT_ROOT),
never in the real scratch/ folder, which nbval uses."""

from __future__ import annotations

import shutil
import subprocess

import nbformat
import pytest
from nbclient import NotebookClient

from imr_analysis import paths, publish, reproduce
from imr_analysis.cohort import COHORT_FILE

ROOT = paths.project_root()
RAW = ROOT / "data" / "raw"
NOTEBOOK = "02_table1_demographics_illness.ipynb"


@pytest.fixture
def root(tmp_path, monkeypatch):
    """An empty compendium root, outside the runner."""
    monkeypatch.setenv("IMR_PROJECT_ROOT", str(tmp_path))
    monkeypatch.delenv(paths.OUTPUT_ENV, raising=False)
    return tmp_path


def test_outside_the_runner_the_default_folders_are_under_scratch(root, monkeypatch):
    tables = root / "tables"
    assert not paths.recording()
    assert paths.output_folder("", tables) == paths.output_folder(None, tables) == root / "scratch" / "tables"
    assert paths.output_folder("elsewhere/t", tables) == root / "elsewhere" / "t"  # given: used as given
    assert paths.output_folder("/abs/t", tables) == (root / "/abs/t").resolve()
    assert paths.output_line() == paths.SCRATCH_LINE and paths.SCRATCH_LINE.startswith("outputs: scratch/")
    monkeypatch.setenv(paths.OUTPUT_ENV, "record")
    assert paths.recording() and paths.output_folder("", tables) == tables
    assert paths.output_line([False]) == paths.RECORD_LINE
    assert paths.output_line([True, True]) == "outputs: the folders given as parameters"
    assert paths.output_line([True, False]) == ("outputs: the folders given as parameters; the others: "
                                                "the committed record (data/processed, tables, figures), written on "
                                                "purpose: a run of `make reproduce` or `make notebooks`")
    monkeypatch.setenv(paths.OUTPUT_ENV, "yes")  # only "record" records
    assert not paths.recording()


def test_a_run_reads_what_a_scratch_run_wrote_else_the_record(root, monkeypatch):
    record = root / "data" / "processed"
    twin = root / "scratch" / "data" / "processed"
    assert paths.input_folder("", record, [COHORT_FILE]) == record  # nothing in scratch/
    twin.mkdir(parents=True)
    (twin / COHORT_FILE).write_bytes(b"")
    assert paths.input_folder("", record, [COHORT_FILE]) == twin
    assert paths.input_folder("", record, [COHORT_FILE, "cohort_flow.csv"]) == record  # not all there
    assert paths.input_folder("given", record, [COHORT_FILE]) == root / "given"
    monkeypatch.setenv(paths.OUTPUT_ENV, "record")
    assert paths.input_folder("", record, [COHORT_FILE]) == record  # the runner reads the record only


def test_setup_says_where_it_writes_and_what_it_read(root, capsys):
    run = publish.setup("02_demo", raw_dir=RAW, tables_dir="", figures_dir="")
    assert (run.processed, run.tables, run.figures) == (root / "data" / "processed", root / "scratch" / "tables",
                                                        root / "scratch" / "figures")
    assert capsys.readouterr().out.splitlines()[:2] == [paths.SCRATCH_LINE, "cohort: data/processed/cohort.parquet"]
    (root / "scratch" / "data" / "processed").mkdir(parents=True)
    (root / "scratch" / "data" / "processed" / COHORT_FILE).write_bytes(b"")
    run = publish.setup("02_demo", raw_dir=RAW, tables_dir="")
    assert capsys.readouterr().out.splitlines()[1] == "cohort: scratch/data/processed/cohort.parquet"
    run = publish.setup("01_demo", raw_dir=RAW, writes_cohort=True)
    assert run.processed == root / "scratch" / "data" / "processed"
    assert capsys.readouterr().out.splitlines()[:2] == [paths.SCRATCH_LINE, "raw exports: <outside the compendium>/raw"]
    run = publish.setup("06_demo", raw_dir=RAW, tables_dir="", reads_tables=reproduce.INPUT_FILES)
    assert (run.read_tables, run.tables) == (root / "tables", root / "scratch" / "tables")
    assert capsys.readouterr().out.splitlines()[1] == "tables read: tables"
    for name in reproduce.INPUT_FILES:
        run.tables.mkdir(parents=True, exist_ok=True)
        (run.tables / name).write_text("x\n")
    assert publish.setup("06_demo", raw_dir=RAW, tables_dir="", reads_tables=reproduce.INPUT_FILES).read_tables == \
        root / "scratch" / "tables"


def _git(cwd, *args) -> str:
    return subprocess.run(["git", "-c", "user.name=compendium", "-c", "user.email=compendium@example.org", *args],
                          cwd=cwd, capture_output=True, text=True, check=True).stdout


@pytest.fixture
def clone(tmp_path):
    """A git checkout of the compendium's data, outputs and notebooks, everything committed."""
    copy = tmp_path / "compendium"
    for folder in ("data", "tables", "figures", "notebooks"):
        shutil.copytree(ROOT / folder, copy / folder, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    shutil.copy(ROOT / ".gitignore", copy)
    _git(copy, "init", "-q")
    _git(copy, "add", "-A")
    _git(copy, "commit", "-q", "-m", "the compendium")
    assert _git(copy, "status", "--porcelain") == ""
    return copy


def test_a_notebook_run_as_jupyterlab_runs_it_leaves_the_record_alone(clone, monkeypatch):
    """Notebook 02 with a parameter edited, executed as JupyterLab does (a kernel working in notebooks/, no
    runner): git sees no change, the tables are under scratch/, and the first line says so."""
    monkeypatch.setenv("IMR_PROJECT_ROOT", str(clone))
    monkeypatch.delenv(paths.OUTPUT_ENV, raising=False)
    nb = nbformat.read(clone / "notebooks" / NOTEBOOK, as_version=4)
    params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    assert 'services = ["CMHC", "SerD", "EDP"]\n' in params.source
    params.source = params.source.replace('services = ["CMHC", "SerD", "EDP"]', 'services = ["CMHC", "SerD"]')
    NotebookClient(nb, kernel_name="python3", timeout=600,
                   resources={"metadata": {"path": str(clone / "notebooks")}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert outputs[0].text.splitlines()[:2] == [paths.SCRATCH_LINE, "cohort: data/processed/cohort.parquet"]
    assert not [o for o in outputs if o.output_type == "error" or o.get("name") == "stderr"]
    wrote = [line for o in outputs if o.get("name") == "stdout" for line in o.text.splitlines()
             if line.startswith("wrote ")]
    assert "wrote scratch/tables/table1.csv" in wrote and all(w.startswith("wrote scratch/") for w in wrote)
    assert _git(clone, "status", "--porcelain", "--untracked-files=all") == ""
    header = (clone / "scratch" / "tables" / "table1.csv").read_text(encoding="utf-8").splitlines()[0]
    assert "CMHC (n=69)" in header and "SerD (n=52)" in header and "EDP" not in header
    assert "p (CMHC vs SerD)" in header and ",p," not in header  # two services: one comparison
    assert (clone / "tables" / "table1.csv").read_bytes() == (ROOT / "tables" / "table1.csv").read_bytes()
