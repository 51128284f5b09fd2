"""Tests of imr_analysis.disclosure: profiles, suppression, rounding, reports.

The invariants checked on every protected table (private-data profiles):

* no published count lies in 1..k;
* for every additive relation whose total is published (levels -> denominator, levels +
  missing -> group size, groups -> Total, units -> service type -> total), the number of
  redacted cells is never exactly one and the redacted cells together hold 0 or more
  than k patients;
* an independent linear-algebra audit (:class:`Auditor`, built from the meaning of the
  table, not from the module) finds no redacted cell that is exactly derivable from the
  published ones through any combination of relations;
* published counts are multiples of the rounding base; percentages equal
  100 * n / denominator of the published (rounded) values.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imr_analysis import disclosure as dc
from imr_analysis.disclosure import (
    DisclosureError,
    apply_to_long,
    disclosure_report,
    figure_policy,
    get_profile,
    load_profiles,
    mark_redacted,
    resolve_profile,
    round_counts,
    write_disclosure_report,
)

K = 7  # opensafely threshold


# --------------------------------------------------------------------------------------
# fixtures: a small private cohort with a 2-patient service unit
# --------------------------------------------------------------------------------------
def make_cohort() -> pd.DataFrame:
    """77 patients: CMHC Cento 30, CMHC Ferrara 25, SerD Ferrara 18, EDP Ferrara 2, SerD Cento 2."""
    units = (["CMHC Cento"] * 30 + ["CMHC Ferrara"] * 25 + ["SerD Ferrara"] * 18
             + ["EDP Ferrara"] * 2 + ["SerD Cento"] * 2)
    n = len(units)
    idx = np.arange(n)
    service_type = [u.split()[0] for u in units]
    sex = np.where(idx % 3 == 0, "F", "M")
    diagnosis = np.select(
        [np.isin(service_type, ["EDP"]), np.isin(service_type, ["SerD"]), idx % 5 == 0, idx % 7 == 0],
        ["eating", "substance_use", "bipolar", "depressive"], "schizophrenia_spectrum")
    diagnosis[3] = "substance_use"  # one CMHC patient with a substance use disorder
    education = pd.array(8 + idx % 9, dtype="Int64")
    education[[1, 40, 60]] = pd.NA  # three missing values
    return pd.DataFrame({
        "patient_id": [f"EF{i:05d}" for i in idx], "service_unit": units, "service_type": service_type,
        "sex": sex, "diagnosis_group": diagnosis, "med_antipsychotic": (idx % 4 != 0) | (idx < 70),
        "education_years": education, "n_sessions": 5 + idx % 30,
        "module_06": np.isin(service_type, ["SerD"]) | (idx == 5),
    })


def table1_like(cohort: pd.DataFrame, group: str = "service_type") -> pd.DataFrame:
    """A Table-1-like tidy long table (the form table1_long produces), built independently."""
    frames = []
    groups = list(dict.fromkeys(cohort[group]))
    for var in ["sex", "diagnosis_group"]:
        ct = pd.crosstab(cohort[var], cohort[group]).reindex(columns=groups, fill_value=0)
        ct["Total"] = ct.sum(axis=1)
        long = ct.stack().rename("n").reset_index().rename(columns={var: "level", group: "group"})
        long["denominator"] = long.groupby("group")["n"].transform("sum")
        long.insert(0, "variable", var)
        long["n_missing"] = 0
        frames.append(long)
    # a yes/no variable shown as its "yes" level
    yes = cohort.groupby(group, sort=False)["med_antipsychotic"].agg(["sum", "size"]).reindex(groups)
    yes.loc["Total"] = yes.sum()
    frames.append(pd.DataFrame({"variable": "med_antipsychotic", "level": "yes", "group": yes.index,
                                "n": yes["sum"].to_numpy(), "denominator": yes["size"].to_numpy(), "n_missing": 0}))
    # a continuous variable with missing values
    g = cohort.groupby(group, sort=False)["education_years"]
    summ = pd.DataFrame({"n": g.count(), "n_missing": g.size() - g.count(), "mean": g.mean(),
                         "sd": g.std(), "median": g.median(), "q1": g.quantile(0.25), "q3": g.quantile(0.75),
                         "min": g.min(), "max": g.max()}).reindex(groups)
    e = cohort["education_years"]
    summ.loc["Total"] = [e.count(), e.isna().sum(), e.mean(), e.std(), e.median(), e.quantile(0.25),
                         e.quantile(0.75), e.min(), e.max()]
    summ = summ.astype(float)
    summ["denominator"] = summ["n"]
    frames.append(summ.rename_axis("group").reset_index().assign(variable="education_years", level=np.nan))
    out = pd.concat(frames, ignore_index=True)
    out["kind"] = np.where(out["variable"] == "education_years", "continuous", "categorical")
    out["percent"] = np.where(out["kind"] == "categorical", 100 * out["n"] / out["denominator"], np.nan)
    cols = ["variable", "level", "group", "kind", "n", "denominator", "percent", "n_missing",
            "mean", "sd", "median", "q1", "q3", "min", "max"]
    return out.reindex(columns=cols)


def table2_like(cohort: pd.DataFrame) -> pd.DataFrame:
    """A Table-2-like long table: units, service-type subtotals and the total."""
    rows = []
    levels = [("unit", cohort.groupby(["service_unit", "service_type"], sort=False)),
              ("type", cohort.groupby(["service_type"], sort=False)),
              ("total", cohort.groupby(lambda _: "Total"))]
    for level, grouped in levels:
        for key, sub in grouped:
            key = key if isinstance(key, tuple) else (key,)
            unit = key[0] if level == "unit" else ("Total" if level == "total" else np.nan)
            stype = key[1] if level == "unit" else ("Total" if level == "total" else key[0])
            n = len(sub)
            base = {"unit": unit, "service_type": stype, "level": level}
            rows.append({**base, "measure": "patients", "n": n, "denominator": len(cohort), "percent": 100 * n / len(cohort)})
            rows.append({**base, "measure": "sessions", "n": n, "mean": sub["n_sessions"].mean(),
                         "sd": sub["n_sessions"].std(), "min": sub["n_sessions"].min(), "max": sub["n_sessions"].max()})
            m = int(sub["module_06"].sum())
            rows.append({**base, "measure": "module_06", "n": m, "denominator": n, "percent": 100 * m / n})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------
# invariant checkers (independent of the module's internals)
# --------------------------------------------------------------------------------------
def _floats(values) -> np.ndarray:
    return np.array([np.nan if pd.isna(v) else float(v) for v in values], dtype=float)


def assert_unrecoverable(members_orig, members_safe, total_published: bool, k: int = K, where=""):
    """A set of cells summing (with an unpublished remainder of 0) to a published total."""
    orig, safe = _floats(members_orig), _floats(members_safe)
    red = ~np.isnan(orig) & np.isnan(safe)
    if not total_published:
        return
    assert red.sum() != 1, f"exactly one redacted cell in a set with a published total: {where}"
    mass = float(np.nansum(orig[red]))
    assert mass == 0 or mass > k, f"redacted cells hold {mass} <= {k} patients: {where}"


def check_table1_invariants(orig: pd.DataFrame, safe: pd.DataFrame, k: int = K, base: int | None = 5):
    counts = ["n", "denominator", "n_missing"]
    for c in counts:
        pub = safe[c].dropna().astype(float)
        assert not ((pub >= 1) & (pub <= k)).any(), f"published {c} in 1..{k}"
        if base:
            assert (pub % base == 0).all(), f"{c} not rounded to {base}"
    cat = orig["kind"] == "categorical"
    # levels -> denominator, within each variable x group (complete partitions)
    for (var, grp), idx in orig[cat].groupby(["variable", "group"]).groups.items():
        o, s = orig.loc[idx], safe.loc[idx]
        if (o["n"].sum() == o["denominator"].iloc[0]):
            assert_unrecoverable(o["n"], s["n"], s["denominator"].notna().all(), k, f"{var}/{grp}")
        else:  # single "yes" row: n + unpublished complement = denominator
            comp = o["denominator"] - o["n"]
            if s["denominator"].notna().all() and s["n"].notna().all():
                assert not ((comp >= 1) & (comp <= k)).any(), f"complement of {var}/{grp} is small"
    # groups -> Total, for every count column and row key
    for c in counts:
        for (var, lvl), idx in orig.groupby(["variable", orig["level"].fillna("")]).groups.items():
            o, s = orig.loc[idx], safe.loc[idx]
            tot = o["group"] == "Total"
            if not tot.any():
                continue
            assert o.loc[~tot, c].sum() == o.loc[tot, c].iloc[0]
            assert_unrecoverable(o.loc[~tot, c], s.loc[~tot, c], s.loc[tot, c].notna().all(), k,
                                 f"{c} of {var}/{lvl} across groups")
    # continuous rows: n + n_missing = group size (the column header, when published)
    cont = orig[orig["kind"] == "continuous"]
    for i in cont.index:
        grp = orig.at[i, "group"]
        size_published = safe.attrs["group_sizes"][grp] is not None
        assert_unrecoverable([orig.at[i, "n"], orig.at[i, "n_missing"]],
                             [safe.at[i, "n"], safe.at[i, "n_missing"]], size_published, k, f"education/{grp}")
    # and the independent linear-algebra audit: nothing redacted is exactly derivable
    assert audit_table1(orig, safe) == []
    # percentages recomputed from the published values
    ok = safe["percent"].notna()
    expected = 100 * safe.loc[ok, "n"].astype(float) / safe.loc[ok, "denominator"].astype(float)
    np.testing.assert_array_equal(safe.loc[ok, "percent"].to_numpy(), expected.to_numpy())
    assert not (safe["percent"].notna() & (safe["n"].isna() | safe["denominator"].isna())).any()


class Auditor:
    """Independent check that no redacted cell is *exactly* derivable from published cells.

    Unknowns are the redacted cells, the redacted group sizes and free remainders
    (unpublished complements); every relation is linear. A redacted cell is derivable
    iff its coordinate vanishes on the null space of the relation matrix restricted to
    the unknowns (scipy.linalg.null_space).
    """

    def __init__(self):
        self.index: dict = {}
        self.rows: list = []

    def _v(self, name):
        return self.index.setdefault(name, len(self.index))

    def eq(self, plus, minus=()):
        """sum(plus) - sum(minus) = known constant."""
        self.rows.append(([self._v(p) for p in plus], [self._v(m) for m in minus]))

    def derivable(self, unknown: set, check: set) -> list:
        from scipy.linalg import null_space

        unk = sorted((u for u in unknown if u in self.index), key=self.index.get)
        if not unk or not self.rows:
            return []
        col = {self.index[u]: i for i, u in enumerate(unk)}
        A = np.zeros((len(self.rows), len(unk)))
        for r, (plus, minus) in enumerate(self.rows):
            for p in plus:
                if p in col:
                    A[r, col[p]] += 1
            for m in minus:
                if m in col:
                    A[r, col[m]] -= 1
        N = null_space(A)
        return [u for u in unk if u in check and np.all(np.abs(N[col[self.index[u]], :]) < 1e-9)]


def audit_table1(orig: pd.DataFrame, safe: pd.DataFrame) -> list:
    """Relations of a Table-1-like table, built from its meaning (not from the module)."""
    a = Auditor()
    unknown, check = set(), set()
    for c in ["n", "denominator", "n_missing"]:
        red = orig[c].notna() & safe[c].isna()
        for i in np.flatnonzero(red.to_numpy()):
            unknown.add((c, i))
            check.add((c, i))
    sizes = safe.attrs["group_sizes"]
    for g, v in sizes.items():
        if v is None:
            unknown.add(("size", g))
            check.add(("size", g))
    free = iter(range(10 ** 6))
    for (var, grp), sub in orig.groupby(["variable", "group"], sort=False):
        idx = list(sub.index)
        for i in idx[1:]:  # the denominator and the missing count are repeated on each row
            a.eq([("denominator", i)], [("denominator", idx[0])])
            a.eq([("n_missing", i)], [("n_missing", idx[0])])
        d0, m0 = ("denominator", idx[0]), ("n_missing", idx[0])
        a.eq([d0, m0], [("size", grp)])  # non-missing + missing = group size
        levels = [("n", i) for i in idx]
        if sub["n"].sum() == sub["denominator"].iloc[0]:
            a.eq(levels, [d0])
        else:  # yes-only rows: n + unpublished complement = denominator
            for i in idx:
                r = ("free", next(free))
                unknown.add(r)
                a.eq([("n", i), r], [("denominator", i)])
    for (var, lvl), sub in orig.groupby(["variable", orig["level"].fillna("")], sort=False):
        tot = sub.index[sub["group"] == "Total"]
        parts = sub.index[sub["group"] != "Total"]
        for c in ["n", "denominator", "n_missing"]:
            a.eq([(c, i) for i in parts], [(c, tot[0])])
    groups = [g for g in sizes if g != "Total"]
    a.eq([("size", g) for g in groups], [("size", "Total")])
    return a.derivable(unknown, check)


def audit_table2(orig: pd.DataFrame, safe: pd.DataFrame) -> list:
    """Relations of a Table-2-like table: units -> service type -> total, for every
    measure; and each unit's patients, shown as ``n`` of several measures and as the
    denominator of its module rows, is one quantity."""
    a = Auditor()
    unknown, check = set(), set()
    for c in ["n", "denominator"]:
        red = orig[c].notna() & safe[c].isna()
        for i in np.flatnonzero(red.to_numpy()):
            unknown.add((c, i))
            check.add((c, i))
    key = orig["unit"].fillna(orig["service_type"])
    for (measure,), sub in orig.groupby(["measure"], sort=False):
        for c in ["n", "denominator"]:
            if sub[c].isna().all():
                continue
            for stype, units in sub[sub["level"] == "unit"].groupby("service_type"):
                subtotal = sub.index[(sub["level"] != "unit") & (sub["service_type"] == stype)]
                a.eq([(c, i) for i in units.index], [(c, subtotal[0])])
            types = sub.index[sub["level"] == "type"]
            a.eq([(c, i) for i in types], [(c, sub.index[sub["level"] == "total"][0])])
    for k_, sub in orig.groupby(key, sort=False):
        pts = sub.index[sub["measure"] == "patients"][0]
        for i in sub.index[sub["measure"] == "sessions"]:
            a.eq([("n", i)], [("n", pts)])
        for i in sub.index[sub["measure"] == "module_06"]:
            a.eq([("denominator", i)], [("n", pts)])
            r = ("free", i)
            unknown.add(r)
            a.eq([("n", i), r], [("denominator", i)])
    return a.derivable(unknown, check)


# --------------------------------------------------------------------------------------
# profiles
# --------------------------------------------------------------------------------------
def test_profiles_file_is_versioned_and_complete():
    profiles = load_profiles()
    assert {"none", "opensafely", "sistan_min3"} <= set(profiles)
    assert isinstance(dc.profiles_version(), int) and dc.profiles_version() >= 1
    os_ = profiles["opensafely"]
    assert (os_.redact_counts_le, os_.rounding_method, os_.rounding_base) == (7, "nearest", 5)
    assert os_.secondary_suppression and os_.recompute_totals and os_.remove_min_max
    assert (os_.redact_summaries_le, os_.flag_zero_hundred, os_.allow_microdata) == (7, True, False)
    si = profiles["sistan_min3"]
    assert (si.redact_counts_le, si.rounding_method, si.secondary_suppression, si.allow_microdata) == (2, None, True, False)
    none = profiles["none"]
    assert none.is_noop and none.allow_microdata
    assert profiles["opensafely_midpoint6"].rounding_method == "midpoint"
    assert none.strength < si.strength < os_.strength


def test_profiles_file_validation(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text("version: 1\ndefaults: {synthetic: none, private: none}\nprofiles:\n  none: {strength: 0}\n")
    with pytest.raises(DisclosureError, match="missing fields"):
        load_profiles(bad)


def test_resolve_profile_auto_by_data_mode():
    assert resolve_profile("auto", "synthetic").name == "none"
    assert resolve_profile("auto", "private").name == "opensafely"
    assert resolve_profile(None, "private").name == "opensafely"
    p = resolve_profile("auto", "private")
    assert (p.data_mode, p.requested, p.weaker_than_default) == ("private", "auto", False)
    assert "chosen automatically for private data" in p.describe()


def test_resolve_profile_refuses_weaker_on_private_data():
    for weaker in ("none", "sistan_min3"):
        with pytest.raises(DisclosureError, match=rf"'{weaker}' is weaker than 'opensafely'.*allow_weaker_profile=True"):
            resolve_profile(weaker, "private")
    p = resolve_profile("sistan_min3", "private", allow_weaker_profile=True)
    assert p.name == "sistan_min3" and p.weaker_than_default
    assert "WEAKER" in p.describe() and "requested explicitly" in p.describe()
    assert p.as_dict()["weaker_than_default"] is True
    # stronger or equal profiles need no flag; synthetic data accept anything
    assert resolve_profile("opensafely_midpoint6", "private").weaker_than_default is False
    assert resolve_profile("opensafely", "synthetic").name == "opensafely"
    assert resolve_profile("none", "synthetic").weaker_than_default is False


def test_resolve_profile_errors():
    with pytest.raises(DisclosureError, match="unknown disclosure profile 'strict'"):
        resolve_profile("strict", "private")
    with pytest.raises(DisclosureError, match="unknown data mode 'real'"):
        resolve_profile("auto", "real")


# --------------------------------------------------------------------------------------
# rounding
# --------------------------------------------------------------------------------------
def test_round_counts_nearest_five():
    got = round_counts([0, 8, 9, 10, 12, 13, 17, 18, 22, 23, 116, 126], 5)
    np.testing.assert_array_equal(got, [0, 10, 10, 10, 10, 15, 15, 20, 20, 25, 115, 125])


def test_round_counts_midpoint_six_matches_opensafely_mapping():
    # OpenSAFELY's table: 0 -> 0, 1-6 -> 3, 7-12 -> 9, 13-18 -> 15
    x = np.arange(0, 19)
    expected = np.array([0] + [3] * 6 + [9] * 6 + [15] * 6)
    np.testing.assert_array_equal(round_counts(x, 6, "midpoint"), expected)
    # independent formula: ceiling(x/6)*6 - 3 for x > 0
    y = np.arange(1, 500)
    np.testing.assert_array_equal(round_counts(y, 6, "midpoint"), np.ceil(y / 6) * 6 - 3)
    with pytest.raises(DisclosureError):
        round_counts([1], 5, "banker")


def test_opensafely_documentation_example_population_totals_recomputed():
    """OpenSAFELY's rounding example: 18, 23, 31, 44 -> 20, 25, 30, 45, total 120 (not 115)."""
    t = pd.DataFrame({"age_band": ["21-30", "31-40", "41-50", "51+", "Total"], "n": [18, 23, 31, 44, 116]})
    safe, report = apply_to_long(t, "opensafely", "population")
    assert safe["n"].tolist() == [20, 25, 30, 45, 120]
    assert safe["n"].dtype == "Int64"
    assert report.loc[report["row_key"] == "age_band=Total", "rule"].item() == \
        "opensafely: total recomputed as the sum of rounded counts"
    # heart disease column: 3 redacted, and 8 as well (else 3 = 50 - 8 - 16 - 23)
    t2 = t.assign(n=[3, 8, 16, 23, 50])
    safe2, report2 = apply_to_long(t2, "opensafely", "heart_disease")
    assert safe2["n"].tolist()[:4] == [pd.NA, pd.NA, 15, 25]
    assert safe2["n"].iloc[4] == 50
    acts = report2.set_index("row_key")["action"]
    assert acts["age_band=21-30"] == "redacted" and acts["age_band=31-40"] == "redacted-secondary"


