"""The replication comparison (imr_analysis.replicate) and the one-page summary (imr_workflow.summary).

- the audit mode comes from the exports' first line;
- every interval is checked against published known answers (Newcombe 1998; R's ``t.test``) or an independent
  computation (a closed formula here, or scipy on the raw values);
- the flag and the not-computable rows on constructed inputs;
- a department other than the shipped cohort (another seed and size, a department marker) run end to end: the
  estimates are the department's own values, nothing speaks of a mismatch, and the summary is written;
- a forced replication of the shipped tables: every published figure inside the department's interval.
"""

from __future__ import annotations

import io
import math
import re
import shutil

import nbformat
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from imr_analysis import constants as C
from imr_analysis import paths, replicate, reproduce
from imr_analysis.published import load_published
from imr_synth.generator import write_exports
from imr_workflow import summary
from imr_workflow.runner import run_notebooks

from conftest import audit_outputs
from test_reproduce import tiny_cohort

Z = stats.norm.ppf(0.975)


def _exports(folder, seed, n_patients, department=None, marker=True):
    """Synthetic exports; the marker names ``department``, or is removed (private data)."""
    for path in write_exports(folder, seed=seed, n_patients=n_patients):
        first, rest = path.read_text(encoding="utf-8").split("\n", 1)
        if department:
            first = first.replace(f"n_patients={n_patients})", f"n_patients={n_patients}, department={department})")
        path.write_text((first + "\n" if marker else "") + rest, encoding="utf-8")
    return folder


def _wilson(x, n):
    p, d = x / n, 1 + Z**2 / n
    half = Z * math.sqrt(p * (1 - p) / n + Z**2 / (4 * n**2)) / d
    return (p + Z**2 / (2 * n)) / d - half, (p + Z**2 / (2 * n)) / d + half


def _fisher(r, n):
    return math.tanh(math.atanh(r) - Z / math.sqrt(n - 3)), math.tanh(math.atanh(r) + Z / math.sqrt(n - 3))


def test_doctests():
    import doctest

    for module in (replicate, summary):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0 and result.attempted > 0, module.__name__


# -- the audit mode ----------------------------------------------------------------------------
def test_audit_mode_from_the_exports(tmp_path):
    assert replicate.audit_mode(paths.raw_dir()) == (
        "reproduction", "the compendium's synthetic reproduction of the published cohort")
    dept = _exports(tmp_path / "dept", 3, 30, department="Ravenna Sud")
    assert replicate.audit_mode(dept) == ("replication", "synthetic exports of another department (Ravenna Sud)")
    assert replicate.audit_mode(_exports(tmp_path / "priv", 3, 30, marker=False))[0] == "replication"
    assert replicate.audit_mode(_exports(tmp_path / "other_seed", 3, 30))[0] == "reproduction"  # no department
    assert replicate.audit_mode(dept, "reproduction") == ("reproduction", "chosen by the parameter audit = "
                                                                          "'reproduction'")
    with pytest.raises(ValueError, match=r"'auto', 'reproduction', 'replication', not 'replicate'"):
        replicate.audit_mode(dept, "replicate")


# -- each interval against a known answer or an independent computation ------------------------------
def test_difference_of_percentages_is_newcombes_hybrid_score_interval():
    """Newcombe (1998), Stat Med 17:873, table II, method 10: 56/70 - 48/80 and 9/10 - 3/10; Wilson: 81/263."""
    outputs = {"table1_long": pd.DataFrame({"variable": ["sex"], "level": ["M"], "group": ["Total"],
                                            "n": [56], "denominator": [70], "percent": [80.0]})}
    pub = load_published().query("id == 'res_men_pct'").assign(value=60.0, n=80.0)
    got = replicate.compare(outputs, pub).iloc[0]
    assert (got["difference_ci_low"], got["difference_ci_high"]) == pytest.approx((5.24, 33.39), abs=0.005)
    assert (got["ci_low"], got["ci_high"]) == pytest.approx(np.array(_wilson(56, 70)) * 100)
    outputs["table1_long"] = outputs["table1_long"].assign(n=9, denominator=10, percent=90.0)
    got = replicate.compare(outputs, pub.assign(value=30.0, n=10.0)).iloc[0]
    assert (got["difference_ci_low"], got["difference_ci_high"]) == pytest.approx((17.05, 80.90), abs=0.005)
    outputs["table1_long"] = outputs["table1_long"].assign(n=81, denominator=263, percent=100 * 81 / 263)
    got = replicate.compare(outputs, pub).iloc[0]
    assert (got["ci_low"], got["ci_high"]) == pytest.approx((25.53, 36.62), abs=0.005)


