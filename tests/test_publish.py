"""Counts printed outside the published tables pass the disclosure profile (imr_analysis.publish),
and the reproduction audit withholds recomputed values on private data (reproduce.public_check)."""

from __future__ import annotations

import pandas as pd

from imr_analysis import publish, reproduce
from imr_analysis.disclosure import REDACTED_MARKER as R


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