def test_rounding_and_percentages_exact_on_known_input():
    t = pd.DataFrame({"variable": "sex", "level": ["M", "F"], "group": "A",
                      "n": [12, 23], "denominator": [35, 35], "percent": [100 * 12 / 35, 100 * 23 / 35]})
    safe, _ = apply_to_long(t, "opensafely", "t")
    assert safe["n"].tolist() == [10, 25]
    assert safe["denominator"].tolist() == [35, 35]  # 10 + 25: recomputed, not round(35)
    assert safe["percent"].tolist() == [100 * 10 / 35, 100 * 25 / 35]
    # with a missing level redacted the denominator is rounded on its own
    t3 = pd.DataFrame({"variable": "x", "level": ["a", "b", "c"], "group": "A",
                       "n": [3, 21, 44], "denominator": [68, 68, 68]})
    safe3, _ = apply_to_long(t3, "opensafely", "t3")
    assert safe3["n"].tolist() == [pd.NA, pd.NA, 45] and safe3["denominator"].tolist() == [70, 70, 70]


def test_midpoint_profile_rounds_with_midpoints():
    t = pd.DataFrame({"group": ["A", "B", "Total"], "n": [50, 30, 80]})
    safe, _ = apply_to_long(t, "opensafely_midpoint6", "t")
    assert safe["n"].tolist() == [51, 27, 78]  # 51 + 27: the total is recomputed


