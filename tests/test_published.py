"""The published figures as data: format, content and the arithmetic behind the verdicts."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import pytest
from scipy import stats

from imr_analysis.published import KINDS, SECTIONS, load_published
from imr_analysis.reproduce import read_metrics
from conftest import audit_outputs
from test_reproduce import tiny_cohort

# The article's full text is not redistributed with the compendium; point IMR_PAPER_TEXT at a
# local copy (default: a copy next to the compendium's folder) to check the quotes word for word.
PAPER = Path(os.environ.get("IMR_PAPER_TEXT", Path(__file__).resolve().parents[2] / "shared" / "paper"
                            / "ferrara2023_imr_implementation.txt"))


@pytest.fixture(scope="module")
def pub():
    return load_published()


def test_loads_with_unique_ids_and_known_vocabulary(pub):
    assert len(pub) >= 60
    assert pub["id"].is_unique
    assert pub["id"].str.fullmatch(r"[a-z][a-z0-9_]*").all()
    assert set(pub["section"]) <= set(SECTIONS) and set(pub["kind"]) <= set(KINDS)
    assert set(pub["verdict"]) == {"consistent", "paper-inconsistent"}
    assert set(pub["comparator"]) <= {"=", "<", ">"}


def test_every_consistent_figure_has_a_metric(pub):
    figures = pub[(pub["verdict"] == "consistent") & (pub["kind"] != "statement")]
    assert figures["metric"].notna().all(), figures.loc[figures["metric"].isna(), "id"].tolist()


def test_paper_inconsistent_entries_have_reasons_and_are_not_honoured(pub):
    bad = pub[pub["verdict"] == "paper-inconsistent"]
    assert (bad["reason"].str.len() > 40).all()
    assert not bad["honoured"].any()
    assert set(bad["id"]) == {"abs_serd_pct", "res_serd_pct", "res_service_total_if_serd_42_1", "res_m6_pct",
                              "abs_imrs_correlation_p", "res_imrs_p", "methods_alpha", "methods_pearson_rank"}


def test_every_metric_is_known_to_the_audit(pub):
    known = read_metrics(audit_outputs(tiny_cohort()))  # every metric the audit knows, found in the outputs
    unknown = sorted(set(pub["metric"].dropna()) - set(known))
    assert not unknown


def test_key_figures_are_recorded(pub):
    v = pub.set_index("id")["value"]
    expected = {
        "res_n_completed": 126, "res_men_n": 77, "res_men_pct": 61.1, "res_age_mean": 40.14, "res_age_sd": 12.92,
        "res_age_18": 5, "res_age_first_mean": 34.55, "res_age_first_sd": 12.06, "res_sud_pct": 42.1,
        "res_med_antipsychotic_pct": 42.9, "res_med_anxiolytic_pct": 40.5, "res_med_none_pct": 20.6,
        "res_cmhc_n": 69, "res_cmhc_pct": 54.8, "res_serd_n": 52, "res_serd_pct": 42.1, "abs_serd_pct": 41.2,
        "res_edp_n": 5, "res_edp_pct": 4, "res_ten_units": 10, "abs_group_pct": 82.5, "res_duration_mean": 9.6,
        "res_duration_sd": 7.5, "res_duration_min": 2, "res_duration_max": 38, "res_sessions_mean": 21.4,
        "res_sessions_sd": 12.6, "res_sessions_min": 1, "res_sessions_max": 70, "res_m1_pct": 70.6,
        "res_m9_pct": 6.3, "res_m10_pct": 6.3, "res_m6_pct": 39.7, "res_m6_cmhc_n": 2, "res_m11_pct": 43.7,
        "res_illness_max": 26, "res_imrs_user_item_mean": 3.7, "res_imrs_user_item_sd": 0.5,
        "res_imrs_provider_item_mean": 3.6, "res_imrs_provider_item_sd": 0.6, "res_imrs_user_total_mean": 55.1,
        "res_imrs_user_total_sd": 7.47, "res_imrs_provider_total_mean": 54.18, "res_imrs_provider_total_sd": 8.45,
        "res_imrs_r": 0.96, "res_imrs_n": 15, "res_imrs_p": 0.001, "methods_alpha": 0.5,
    }
    for key, value in expected.items():
        assert v[key] == pytest.approx(value), key
    lit = pub.set_index("id").loc["disc_literature_imrs"]
    assert lit["metric"] is None and lit["kind"] == "statement"
    assert pub.set_index("id").loc["res_illness_p", "comparator"] == "<"


def test_quotes_are_the_papers_words(pub):
    if not PAPER.exists():
        pytest.skip("paper text not available")
    text = re.sub(r"[\u00a0\u2009\u202f]", " ", PAPER.read_text(encoding="utf-8"))
    text = " ".join(text.split())
    body = pub[pub["section"] != "Abstract"]  # the abstract is not part of the stored full text
    missing = [r.id for r in body.itertuples() if r.quote not in text]
    assert not missing


def test_the_arithmetic_behind_the_verdicts():
    # SerD: 52/126 is 41.3%, neither 42.1% (Results) nor 41.2% (Abstract); 42.1% is 53/126 (SUD)
    assert f"{100 * 52 / 126:.1f}" == "41.3" and f"{100 * 53 / 126:.1f}" == "42.1"
    assert 69 + 53 + 5 == 127 and 69 + 52 + 5 == 126
    # M6: 100% of 52 SerD users + 2 CMHC = 54 = 42.9%, not 39.7% (= 50/126)
    assert f"{100 * 54 / 126:.1f}" == "42.9" and f"{100 * 50 / 126:.1f}" == "39.7"
    # r = 0.96 over n = 15 pairs: p is about 1e-8, far below the stated 0.001
    r, n = 0.96, 15
    t = r * math.sqrt(n - 2) / math.sqrt(1 - r**2)
    p = 2 * stats.t.sf(t, n - 2)
    assert p < 1e-7


def test_validation_names_every_problem(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "figures:\n"
        "- {id: a, section: Results, quote: q, metric: n_patients, value: 1, decimals: 0, kind: count,"
        " verdict: consistent, honoured: true}\n"
        "- {id: a, section: Results, quote: q, metric: null, value: 1, decimals: 0, kind: count,"
        " verdict: consistent, honoured: true}\n"
        "- {id: c, section: Results, quote: q, metric: pct_men, value: 1, decimals: 1, kind: percent,"
        " verdict: paper-inconsistent, honoured: false}\n"
        "- {id: d, section: Preface, quote: q, metric: null, value: null, decimals: 0, kind: statement,"
        " verdict: consistent, honoured: false}\n"
        "- {id: e, section: Results, quote: q, metric: pct_men, value: 1, decimals: 1, kind: percent, n: 12.5,"
        " verdict: consistent, honoured: true}\n",
        encoding="utf-8")
    with pytest.raises(ValueError) as err:
        load_published(bad)
    msg = str(err.value)
    assert "duplicate id" in msg
    assert "needs a metric" in msg
    assert "need a reason" in msg
    assert "section 'Preface'" in msg
    assert "entry 5 (e): n must be a positive integer" in msg


def test_every_percentage_mean_and_r_has_the_papers_n(pub):
    tested = pub[pub["kind"].isin(["percent", "mean", "r"])]
    assert tested["n"].notna().all() and pub.loc[~pub.index.isin(tested.index), "n"].isna().all()
    n = pub.set_index("id")["n"]
    assert (n["res_men_pct"], n["res_age_mean"], n["res_m6_serd_pct"], n["res_imrs_r"]) == (126, 126, 52, 15)
    v = pub.set_index("id")["value"]  # the n is the one the printed figures come from
    assert f"{100 * v['res_men_n'] / n['res_men_pct']:.1f}" == "61.1"
    assert f"{100 * v['res_serd_n'] / n['res_m6_serd_pct']:.0f}" == "100"


def test_empty_file_is_rejected(tmp_path):
    bad = tmp_path / "empty.yaml"
    bad.write_text("figures: []\n", encoding="utf-8")
    with pytest.raises(ValueError, match="figures"):
        load_published(bad)