def test_newcombe_interval_is_the_hybrid_of_the_two_wilson_intervals():
    """The same interval by its definition (Newcombe's method 10), with the Wilson limits by their formula."""
    cohort = audit_outputs(tiny_cohort(), n_resamples=100)
    got = replicate.compare(cohort).set_index("id").loc["res_men_pct"]  # 3 men of 6, the paper 61.1% of 126
    (l1, u1), (l2, u2) = _wilson(3, 6), _wilson(0.611 * 126, 126)
    d = 0.5 - 0.611
    assert got["difference"] == pytest.approx(100 * d)
    assert got["difference_ci_low"] == pytest.approx(100 * (d - math.hypot(0.5 - l1, u2 - 0.611)))
    assert got["difference_ci_high"] == pytest.approx(100 * (d + math.hypot(u1 - 0.5, 0.611 - l2)))


def test_welch_interval_equals_r_t_test_on_the_sleep_data():
    """R: t.test(extra ~ group, data = sleep): mean difference -1.58, 95% CI -3.3654832 to 0.2054832."""
    a = np.array([0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0])
    b = np.array([1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4])
    got = replicate.welch_interval(a.mean(), a.std(ddof=1), a.size, b.mean(), b.std(ddof=1), b.size)
    assert got == pytest.approx((-3.3654832, 0.2054832), abs=1e-7)
    rng = np.random.default_rng(1)
    x, y = rng.normal(50, 8, 126), rng.normal(53, 12, 40)
    want = stats.ttest_ind(x, y, equal_var=False).confidence_interval()
    got = replicate.welch_interval(x.mean(), x.std(ddof=1), 126, y.mean(), y.std(ddof=1), 40)
    assert got == pytest.approx((want.low, want.high))


def test_mean_interval_is_the_one_sample_t_interval_and_the_difference_welchs():
    outputs = audit_outputs(tiny_cohort(), n_resamples=100)
    ages = tiny_cohort()["age_at_imr_start"].to_numpy(float)
    got = replicate.compare(outputs).set_index("id").loc["res_age_mean"]
    want = stats.ttest_1samp(ages, 0).confidence_interval()
    assert (got["estimate"], got["sd"], got["n"]) == pytest.approx((ages.mean(), ages.std(ddof=1), 6))
    assert (got["ci_low"], got["ci_high"]) == pytest.approx((want.low, want.high))
    assert (got["published"], got["published_sd"], got["published_n"]) == (40.14, 12.92, 126)
    v1, v2 = ages.var(ddof=1) / 6, 12.92**2 / 126  # Welch-Satterthwaite, by the formula
    df = (v1 + v2) ** 2 / (v1**2 / 5 + v2**2 / 125)
    half = stats.t.ppf(0.975, df) * math.sqrt(v1 + v2)
    assert (got["difference_ci_low"], got["difference_ci_high"]) == pytest.approx(
        (ages.mean() - 40.14 - half, ages.mean() - 40.14 + half))


def test_r_interval_is_fisher_z_and_the_difference_zous():
    cohort = tiny_cohort()
    u, p = (cohort[cols].astype(float).mean().to_numpy() for cols in (C.IMRS_USER_COLUMNS, C.IMRS_PROVIDER_COLUMNS))
    got = replicate.compare(audit_outputs(cohort, n_resamples=100)).set_index("id").loc["res_imrs_r"]
    ci = stats.pearsonr(u, p).confidence_interval()
    r = np.corrcoef(u, p)[0, 1]
    assert (got["estimate"], got["n"]) == pytest.approx((r, 15))
    assert (got["ci_low"], got["ci_high"]) == pytest.approx((ci.low, ci.high))
    assert (got["ci_low"], got["ci_high"]) == pytest.approx(_fisher(r, 15))
    (l1, u1), (l2, u2) = _fisher(r, 15), _fisher(0.96, 15)  # Zou (2007), eq. 12, by the formula
    assert got["difference_ci_low"] == pytest.approx(r - 0.96 - math.sqrt((r - l1) ** 2 + (u2 - 0.96) ** 2))
    assert got["difference_ci_high"] == pytest.approx(r - 0.96 + math.sqrt((u1 - r) ** 2 + (0.96 - l2) ** 2))
    # a published r known exactly (n huge): the difference's interval is the department's, shifted
    _, diff = replicate.zou_interval(0.5, 40, 0.3, 10**12)
    assert diff == pytest.approx(np.array(_fisher(0.5, 40)) - 0.3, abs=1e-5)
    assert replicate.zou_interval(0.3, 50, 0.5, 40)[1] == pytest.approx(-np.array(
        replicate.zou_interval(0.5, 40, 0.3, 50)[1])[::-1])