# --------------------------------------------------------------------------------------
# Table-1-like and Table-2-like tables of a private cohort with a 2-patient unit
# --------------------------------------------------------------------------------------
def test_table1_like_private_cohort_small_service_redacted_and_unrecoverable():
    cohort = make_cohort()
    assert (cohort["service_unit"] == "EDP Ferrara").sum() == 2
    long = table1_like(cohort)
    safe, report = apply_to_long(long, "opensafely", "table1")
    edp = long["group"] == "EDP"
    # every non-zero EDP count, and the EDP denominator, is redacted
    assert safe.loc[edp & (long["n"] > 0), "n"].isna().all()
    assert safe.loc[edp, "denominator"].isna().all()
    assert safe.loc[edp & (long["n"] > 0), "redacted"].all()
    check_table1_invariants(long, safe)
    # the single CMHC patient with a substance use disorder cannot be derived either
    cmhc_sud = (long["variable"] == "diagnosis_group") & (long["level"] == "substance_use") & (long["group"] == "CMHC")
    assert long.loc[cmhc_sud, "n"].item() == 1 and safe.loc[cmhc_sud, "n"].isna().item()
    # the report never carries values, only kinds and actions
    assert list(report.columns) == dc.REPORT_COLUMNS
    assert set(report["action"]) <= set(dc.ACTIONS)
    assert set(report["kind"]) <= {"categorical", "continuous"}
    assert not report.apply(lambda col: col.str.fullmatch(r"\d+(\.\d+)?")).any().any()


