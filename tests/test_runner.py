"""Tests of the reproduction runner (``python -m imr_analysis run``) and the colophon.

The notebooks run here are the tiny fixtures in ``tests/fixtures/runner`` (they import
only json and pathlib), executed for real through papermill: every kernel start costs
about a second, so one module-scoped run serves most assertions.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import nbformat
import pytest

from imr_workflow import colophon, runner

FIXTURES = Path(__file__).parent / "fixtures" / "runner"
REPO = Path(__file__).resolve().parents[1]

DATA_FILES = {
    "efeso_export.csv": b"# SYNTHETIC DATA\ncode;sex\nEF1;M\n",
    "sub/form.csv": b"# SYNTHETIC DATA\ntimestamp,score\n",
}


def _synthetic(raw_dir):
    return "synthetic"


def _private(raw_dir):
    return "private"


def _make_data(folder: Path) -> Path:
    for rel, content in DATA_FILES.items():
        p = folder / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content)
    (folder / ".gitkeep").write_bytes(b"")  # hidden: not an input
    return folder


def _run_main(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = runner.main(argv)
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture(autouse=True)
def _synthetic_mode(monkeypatch):
    """The fixtures' data are not exports: the data mode is set explicitly."""
    monkeypatch.setattr(runner, "detect_data_mode", _synthetic)


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A throw-away project root (not a git checkout) with data/raw."""
    root = tmp_path / "project"
    _make_data(root / "data" / "raw")
    monkeypatch.setenv("IMR_PROJECT_ROOT", str(root))
    return root


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    """Both fixture notebooks, with --params, -p, --data-dir and --output-dir."""
    base = tmp_path_factory.mktemp("full")
    root = base / "project"  # outside any git checkout
    root.mkdir()
    data = _make_data(base / "raw")
    work = base / "work"
    work.mkdir()
    params = base / "params.yaml"
    params.write_text("y: [3, 4]\n", encoding="utf-8")
    out = base / "out"
    argv = [
        "--notebooks-dir", str(FIXTURES), "--data-dir", str(data), "--output-dir", str(out),
        "--params", str(params), "-p", "x", "5", "-p", "out_dir", str(work),
    ]  # fmt: skip
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IMR_PROJECT_ROOT", str(root))
        mp.setattr(runner, "detect_data_mode", _synthetic)
        rc, stdout, stderr = _run_main(argv)
    return {"rc": rc, "stdout": stdout, "stderr": stderr, "out": out, "work": work, "data": data}


# --------------------------------------------------------------------------------------
# a full run
# --------------------------------------------------------------------------------------
def test_full_run_succeeds_with_one_progress_line_per_notebook(full_run):
    assert full_run["rc"] == 0, full_run["stderr"]
    lines = full_run["stdout"].splitlines()
    assert re.fullmatch(r"\[1/2\] 01_a \.\.\. ok \(\d+\.\d s\)", lines[0])
    assert re.fullmatch(r"\[2/2\] 02_b \.\.\. ok \(\d+\.\d s\)", lines[1])
    assert full_run["stderr"] == ""


def test_notebooks_run_in_order(full_run):
    # 02_b records whether 01_a's file existed when it ran
    b = json.loads((full_run["work"] / "b.json").read_text())
    assert b["saw_a"] is True


def test_parameters_injected_with_yaml_types(full_run):
    a = json.loads((full_run["work"] / "a.json").read_text())
    b = json.loads((full_run["work"] / "b.json").read_text())
    assert a["x"] == 5 and isinstance(a["x"], int)  # -p x 5 -> int
    assert b["y"] == [3, 4]  # from --params
    assert a["raw_dir"] == str(full_run["data"].resolve())  # --data-dir -> raw_dir
    assert b["processed_dir"] == str((full_run["out"] / "data" / "processed").resolve())


def test_output_dir_layout(full_run):
    out = full_run["out"]
    for sub in ("data/processed", "tables", "figures"):
        assert (out / sub).is_dir()
    names = sorted(p.name for p in (out / "reports").iterdir())
    assert names == ["01_a.html", "01_a.ipynb", "02_b.html", "02_b.ipynb", "colophon.json"]


def test_parameters_injected_only_where_declared(full_run):
    nb_a = nbformat.read(full_run["out"] / "reports" / "01_a.ipynb", as_version=4)
    nb_b = nbformat.read(full_run["out"] / "reports" / "02_b.ipynb", as_version=4)

    def injected(nb):
        cells = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
        assert len(cells) == 1
        return cells[0].source

    src_a, src_b = injected(nb_a), injected(nb_b)
    assert "x = 5" in src_a and "raw_dir = " in src_a and "y = " not in src_a
    assert "y = [3, 4]" in src_b and "x = " not in src_b and "raw_dir" not in src_b
    assert "tables_dir" not in src_a + src_b  # declared by neither fixture


def test_report_notebook_is_clean_and_ends_with_colophon(full_run):
    nb = nbformat.read(full_run["out"] / "reports" / "02_b.ipynb", as_version=4)
    assert "papermill" not in nb.metadata
    assert nb.metadata.kernelspec.name == "python3"
    assert all("papermill" not in c.metadata and "execution" not in c.metadata for c in nb.cells)
    counts = [c.execution_count for c in nb.cells if c.cell_type == "code"]
    assert counts == list(range(1, len(counts) + 1))
    last = nb.cells[-1]
    assert last.cell_type == "markdown" and last.metadata.tags == ["colophon"]
    assert last.source.startswith("## Colophon")
    assert "sum 3" not in json.dumps(nb)  # y was injected as [3, 4]
    assert any("sum 7" in o.get("text", "") for c in nb.cells for o in c.get("outputs", []))


def test_colophon_json_hashes_raw_inputs(full_run):
    col = json.loads((full_run["out"] / "reports" / "colophon.json").read_text())
    expected = {rel: hashlib.sha256(content).hexdigest() for rel, content in DATA_FILES.items()}
    assert col["raw_inputs"] == expected  # .gitkeep (hidden) is not an input
    assert col["git_commit"] == "not a git checkout"
    assert col["data_mode"] == "synthetic"
    assert col["python"] == ".".join(map(str, sys.version_info[:3]))
    for pkg in ("pandas", "numpy", "scipy", "pingouin", "statsmodels", "matplotlib", "seaborn",
                "pandera", "papermill"):  # fmt: skip
        assert col["packages"][pkg] == metadata.version(pkg)
    assert col["parameters"]["x"] == 5 and col["parameters"]["y"] == [3, 4]
    assert col["notebooks"]["01_a"]["x"] == 5 and "x" not in col["notebooks"]["02_b"]


def test_colophon_in_report_and_html(full_run):
    digest = hashlib.sha256(DATA_FILES["efeso_export.csv"]).hexdigest()
    reports = full_run["out"] / "reports"
    nb = nbformat.read(reports / "01_a.ipynb", as_version=4)
    md = nb.cells[-1].source
    assert digest in md and "not a git checkout" in md and "| Data mode | synthetic |" in md
    assert "x = 5" in md
    html = (reports / "01_a.html").read_text(encoding="utf-8")
    assert digest in html and "Colophon" in html


# --------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------
def test_unknown_parameter_is_an_error_listing_declared_names(tmp_path):
    data = _make_data(tmp_path / "raw")
    out = tmp_path / "out"
    argv = ["--notebooks-dir", str(FIXTURES), "--data-dir", str(data), "--output-dir", str(out),
            "-p", "nope", "1"]  # fmt: skip
    rc, stdout, stderr = _run_main(argv)
    assert rc == 2
    assert "unknown parameter 'nope'" in stderr
    assert "declared parameters: fail, out_dir, processed_dir, raw_dir, x, y" in stderr
    assert not (out / "reports").exists()  # nothing ran
    assert "Traceback" not in stderr


def test_parameter_declared_only_by_unselected_notebook_is_an_error(tmp_path):
    data = _make_data(tmp_path / "raw")
    argv = ["--notebooks-dir", str(FIXTURES), "--data-dir", str(data), "--only", "02",
            "-p", "x", "3"]  # fmt: skip
    rc, _, stderr = _run_main(argv)
    assert rc == 2 and "unknown parameter 'x'" in stderr


def test_only_selects_and_no_html(tmp_path):
    data = _make_data(tmp_path / "raw")
    out = tmp_path / "out"
    argv = ["--notebooks-dir", str(FIXTURES), "--data-dir", str(data), "--output-dir", str(out),
            "--only", "02", "--no-html"]  # fmt: skip
    rc, stdout, stderr = _run_main(argv)
    assert rc == 0, stderr
    assert stdout.splitlines()[0].startswith("[1/1] 02_b ... ok (")
    names = sorted(p.name for p in (out / "reports").iterdir())
    assert names == ["02_b.ipynb", "colophon.json"]


def test_failing_cell_stops_with_clear_message(tmp_path):
    data = _make_data(tmp_path / "raw")
    out = tmp_path / "out"
    argv = ["--notebooks-dir", str(FIXTURES), "--data-dir", str(data), "--output-dir", str(out),
            "--only", "2", "-p", "fail", "true"]  # fmt: skip
    rc, stdout, stderr = _run_main(argv)
    assert rc == 1
    assert "[1/1] 02_b ... FAILED" in stdout
    # injected-parameters cell is In [2], so the raising cell is In [4]
    assert "notebook 02_b failed at cell In [4]" in stderr
    assert "ValueError: fixture asked to fail" in stderr
    partial = out / "reports" / "02_b.ipynb"
    assert f"partially executed notebook: {partial}" in stderr
    assert partial.exists() and not partial.with_suffix(".html").exists()
    assert "cell source:" in stderr and "fixture asked to fail" in stderr
    assert "Traceback" not in stderr
    assert not (out / "reports" / "colophon.json").exists()


def test_failure_raises_typed_error_from_python_api(tmp_path):
    data = _make_data(tmp_path / "raw")
    with pytest.raises(runner.NotebookFailedError) as info:
        runner.run_notebooks(
            notebooks_dir=FIXTURES, data_dir=data, output_dir=tmp_path / "out",
            parameters={"fail": True}, only=["02"], html=False, stream=io.StringIO(),
        )  # fmt: skip
    err = info.value
    assert (err.notebook, err.execution_count, err.ename) == ("02_b", 4, "ValueError")
    assert err.evalue == "fixture asked to fail" and err.exit_code == 1


def test_missing_data_dir_is_a_clear_error(tmp_path):
    rc, _, stderr = _run_main(["--notebooks-dir", str(FIXTURES), "--data-dir", str(tmp_path / "nope")])
    assert rc == 2
    assert f"data folder not found: {tmp_path / 'nope'}" in stderr


def test_missing_notebooks_dir_is_a_clear_error(tmp_path):
    data = _make_data(tmp_path / "raw")
    rc, _, stderr = _run_main(["--notebooks-dir", str(tmp_path / "nb"), "--data-dir", str(data)])
    assert rc == 2 and "notebooks folder not found" in stderr


def test_only_unknown_number_and_bad_token(tmp_path):
    data = _make_data(tmp_path / "raw")
    base = ["--notebooks-dir", str(FIXTURES), "--data-dir", str(data)]
    rc, _, stderr = _run_main([*base, "--only", "07"])
    assert rc == 2 and "no notebook numbered 07" in stderr and "available: 01, 02" in stderr
    rc, _, stderr = _run_main([*base, "--only", "a"])
    assert rc == 2 and "--only expects" in stderr


def test_a_bad_department_name_is_a_usage_error_and_partial_runs_write_no_bundle(tmp_path, full_run):
    data = _make_data(tmp_path / "raw")
    rc, stdout, stderr = _run_main(["--notebooks-dir", str(FIXTURES), "--data-dir", str(data), "--department", "a/b"])
    assert rc == 2 and "department name 'a/b'" in stderr and "[1/" not in stdout  # before any notebook runs
    assert not (full_run["out"] / "bundle").exists()  # the fixtures are not notebooks 02, 03 and 05


def test_bad_params_file(tmp_path):
    data = _make_data(tmp_path / "raw")
    bad = tmp_path / "p.yaml"
    bad.write_text("- 1\n- 2\n")
    base = ["--notebooks-dir", str(FIXTURES), "--data-dir", str(data)]
    rc, _, stderr = _run_main([*base, "--params", str(bad)])
    assert rc == 2 and "must hold a mapping" in stderr
    rc, _, stderr = _run_main([*base, "--params", str(tmp_path / "missing.yaml")])
    assert rc == 2 and "parameters file not found" in stderr


# --------------------------------------------------------------------------------------
# default folders and the data mode
# --------------------------------------------------------------------------------------
def test_default_run_injects_nothing_and_writes_repo_reports(project, tmp_path):
    rc, stdout, stderr = _run_main(["--notebooks-dir", str(FIXTURES), "--only", "01", "--no-html"])
    assert rc == 0, stderr
    nb = nbformat.read(project / "reports" / "01_a.ipynb", as_version=4)
    assert not any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells)
    assert "Parameters: none injected" in nb.cells[-1].source
    col = json.loads((project / "reports" / "colophon.json").read_text())
    assert col["data_dir"] == "data/raw"  # shown relative to the project root
    assert not (project / "outputs").exists()


def test_private_data_default_output_is_outputs_private(project, tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "detect_data_mode", _private)
    work = tmp_path / "work"
    work.mkdir()
    argv = ["--notebooks-dir", str(FIXTURES), "--only", "02", "--no-html", "-p", "out_dir", str(work)]
    rc, stdout, stderr = _run_main(argv)
    assert rc == 0, stderr
    private = project / "outputs" / "private"
    assert "private data: outputs go to" in stdout
    assert (private / "reports" / "02_b.ipynb").exists()
    assert not (project / "reports").exists()
    b = json.loads((work / "b.json").read_text())
    assert b["processed_dir"] == str(private / "data" / "processed")
    col = json.loads((private / "reports" / "colophon.json").read_text())
    assert col["data_mode"] == "private"


def test_data_mode_comes_from_the_exports(monkeypatch, tmp_path):
    monkeypatch.undo()  # the real detect_data_mode: exports without the synthetic label are private
    _make_data(tmp_path / "raw")
    result = runner.run_notebooks(notebooks_dir=FIXTURES, data_dir=tmp_path / "raw", output_dir=tmp_path / "out",
                                  only=["01"], html=False, stream=io.StringIO())
    assert result.data_mode == "private"
    assert json.loads((tmp_path / "out" / "reports" / "colophon.json").read_text())["data_mode"] == "private"


# --------------------------------------------------------------------------------------
# --inplace
# --------------------------------------------------------------------------------------
def _dirty_copy(dst: Path) -> Path:
    """Copy the fixtures and add what a previous papermill run leaves behind."""
    shutil.copytree(FIXTURES, dst)
    for p in dst.glob("*.ipynb"):
        nb = nbformat.read(p, as_version=4)
        nb.metadata["papermill"] = {"duration": 1.5, "parameters": {}}
        nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {}}
        for c in nb.cells:
            c.metadata["papermill"] = {"status": "completed", "duration": 0.1}
            c.metadata["execution"] = {"iopub.status.busy": "2024-01-01T00:00:00.000000Z"}
        nbformat.write(nb, p)
    return dst


def test_inplace_strips_volatile_metadata_and_keeps_outputs(project, tmp_path):
    nbdir = _dirty_copy(tmp_path / "nb")
    rc, stdout, stderr = _run_main(["--notebooks-dir", str(nbdir), "--inplace"])
    assert rc == 0, stderr
    for name in ("01_a", "02_b"):
        path = nbdir / f"{name}.ipynb"
        text = path.read_text(encoding="utf-8")
        nb = nbformat.reads(text, as_version=4)
        assert text == nbformat.writes(nb) + "\n"  # nbformat layout (indent 1)
        assert text.startswith('{\n "cells": [\n  {')
        assert "papermill" not in nb.metadata and "widgets" not in nb.metadata
        assert nb.metadata.kernelspec.name == "python3"
        for c in nb.cells:
            assert not {"papermill", "execution"} & set(c.metadata)
            assert "injected-parameters" not in c.metadata.get("tags", [])
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert [c.execution_count for c in code] == list(range(1, len(code) + 1))
    nb_a = nbformat.read(nbdir / "01_a.ipynb", as_version=4)
    result = nb_a.cells[-1].outputs[0]
    assert result.output_type == "execute_result" and result.data["text/plain"] == "2"
    assert result.execution_count == nb_a.cells[-1].execution_count
    nb_b = nbformat.read(nbdir / "02_b.ipynb", as_version=4)
    assert nb_b.cells[-1].outputs[0].text == "sum 3\n"  # the notebook's own default y
    assert not (project / "reports").exists()  # no reports in --inplace mode


def test_inplace_failure_leaves_the_notebook_untouched(project, tmp_path):
    nbdir = tmp_path / "nb"
    shutil.copytree(FIXTURES, nbdir)
    path = nbdir / "02_b.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells[1].source = nb.cells[1].source.replace("fail = False", "fail = True")
    nbformat.write(nb, path)
    before = path.read_bytes()
    rc, _, stderr = _run_main(["--notebooks-dir", str(nbdir), "--inplace", "--only", "02"])
    assert rc == 1 and "ValueError: fixture asked to fail" in stderr
    assert path.read_bytes() == before
    partial = re.search(r"partially executed notebook: (\S+)", stderr).group(1)
    assert Path(partial).exists() and Path(partial) != path
    shutil.rmtree(Path(partial).parent)  # the runner's scratch folder, kept for the user


def test_inplace_refuses_parameters_and_private_data(project, monkeypatch):
    rc, _, stderr = _run_main(["--notebooks-dir", str(FIXTURES), "--inplace", "-p", "x", "2"])
    assert rc == 2 and "--inplace" in stderr
    monkeypatch.setattr(runner, "detect_data_mode", _private)
    rc, _, stderr = _run_main(["--notebooks-dir", str(FIXTURES), "--inplace"])
    assert rc == 2 and "refused" in stderr and "private" in stderr


# --------------------------------------------------------------------------------------
# units: parameters, discovery, metadata stripping, colophon
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [("5", 5), ("0.01", 0.01), ("true", True), ("[CMHC, SerD]", ["CMHC", "SerD"]),
     ("abc", "abc"), ("2023-01-31", "2023-01-31"), ("", ""), ("null", None), ("'5'", "5")],
)  # fmt: skip
def test_parse_parameter_value(text, expected):
    value = runner.parse_parameter_value(text)
    assert value == expected and type(value) is type(expected)


def test_parse_parameter_value_rejects_invalid_yaml():
    with pytest.raises(runner.UsageError, match="as YAML"):
        runner.parse_parameter_value("[1, 2")


def test_discover_notebooks(tmp_path):
    for name in ("02_b.ipynb", "01_a.ipynb", "notes.ipynb", "1_x.ipynb", "10_j.ipynb"):
        (tmp_path / name).write_text("{}")
    assert [p.name for p in runner.discover_notebooks(tmp_path)] == [
        "01_a.ipynb", "02_b.ipynb", "10_j.ipynb"]  # fmt: skip
    assert [p.name for p in runner.discover_notebooks(tmp_path, only=["10", 1])] == [
        "01_a.ipynb", "10_j.ipynb"]  # fmt: skip
    (tmp_path / "02_c.ipynb").write_text("{}")
    with pytest.raises(runner.UsageError, match="share the number 02"):
        runner.discover_notebooks(tmp_path)


def test_discover_notebooks_empty_folder(tmp_path):
    with pytest.raises(runner.UsageError, match="no numbered notebooks"):
        runner.discover_notebooks(tmp_path)


def test_declared_parameters_of_fixtures():
    assert list(runner.declared_parameters(FIXTURES / "01_a.ipynb")) == ["x", "out_dir", "raw_dir"]
    assert runner.declared_parameters(FIXTURES / "02_b.ipynb")["y"] == "[1, 2]"


def test_strip_volatile_metadata_renumbers_and_cleans():
    nb = nbformat.v4.new_notebook()
    nb.metadata["papermill"] = {"duration": 1.0}
    nb.metadata["kernelspec"] = {"name": "python3-custom", "display_name": "x", "language": "python"}
    out = nbformat.v4.new_output("execute_result", data={"text/plain": "1"}, execution_count=9)
    nb.cells = [
        nbformat.v4.new_markdown_cell("# t"),
        nbformat.v4.new_code_cell("a = 1", execution_count=4),
        nbformat.v4.new_code_cell("", execution_count=None),
        nbformat.v4.new_code_cell("a", execution_count=9, outputs=[out]),
    ]
    for c in nb.cells:
        c.metadata.update(tags=[], papermill={"status": "completed"}, ExecuteTime={"x": 1})
    nb.cells[1].metadata["tags"] = ["parameters"]
    runner.strip_volatile_metadata(nb)
    assert "papermill" not in nb.metadata and nb.metadata.kernelspec == runner.KERNELSPEC
    assert [dict(c.metadata) for c in nb.cells] == [{}, {"tags": ["parameters"]}, {}, {}]
    assert [c.get("execution_count") for c in nb.cells[1:]] == [1, None, 2]
    assert nb.cells[3].outputs[0].execution_count == 2


def test_strip_volatile_metadata_drops_widget_views_and_keeps_their_text():
    """A widget's view names a random model id, and without the (dropped) widget state no reader can draw it."""
    view = {"model_id": "4684484778104add9442df145fbd5ff7", "version_major": 2, "version_minor": 0}
    out = nbformat.v4.new_output("execute_result", data={runner.WIDGET_VIEW: view, "text/plain": "Explorer"},
                                 execution_count=1)
    nb = nbformat.v4.new_notebook(metadata={"widgets": {"application/vnd.jupyter.widget-state+json": {}}})
    nb.cells = [nbformat.v4.new_code_cell("explorer", execution_count=1, outputs=[out])]
    runner.strip_volatile_metadata(nb)
    assert "widgets" not in nb.metadata
    assert dict(nb.cells[0].outputs[0].data) == {"text/plain": "Explorer"}


