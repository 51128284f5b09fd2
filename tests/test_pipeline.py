"""End-to-end runs of the whole compendium through the runner.

- two runs into two folders give byte-identical processed data, tables and figures, and
  the same bytes as the committed outputs (so committed outputs are current, and this
  machine gives the bytes another gave); in each, every float written is first perturbed
  by a relative +1e-13 and -1e-13 (``tests/float_perturbation/sitecustomize.py``, loaded
  by each kernel), about a thousand times the difference between two CPUs' BLAS kernels:
  the bytes do not move, so the committed outputs hold on any machine (the precision rule
  of ``imr_analysis.export``);
- a run with other parameters (alpha, a subset of services) gives outputs that
  reflect them;
- a run on the synthetic exports with the synthetic label removed is a private run:
  outputs go to the git-ignored outputs/private/, the opensafely profile is applied,
  and the committed outputs are untouched.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from imr_analysis import constants as C
from imr_analysis import paths
from imr_workflow.runner import run_notebooks

OUTPUT_FOLDERS = ("data/processed", "tables", "figures")


def digests(root) -> dict[str, str]:
    out = {}
    for sub in OUTPUT_FOLDERS:
        folder = root / sub
        for p in sorted(folder.rglob("*")) if folder.is_dir() else []:
            if p.is_file() and p.name != "README.md":
                out[p.relative_to(root).as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


PERTURBATION = Path(__file__).parent / "float_perturbation"


@pytest.fixture(scope="module")
def two_default_runs(tmp_path_factory):
    """Two runs whose written floats are perturbed by +1e-13 and -1e-13."""
    runs = []
    for name, relative in (("run_up", "1e-13"), ("run_down", "-1e-13")):
        out = tmp_path_factory.mktemp(name)
        log = out / "perturbed.log"
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(PERTURBATION), os.environ.get("PYTHONPATH")])))
            mp.setenv("IMR_TEST_FLOAT_PERTURBATION", relative)
            mp.setenv("IMR_TEST_FLOAT_PERTURBATION_LOG", str(log))
            run_notebooks(output_dir=out, html=False, stream=io.StringIO())
        # the perturbation ran: every CSV writer of every notebook went through it
        counts = [int(x) for x in log.read_text().split()]
        assert len(counts) >= 15 and sum(counts) > 1000, counts
        log.unlink()
        runs.append(out)
    return runs


def test_runs_are_byte_identical_also_with_perturbed_floats(two_default_runs):
    a, b = (digests(r) for r in two_default_runs)
    expected = {"data/processed/cohort.parquet", "data/processed/cohort_flow.csv", "tables/table1.csv",
                "tables/table2.csv", "tables/table3_imrs.csv", "tables/imrs_agreement.csv",
                "tables/reproduction_check.csv", "figures/figure1_modules_per_patient.png",
                "figures/figure1_modules_per_patient.pdf", "figures/figure1_modules_per_patient.svg",
                "figures/figure2_bland_altman.svg", "figures/figureS1_module_heatmap.svg"}
    assert expected <= set(a)
    assert a == b


def test_committed_outputs_are_current(two_default_runs):
    fresh = digests(two_default_runs[0])
    committed = digests(paths.project_root())
    stale = sorted(k for k, v in fresh.items() if committed.get(k) != v)
    assert not stale, f"committed outputs differ from a fresh run (run 'make notebooks'): {stale}"


def test_the_run_writes_the_shipped_datas_bundle(two_default_runs):
    from imr_workflow import bundle

    b = bundle.read_bundle(two_default_runs[0] / "bundle")
    assert (b.name, b.data_mode, b.manifest["disclosure"]["profile"]) == (bundle.SHIPPED, "synthetic", "none")
    for table in bundle.TABLES:
        assert (b.folder / f"{table}.csv").read_bytes() == (paths.tables_dir() / f"{table}.csv").read_bytes()


def test_reports_carry_a_colophon(two_default_runs):
    import json

    colophon = json.loads((two_default_runs[0] / "reports" / "colophon.json").read_text())
    text = json.dumps(colophon)
    for fname in C.RAW_FILES.values():
        digest = hashlib.sha256((paths.raw_dir() / fname).read_bytes()).hexdigest()
        assert digest in text


def test_parameters_reach_the_outputs(tmp_path):
    run_notebooks(output_dir=tmp_path, parameters={"alpha": 0.01, "services": ["CMHC", "SerD"]},
                  only=["01", "02", "03"], html=False, stream=io.StringIO())
    tests = pd.read_csv(tmp_path / "tables" / "table1_tests.csv")
    assert set(tests["alpha"]) == {0.01}
    assert (tests["significant"] == (tests["p_value"] < 0.01)).all()
    assert not tests["groups"].str.contains("EDP").any()
    table1 = pd.read_csv(tmp_path / "tables" / "table1.csv")
    assert not any("EDP" in c for c in table1.columns)
    assert any("Total (n=121)" in c for c in table1.columns)  # 69 CMHC + 52 SerD
    long2 = pd.read_csv(tmp_path / "tables" / "table2_long.csv")
    assert not long2.astype(str).apply(lambda s: s.str.contains("EDP")).any().any()


def test_private_data_go_to_private_outputs_with_opensafely(tmp_path):
    raw = tmp_path / "exports"
    raw.mkdir()
    for fname in C.RAW_FILES.values():
        lines = (paths.raw_dir() / fname).read_text(encoding="utf-8").splitlines(keepends=True)
        assert lines[0].startswith(C.SYNTHETIC_MARKER)
        (raw / fname).write_text("".join(lines[1:]), encoding="utf-8")  # label removed
    private = paths.project_root() / "outputs" / "private"
    existed = private.exists()
    before = digests(paths.project_root())
    try:
        # notebooks 05-06 on private data: tests/test_private_outputs.py
        result = run_notebooks(data_dir=raw, only=["01", "02", "03", "04"], html=False, stream=io.StringIO())
        assert result.data_mode == "private"
        assert result.output_dir.resolve() == private.resolve()
        assert digests(paths.project_root()) == before  # committed outputs untouched
        table1 = (private / "tables" / "table1.csv").read_text(encoding="utf-8")
        assert "[REDACTED]" in table1
        report = pd.read_csv(private / "tables" / "disclosure" / "02_table1_demographics_illness"
                             / "disclosure_report.csv")
        assert report["rule"].str.contains("opensafely").any()
        assert not (private / "figures" / "figure1_modules_per_patient.png").exists()
        assert (private / "figures" / "figure1_modules_aggregate.png").exists()
        # the EDP has 5 patients: nothing about it is published but zero counts
        t1 = pd.read_csv(private / "tables" / "table1.csv", dtype=str).fillna("")
        edp = t1[[c for c in t1.columns if c.startswith("EDP")][0]]
        assert edp.map(lambda v: v in ("", "[REDACTED]") or v.startswith("0 (")).all(), edp.tolist()
        t2 = pd.read_csv(private / "tables" / "table2.csv", dtype=str).fillna("")
        edp_rows = t2[t2["Service type"] == "EDP"].drop(columns=["Service type", "Service unit"])
        assert len(edp_rows) == 2
        assert edp_rows.map(lambda v: v == "[REDACTED]" or v.startswith("0 (")).all().all()
    finally:
        if not existed:
            shutil.rmtree(private, ignore_errors=True)
