"""Aggregate bundles: what the committed ones hold, how they are validated, what a private one may contain.

The committed bundles (``data/bundles/<department>/``, ``make bundles``) are compared with the departments' patient
data, regenerated and cleaned here; a private bundle is checked in ``tests/test_private_outputs.py`` (it reuses that
file's private run) and the shipped data's in ``tests/test_pipeline.py``.
"""

from __future__ import annotations

import doctest
import json
import shutil

import numpy as np
import pandas as pd
import pytest

from imr_analysis import agreement, paths
from imr_analysis import constants as C
from imr_analysis.cohort import clean_raw
from imr_synth.generator import DEPARTMENTS, write_exports
from imr_workflow import bundle


@pytest.fixture(scope="module")
def committed():
    return {b.name: b for b in bundle.read_bundles(paths.bundles_dir())}


@pytest.fixture(scope="module")
def cohorts(tmp_path_factory):
    """Each synthetic department regenerated and cleaned, as notebook 01 cleans it."""
    out = {}
    for name, d in DEPARTMENTS.items():
        raw = tmp_path_factory.mktemp(name)
        write_exports(raw, seed=d.seed, n_patients=d.n_patients, department=d)
        out[name] = clean_raw(raw).cohort
    return out


def _copy(src, tmp_path, name=None):
    return shutil.copytree(src.folder, tmp_path / (name or src.name))


# -- the committed bundles ------------------------------------------------------------------
def test_the_committed_bundles_are_the_synthetic_departments(committed):
    assert sorted(committed) == sorted(DEPARTMENTS)
    for name, b in committed.items():
        m = b.manifest
        assert (m["format"], m["format_version"], m["department"]) == (bundle.FORMAT, 1, name)
        assert (m["data_mode"], m["disclosure"]["profile"], m["alpha"]) == ("synthetic", "none", 0.05)
        assert sorted(m["files"]) == sorted(["colophon.json"] + [f"{t}{s}" for t in bundle.TABLES
                                                                for s in (".csv", ".csv-metadata.json")])
        colophon = json.loads((b.folder / "colophon.json").read_text(encoding="utf-8"))
        assert "data_dir" not in colophon and not any(k.endswith("_dir") for k in colophon["parameters"])
        assert all(not k.endswith("_dir") for params in colophon["notebooks"].values() for k in params)


def test_committed_bundles_agree_with_the_departments_patient_data(committed, cohorts):
    for name, cohort in cohorts.items():
        out = committed[name].outputs
        t1, t2 = out["table1_long"], out["table2_long"]
        total = t2[t2["level"] == "total"].set_index("measure")
        assert len(cohort) == DEPARTMENTS[name].n_patients == total.loc["patients", "n"]
        services = t2[(t2["level"] == "service_type") & (t2["measure"] == "patients")].set_index("service_type")["n"]
        assert services.to_dict() == cohort["service_type"].astype(str).value_counts().to_dict()
        assert total.loc["group_format", "n"] == (cohort["imr_format"] == "group").sum()
        for module in C.MODULE_COLUMNS:
            assert total.loc[module, "n"] == cohort[module].sum(), (name, module)
        men = t1[(t1["variable"] == "sex") & (t1["level"] == "M") & (t1["group"] == "Total")]
        assert men["n"].item() == (cohort["sex"] == "M").sum()
        assert total.loc["n_sessions", "mean"] == pytest.approx(cohort["n_sessions"].mean(), rel=1e-8)
        patient = agreement.patient_level_agreement(cohort).set_index("measure")
        rows = out["imrs_agreement"][out["imrs_agreement"]["section"].str.startswith("patient level: IMRS total")]
        for measure in (agreement.ICC_A1, agreement.BIAS):
            assert rows.set_index("measure").loc[measure, "estimate"] == pytest.approx(
                patient.loc[measure, "estimate"], rel=1e-8)