def test_table1_like_min_max_removed_and_small_summaries_redacted():
    long = table1_like(make_cohort())
    safe, report = apply_to_long(long, "opensafely", "table1")
    assert safe["min"].isna().all() and safe["max"].isna().all()
    assert (report.loc[report["column"].isin(["min", "max"]), "action"] == "removed").all()
    assert (report["action"] == "removed").sum() == 2 * long["min"].notna().sum()
    cont = long["kind"] == "continuous"
    small = cont & (long["n"] <= 7)
    assert small.any() and safe.loc[small, ["mean", "sd", "median", "q1", "q3"]].isna().all().all()
    big = cont & (long["n"] > 7)
    np.testing.assert_array_equal(safe.loc[big, "mean"].to_numpy(), long.loc[big, "mean"].to_numpy())


def test_table2_like_two_patient_unit_cannot_be_recovered_from_subtotals():
    cohort = make_cohort()
    long = table2_like(cohort)
    safe, report = apply_to_long(long, "opensafely", "table2")
    small_units = long["unit"].isin(["EDP Ferrara", "SerD Cento"]) & (long["measure"] == "patients")
    assert safe.loc[small_units, "n"].isna().all()
    assert safe.loc[small_units, "redacted"].all()
    for measure, sub in long.groupby("measure"):
        for stype, units in sub[sub["level"] == "unit"].groupby("service_type"):
            subtotal = sub[(sub["level"] == "type") & (sub["service_type"] == stype)].index
            assert units["n"].sum() == long.loc[subtotal, "n"].item()
            assert_unrecoverable(units["n"], safe.loc[units.index, "n"], safe.loc[subtotal, "n"].notna().all(),
                                 where=f"{measure}/{stype}")
        types = sub[sub["level"] == "type"]
        total = sub[sub["level"] == "total"].index
        assert_unrecoverable(types["n"], safe.loc[types.index, "n"], safe.loc[total, "n"].notna().all(),
                             where=f"{measure}/types")
    pub = safe["n"].dropna().astype(float)
    assert not ((pub >= 1) & (pub <= K)).any() and (pub % 5 == 0).all()
    assert safe["min"].isna().all() and safe["max"].isna().all()
    assert audit_table2(long, safe) == []
    # a redacted subtotal is never the sum of published units
    for (measure, stype), units in long[long["level"] == "unit"].groupby(["measure", "service_type"]):
        subtotal = long.index[(long["level"] == "type") & (long["service_type"] == stype) & (long["measure"] == measure)]
        if safe.loc[subtotal, "n"].isna().all() and units["n"].sum() > 0:
            assert safe.loc[units.index, "n"].isna().any(), f"{measure}/{stype}"
    # sessions mean of a 2-patient unit is redacted
    tiny_sessions = long["unit"].eq("SerD Cento") & long["measure"].eq("sessions")
    assert safe.loc[tiny_sessions, ["mean", "sd"]].isna().all().all()


