"""Pooling departments (imr_analysis.pool) against independent computations on their patient-level data.

Departments are generated here and their outputs made in memory by the calls notebooks 02, 03 and 05 make
(``conftest.audit_outputs``); the pooled estimates are then checked against the pooled patients (same quantity),
against test-side inverse-variance and DerSimonian-Laird formulas, and, for departments drawn alike, for coverage.
"""

from __future__ import annotations

import doctest
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from imr_analysis import agreement, pool
from imr_synth.generator import DEPARTMENTS, Department, generate

from conftest import audit_outputs

#: Three departments drawn with the same settings (the paper's, uncalibrated): between them only chance differs.
ALIKE = [Department(f"alike{i}", seed, n) for i, (seed, n) in enumerate([(11, 120), (12, 160), (13, 220)])]


def _sites(cohorts, measures=None, include_published=False):
    bundles = [SimpleNamespace(name=name, outputs=audit_outputs(c, n_resamples=99), alpha=0.05)
               for name, c in cohorts.items()]
    return pool.site_table(bundles, measures, include_published=include_published)


@pytest.fixture(scope="module")
def alike():
    cohorts = {d.name: generate(d.seed, d.n_patients, d).truth for d in ALIKE}
    sites = _sites(cohorts)
    return cohorts, sites, pool.pool(sites)


@pytest.fixture(scope="module")
def departments():
    cohorts = {name: generate(d.seed, d.n_patients, d).truth for name, d in DEPARTMENTS.items()}
    sites = _sites(cohorts, include_published=True)
    return cohorts, sites, pool.pool(sites)


def _row(pooled, measure, sites="departments"):
    return pooled.set_index(["measure", "sites"]).loc[(measure, sites)]


# -- the same quantity as the pooled patients --------------------------------------------------
def test_totals_are_the_pooled_patients(departments):
    cohorts, _, pooled = departments
    everyone = pd.concat(cohorts.values(), ignore_index=True)
    for measure, events in (("men", everyone["sex"] == "M"), ("group_format", everyone["imr_format"] == "group"),
                            ("module_06", everyone["module_06"]), ("antipsychotic", everyone["med_antipsychotic"])):
        row = _row(pooled, measure)
        assert (row["k"], row["n"], row["events"]) == (3, len(everyone), events.sum()), measure
    with_paper = _row(pooled, "men", f"departments and {pool.PUBLISHED_SITE}")
    assert (with_paper["n"], with_paper["events"]) == (len(everyone) + 126, (everyone["sex"] == "M").sum() + 77)


def test_fixed_effect_means_are_inverse_variance_means_of_the_patients(departments):
    cohorts, _, pooled = departments
    for measure, column in (("age", "age_at_imr_start"), ("sessions", "n_sessions"),
                            ("imrs_user_total", "imrs_user_total")):
        x = [c[column].astype(float) for c in cohorts.values()]
        w = np.array([len(v) / v.var(ddof=1) for v in x])
        expected = (w * np.array([v.mean() for v in x])).sum() / w.sum()
        half = stats.norm.ppf(0.975) / np.sqrt(w.sum())
        row = _row(pooled, measure)
        assert row["fixed_estimate"] == pytest.approx(expected, rel=1e-12)
        assert (row["fixed_ci_low"], row["fixed_ci_high"]) == pytest.approx((expected - half, expected + half), rel=1e-12)


def _dersimonian_laird(y, v):
    """Test-side DerSimonian & Laird (1986): Q, tau^2 (truncated at 0), the random-effects mean and its SE."""
    w = 1 / v
    q = (w * (y - (w * y).sum() / w.sum()) ** 2).sum()
    tau2 = max(0.0, (q - (len(y) - 1)) / (w.sum() - (w**2).sum() / w.sum()))
    w_re = 1 / (v + tau2)
    return q, tau2, (w_re * y).sum() / w_re.sum(), np.sqrt(1 / w_re.sum())


@pytest.mark.parametrize("measure", ["group_format", "module_06", "sessions", "bias_total", "men", "icc_total"])
def test_random_effects_are_dersimonian_laird_on_patient_level_estimates(departments, measure):
    cohorts, sites, pooled = departments
    y, v = [], []
    for c in cohorts.values():  # each department's estimate and variance, from its patients
        if measure in ("group_format", "module_06", "men"):
            x = {"group_format": c["imr_format"] == "group", "module_06": c["module_06"], "men": c["sex"] == "M"}[measure]
            k, n = x.sum(), len(x)
            y.append(np.log(k / (n - k)))
            v.append(1 / k + 1 / (n - k))
        elif measure in ("sessions", "bias_total"):
            x = c["n_sessions"] if measure == "sessions" else c["imrs_user_total"] - c["imrs_provider_total"]
            y.append(x.mean())
            v.append(x.var(ddof=1) / len(x))
        else:  # the ICC: pooled from its interval, as the notebook does
            row = agreement.patient_level_agreement(c).set_index("measure").loc[agreement.ICC_A1]
            y.append(np.arctanh(row["estimate"]))
            v.append(((np.arctanh(row["ci_high"]) - np.arctanh(row["ci_low"])) / (2 * stats.norm.ppf(0.975))) ** 2)
    y, v = np.array(y), np.array(v)
    q, tau2, mean, se = _dersimonian_laird(y, v)
    row = _row(pooled, measure)
    back = pool.SCALES[pool.MEASURES[measure][1]][1]
    assert row["q"] == pytest.approx(q, rel=1e-6) and row["q_p"] == pytest.approx(stats.chi2.sf(q, 2), rel=1e-5)
    assert row["tau2"] == pytest.approx(tau2, rel=1e-6, abs=1e-12)
    assert row["i2"] == pytest.approx(100 * max(0.0, (q - 2) / q), rel=1e-6, abs=1e-9)
    z = stats.norm.ppf(0.975)
    assert (row["estimate"], row["ci_low"], row["ci_high"]) == pytest.approx(
        tuple(float(back(t)) for t in (mean, mean - z * se, mean + z * se)), rel=1e-6)
    if measure in ("group_format", "sessions", "bias_total"):  # different by design
        assert row["tau2"] > 0 and row["q_p"] < 0.01