# -- the flag and what cannot be computed -----------------------------------------------------
def test_flag_marks_a_published_value_outside_the_departments_interval():
    outputs = audit_outputs(tiny_cohort(), n_resamples=100)  # 3 men of 6: 50%, Wilson 18.8% to 81.2%
    pub = load_published().query("id == 'res_men_pct'")
    low, high = replicate.compare(outputs, pub).iloc[0][["ci_low", "ci_high"]]
    assert (low, high) == pytest.approx(np.array(_wilson(3, 6)) * 100)
    flags = [replicate.compare(outputs, pub.assign(value=v))["published_outside_ci"].iloc[0]
             for v in (50.0, low, high, low - 0.01, high + 0.01, 5.0, 99.0)]
    assert flags == [False, False, False, True, True, True, True]
    mean = load_published().query("id in ['res_age_mean', 'res_age_sd']")
    got = replicate.compare(outputs, mean.assign(value=np.where(mean["kind"] == "mean", 90.0, 12.92))).iloc[0]
    assert got["published_outside_ci"] and got["difference_ci_high"] < 0  # 33 years against 90


def test_withheld_and_absent_inputs_are_not_computable_with_the_reason():
    outputs = audit_outputs(tiny_cohort(), n_resamples=100)
    t1 = outputs["table1_long"].astype({"n": object})
    t1.loc[(t1["variable"] == "sex") & (t1["level"] == "M") & (t1["group"] == "Total"), "n"] = "[REDACTED]"
    t2 = outputs["table2_long"]
    outputs |= {"table1_long": t1, "table2_long": t2[t2["service_type"] != "SerD"]}  # and no addiction service
    got = replicate.compare(outputs).set_index("id")
    assert got.loc["res_men_pct", "note"] == "not computable: n withheld or absent in the department's table1_long"
    assert got.loc["res_m6_serd_pct", "note"].startswith("not computable: not in the department's tables: "
                                                         "table2_long: 0 row(s) match")
    missing = {"res_men_pct", "res_serd_pct", "res_m6_serd_pct"}
    assert set(got.index[got["note"] != ""]) == missing
    assert got.loc[list(missing), "published_outside_ci"].isna().all()
    assert got.loc[list(missing), ["estimate", "ci_low", "difference"]].isna().all().all()
    flagged = int(got["published_outside_ci"].sum())  # six patients are not the paper's cohort
    assert replicate.summary_line(got, replicate.context(outputs)) == (
        f"24 published figures compared: {flagged} outside the department's 95% CI, 3 not computable; "
        "89 listed as context, not tested")


def test_every_published_figure_is_compared_or_listed_as_context_once():
    outputs = reproduce.read_outputs()
    comparison, context = replicate.compare(outputs), replicate.context(outputs)
    pub = load_published()
    assert sorted([*comparison["id"], *context["id"]]) == sorted(pub["id"])
    assert set(comparison["kind"]) == {"percent", "mean", "r"} and comparison["published_n"].notna().all()
    assert {"res_men_pct", "res_age_mean", "abs_group_pct"} <= set(comparison["id"])  # once, the Results' first
    assert not {"abs_men_pct", "abs_age_mean"} & set(comparison["id"])
    why = context.set_index("id")["why_not_tested"]
    assert why["res_age_sd"].startswith("the SD of res_age_mean") and why["abs_men_pct"].startswith("the same")
    assert why["res_ten_units"].startswith("the setting") and why["res_sessions_max"].startswith("an extreme")
    assert why["methods_catchment"] == "Setting, not a property of the cohort."


def test_on_the_shipped_tables_every_published_figure_lies_inside_the_interval():
    """The shipped cohort reproduces the paper: forced into replication, no figure is flagged, the differences
    are the rounding of the printed figures (and the two paper-inconsistent percentages)."""
    got = replicate.compare(reproduce.read_outputs()).set_index("id")
    assert not got["published_outside_ci"].any() and got["note"].eq("").all()
    consistent = got[got["verdict"] == "consistent"]
    assert (consistent["difference"].abs() <= 0.5 * 10.0 ** -consistent["decimals"] + 0.003).all()
    assert got.loc["res_m6_pct", "difference"] == pytest.approx(100 * 54 / 126 - 39.7)


# -- a department run end to end -----------------------------------------------------------------
@pytest.fixture(scope="module")
def department(tmp_path_factory):
    raw = _exports(tmp_path_factory.mktemp("exports"), seed=11, n_patients=150, department="Ravenna")
    out = tmp_path_factory.mktemp("department")
    result = run_notebooks(data_dir=raw, output_dir=out, html=True, stream=io.StringIO())
    return out, result