# -- validation ----------------------------------------------------------------------------
def test_a_changed_extra_or_missing_file_is_named(committed, tmp_path):
    folder = _copy(committed["north"], tmp_path)
    (folder / "table2_long.csv").write_text((folder / "table2_long.csv").read_text() + "\n", encoding="utf-8")
    with pytest.raises(bundle.BundleError, match=r"bundle north: table2_long.csv: SHA-256 differs"):
        bundle.read_bundle(folder)
    shutil.copyfile(committed["north"].folder / "table2_long.csv", folder / "table2_long.csv")
    (folder / "cohort.parquet").write_bytes(b"patient rows")
    with pytest.raises(bundle.BundleError, match="cohort.parquet: present but not in the manifest"):
        bundle.read_bundle(folder)
    (folder / "cohort.parquet").unlink()
    (folder / "imrs_agreement.csv").unlink()
    with pytest.raises(bundle.BundleError, match="imrs_agreement.csv: listed in the manifest but missing"):
        bundle.read_bundle(folder)


@pytest.mark.parametrize("change, message", [
    ({"format_version": 2}, "format version 2; this compendium reads version 1"),
    ({"format": "something else"}, "manifest.json is not an 'IMR compendium aggregate bundle' manifest"),
    ({"data_mode": "real"}, "data_mode 'real'"),
    ({"alpha": None, "files": None}, None),
])
def test_a_bad_manifest_is_named(committed, tmp_path, change, message):
    folder = _copy(committed["central"], tmp_path)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest.update(change)
    if message is None:  # fields removed
        manifest = {k: v for k, v in manifest.items() if k not in change}
        message = "manifest.json lacks alpha, files"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(bundle.BundleError, match=f"bundle central: {message}"):
        bundle.read_bundle(folder)
    (folder / "manifest.json").unlink()
    with pytest.raises(bundle.BundleError, match="bundle central: cannot read manifest.json"):
        bundle.read_bundle(folder)


def test_a_folder_of_bundles_is_refused_empty_with_duplicates_or_mixed(committed, tmp_path):
    with pytest.raises(bundle.BundleError, match="no bundles in"):
        bundle.read_bundles(tmp_path)
    _copy(committed["north"], tmp_path)
    _copy(committed["north"], tmp_path, "north-again")
    with pytest.raises(bundle.BundleError, match="more than one bundle of department.s. north"):
        bundle.read_bundles(tmp_path)
    shutil.rmtree(tmp_path / "north-again")
    private = _copy(committed["coastal"], tmp_path)
    manifest = json.loads((private / "manifest.json").read_text())
    (private / "manifest.json").write_text(json.dumps(manifest | {"data_mode": "private"}))
    with pytest.raises(bundle.BundleError, match=r"mixes synthetic bundles \(north\) with private ones \(coastal\)"):
        bundle.read_bundles(tmp_path)
    assert [b.name for b in bundle.read_bundles(private)] == ["coastal"]  # a bundle's own folder


def test_the_notebook_pools_nothing_on_private_data_and_never_writes_private_pools_to_the_compendium(
        committed, tmp_path, capsys, monkeypatch):
    raw = tmp_path / "exports"
    raw.mkdir()
    for fname in C.RAW_FILES.values():  # no synthetic marker: private data
        (raw / fname).write_text("a;b\n1;2\n", encoding="utf-8")
    assert bundle.open_bundles("", raw) == []
    assert "nothing pooled" in capsys.readouterr().out
    assert [b.name for b in bundle.open_bundles("", "")] == sorted(DEPARTMENTS)  # synthetic: the shipped ones
    private = _copy(committed["north"], tmp_path / "bundles")
    manifest = json.loads((private / "manifest.json").read_text())
    (private / "manifest.json").write_text(json.dumps(manifest | {"data_mode": "private"}))
    assert len(bundle.open_bundles(tmp_path / "bundles", "", "", "")) == 1  # outside the runner: to scratch/
    monkeypatch.setenv(paths.OUTPUT_ENV, "record")  # the runner's kernels write the record by default
    with pytest.raises(bundle.BundleError, match="not written to the compendium's tables/ and figures/"):
        bundle.open_bundles(tmp_path / "bundles", "", "", "")
    assert len(bundle.open_bundles(tmp_path / "bundles", "", tmp_path / "t", tmp_path / "f")) == 1