def test_small_complement_of_a_yes_row_is_protected():
    t = pd.DataFrame({"variable": "med", "level": "yes", "group": ["A", "B", "Total"],
                      "n": [66, 40, 106], "denominator": [69, 80, 149]})
    safe, report = apply_to_long(t, "opensafely", "t")
    # 66 of 69 would tell that 3 patients of A do not take it
    assert safe.loc[0, "n"] is pd.NA
    assert report.loc[(report["row_key"].str.contains("group=A")) & (report["column"] == "n"), "action"].item() \
        == "redacted-secondary"
    unchanged, rep0 = apply_to_long(t, "none", "t")
    assert unchanged["n"].tolist() == [66, 40, 106] and rep0.empty


def test_zero_and_hundred_percent_flagged():
    t = pd.DataFrame({"variable": "sex", "level": ["M", "F", "M", "F"], "group": ["A", "A", "B", "B"],
                      "n": [0, 20, 12, 13], "denominator": [20, 20, 25, 25], "percent": [0.0, 100.0, 48.0, 52.0]})
    safe, report = apply_to_long(t, "opensafely", "t")
    flags = report[report["action"] == "flagged"]
    assert set(zip(flags["row_key"], flags["column"])) == {
        ("variable=sex; level=M; group=A", "percent"), ("variable=sex; level=F; group=A", "percent"),
        ("variable=sex; level=M; group=A", "n")}
    assert safe["n"].tolist() == [0, 20, 10, 15]  # flagged cells stay published
    assert "flagged: n, percent" in safe.loc[0, "disclosure_note"]
    _, rep_sistan = apply_to_long(t, "sistan_min3", "t")
    assert (rep_sistan["action"] != "flagged").all()  # art. 5(f): all-alike presumed protected