def test_a_department_run_writes_the_comparison_not_the_reproduction_check(department):
    out, result = department
    assert result.data_mode == "synthetic"  # profile none: the department's exact values
    written = {p.name for p in (out / "tables").iterdir()}
    assert {"replication_comparison.csv", "replication_comparison.md", "replication_comparison.csv-metadata.json",
            "replication_context.csv", "replication_context.md"} <= written
    assert "reproduction_check.csv" not in written
    nb = nbformat.read(out / "reports" / "06_reproduction_report.ipynb", as_version=4)
    first = next(o for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert first["text"].startswith("outputs: the folders given as parameters\n")  # the run's own folders
    assert first["text"].endswith("\naudit: replication (synthetic exports of another department (Ravenna))\n")
    shown = "\n".join(str(o.get("text", "")) + str(o.get("data", {})) for c in nb.cells if c.cell_type == "code"
                      for o in c.outputs)
    files = "\n".join(p.read_text(encoding="utf-8") for p in (out / "tables").glob("replication_*"))
    assert "mismatch" not in shown.lower() and "mismatch" not in files.lower()
    assert "24 published figures compared" in shown


def test_the_estimates_are_the_departments_own_values(department):
    out, _ = department
    cohort = pd.read_parquet(out / "data" / "processed" / "cohort.parquet")
    got = pd.read_csv(out / "tables" / "replication_comparison.csv").set_index("id")
    own = reproduce.read_metrics(reproduce.read_outputs(out / "tables"))
    metric = load_published().set_index("id")["metric"]
    for i, row in got.iterrows():
        assert row["estimate"] == pytest.approx(own[metric[i]], rel=1e-8), i
    assert len(cohort) != 126 and got["n"].max() == len(cohort)
    assert got.loc["res_men_pct", "estimate"] == pytest.approx(100 * (cohort["sex"] == "M").mean())
    assert got.loc["res_age_mean", "estimate"] == pytest.approx(cohort["age_at_imr_start"].mean())
    assert got.loc["res_sessions_mean", "sd"] == pytest.approx(cohort["n_sessions"].std())
    assert got.loc["res_m6_serd_pct", "n"] == (cohort["service_type"] == "SerD").sum()
    assert got["note"].isna().all() and got["published_outside_ci"].isin([True, False]).all()


def test_the_department_gets_its_one_page_summary(department):
    out, result = department
    cohort = pd.read_parquet(out / "data" / "processed" / "cohort.parquet")
    md_path, html_path = result.summary
    assert (md_path, html_path) == (out / "reports" / "replication_summary.md",
                                    out / "reports" / "replication_summary.html")
    md, html = md_path.read_text(encoding="utf-8"), html_path.read_text(encoding="utf-8")
    assert f"**{len(cohort)} patients** completed IMR" in md
    assert "| figure | quote | published | department (95% CI) | difference (95% CI) |" in md
    assert len(re.findall(r"^\| (?:res|abs)_", md, re.M)) == 24
    assert "| res_men_pct | The majority were men (77; 61.1%) | 61.1% |" in md
    assert "![Figure 1](../figures/figure1_modules_per_patient.png)" in md
    assert "![Figure 2](../figures/figure2_bland_altman.png)" in md
    assert "“Modules received by individual patients (N = 126)”" in md and "## Colophon" in md
    assert (out / "reports" / "../figures/figure2_bland_altman.png").is_file()
    assert html.count('<img src="data:image/png;base64,') == 2 and "<td>res_men_pct</td>" in html
    assert f"<strong>{len(cohort)} patients</strong>" in html
    colophon = result.colophon
    again = summary.write_summary(out / "again", tables_dir=out / "tables", figures_dir=out / "figures",
                                  processed_dir=out / "data" / "processed", colophon=colophon,
                                  reason="synthetic exports of another department (Ravenna)")
    assert again[1].read_bytes() == html_path.read_bytes()  # the same bytes: nothing but the run's facts


def test_forced_replication_of_the_shipped_tables(tmp_path):
    """``-p audit replication`` on the shipped data: the comparison, zero flags, and the summary."""
    shutil.copytree(paths.tables_dir(), tmp_path / "tables")
    result = run_notebooks(output_dir=tmp_path, only=["06"], parameters={"audit": "replication"}, html=False,
                           stream=io.StringIO())
    got = pd.read_csv(tmp_path / "tables" / "replication_comparison.csv")
    assert len(got) == 24 and not got["published_outside_ci"].any()
    md = result.summary[0].read_text(encoding="utf-8")
    assert "Audit: **replication**: chosen by the parameter audit = 'replication'." in md
    assert "**126 patients** completed IMR" in md and "(figure2_bland_altman not drawn" in md


def test_the_summary_names_no_folder_of_the_machine(department):
    out, _ = department
    for page in ("replication_summary.md", "replication_summary.html"):
        text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", (out / "reports" / page).read_text(encoding="utf-8"))
        assert str(out) not in text and "/tmp" not in text and "not shown (a report to share)" in text