def test_git_revision_outside_git(tmp_path):
    assert colophon.git_revision(tmp_path) == "not a git checkout"
    assert colophon.git_revision(tmp_path / "missing") == "not a git checkout"


def test_git_revision_in_the_repository():
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("the compendium is not a git checkout here")
    rev = colophon.git_revision(REPO)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True)
    assert re.fullmatch(r"[0-9a-f]{40}(\+dirty)?", rev)
    assert rev.removesuffix("+dirty") == head.stdout.strip()


def test_sha256_files_matches_hashlib_and_skips_hidden(tmp_path):
    _make_data(tmp_path)
    (tmp_path / ".cache").mkdir()
    (tmp_path / ".cache" / "x.csv").write_bytes(b"x")
    got = colophon.sha256_files(tmp_path)
    assert got == {rel: hashlib.sha256(c).hexdigest() for rel, c in sorted(DATA_FILES.items())}
    with pytest.raises(NotADirectoryError):
        colophon.sha256_files(tmp_path / "missing")


def test_sha256_known_answer(tmp_path):
    (tmp_path / "abc").write_bytes(b"abc")  # FIPS 180-2 test vector
    assert colophon.sha256_files(tmp_path)["abc"] == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")  # fmt: skip


def test_build_colophon_is_deterministic_and_markdown_lists_everything(tmp_path):
    _make_data(tmp_path / "raw")
    a = colophon.build_colophon(data_dir=tmp_path / "raw", data_mode="synthetic",
                                parameters={"alpha": 0.01}, root=tmp_path)  # fmt: skip
    b = colophon.build_colophon(data_dir=tmp_path / "raw", data_mode="synthetic",
                                parameters={"alpha": 0.01}, root=tmp_path)  # fmt: skip
    assert a == b and a["data_dir"] == "raw"
    md = colophon.colophon_markdown(a)
    assert "alpha = 0.01" in md and "`not a git checkout`" in md
    for rel, digest in a["raw_inputs"].items():
        assert f"| `{rel}` | `{digest}` |" in md
    assert "pandas " + metadata.version("pandas") in md
    assert colophon.package_versions(["surely-not-installed-pkg"]) == {
        "surely-not-installed-pkg": "not installed"}  # fmt: skip


