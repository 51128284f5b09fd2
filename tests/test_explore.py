"""The explorer (imr_workflow.explore): what it shows is what notebooks 02-05 compute for the same selection, through
the same disclosure profile; an empty selection says so; saving writes only under scratch/, with a colophon."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from imr_analysis import agreement, figure1, paths, publish, selection, table1, table2
from imr_analysis.cohort import load_cohort
from imr_workflow import explore
from imr_workflow.display import display_table

ROOT = Path(__file__).resolve().parents[1]
N_RESAMPLES = 200  # the explorer's calls and the notebooks' get the same number: equal outputs, a quicker test


@pytest.fixture(scope="module")
def cohort():
    return load_cohort()


@pytest.fixture(scope="module")
def run():
    return publish.setup("07_explore")


@pytest.fixture(scope="module")
def private_run():
    """The strictest handling of private data, asked for on the synthetic data."""
    return publish.setup("07_explore", disclosure_profile="opensafely")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def notebook_outputs(cohort, run, criteria, alpha=0.05, seed=0, n_resamples=N_RESAMPLES, max_missing=0):
    """Tables 1 and 2, the agreement rows and the Figure 1 form as notebooks 02-05 compute them for ``criteria``."""
    sel = selection.select(cohort, **criteria)
    data, services = sel.cohort, sel.services
    long1 = run.show(table1.table1_long(data, services=services), "table1", kind="long")
    tests1 = run.show(table1.table1_tests(data, services=services, alpha=alpha, seed=seed, n_resamples=n_resamples),
                      "table1_tests", kind="tests")
    long2 = run.show(table2.table2_long(data, services=services, all_units=False), "table2", kind="long")
    tests2 = run.show(table2.table2_tests(data, services=services, alpha=alpha, seed=seed, n_resamples=n_resamples),
                      "table2_tests", kind="tests")
    patient = run.show(agreement.patient_level_agreement(data, on="total", max_missing=max_missing, alpha=alpha),
                       "imrs_patient_level", counts=agreement.COUNT_MEASURES)
    return {"selection": sel, "table1": table1.format_table1(long1, tests1),
            "table2": table2.format_table2(long2, tests2), "agreement": patient.set_index("measure").loc[explore.AGREEMENT_MEASURES], "n": len(data)}


@pytest.mark.parametrize("criteria", [
    {},
    {"services": ["CMHC", "SerD"], "sex": ["F"]},
    {"diagnosis_groups": ["schizophrenia_spectrum", "bipolar"], "imr_start_from": "2018-01-01",
     "imr_start_to": "2019-12-31"},
    {"service_units": ["SerD Cento", "CMHC Ferrara"], "imr_formats": ["group"]},
], ids=["everyone", "women-cmhc-serd", "psychoses-2018-2019", "two-units-group"])
def test_the_slice_shows_what_the_notebooks_compute(cohort, run, criteria):
    view = explore.slice_view(cohort, run, criteria, n_resamples=N_RESAMPLES)
    expected = notebook_outputs(cohort, run, criteria)
    assert not view.empty and view.criteria == criteria
    pd.testing.assert_frame_equal(view.table1, expected["table1"])
    pd.testing.assert_frame_equal(view.table2, expected["table2"])
    rows = expected["agreement"]
    assert view.agreement["Measure"].tolist() == explore.AGREEMENT_MEASURES
    assert view.agreement["Estimate"].tolist() == [f"{v:.2f}" for v in rows["estimate"]]
    assert view.agreement["n"].tolist() == [str(n) for n in rows["n"]]
    assert view.agreement["p"].tolist() == [table1.format_p(p) for p in rows["p"]]
    n = expected["n"]
    assert f"Total (n={n})" in view.table1.columns
    assert view.heading == f"{expected['selection'].describe()}: {n} patients"
    assert view.figure1_stem == figure1.FIGURE1_STEM  # per patient: the shipped data are synthetic
    assert view.figure1.axes[0].get_title() == figure1.FIGURE1_TITLE.format(n=n)
    assert view.captions["table1"] == expected["selection"].caption(explore.TABLE_CAPTIONS["table1"])


def test_the_table1_header_follows_the_services(cohort, run):
    """Two service types: their columns and one comparison between them, no EDP column."""
    view = explore.slice_view(cohort, run, {"services": ["CMHC", "SerD"]}, n_resamples=N_RESAMPLES)
    sizes = cohort["service_type"].value_counts()
    assert list(view.table1.columns[2:5]) == [f"CMHC (n={sizes['CMHC']})", f"SerD (n={sizes['SerD']})",
                                              f"Total (n={sizes['CMHC'] + sizes['SerD']})"]
    assert not any(c.startswith("EDP") for c in view.table1.columns)


def test_under_a_profile_every_shown_value_passes_it(cohort, private_run):
    """The EDP alone (5 patients): sizes, cells and agreement redacted; Figure 1 in its aggregate form."""
    view = explore.slice_view(cohort, private_run, {"services": ["EDP"]}, n_resamples=N_RESAMPLES)
    expected = notebook_outputs(cohort, private_run, {"services": ["EDP"]})
    pd.testing.assert_frame_equal(view.table1, expected["table1"])
    pd.testing.assert_frame_equal(view.table2, expected["table2"])
    assert view.heading == "service type EDP: [REDACTED] patients (disclosure control: 1-7 patients)"
    assert not any("n=5" in c for c in view.table1.columns)
    assert set(view.agreement["Estimate"]) == {"[REDACTED]"} and set(view.agreement["n"]) == {"[REDACTED]"}
    assert view.figure1_stem == figure1.FIGURE1_AGGREGATE_STEM
    women = explore.slice_view(cohort, private_run, {"services": ["CMHC", "SerD"], "sex": ["F"]},
                               n_resamples=N_RESAMPLES)
    n = len(selection.select(cohort, services=["CMHC", "SerD"], sex=["F"]).cohort)
    assert women.size == publish.cohort_size_line(n, "opensafely", "patients")
    assert "rounded to the nearest 5" in women.size


def test_an_empty_selection_says_so(cohort, run):
    view = explore.slice_view(cohort, run, {"imr_start_from": "2030-01-01"})
    assert view.empty and view.table1 is None and view.figure1 is None
    assert view.heading == ("No patients to show: no patient in the selection (IMR start from 2030-01-01): "
                            "widen a filter.")
    with pytest.raises(ValueError, match="nothing to save"):
        explore.save_view(view, run)


def test_a_bad_value_is_an_error_naming_the_choices(cohort, run):
    with pytest.raises(ValueError, match=r"sex: unknown value\(s\) \['X'\]; choose from \['M', 'F'\]"):
        explore.slice_view(cohort, run, {"sex": ["X"]})
    with pytest.raises(ValueError, match=r"unknown filter\(s\) \['units'\]"):
        explore.criteria_of(units=["CMHC Cento"])


@pytest.fixture(scope="module")
def explorer(cohort, run):
    return explore.Explorer(cohort, run, n_resamples=N_RESAMPLES)


def test_the_explorer_redraws_when_a_control_changes(explorer, cohort, run):
    assert explorer.criteria() == {} and explorer.view.heading == f"all patients: {len(cohort)} patients"
    explorer.boxes["services"]["EDP"].value = False
    try:
        expected = explore.slice_view(cohort, run, {"services": ["CMHC", "SerD"]}, n_resamples=N_RESAMPLES)
        assert explorer.criteria() == {"services": ["CMHC", "SerD"]}
        pd.testing.assert_frame_equal(explorer.view.table1, expected.table1)
        for title, name in (("Table 1", "table1"), ("Table 2", "table2"), ("Agreement", "agreement")):
            assert explorer.outputs[title].value == display_table(
                getattr(expected, name), expected.captions[name], expected.notes[name]).html
        assert bytes(explorer.outputs["Figure 1"].value).startswith(b"\x89PNG")
        assert expected.heading in explorer.heading.value
    finally:
        explorer.boxes["services"]["EDP"].value = True


def test_the_period_control_sets_whole_months(explorer, cohort):
    first, last = 12, 23  # the 13th to the 24th month of the IMR starts
    explorer.period.index = (first, last)
    try:
        start, end = explorer.months[first][1], explorer.months[last][1]
        criteria = explorer.criteria()
        assert criteria == {"imr_start_from": f"{start.start_time:%Y-%m-%d}",
                            "imr_start_to": f"{end.end_time:%Y-%m-%d}"}
        kept = cohort["imr_start"].between(start.start_time, end.end_time.normalize())
        assert f"Total (n={int(kept.sum())})" in explorer.view.table1.columns
    finally:
        explorer.period.index = (0, len(explorer.months) - 1)


def test_nothing_ticked_shows_a_message_instead_of_tables(explorer):
    for box in explorer.boxes["sex"].values():
        box.value = False
    try:
        assert explorer.view.empty
        assert explorer.view.heading == "No patients to show: no sex is ticked."
        assert explorer.tabs.layout.display == "none" and explorer.save_button.disabled
    finally:
        for box in explorer.boxes["sex"].values():
            box.value = True
    assert not explorer.view.empty and explorer.tabs.layout.display is None


def test_the_start_values_come_from_the_notebook_parameters(cohort, run):
    start = explore.Explorer(cohort, run, n_resamples=N_RESAMPLES, services=["CMHC", "SerD", "EDP"], sex=["F"],
                             service_units=[], imr_start_from="2018-03-15", imr_start_to="")
    assert start.criteria() == {"sex": ["F"], "imr_start_from": "2018-03-01"}  # whole months
    assert [v for v, box in start.boxes["services"].items() if box.value] == ["CMHC", "SerD", "EDP"]
    with pytest.raises(ValueError, match="diagnosis_groups: unknown value"):
        explore.Explorer(cohort, run, diagnosis_groups=["psychosis"])


def _tracked_changes() -> str:
    return subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True,
                          text=True).stdout


def test_the_save_button_writes_only_into_scratch_with_a_colophon(cohort, run, tmp_path, monkeypatch):
    before = _tracked_changes()
    monkeypatch.setenv("IMR_PROJECT_ROOT", str(tmp_path))  # scratch/ of a stand-in compendium
    sheet = explore.Explorer(cohort, run, n_resamples=N_RESAMPLES, services=["CMHC", "SerD"], sex=["F"])
    sheet.save_button.click()
    folder = tmp_path / "scratch" / "explore" / explore.selection_slug({"services": ["CMHC", "SerD"], "sex": ["F"]})
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert written and all(p.startswith(f"scratch/explore/{folder.name}/") for p in written)
    names = {Path(p).name for p in written}
    assert {"table1.csv", "table1.md", "table1.html", "table2.csv", "agreement.csv", "colophon.json", "README.md",
            "figure1_modules_per_patient.png", "figure1_modules_per_patient.svg"} <= names
    facts = json.loads((folder / "colophon.json").read_text())
    assert facts["selection"]["description"] == "service type CMHC or SerD; sex F"
    assert facts["selection"]["filters"] == {"services": ["CMHC", "SerD"], "sex": ["F"]}
    assert facts["parameters"]["n_resamples"] == N_RESAMPLES and facts["disclosure"]["profile"] == "none"
    readme = (folder / "README.md").read_text()
    assert readme.startswith("# Selection: service type CMHC or SerD; sex F") and "## Colophon" in readme
    assert "The explorer's settings and the selection's filters:" in readme and "n_resamples = 200" in readme
    assert "table1.html" in sheet.saved.value or folder.name in sheet.saved.value
    shown = pd.read_csv(folder / "table1.csv", dtype=str, keep_default_na=False)
    assert shown.columns.tolist() == sheet.view.table1.columns.tolist()
    assert _tracked_changes() == before


def test_saving_into_the_committed_record_is_refused(cohort, run):
    view = explore.slice_view(cohort, run, {"services": ["SerD"]}, n_resamples=N_RESAMPLES)
    for folder in (paths.tables_dir(), paths.figures_dir() / "mine", paths.processed_dir()):
        with pytest.raises(ValueError, match="committed record is written only by the runner"):
            explore.save_view(view, run, folder)


def test_the_widget_shows_a_plain_text_without_a_kernel(explorer):
    bundle = explorer._repr_mimebundle_()
    assert bundle["text/plain"].startswith("Cohort explorer:")
    assert "application/vnd.jupyter.widget-view+json" in bundle


def test_doctests():
    import doctest

    result = doctest.testmod(explore)
    assert result.attempted > 0 and result.failed == 0