def test_departments_drawn_alike_are_pooled_over_their_patients(alike):
    cohorts, _, pooled = alike
    everyone = pd.concat(cohorts.values(), ignore_index=True)
    patients = {
        "imrs_user_total": everyone["imrs_user_total"].mean(),
        "bias_total": (everyone["imrs_user_total"] - everyone["imrs_provider_total"]).mean(),
        "men": 100 * (everyone["sex"] == "M").mean(),
        "module_01": 100 * everyone["module_01"].mean(),
        "icc_total": agreement.patient_level_agreement(everyone).set_index("measure").loc[agreement.ICC_A1, "estimate"],
        "item_profile_r": agreement.item_profile_correlation(everyone)["estimate"].iloc[0],
    }
    for measure, value in patients.items():
        row = _row(pooled, measure)
        assert row["ci_low"] <= value <= row["ci_high"], (measure, value, row[["ci_low", "ci_high"]].tolist())
        assert row["q_p"] > 0.01, measure  # no heterogeneity beyond chance


# -- each site's standard error ------------------------------------------------------------------
def test_site_standard_errors_are_those_of_the_patients(departments):
    cohorts, sites, _ = departments
    s = sites.set_index(["site", "measure"])
    for name, c in cohorts.items():
        x = (c["sex"] == "M").sum()
        assert s.loc[(name, "men"), "variance"] == pytest.approx(1 / x + 1 / (len(c) - x), rel=1e-6)
        d = c["imrs_user_total"] - c["imrs_provider_total"]
        assert s.loc[(name, "bias_total"), "variance"] == pytest.approx(d.var(ddof=1) / len(d), rel=1e-9)
        assert s.loc[(name, "item_profile_r"), "variance"] == pytest.approx(1 / (15 - 3), rel=1e-9)
        assert s.loc[(name, "age"), "variance"] == pytest.approx(c["age_at_imr_start"].var(ddof=1) / len(c))


def test_the_papers_figures_are_one_more_site():
    paper = pool.published_estimates().set_index("measure")
    assert set(paper.index) == {"men", "antipsychotic", "group_format", "module_01", "module_09", "module_10",
                                "module_11", "age", "imr_duration", "sessions", "imrs_user_total",
                                "imrs_provider_total", "item_profile_r"}  # module 6: the paper contradicts itself
    assert paper.loc[["men", "group_format", "module_01", "module_11"], "events"].tolist() == [77, 104, 89, 55]
    assert paper.loc["age", ["estimate", "variance"]].tolist() == pytest.approx([40.14, 12.92**2 / 126])
    assert paper.loc["item_profile_r", ["estimate", "n", "variance"]].tolist() == pytest.approx([0.96, 15, 1 / 12])


def test_a_redacted_site_is_left_out_and_one_site_is_not_pooled(departments):
    _, sites, _ = departments
    redacted = sites.copy()
    hit = (redacted["site"] == "north") & (redacted["measure"] == "icc_total")
    redacted.loc[hit, ["y", "variance"]] = np.nan
    row = _row(pool.pool(redacted), "icc_total")
    assert (row["k"], row["note"]) == (2, "without north (no estimate)")
    alone = pool.pool(sites[sites["site"].isin(["north", pool.PUBLISHED_SITE]) & (sites["measure"] == "age")])
    assert alone["note"].iloc[0] == "not pooled: 1 site(s) with an estimate" and np.isnan(alone["estimate"].iloc[0])
    assert alone["k"].tolist() == [1, 2]
    outputs = audit_outputs(generate(3, 60, DEPARTMENTS["north"]).truth, n_resamples=99)
    outputs["table1_long"] = outputs["table1_long"].assign(n=np.where(outputs["table1_long"]["variable"] == "sex",
                                                                      np.nan, outputs["table1_long"]["n"]))
    men = pool.site_estimates(outputs, "x", ["men"]).iloc[0]
    assert np.isnan(men["variance"]) and men["note"] == "no logit: redacted, 0% or 100%"
    with pytest.raises(ValueError, match="unknown measure 'height'; choose from men, "):
        pool.site_estimates(outputs, "x", ["height"])


def test_forest_plots_are_byte_stable(departments, tmp_path):
    from imr_analysis.figio import save_figure

    _, sites, pooled = departments
    fig = pool.forest_plot(sites, pooled, "group_format")
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == ["north", "central", "coastal", pool.PUBLISHED_SITE, "Pooled, departments (k = 3)",
                      "Pooled, with the paper (k = 4)"]
    a = save_figure(fig, tmp_path / "a", "f", formats=["png", "svg"])
    b = save_figure(pool.forest_plot(sites, pooled, "group_format"), tmp_path / "b", "f", formats=["png", "svg"])
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]


def test_doctests():
    assert doctest.testmod(pool).failed == 0