def test_sistan_min3_redacts_one_and_two_only_without_rounding():
    t = pd.DataFrame({"group": ["A", "B", "C", "D", "Total"], "n": [2, 3, 11, 27, 43],
                      "mean": [5.0, 6.0, 7.0, 8.0, 7.5], "min": [1, 2, 3, 4, 1], "max": [9, 9, 9, 9, 9]})
    safe, report = apply_to_long(t, "sistan_min3", "t")
    assert safe["n"].tolist() == [pd.NA, pd.NA, 11, 27, 43]  # 2 redacted, 3 redacted-secondary, no rounding
    assert pd.isna(safe.loc[0, "mean"]) and safe.loc[1, "mean"] == 6.0
    assert safe["min"].isna().all()
    assert report.loc[report["row_key"] == "group=A", "action"].tolist()[0] == "redacted"
    assert "sistan_min3: count <= 2" in set(report["rule"])


def test_none_profile_changes_nothing():
    long = table1_like(make_cohort())
    safe, report = apply_to_long(long, "none", "table1")
    assert report.empty and list(report.columns) == dc.REPORT_COLUMNS
    for c in ["n", "denominator", "n_missing"]:
        np.testing.assert_array_equal(safe[c].astype(float).to_numpy(), long[c].astype(float).to_numpy())
    for c in ["percent", "mean", "sd", "min", "max"]:
        np.testing.assert_array_equal(safe[c].to_numpy(), long[c].to_numpy())
    assert not safe["redacted"].any() and (safe["disclosure_note"] == "").all()