def test_colophon_records_the_disclosure_profile():
    synthetic = colophon.disclosure_facts("synthetic", {})
    assert synthetic["profile"] == "none" and not synthetic["weaker_than_default"]
    private = colophon.disclosure_facts("private", {"disclosure_profile": "auto"})
    assert private["profile"] == "opensafely" and not private["weaker_than_default"]
    weaker = colophon.disclosure_facts("private", {"disclosure_profile": "sistan_min3", "allow_weaker_profile": True})
    assert weaker["profile"] == "sistan_min3" and weaker["weaker_than_default"]
    refused = colophon.disclosure_facts("private", {"disclosure_profile": "none"})
    assert refused["profile"] is None and "none" in refused["requested"]
    md = colophon.colophon_markdown({"git_commit": "x", "python": "3.11", "data_mode": "private",
                                     "data_dir": ".", "raw_inputs": {}, "parameters": {}, "disclosure": weaker})
    assert "WEAKER than the default" in md


def test_kernel_manager_skips_only_the_interrupt_before_shutdown(monkeypatch):
    """jupyter_client interrupts a kernel before asking it to shut down, which made ipykernel
    print 'KeyboardInterrupt caught in kernel.' between notebooks; the runner's manager skips
    that one interrupt and forwards every other."""
    import asyncio

    from jupyter_client.manager import AsyncKernelManager

    cls = runner.KERNEL_OPTIONS["kernel_manager_class"]
    assert issubclass(cls, AsyncKernelManager)
    calls = []

    async def record(self):
        calls.append(self.shutting_down)

    monkeypatch.setattr(AsyncKernelManager, "_async_interrupt_kernel", record)
    km = cls()
    km.shutting_down = False
    asyncio.run(km._async_interrupt_kernel())
    km.shutting_down = True
    asyncio.run(km._async_interrupt_kernel())
    assert calls == [False]


def test_strip_volatile_metadata_merges_stream_outputs_a_flush_split():
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell("print(1); print(2)", execution_count=1, outputs=[
        nbformat.v4.new_output("stream", name="stdout", text="wrote a\n"),
        nbformat.v4.new_output("stream", name="stdout", text="wrote b\n"),
        nbformat.v4.new_output("stream", name="stderr", text="warning\n")]))
    runner.strip_volatile_metadata(nb)
    assert [(o.name, o.text) for o in nb.cells[0].outputs] == [("stdout", "wrote a\nwrote b\n"), ("stderr", "warning\n")]
