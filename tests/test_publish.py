"""A notebook's run (publish.setup, Run.publish), counts printed outside the published tables
(imr_analysis.publish), and the reproduction audit on private data (reproduce.public_check)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from imr_analysis import disclosure, paths, publish, reproduce, stats
from imr_analysis.disclosure import REDACTED_MARKER as R


def _private_run(tmp_path, **kwargs):
    """A run on private data (an empty exports folder) writing under ``tmp_path``."""
    (tmp_path / "raw").mkdir(exist_ok=True)
    return publish.setup("02_demo", raw_dir=tmp_path / "raw", tables_dir=tmp_path / "tables",
                         figures_dir=tmp_path / "figures", **kwargs)


def test_setup_resolves_folders_mode_profile_and_display(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # relative folders are taken from the compendium's root, not the cwd
    monkeypatch.setenv(paths.OUTPUT_ENV, "record")  # as in the runner's kernels
    run = publish.setup("02_demo", tables_dir="tables", figures_dir="")
    assert (run.notebook, run.data_mode, run.profile.name) == ("02_demo", "synthetic", "none")
    assert (run.raw, run.processed, run.tables, run.figures) == \
        (paths.raw_dir(), paths.processed_dir(), paths.project_root() / "tables", paths.figures_dir())
    assert run.policy == disclosure.figure_policy("none") and run.reports == [] and run.read_tables is None
    assert pd.get_option("display.precision") == 6  # pandas' display options are left alone (display_table shows)
    assert plt.rcParams["svg.hashsalt"] == "imr-compendium"
    assert capsys.readouterr().out.splitlines() == [
        "outputs: the folders given as parameters; the others: " + paths.RECORD_LINE.removeprefix("outputs: "),
        "cohort: data/processed/cohort.parquet", "data: synthetic",
        f"disclosure control: {disclosure.resolve_profile('auto', 'synthetic').describe()}"]
    private = _private_run(tmp_path)
    assert (private.data_mode, private.profile.name, private.policy["figure1"]) == \
        ("private", "opensafely", "aggregate")
    assert private.tables == tmp_path / "tables"
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "outputs: the folders given as parameters" and lines[1].startswith("cohort: ")
    assert lines[2:] == ["data: private", "disclosure control: " + private.profile.describe()]
    with pytest.raises(disclosure.DisclosureError, match="weaker than 'opensafely'"):
        _private_run(tmp_path, disclosure_profile="none")
    assert _private_run(tmp_path, disclosure_profile="none", allow_weaker_profile=True).profile.weaker_than_default


def test_publish_redacts_writes_numbers_and_reports(tmp_path, capsys):
    run = _private_run(tmp_path)
    long = pd.DataFrame({"group": ["A", "B", "Total"], "n": [3, 20, 23]})
    shown = run.publish(long, "demo", formats=["csv", "md"], caption="Demo table", stem="demo_long")
    assert shown["n"].tolist() == [R, 20, 25] and "redacted" not in shown.columns  # display: marked
    csv = pd.read_csv(tmp_path / "tables" / "demo_long.csv", dtype=str, keep_default_na=False)
    assert csv["n"].tolist() == ["", "20", "25"] and csv["redacted"].tolist() == ["True", "False", "False"]
    md = (tmp_path / "tables" / "demo_long.md").read_text(encoding="utf-8")
    assert md.startswith("**Demo table**") and R in md
    assert capsys.readouterr().out.splitlines()[-2:] == ["wrote <outside the compendium>/demo_long.csv",
                                                         "wrote <outside the compendium>/demo_long.md"]
    # a table of statistics: its count rows (``counts``) are rounded as counts
    agreement = pd.DataFrame({"service_type": ["CMHC", "EDP", "CMHC"], "measure": ["r", "r", "excluded"],
                              "estimate": [0.8, 0.9, 12.0], "n": [69, 5, 12]})
    shown = run.publish(agreement, "demo_stats", kind="statistics", counts=["excluded"])
    assert shown["estimate"].tolist() == [0.8, R, 10.0] and shown["n"].tolist() == [70, R, 10]
    csv = pd.read_csv(tmp_path / "tables" / "demo_stats.csv")
    assert csv["estimate"].isna().tolist() == [False, True, False] and csv["redacted"].tolist() == [False, True, False]
    assert run.show(agreement, "shown_only", kind="statistics")["estimate"].tolist()[2] == 12.0  # not a count here
    assert not (tmp_path / "tables" / "shown_only.csv").exists()
    tests = pd.DataFrame({"variable": ["sex"], "test": ["Fisher"], "p_value": [0.2], "n_total": [23]})
    assert list(run.publish(tests, "demo_tests", kind="tests", formats=[])) == \
        [c for c in stats.PUBLIC_RESULT_COLUMNS if c in tests]
    with pytest.raises(ValueError, match="unknown kind 'wide'"):
        run.publish(long, "demo", kind="wide")
    # the report: what was done to the written outputs only
    summary = run.write_disclosure_report()
    assert set(summary.index.get_level_values("output")) == {"demo", "demo_stats"}
    folder = tmp_path / "tables" / "disclosure" / "02_demo"
    report = pd.read_csv(folder / "disclosure_report.csv")
    assert report.loc[report["action"] == "redacted", "row_key"].tolist()[0] == "group=A"
    expected = pd.concat([disclosure.apply_to_long(long, "opensafely", "demo")[1], disclosure.apply_to_statistics(
        agreement, "opensafely", "demo_stats", ["excluded"])[1]], ignore_index=True).astype(object)
    back = pd.read_csv(folder / "disclosure_report.csv", dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(back, expected, check_dtype=False)
    md = (folder / "disclosure_report.md").read_text(encoding="utf-8")
    assert f"Profile: {run.profile.describe()}" in md and "| demo_stats " in md


def test_publish_under_profile_none_and_figures(tmp_path):
    run = publish.setup("04_demo", tables_dir=tmp_path / "tables", figures_dir=tmp_path / "figures")
    long = pd.DataFrame({"group": ["A", "B", "Total"], "n": [3, 20, 23]})
    assert run.publish(long, "demo")["n"].tolist() == [3, 20, 23]
    assert pd.read_csv(tmp_path / "tables" / "demo.csv")["redacted"].tolist() == [False] * 3
    stats_table = pd.DataFrame({"measure": ["r"], "estimate": [0.9], "n": [5]})
    pd.testing.assert_frame_equal(run.publish(stats_table, "s", kind="statistics"), stats_table)
    assert list(pd.read_csv(tmp_path / "tables" / "s.csv")) == ["measure", "estimate", "n"]
    fig = plt.figure()
    written = run.save_figure(fig, "demo_figure", formats=["svg"])
    plt.close(fig)
    assert written == [tmp_path / "figures" / "demo_figure.svg"] and written[0].stat().st_size > 0
    run.write_disclosure_report()
    assert "No disclosure-control actions" in (tmp_path / "tables" / "disclosure" / "04_demo"
                                               / "disclosure_report.md").read_text(encoding="utf-8")


def test_protect_counts_follows_each_profile():
    flow = pd.DataFrame({"reason": list("abcdefg"), "records": [0, 1, 7, 8, 12, 13, 126]})
    shown = {name: publish.protect_counts(flow, name, ["records"])["records"].tolist()
             for name in ("none", "opensafely", "opensafely_midpoint6", "sistan_min3")}
    assert shown["none"] == [0, 1, 7, 8, 12, 13, 126]
    assert shown["opensafely"] == [0, R, R, 10, 10, 15, 125]
    assert shown["opensafely_midpoint6"] == [0, R, R, 9, 9, 15, 123]
    assert shown["sistan_min3"] == [0, R, 7, 8, 12, 13, 126]


def test_protect_counts_withholds_columns_only_under_a_profile():
    overview = pd.DataFrame({"column": ["patient_id", "sex"], "missing": [0, 2], "distinct": [126, 2]})
    assert list(publish.protect_counts(overview, "none", ["missing"], withhold=["distinct"])) == \
        ["column", "missing", "distinct"]
    safe = publish.protect_counts(overview, "opensafely", ["missing"], withhold=["distinct"])
    assert list(safe) == ["column", "missing"] and safe["missing"].tolist() == [0, R]
    assert overview["missing"].tolist() == [0, 2]  # the input is not changed


def test_cohort_size_line():
    assert publish.cohort_size_line(40, "none") == "40 patients in the cohort"
    assert publish.cohort_size_line(42, "opensafely").startswith("40 patients in the cohort (rounded")
    assert publish.cohort_size_line(2, "sistan_min3").startswith("[REDACTED] patients")
    assert publish.cohort_size_line(42, "sistan_min3") == "42 patients in the cohort"


def test_warnings_are_kept_with_the_data_on_private_runs(tmp_path):
    warnings = ["imr_summary_form.csv line 7: code EF0012 matches EF00012 but for leading zeros",
                "efeso_extract.csv: 3 blank rows skipped (lines 4, 9, 12)"]
    lines = publish.warnings_for_display(warnings, "opensafely", tmp_path)
    assert lines == [lines[0]] and lines[0].startswith("2 warning(s) about the exports")
    assert "EF0012" not in lines[0] and "3 blank" not in lines[0]
    assert (tmp_path / "cleaning_warnings.txt").read_text(encoding="utf-8").splitlines() == warnings
    assert publish.warnings_for_display(warnings, "none", tmp_path) == [f"warning: {w}" for w in warnings]
    assert publish.warnings_for_display([], "opensafely", tmp_path / "x") == ["no warnings about the exports"]


def test_reproduction_audit_withholds_recomputed_values_on_private_data():
    check = pd.DataFrame({
        "id": ["n_edp", "serd_pct", "lit"], "kind": ["count", "percent", "text"],
        "published": [5.0, 41.2, float("nan")], "recomputed": [5.0, 41.3, float("nan")],
        "recomputed_printed": ["5", "41.3", ""], "status": ["match", "paper-inconsistent", "not-recomputable"],
        "reason": ["", "52/126 is 41.3%", ""]})
    assert reproduce.public_check(check, "none").equals(check)
    safe = reproduce.public_check(check, "opensafely")
    assert safe["recomputed"].isna().all() and (safe["recomputed_printed"] == R).all()
    assert safe["status"].tolist() == [reproduce.WITHHELD, "paper-inconsistent", "not-recomputable"]
    assert safe["reason"].tolist() == ["", "52/126 is 41.3%", ""]
    assert reproduce.summary_line(safe) == \
        "1 comparisons withheld (private data), 1 paper-inconsistent, 1 not recomputable"


def test_doctests():
    import doctest

    result = doctest.testmod(publish, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 5


def test_html_tables_do_not_depend_on_the_display_precision(tmp_path):
    from imr_analysis import export

    table = pd.DataFrame({"measure": ["ICC", "bias"], "estimate": [0.92501234, 18.4812], "text": [0.5, "a"]})
    with pd.option_context("display.precision", 2):
        low = export.export_table(table, tmp_path / "low", "t", ["html"])[0].read_text(encoding="utf-8")
    with pd.option_context("display.precision", 6):
        high = export.export_table(table, tmp_path / "high", "t", ["html"])[0].read_text(encoding="utf-8")
    assert low == high and "<td>0.9250</td>" in low and "<td>18.4812</td>" in low


def test_latex_tables_do_not_depend_on_the_styler_precision(tmp_path):
    from imr_analysis import export

    table = pd.DataFrame({"measure": ["ICC", "bias"], "estimate": [0.92501234, 18.4812], "text": [0.5, "a"]})
    with pd.option_context("styler.format.precision", 2):
        low = export.export_table(table, tmp_path / "low", "t", ["tex"])[0].read_text(encoding="utf-8")
    with pd.option_context("styler.format.precision", 3):
        high = export.export_table(table, tmp_path / "high", "t", ["tex"])[0].read_text(encoding="utf-8")
    assert low == high and "ICC & 0.925012 & 0.500000" in low and "bias & 18.481200 & a" in low


def test_notes_follow_the_table_in_every_format_and_the_csv_sidecar(tmp_path):
    import json

    from imr_analysis import export

    table = pd.DataFrame({"group": ["A", "B"], "p": ["<0.001", "0.046"]})
    notes = ["Tests: χ²: Pearson chi-square; KW: Kruskal-Wallis H.", "50% of the_group & {x} <b>."]
    paths_ = export.export_table(table, tmp_path / "a", "t", caption="Demo", notes=notes)
    assert [p.name for p in paths_] == ["t.csv", "t.csv-metadata.json", "t.md", "t.tex", "t.html"]
    text = {p.name: p.read_text(encoding="utf-8") for p in paths_}
    assert text["t.csv"] == "group,p\nA,<0.001\nB,0.046\n"  # the CSV stays a plain table
    assert json.loads(text["t.csv-metadata.json"]) == {"@context": "http://www.w3.org/ns/csvw", "url": "t.csv",
                                                        "dc:title": "Demo", "dc:description": notes}
    assert text["t.md"].endswith("| B       | 0.046  |\n\n" + notes[0] + "\n\n" + notes[1] + "\n")
    assert text["t.tex"].endswith("\\end{tabular}\n\\par{\\footnotesize " + notes[0] + "\n"
                                  "50\\% of the\\_group \\& \\{x\\} <b>.\\par}\n\\end{table}\n")
    assert text["t.html"].endswith("</table>\n<p class=\"notes\">" + notes[0] + "</p>\n"
                                   "<p class=\"notes\">50% of the_group &amp; {x} &lt;b&gt;.</p>\n</body>\n</html>\n")
    again = export.export_table(table, tmp_path / "b", "t", caption="Demo", notes=notes)
    assert [p.read_bytes() for p in again] == [p.read_bytes() for p in paths_]  # byte-stable
    plain = export.export_table(table, tmp_path / "c", "t", ["csv", "tex"])  # no notes: no sidecar, no block
    assert [p.name for p in plain] == ["t.csv", "t.tex"] and "footnotesize" not in plain[1].read_text()


def test_publish_writes_the_notes_with_every_format(tmp_path):
    run = _private_run(tmp_path)
    notes = ["Missing: all the patients of the group are the denominator."]
    run.publish(pd.DataFrame({"group": ["A"], "n": [20]}), "demo", formats=["csv", "md", "tex", "html"],
                caption="Demo", notes=notes)
    for suffix in ("csv-metadata.json", "md", "tex", "html"):
        assert notes[0] in (tmp_path / "tables" / f"demo.{suffix}").read_text(encoding="utf-8"), suffix


def test_select_slices_the_record_cohort_and_says_what_it_kept(tmp_path, capsys):
    """Notebooks 02-05 slice the cohort with ``run.select``: the cohort of ``processed`` through
    ``selection.select``, its description, size (as the profile shows it) and notes printed."""
    from imr_analysis.cohort import load_cohort

    run = publish.setup("02_demo", processed_dir="data/processed", tables_dir=tmp_path / "tables")
    capsys.readouterr()
    sel = run.select(services=["SerD", "EDP"], sex="F")
    expected = load_cohort("data/processed").query("service_type in ['SerD', 'EDP'] and sex == 'F'")
    assert sorted(sel.cohort["patient_id"]) == sorted(expected["patient_id"]) and len(expected) > 0
    assert capsys.readouterr().out == (f"selection: {sel.describe()}\n{len(expected)} patients in the selection\n"
                                       + "".join(f"{note}\n" for note in sel.notes))
    private = publish.setup("02_demo", processed_dir="data/processed", tables_dir=tmp_path / "tables",
                            disclosure_profile="opensafely")
    capsys.readouterr()
    private.select(services=["EDP"], sex="F")
    assert "[REDACTED] patients in the selection (disclosure control: 1-7 patients)" in capsys.readouterr().out


def test_figure1_follows_the_policy_and_the_bar_limit(tmp_path, monkeypatch):
    from imr_analysis import figure1
    from imr_analysis.cohort import load_cohort

    cohort = load_cohort("data/processed")
    run = publish.setup("04_demo", tables_dir=tmp_path / "tables", figures_dir=tmp_path / "figures")
    fig, stem = run.figure1(cohort, ["CMHC", "SerD", "EDP"])
    assert stem == figure1.FIGURE1_STEM and len(fig.axes[0].patches) == cohort["n_modules"].sum()
    monkeypatch.setattr(figure1, "MAX_PATIENTS", 100)  # more patients than bars allowed: the aggregate form
    fig, stem = run.figure1(cohort, ["CMHC", "SerD", "EDP"], record=False)
    assert stem == figure1.FIGURE1_AGGREGATE_STEM and not run.reports
    assert "More than 100 patients" in " ".join(t.get_text() for t in fig.texts)
    private = _private_run(tmp_path)  # no microdata: aggregate, reported
    fig, stem = private.figure1(cohort, ["CMHC", "SerD", "EDP"])
    assert stem == figure1.FIGURE1_AGGREGATE_STEM and len(private.reports) == 1
    plt.close("all")