def test_simple_count_table_with_percent_but_no_denominator():
    # module x service: a reader can derive each denominator from n and percent
    n = {"CMHC": 69, "SerD": 52, "EDP": 5, "Total": 126}
    m = {"CMHC": 66, "SerD": 30, "EDP": 5, "Total": 101}
    t = pd.DataFrame({"module": "M1", "service_type": list(n), "n": list(m.values()),
                      "percent": [100 * m[s] / n[s] for s in n]})
    safe, report = apply_to_long(t, "opensafely", "module_frequency")
    assert "denominator" not in safe.columns and "_denominator" not in safe.columns
    assert safe["n"].isna().tolist()[:3] == [True, False, True]  # CMHC: complement 3; EDP: 5
    assert safe.loc[3, "n"] == 100 and safe.loc[1, "n"] == 30
    assert "_denominator" not in set(report["column"])


def test_refuses_wide_tables_and_second_pass():
    with pytest.raises(DisclosureError, match=r"\['n_CMHC'\] look like statistics"):
        apply_to_long(pd.DataFrame({"module": ["M1"], "n_CMHC": [3]}), "opensafely", "wide")
    safe, _ = apply_to_long(pd.DataFrame({"group": ["A"], "n": [12]}), "opensafely", "t")
    with pytest.raises(DisclosureError, match="already"):
        apply_to_long(safe, "opensafely", "t")
    with pytest.raises(DisclosureError, match="must be numeric"):
        apply_to_long(pd.DataFrame({"group": ["A"], "n": ["many"]}), "opensafely", "t")
    with pytest.raises(DisclosureError, match="negative"):
        apply_to_long(pd.DataFrame({"group": ["A"], "n": [-1]}), "opensafely", "t")


def test_deterministic():
    long = table1_like(make_cohort())
    a = apply_to_long(long, "opensafely", "table1")
    b = apply_to_long(long.copy(), "opensafely", "table1")
    pd.testing.assert_frame_equal(a[0], b[0])
    pd.testing.assert_frame_equal(a[1], b[1])


def test_input_not_modified():
    long = table1_like(make_cohort())
    before = long.copy()
    apply_to_long(long, "opensafely", "table1")
    pd.testing.assert_frame_equal(long, before)


# --------------------------------------------------------------------------------------
# adversarial random tables (hypothesis)
# --------------------------------------------------------------------------------------
@st.composite
def partition_tables(draw):
    n_groups = draw(st.integers(2, 4))
    n_levels = draw(st.integers(2, 4))
    counts = draw(st.lists(st.lists(st.sampled_from([0, 1, 2, 3, 5, 7, 8, 9, 12, 20, 40, 66]),
                                    min_size=n_levels, max_size=n_levels), min_size=n_groups, max_size=n_groups))
    missing = draw(st.lists(st.sampled_from([0, 0, 1, 3, 9]), min_size=n_groups, max_size=n_groups))
    rows = []
    groups = [f"G{g}" for g in range(n_groups)]
    for g, lv, mis in zip(groups, counts, missing):
        for i, c in enumerate(lv):
            rows.append({"variable": "v", "level": f"L{i}", "group": g, "kind": "categorical",
                         "n": c, "denominator": sum(lv), "n_missing": mis})
    for i in range(n_levels):
        rows.append({"variable": "v", "level": f"L{i}", "group": "Total", "kind": "categorical",
                     "n": sum(lv[i] for lv in counts), "denominator": sum(map(sum, counts)), "n_missing": sum(missing)})
    t = pd.DataFrame(rows)
    t["percent"] = np.where(t["denominator"] > 0, 100 * t["n"] / t["denominator"].where(t["denominator"] > 0), np.nan)
    return t