# -- writing ----------------------------------------------------------------------------------
def _colophon():
    return {"git_commit": "abc", "data_mode": "synthetic", "data_dir": "/home/someone/exports",
            "disclosure": {"profile": "none"}, "parameters": {"raw_dir": "/x", "alpha": 0.05},
            "notebooks": {"05_imrs_agreement": {"tables_dir": "/x/tables", "alpha": 0.05}}}


def test_write_bundle_copies_the_tables_and_refuses_identifiers(committed, tmp_path):
    tables = _copy(committed["north"], tmp_path, "tables")
    manifest = bundle.write_bundle(tables, tmp_path / "bundle", department="north", colophon=_colophon(), alpha=0.05)
    written = bundle.read_bundle(manifest.parent)
    for t in bundle.TABLES:
        assert (written.folder / f"{t}.csv").read_bytes() == (tables / f"{t}.csv").read_bytes()
    assert json.loads((written.folder / "colophon.json").read_text()) == {
        "git_commit": "abc", "data_mode": "synthetic", "disclosure": {"profile": "none"},
        "parameters": {"alpha": 0.05}, "notebooks": {"05_imrs_agreement": {"alpha": 0.05}}}
    leak = pd.read_csv(tables / "table1_long.csv", dtype=str)
    leak.loc[0, "disclosure_note"] = "RSSMRA85T10A562S"  # a fiscal code with a valid check character
    leak.to_csv(tables / "table1_long.csv", index=False)
    with pytest.raises(bundle.BundleError, match="identifier scan found"):
        bundle.write_bundle(tables, tmp_path / "bundle", department="north", colophon=_colophon(), alpha=0.05)
    assert not (tmp_path / "bundle").exists()
    (tables / "table3_imrs_long.csv").unlink()
    with pytest.raises(bundle.BundleError, match="table3_imrs_long.csv missing"):
        bundle.write_bundle(tables, tmp_path / "bundle", department="north", colophon=_colophon(), alpha=0.05)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(bundle.BundleError, match="is not a bundle: not replaced"):
        bundle.write_bundle(committed["north"].folder, tmp_path / "other", department="north",
                            colophon=_colophon(), alpha=0.05)


def test_the_department_is_named_by_the_run_or_the_marker(tmp_path):
    d = DEPARTMENTS["north"]
    write_exports(tmp_path / "north", seed=d.seed, n_patients=d.n_patients, department=d)
    assert bundle.department_name(tmp_path / "north", "synthetic") == "north"
    assert bundle.department_name(tmp_path / "north", "synthetic", "Ferrara-2") == "Ferrara-2"
    assert bundle.department_name(paths.raw_dir(), "synthetic") == bundle.SHIPPED
    assert bundle.department_name(tmp_path, "private") == bundle.UNNAMED
    with pytest.raises(bundle.BundleError, match="department name 'a/b'"):
        bundle.department_name(tmp_path, "private", "a/b")
    form = tmp_path / "north" / C.RAW_FILES["form"]
    form.write_text(form.read_text().replace("department=north", "department=south", 1))
    with pytest.raises(bundle.BundleError, match="name different departments"):
        bundle.department_name(tmp_path / "north", "synthetic")


def test_summary_lists_each_bundle(committed):
    summary = bundle.summary(list(committed.values()))
    assert summary.set_index("department")["patients"].to_dict() == {
        name: d.n_patients for name, d in DEPARTMENTS.items()}
    assert np.all(summary["disclosure_profile"] == "none")


def test_doctests():
    assert doctest.testmod(bundle).failed == 0