@settings(max_examples=40, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(partition_tables())
def test_random_tables_never_leave_a_recoverable_cell(t):
    safe, report = apply_to_long(t, "opensafely", "random")
    for c in ["n", "denominator", "n_missing"]:
        pub = safe[c].dropna().astype(float)
        assert not ((pub >= 1) & (pub <= K)).any()
        assert (pub % 5 == 0).all()
    for grp, sub in t.groupby("group"):
        s = safe.loc[sub.index]
        assert_unrecoverable(sub["n"], s["n"], s["denominator"].notna().all(), where=f"levels of {grp}")
        # levels + missing sum to the group size (the column header, published unless redacted)
        if sub["n_missing"].iloc[0] > 0:
            assert_unrecoverable(list(sub["n"]) + [sub["n_missing"].iloc[0]],
                                 list(s["n"]) + [s["n_missing"].iloc[0]],
                                 safe.attrs["group_sizes"][grp] is not None, where=f"levels+missing of {grp}")
    # group sizes across groups
    sizes = (t.groupby("group")["denominator"].first() + t.groupby("group")["n_missing"].first())
    shown = pd.Series(safe.attrs["group_sizes"]).reindex(sizes.index)
    members = sizes.index != "Total"
    assert_unrecoverable(sizes[members], shown[members], pd.notna(shown["Total"]), where="group sizes")
    for c in ["n", "denominator", "n_missing"]:
        for lvl, sub in t.groupby("level"):
            tot = sub["group"] == "Total"
            s = safe.loc[sub.index]
            assert_unrecoverable(sub.loc[~tot, c], s.loc[~tot, c], s.loc[tot, c].notna().all(),
                                 where=f"{c} of {lvl} across groups")
    ok = safe["percent"].notna()
    np.testing.assert_allclose(safe.loc[ok, "percent"].to_numpy(dtype=float),
                               100 * safe.loc[ok, "n"].to_numpy(dtype=float) / safe.loc[ok, "denominator"].to_numpy(dtype=float))
    assert set(report["action"]) <= set(dc.ACTIONS)
    assert audit_table1(t, safe) == []


@settings(max_examples=20, derandomize=True, deadline=None)
@given(partition_tables())
def test_random_tables_sistan_floor(t):
    safe, _ = apply_to_long(t, "sistan_min3", "random")
    pub = safe["n"].dropna().astype(float)
    assert not ((pub >= 1) & (pub <= 2)).any()
    assert audit_table1(t, safe) == []
    kept = safe["n"].notna()
    np.testing.assert_array_equal(safe.loc[kept, "n"].astype(float), t.loc[kept, "n"].astype(float))


# --------------------------------------------------------------------------------------
# reports, display and figures
# --------------------------------------------------------------------------------------
def test_disclosure_report_combines_and_writes(tmp_path):
    cohort = make_cohort()
    _, r1 = apply_to_long(table1_like(cohort), "opensafely", "table1")
    _, r2 = apply_to_long(table2_like(cohort), "opensafely", "table2")
    combined = disclosure_report([r1, None, r2])
    assert len(combined) == len(r1) + len(r2)
    assert list(combined["output"].unique()) == ["table1", "table2"]
    paths = write_disclosure_report(combined, tmp_path / "out", profile=resolve_profile("auto", "private"))
    assert [p.name for p in paths] == ["disclosure_report.csv", "disclosure_report.md"]
    back = pd.read_csv(paths[0], dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(back, combined.astype(object), check_dtype=False)
    md = paths[1].read_text()
    assert md.startswith("# Disclosure report") and "opensafely (profile version 1)" in md
    assert "| table1" in md and "redacted-secondary" in md
    # byte-identical when written twice
    first = paths[0].read_bytes(), paths[1].read_bytes()
    write_disclosure_report(combined, tmp_path / "out", profile="opensafely")
    assert paths[0].read_bytes() == first[0]
    empty = write_disclosure_report(disclosure_report([]), tmp_path / "empty")
    assert "No disclosure-control actions" in empty[1].read_text()
    assert empty[0].read_text() == "output,row_key,column,kind,action,rule\n"


def test_mark_redacted_puts_marker_only_in_redacted_cells():
    long = table1_like(make_cohort())
    safe, _ = apply_to_long(long, "opensafely", "table1")
    shown = mark_redacted(safe)
    assert "redacted_columns" not in shown.columns and "disclosure_note" in shown.columns
    for i, cols in safe["redacted_columns"].items():
        for c in ["n", "denominator", "percent", "mean"]:
            assert (shown.at[i, c] == "[REDACTED]") == (c in cols.split(";"))


def test_figure_policy():
    os_ = figure_policy("opensafely")
    assert os_ == {"profile": "opensafely", "allow_microdata": False, "figure1": "aggregate",
                   "bland_altman_show_points": False, "min_count": 8, "rounding": "nearest 5",
                   "note": os_["note"]}
    assert "per-patient marks are not shown" in os_["note"]
    none = figure_policy(get_profile("none"))
    assert (none["figure1"], none["bland_altman_show_points"], none["min_count"], none["note"]) == \
        ("per_patient", True, 1, "")
    assert figure_policy("sistan_min3")["figure1"] == "aggregate"
    assert figure_policy(dataclasses.replace(get_profile("none"), allow_microdata=False))["figure1"] == "aggregate"


def test_doctests():
    import doctest

    result = doctest.testmod(dc, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 10


def test_report_summary_counts_cells_per_output_and_action():
    import pandas as pd

    from imr_analysis import disclosure

    report = pd.DataFrame({"output": ["t1", "t1", "t2"], "row": ["a", "b", "c"], "column": ["n", "n", "n"],
                           "kind": ["count"] * 3, "action": ["redacted", "rounded", "rounded"],
                           "rule": ["opensafely: <=7"] * 3})
    got = disclosure.report_summary(report)["cells"].to_dict()
    assert got == {("t1", "redacted"): 1, ("t1", "rounded"): 1, ("t2", "rounded"): 1}
    assert disclosure.report_summary(disclosure.empty_report())["cells"].to_dict() == {"no action needed": 0}
