"""Tests of imr_analysis.disclosure: profiles, suppression, rounding, reports.

The invariants checked on every protected table (private-data profiles):

* no published count lies in 1..k;
* profiles with secondary suppression (no rounding: ``sistan_min3``, and ``EXACT7``
  below, the opensafely threshold without rounding): for every additive relation whose
  total is published (levels -> denominator, levels + missing -> group size, groups ->
  Total, units -> service type -> total), the number of redacted cells is never exactly
  one and the redacted cells together hold 0 or more than k patients; and an
  independent linear-algebra audit (:class:`Auditor`, built from the meaning of the
  table, not from the module) finds no redacted cell that is exactly derivable from the
  published ones through any combination of relations;
* rounding profiles (``opensafely``): only the cells of 1..k patients are redacted;
  published counts are multiples of the rounding base; and an interval audit
  (:meth:`Auditor.pinned`, integer programming) finds no redacted cell whose value is
  fixed by the published rounded counts, each read as the range of true counts it can
  stand for; percentages equal 100 * n / denominator of the published (rounded) values.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imr_analysis import disclosure as dc
from imr_analysis import publish
from imr_analysis.disclosure import (
    DisclosureError,
    apply_to_long,
    figure_policy,
    get_profile,
    load_profiles,
    mark_redacted,
    resolve_profile,
    round_counts,
)

K = 7  # opensafely threshold
#: The opensafely threshold (counts 1-7) without rounding, with secondary suppression: the
#: exact-value reasoning of secondary suppression at the larger threshold.
EXACT7 = dataclasses.replace(get_profile("opensafely"), name="exact7", rounding_method=None,
                             rounding_base=None, recompute_totals=False, secondary_suppression=True)


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


def check_rounded_invariants(orig: pd.DataFrame, safe: pd.DataFrame, profile="opensafely", audit=None):
    """Invariants of a rounding profile (no secondary suppression): exactly the counts of
    1..k are redacted, the others are published rounded, percentages follow the published
    counts, and no redacted cell is fixed by the published rounded counts."""
    prof = get_profile(profile) if isinstance(profile, str) else profile
    k = prof.redact_counts_le
    for c in [c for c in ["n", "denominator", "n_missing"] if c in orig.columns]:
        o, p = orig[c].astype(float), safe[c].astype(float)
        small = (o >= 1) & (o <= k)
        assert p[small].isna().all(), f"a {c} of 1..{k} is published"
        assert p[o.notna() & ~small].notna().all(), f"a {c} above {k} or zero is redacted"
        pub = p.dropna()
        if prof.rounding_method == "nearest":
            assert (pub % prof.rounding_base == 0).all(), f"{c} not rounded to {prof.rounding_base}"
    if "percent" in safe.columns and "denominator" in safe.columns:
        ok = safe["percent"].notna()
        np.testing.assert_allclose(safe.loc[ok, "percent"].to_numpy(dtype=float),
                                   100 * safe.loc[ok, "n"].to_numpy(dtype=float)
                                   / safe.loc[ok, "denominator"].to_numpy(dtype=float))
    if audit is not None:
        assert audit(orig, safe, prof) == []


class Auditor:
    """Independent checks that no redacted cell can be recovered from published cells.

    Unknowns are the redacted cells, the redacted group sizes and free remainders
    (unpublished complements); every relation is linear.

    * :meth:`derivable` (exact values published): a redacted cell is derivable iff its
      coordinate vanishes on the null space of the relation matrix restricted to the
      unknowns (scipy.linalg.null_space).
    * :meth:`pinned` (rounded values published): every cell is an integer variable, a
      published count bounded by the true counts its rounded value can stand for, a
      redacted one by 1..k; a redacted cell is pinned when its minimum and maximum over
      all integer solutions of the relations coincide (scipy.optimize.milp).
    """

    def __init__(self):
        self.index: dict = {}
        self.rows: list = []

    def _v(self, name):
        return self.index.setdefault(name, len(self.index))

    def eq(self, plus, minus=()):
        """sum(plus) - sum(minus) = known constant."""
        self.rows.append(([self._v(p) for p in plus], [self._v(m) for m in minus]))

    def matrix(self, names) -> np.ndarray:
        col = {self.index[u]: i for i, u in enumerate(names)}
        A = np.zeros((len(self.rows), len(names)))
        for r, (plus, minus) in enumerate(self.rows):
            for p in plus:
                if p in col:
                    A[r, col[p]] += 1
            for m in minus:
                if m in col:
                    A[r, col[m]] -= 1
        return A

    def derivable(self, unknown: set, check: set) -> list:
        from scipy.linalg import null_space

        unk = sorted((u for u in unknown if u in self.index), key=self.index.get)
        if not unk or not self.rows:
            return []
        col = {u: i for i, u in enumerate(unk)}
        N = null_space(self.matrix(unk))
        return [u for u in unk if u in check and np.all(np.abs(N[col[u], :]) < 1e-9)]

    def pinned(self, true: dict, published: dict, k: int, rounding: tuple) -> list:
        """Redacted cells whose value the published rounded counts fix.

        ``true``: name -> true value (every variable); ``published``: name -> published
        value, or None when redacted (free remainders are absent: unpublished, >= 0).
        ``rounding``: (method, base). A published count ``r > 0`` stands for the true
        counts that round to it and are above k (``0`` is exact); a total recomputed as
        the sum of rounded counts may lie outside that range and is then bounded by the
        relations only. The bounds hold for the true values (checked), so a reader can
        know no more than this audit uses.
        """
        from scipy.optimize import Bounds, LinearConstraint, milp

        names = sorted(self.index, key=self.index.get)
        method, base = rounding
        lb, ub = np.zeros(len(names)), np.full(len(names), np.inf)
        x = np.array([float(true[nm]) for nm in names])
        redacted = []
        for j, nm in enumerate(names):
            if nm not in published:
                continue
            r = published[nm]
            if r is None:
                if x[j] > 0:
                    lb[j], ub[j] = 1, k
                    redacted.append(j)
                continue
            lo, hi = rounding_range(r, base, method, k)
            if lo <= x[j] <= hi:
                lb[j], ub[j] = lo, hi
            else:
                lb[j] = k + 1
        A = self.matrix(names)
        assert np.allclose(A @ x, 0), "the relations do not hold for the true values"
        assert np.all((x >= lb) & (x <= ub)), "a bound excludes the true value"
        cons = LinearConstraint(A, 0, 0)
        out = []
        for j in redacted:
            c = np.zeros(len(names))
            c[j] = 1
            lo = milp(c, constraints=cons, integrality=np.ones(len(names)), bounds=Bounds(lb, ub))
            hi = milp(-c, constraints=cons, integrality=np.ones(len(names)), bounds=Bounds(lb, ub))
            assert lo.status == 0 and hi.status == 0
            if round(lo.fun) == round(-hi.fun):
                out.append(names[j])
        return out


def rounding_range(r: float, base: int, method: str, k: int) -> tuple[int, int]:
    """True counts a published count ``r`` can stand for (counts 1..k are redacted).

    Examples: nearest 5: 10 -> 8..12 (8 is the smallest count not redacted), 15 -> 13..17;
    midpoint 6: 9 -> 8..12, 15 -> 13..18; 0 -> 0.
    """
    if r == 0:
        return 0, 0
    if method == "nearest":  # floor(x / base + 1/2) * base == r
        lo, hi = int(np.ceil(r - base / 2)), int(np.ceil(r + base / 2)) - 1
    else:  # ceil(x / base) * base - floor(base / 2) == r
        lo, hi = int(r + base // 2 - base + 1), int(r + base // 2)
    return max(lo, k + 1), hi


def table1_relations(orig: pd.DataFrame, safe: pd.DataFrame):
    """Relations of a Table-1-like table, built from its meaning (not from the module).

    Returns the :class:`Auditor`, the unknowns and redacted cells of the exact audit, and
    the true and published value of every variable (for the interval audit)."""
    a = Auditor()
    unknown, check = set(), set()
    true, published = {}, {}
    for c in ["n", "denominator", "n_missing"]:
        red = orig[c].notna() & safe[c].isna()
        for i in np.flatnonzero(red.to_numpy()):
            unknown.add((c, i))
            check.add((c, i))
        for i in np.flatnonzero(orig[c].notna().to_numpy()):
            true[(c, i)] = orig[c].iat[i]
            published[(c, i)] = None if pd.isna(safe[c].iat[i]) else float(safe[c].iat[i])
    sizes = safe.attrs["group_sizes"]
    for g, v in sizes.items():
        if v is None:
            unknown.add(("size", g))
            check.add(("size", g))
        published[("size", g)] = v
    free = iter(range(10 ** 6))
    for (var, grp), sub in orig.groupby(["variable", "group"], sort=False):
        idx = list(sub.index)
        for i in idx[1:]:  # the denominator and the missing count are repeated on each row
            a.eq([("denominator", i)], [("denominator", idx[0])])
            a.eq([("n_missing", i)], [("n_missing", idx[0])])
        d0, m0 = ("denominator", idx[0]), ("n_missing", idx[0])
        a.eq([d0, m0], [("size", grp)])  # non-missing + missing = group size
        true[("size", grp)] = sub["denominator"].iloc[0] + sub["n_missing"].iloc[0]
        levels = [("n", i) for i in idx]
        if sub["n"].sum() == sub["denominator"].iloc[0]:
            a.eq(levels, [d0])
        else:  # yes-only rows: n + unpublished complement = denominator
            for i in idx:
                r = ("free", next(free))
                unknown.add(r)
                true[r] = orig.at[i, "denominator"] - orig.at[i, "n"]
                a.eq([("n", i), r], [("denominator", i)])
    for (var, lvl), sub in orig.groupby(["variable", orig["level"].fillna("")], sort=False):
        tot = sub.index[sub["group"] == "Total"]
        parts = sub.index[sub["group"] != "Total"]
        for c in ["n", "denominator", "n_missing"]:
            a.eq([(c, i) for i in parts], [(c, tot[0])])
    groups = [g for g in sizes if g != "Total"]
    a.eq([("size", g) for g in groups], [("size", "Total")])
    return a, unknown, check, true, published


def audit_table1(orig: pd.DataFrame, safe: pd.DataFrame) -> list:
    """Redacted cells of a Table-1-like table that are exactly derivable."""
    a, unknown, check, _, _ = table1_relations(orig, safe)
    return a.derivable(unknown, check)


def interval_audit_table1(orig: pd.DataFrame, safe: pd.DataFrame, profile) -> list:
    """Redacted cells of a Table-1-like table fixed by the published rounded counts."""
    prof = get_profile(profile) if isinstance(profile, str) else profile
    a, _, _, true, published = table1_relations(orig, safe)
    return a.pinned(true, published, prof.redact_counts_le, (prof.rounding_method, prof.rounding_base))


def table2_relations(orig: pd.DataFrame, safe: pd.DataFrame):
    """Relations of a Table-2-like table: units -> service type -> total, for every
    measure; and each unit's patients, shown as ``n`` of several measures and as the
    denominator of its module rows, is one quantity."""
    a = Auditor()
    unknown, check = set(), set()
    true, published = {}, {}
    for c in ["n", "denominator"]:
        red = orig[c].notna() & safe[c].isna()
        for i in np.flatnonzero(red.to_numpy()):
            unknown.add((c, i))
            check.add((c, i))
        for i in np.flatnonzero(orig[c].notna().to_numpy()):
            true[(c, i)] = orig[c].iat[i]
            published[(c, i)] = None if pd.isna(safe[c].iat[i]) else float(safe[c].iat[i])
    key = orig["unit"].fillna(orig["service_type"])
    total_patients = orig.index[(orig["level"] == "total") & (orig["measure"] == "patients")][0]
    for (measure,), sub in orig.groupby(["measure"], sort=False):
        for c in ["n", "denominator"]:
            if sub[c].isna().all():
                continue
            if measure == "patients" and c == "denominator":  # the cohort size, on every row
                for i in sub.index:
                    a.eq([(c, i)], [("n", total_patients)])
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
            true[r] = orig.at[i, "denominator"] - orig.at[i, "n"]
            a.eq([("n", i), r], [("denominator", i)])
    return a, unknown, check, true, published


def audit_table2(orig: pd.DataFrame, safe: pd.DataFrame) -> list:
    """Redacted cells of a Table-2-like table that are exactly derivable."""
    a, unknown, check, _, _ = table2_relations(orig, safe)
    return a.derivable(unknown, check)


def interval_audit_table2(orig: pd.DataFrame, safe: pd.DataFrame, profile) -> list:
    """Redacted cells of a Table-2-like table fixed by the published rounded counts."""
    prof = get_profile(profile) if isinstance(profile, str) else profile
    a, _, _, true, published = table2_relations(orig, safe)
    return a.pinned(true, published, prof.redact_counts_le, (prof.rounding_method, prof.rounding_base))


# --------------------------------------------------------------------------------------
# profiles
# --------------------------------------------------------------------------------------
def test_profiles_file_is_versioned_and_complete():
    profiles = load_profiles()
    assert {"none", "opensafely", "sistan_min3"} <= set(profiles)
    assert isinstance(dc.profiles_version(), int) and dc.profiles_version() >= 1
    assert dc.profiles_version() == 2  # 2: no secondary suppression in the rounding profiles
    os_ = profiles["opensafely"]
    assert (os_.redact_counts_le, os_.rounding_method, os_.rounding_base) == (7, "nearest", 5)
    assert not os_.secondary_suppression and os_.recompute_totals and os_.remove_min_max
    assert (os_.redact_summaries_le, os_.flag_zero_hundred, os_.allow_microdata) == (7, True, False)
    si = profiles["sistan_min3"]
    assert (si.redact_counts_le, si.rounding_method, si.secondary_suppression, si.allow_microdata) == (2, None, True, False)
    none = profiles["none"]
    assert none.is_noop and none.allow_microdata
    mid = profiles["opensafely_midpoint6"]
    assert (mid.rounding_method, mid.secondary_suppression) == ("midpoint", False)
    assert none.strength < si.strength < os_.strength
    # secondary suppression only where nothing is rounded
    assert all(not p.secondary_suppression for p in profiles.values() if p.rounding_method)


def test_profiles_file_validation(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text("version: 1\ndefaults: {synthetic: none, private: none}\nprofiles:\n  none: {strength: 0}\n")
    with pytest.raises(DisclosureError, match="missing fields"):
        load_profiles(bad)


def test_rounding_with_secondary_suppression_is_refused(tmp_path):
    import yaml

    doc = yaml.safe_load(dc.PROFILES_FILE.read_text(encoding="utf-8"))
    doc["profiles"]["opensafely"]["secondary_suppression"] = True
    bad = tmp_path / "profiles.yaml"
    bad.write_text(yaml.safe_dump(doc), encoding="utf-8")
    with pytest.raises(DisclosureError, match=r"profile 'opensafely': rounding and secondary_suppression "
                                              r"cannot be combined"):
        load_profiles(bad)
    # also when a profile is built in code
    with pytest.raises(DisclosureError, match=r"'opensafely_midpoint6' combines rounding \(midpoint 6\) "
                                              r"with secondary suppression"):
        dataclasses.replace(get_profile("opensafely_midpoint6"), secondary_suppression=True)
    # either alone is fine
    assert EXACT7.secondary_suppression and EXACT7.rounding_method is None
    assert "with secondary suppression" not in get_profile("opensafely").rule_text()
    assert "with secondary suppression" in get_profile("sistan_min3").rule_text()


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
    assert dataclasses.asdict(p)["weaker_than_default"] is True
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
    # heart disease column: 3 redacted; the total, one of whose counts is redacted, is
    # rounded on its own. Rounding leaves the 3 unknown: 50 - 10 - 15 - 25 = 0, with
    # every published count +-2, says 1..7 (the exact 50 - 8 - 16 - 23 is not published)
    t2 = t.assign(n=[3, 8, 16, 23, 50])
    safe2, report2 = apply_to_long(t2, "opensafely", "heart_disease")
    assert safe2["n"].tolist() == [pd.NA, 10, 15, 25, 50]
    acts = report2.set_index("row_key")["action"]
    assert acts["age_band=21-30"] == "redacted" and acts["age_band=31-40"] == "rounded"
    assert "redacted-secondary" not in set(report2["action"])
    lo = 50 - 2 - sum(v + 2 for v in (10, 15, 25))
    hi = 50 + 2 - sum(v - 2 for v in (10, 15, 25))
    assert (max(lo, 1), min(hi, K)) == (1, 7)
    # without rounding the 8 is hidden too (else 3 = 50 - 8 - 16 - 23): a member, not the total
    safe3, report3 = apply_to_long(t2, EXACT7, "heart_disease")
    assert safe3["n"].tolist() == [pd.NA, pd.NA, 16, 23, 50]
    assert report3.set_index("row_key")["action"]["age_band=31-40"] == "redacted-secondary"


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
    assert safe3["n"].tolist() == [pd.NA, 20, 45] and safe3["denominator"].tolist() == [70, 70, 70]


def test_midpoint_profile_rounds_with_midpoints():
    t = pd.DataFrame({"group": ["A", "B", "Total"], "n": [50, 30, 80]})
    safe, _ = apply_to_long(t, "opensafely_midpoint6", "t")
    assert safe["n"].tolist() == [51, 27, 78]  # 51 + 27: the total is recomputed


# --------------------------------------------------------------------------------------
# Table-1-like and Table-2-like tables of a private cohort with a 2-patient unit
# --------------------------------------------------------------------------------------
def test_table1_like_private_cohort_opensafely_redacts_small_cells_only():
    cohort = make_cohort()
    assert (cohort["service_unit"] == "EDP Ferrara").sum() == 2
    long = table1_like(cohort)
    safe, report = apply_to_long(long, "opensafely", "table1")
    edp = long["group"] == "EDP"
    # every non-zero EDP count, and the EDP denominator and column header, is redacted
    assert safe.loc[edp & (long["n"] > 0), "n"].isna().all()
    assert safe.loc[edp, "denominator"].isna().all()
    assert safe.loc[edp & (long["n"] > 0), "redacted"].all()
    assert safe.attrs["group_sizes"] == {"CMHC": 55, "SerD": 20, "EDP": None, "Total": 75}
    # no secondary suppression: the other services keep every count above 7, rounded, and
    # the published rounded counts do not fix any redacted cell
    assert "redacted-secondary" not in set(report["action"])
    check_rounded_invariants(long, safe, "opensafely", audit=interval_audit_table1)
    # sex: CMHC F 19, M 36 (55); SerD F 7, M 13 (20); EDP F 0, M 2 (2); Total F 26, M 51 (77)
    sex = long["variable"] == "sex"
    assert safe.loc[sex, "n"].tolist() == [20, pd.NA, 0, 25, 35, 15, pd.NA, 50]
    assert safe.loc[sex, "denominator"].tolist() == [55, 20, pd.NA, 75, 55, 20, pd.NA, 75]
    # the single CMHC patient with a substance use disorder is redacted
    cmhc_sud = (long["variable"] == "diagnosis_group") & (long["level"] == "substance_use") & (long["group"] == "CMHC")
    assert long.loc[cmhc_sud, "n"].item() == 1 and safe.loc[cmhc_sud, "n"].isna().item()
    # the report never carries values, only kinds and actions
    assert list(report.columns) == dc.REPORT_COLUMNS
    assert set(report["action"]) <= set(dc.ACTIONS)
    assert set(report["kind"]) <= {"categorical", "continuous"}
    assert not report.apply(lambda col: col.str.fullmatch(r"\d+(\.\d+)?")).any().any()


@pytest.mark.parametrize("profile", [EXACT7, get_profile("sistan_min3")], ids=["exact7", "sistan_min3"])
def test_table1_like_private_cohort_secondary_suppression_leaves_nothing_derivable(profile):
    long = table1_like(make_cohort())
    safe, report = apply_to_long(long, profile, "table1")
    k = profile.redact_counts_le
    small = (long["n"] >= 1) & (long["n"] <= k)
    assert safe.loc[small, "n"].isna().all()
    check_table1_invariants(long, safe, k=k, base=None)  # includes the exact audit
    # the single CMHC patient with a substance use disorder cannot be derived either
    cmhc_sud = (long["variable"] == "diagnosis_group") & (long["level"] == "substance_use") & (long["group"] == "CMHC")
    assert safe.loc[cmhc_sud, "n"].isna().item()
    assert (report["action"] == "redacted-secondary").any()


def test_midpoint6_profile_leaves_no_redacted_cell_fixed_by_rounded_counts():
    cohort = make_cohort()
    long1, long2 = table1_like(cohort), table2_like(cohort)
    safe1, rep1 = apply_to_long(long1, "opensafely_midpoint6", "table1")
    safe2, rep2 = apply_to_long(long2, "opensafely_midpoint6", "table2")
    assert "redacted-secondary" not in set(rep1["action"]) | set(rep2["action"])
    check_rounded_invariants(long1, safe1, "opensafely_midpoint6", audit=interval_audit_table1)
    check_rounded_invariants(long2, safe2, "opensafely_midpoint6", audit=interval_audit_table2)
    assert set(safe1["n"].dropna().astype(int) % 6) <= {0, 3}


def test_limit_rounding_alone_can_fix_a_cell_through_two_relations():
    """The documented limit of rounding without secondary suppression (DISCLOSURE.md,
    "Limits"). A's 6 in L0 is redacted; A's 12 (published 10) and A's 18 (published 20)
    give A's L0 = 20 - 10 +- 4, so 6 or 7; B's and C's 8 (published 10) and the Total's
    22 (published 20) give 20 - 10 - 10 +- 6, at most 6. Together: exactly 6. No table
    of the generated cohorts has such a pattern (benchmarks/disclosure_share.py); the
    interval audit of the tests above finds none in the fixtures."""
    t = _partition({"A": [6, 12], "B": [8, 30], "C": [8, 30]})
    safe, _ = apply_to_long(t, "opensafely", "t")
    assert safe["n"].tolist()[:2] == [pd.NA, 10] and safe["denominator"].tolist()[:2] == [20, 20]
    assert interval_audit_table1(t, safe, "opensafely") == [("n", 0)]
    # the same reasoning with secondary suppression on exact values protects it
    exact, _ = apply_to_long(t, EXACT7, "t")
    assert audit_table1(t, exact) == [] and exact.loc[1, "n"] is pd.NA


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


def test_table2_like_opensafely_redacts_the_two_patient_units_only():
    cohort = make_cohort()
    long = table2_like(cohort)
    safe, report = apply_to_long(long, "opensafely", "table2")
    small_units = long["unit"].isin(["EDP Ferrara", "SerD Cento"]) & (long["measure"] == "patients")
    assert safe.loc[small_units, "n"].isna().all()
    assert safe.loc[small_units, "redacted"].all()
    assert "redacted-secondary" not in set(report["action"])
    check_rounded_invariants(long, safe, "opensafely", audit=interval_audit_table2)
    # the other units, the service types and the total are published, rounded
    patients = long["measure"] == "patients"  # units 30, 25, 18, 2, 2; types 55, 20, 2; total 77
    assert safe.loc[patients, "n"].tolist() == [30, 25, 20, pd.NA, pd.NA, 55, 20, pd.NA, 75]
    assert safe["min"].isna().all() and safe["max"].isna().all()
    # sessions mean of a 2-patient unit is redacted
    tiny_sessions = long["unit"].eq("SerD Cento") & long["measure"].eq("sessions")
    assert safe.loc[tiny_sessions, ["mean", "sd"]].isna().all().all()


@pytest.mark.parametrize("profile", [EXACT7, get_profile("sistan_min3")], ids=["exact7", "sistan_min3"])
def test_table2_like_two_patient_unit_cannot_be_recovered_from_subtotals(profile):
    cohort = make_cohort()
    long = table2_like(cohort)
    safe, report = apply_to_long(long, profile, "table2")
    k = profile.redact_counts_le
    small_units = long["unit"].isin(["EDP Ferrara", "SerD Cento"]) & (long["measure"] == "patients")
    assert safe.loc[small_units, "n"].isna().all()
    assert safe.loc[small_units, "redacted"].all()
    for measure, sub in long.groupby("measure"):
        for stype, units in sub[sub["level"] == "unit"].groupby("service_type"):
            subtotal = sub[(sub["level"] == "type") & (sub["service_type"] == stype)].index
            assert units["n"].sum() == long.loc[subtotal, "n"].item()
            assert_unrecoverable(units["n"], safe.loc[units.index, "n"], safe.loc[subtotal, "n"].notna().all(),
                                 k=k, where=f"{measure}/{stype}")
        types = sub[sub["level"] == "type"]
        total = sub[sub["level"] == "total"].index
        assert_unrecoverable(types["n"], safe.loc[types.index, "n"], safe.loc[total, "n"].notna().all(),
                             k=k, where=f"{measure}/types")
    # module rows: n + unpublished complement = the unit's patients (its denominator)
    mod = long["measure"] == "module_06"
    comp = (long["denominator"] - long["n"])[mod]
    shown = mod & safe["n"].notna() & safe["denominator"].notna()
    assert not ((comp[shown[mod]] >= 1) & (comp[shown[mod]] <= k)).any()
    pub = safe["n"].dropna().astype(float)
    assert not ((pub >= 1) & (pub <= k)).any()
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
    # exact values: 66 of 69 would tell that 3 patients of A do not take it; the 66 (a
    # member) is hidden, not the denominator
    safe, report = apply_to_long(t, EXACT7, "t")
    assert safe["n"].tolist() == [pd.NA, pd.NA, 106] and safe["denominator"].tolist() == [69, 80, 149]
    assert report.loc[(report["row_key"].str.contains("group=A")) & (report["column"] == "n"), "action"].item() \
        == "redacted-secondary"
    # rounded: 65 of 70 leaves the complement anywhere in 1..9
    safe, report = apply_to_long(t, "opensafely", "t")
    assert safe["n"].tolist() == [65, 40, 105] and safe["denominator"].tolist() == [70, 80, 150]
    n_lo, n_hi = rounding_range(65, 5, "nearest", K)
    d_lo, d_hi = rounding_range(70, 5, "nearest", K)
    assert (d_lo - n_hi, d_hi - n_lo) == (1, 9)
    assert report.empty or "redacted" not in set(report["action"])
    unchanged, rep0 = apply_to_long(t, "none", "t")
    assert unchanged["n"].tolist() == [66, 40, 106] and rep0.empty


def _partition(groups: dict) -> pd.DataFrame:
    """A one-variable Table-1-like long table from {group: [counts per level]} (+ Total)."""
    rows = []
    total = np.sum(list(groups.values()), axis=0)
    for g, counts in {**groups, "Total": total}.items():
        for i, c in enumerate(counts):
            rows.append({"variable": "v", "level": f"L{i}", "group": g, "kind": "categorical",
                         "n": int(c), "denominator": int(sum(counts)), "n_missing": 0})
    out = pd.DataFrame(rows)
    out["percent"] = 100 * out["n"] / out["denominator"]
    return out


def test_secondary_cells_are_members_not_group_sizes():
    """G0 (17 patients) has two cells of 1: its 15 can no longer be published (15 = 17 - 1 - 1),
    nor can G1's cells of that level (else G0's = Total - G1). The earlier choice, the cell
    leaving the fewest unsafe relations, hid the group sizes of G0 and G1 (their
    denominators and column headers) on top of every count of both groups; hiding
    members instead keeps every size and denominator published."""
    t = _partition({"G0": [1, 1, 15], "G1": [5, 20, 20]})
    safe, report = apply_to_long(t, "sistan_min3", "t")
    members = t["group"] != "Total"
    assert safe.loc[members, "n"].isna().all()
    assert safe.loc[~members, "n"].tolist() == [6, 21, 35]
    assert safe["denominator"].tolist() == [17] * 3 + [45] * 3 + [62] * 3
    assert safe.attrs["group_sizes"] == {"G0": 17, "G1": 45, "Total": 62}
    sec = report[report["action"] == "redacted-secondary"]
    assert set(sec["column"]) == {"n", "percent"} and (sec["column"] == "n").sum() == 4
    assert audit_table1(t, safe) == []
    check_table1_invariants(t, safe, k=2, base=None)


def test_secondary_cell_is_the_smallest_member_ties_by_table_order():
    # A's 2 is redacted; B (9) and C (9) tie as the smallest member: the first is hidden,
    # never the Total
    t = pd.DataFrame({"group": ["A", "B", "C", "D", "Total"], "n": [2, 9, 9, 30, 50]})
    safe, report = apply_to_long(t, "sistan_min3", "t")
    assert safe["n"].tolist() == [pd.NA, pd.NA, 9, 30, 50]
    assert report.set_index("row_key").loc["group=B", "action"] == "redacted-secondary"
    # the same table twice gives the same choice
    pd.testing.assert_frame_equal(apply_to_long(t, "sistan_min3", "t")[0], safe)


def test_secondary_cell_is_a_size_only_when_every_cell_of_the_relation_is_one():
    # G0's two patients: its counts and its size are redacted. Its size would follow from
    # the others (72 - 30 - 40): every cell of that relation is a group size, and the one
    # hidden is the one losing least -- G1's, whose counts are already hidden (else
    # 1 + 10 + 15 = 26 and 1 + 20 + 25 = 46 would reveal G0's); G2's or the Total's would
    # follow from their published counts and cost more cells
    t = _partition({"G0": [1, 1], "G1": [10, 20], "G2": [15, 25]})
    safe, report = apply_to_long(t, "sistan_min3", "t")
    assert safe.attrs["group_sizes"] == {"G0": None, "G1": None, "G2": 40, "Total": 72}
    assert safe["n"].tolist() == [pd.NA, pd.NA, pd.NA, pd.NA, 15, 25, 26, 46]
    assert audit_table1(t, safe) == []


def test_table2_small_complement_of_a_module_row_is_protected():
    """A unit's patients are one cell, shown as the n of its patient row and the
    denominator of its module rows: "9 of 10 patients of CMHC B had module 6" tells that
    one did not, and the 9 is hidden (the unit's 10 patients stay published)."""
    rows = []
    for unit, n, m in (("CMHC A", 20, 12), ("CMHC B", 10, 9), ("CMHC C", 15, 5)):
        base = {"unit": unit, "service_type": "CMHC", "level": "unit"}
        rows += [{**base, "measure": "patients", "n": n, "denominator": 45},
                 {**base, "measure": "module_06", "n": m, "denominator": n}]
    rows += [{"unit": np.nan, "service_type": "CMHC", "level": "type", "measure": "patients", "n": 45,
              "denominator": 45},
             {"unit": np.nan, "service_type": "CMHC", "level": "type", "measure": "module_06", "n": 26,
              "denominator": 45},
             {"unit": "Total", "service_type": "Total", "level": "total", "measure": "patients", "n": 45,
              "denominator": 45},
             {"unit": "Total", "service_type": "Total", "level": "total", "measure": "module_06", "n": 26,
              "denominator": 45}]
    t = pd.DataFrame(rows)
    safe, report = apply_to_long(t, "sistan_min3", "table2")
    b_module = (t["unit"] == "CMHC B") & (t["measure"] == "module_06")
    assert safe.loc[b_module, "n"].isna().item()
    assert safe.loc[t["measure"] == "patients", "n"].tolist() == [20, 10, 15, 45, 45]
    # and a second unit's module count, the smallest (5), so that B's 9 = 26 - 12 - 5 is not derivable
    assert safe.loc[t["measure"] == "module_06", "n"].isna().tolist() == [False, True, True, False, False]


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
    assert safe["n"].tolist() == [65, 30, pd.NA, 100]  # EDP: 5 redacted; the rest rounded
    assert safe["percent"].tolist()[:2] == [100 * 65 / 70, 100 * 30 / 50]  # over rounded denominators
    assert "_denominator" not in set(report["column"])
    # without rounding the CMHC count is hidden too (its complement, 3, is derivable), and
    # so is SerD's (else CMHC's = 101 - 30 - EDP's): members, the Total stays published
    exact, _ = apply_to_long(t, EXACT7, "module_frequency")
    assert exact["n"].tolist() == [pd.NA, pd.NA, pd.NA, 101]


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


def test_edge_tables_are_protected_or_passed_through():
    """An empty table, a table without counts, a count column without values and a Table-2
    layout whose ``level`` is not a tier all go through (and keep the companion columns)."""
    long = table1_like(make_cohort())
    safe, report = apply_to_long(long.iloc[:0], "opensafely", "t")
    assert safe.empty and report.empty and list(safe.columns[-3:]) == list(dc.COMPANION_COLUMNS)
    means = pd.DataFrame({"group": ["A", "Total"], "mean": [1.0, 1.5], "min": [0, 0]})
    safe, report = apply_to_long(means, "opensafely", "t")
    assert safe["min"].isna().all() and set(report["action"]) == {"removed"}
    safe, _ = apply_to_long(long.assign(n_missing=np.nan), "sistan_min3", "t")
    assert safe["n_missing"].isna().all() and not ((safe["n"] >= 1) & (safe["n"] <= 2)).any()
    safe, _ = apply_to_long(table2_like(make_cohort()).assign(level="x"), "opensafely", "t")
    assert not ((safe["n"] >= 1) & (safe["n"] <= K)).any()


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
    """Secondary suppression at the opensafely threshold, on exact values (``EXACT7``)."""
    safe, report = apply_to_long(t, EXACT7, "random")
    for c in ["n", "denominator", "n_missing"]:
        pub = safe[c].dropna().astype(float)
        assert not ((pub >= 1) & (pub <= K)).any()
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


@settings(max_examples=40, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(partition_tables())
def test_random_tables_opensafely_redact_only_small_counts_and_round(t):
    safe, report = apply_to_long(t, "opensafely", "random")
    check_rounded_invariants(t, safe, "opensafely")
    assert "redacted-secondary" not in set(report["action"])
    sizes = (t.groupby("group", sort=False)["denominator"].first() + t.groupby("group", sort=False)["n_missing"].first())
    shown = pd.Series(safe.attrs["group_sizes"]).reindex(sizes.index)
    assert (shown.isna() == ((sizes >= 1) & (sizes <= K))).all()  # headers: only groups of 1..7 hidden


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
def test_disclosure_report_combines_and_writes(tmp_path, capsys):
    cohort = make_cohort()
    _, r1 = apply_to_long(table1_like(cohort), "opensafely", "table1")
    _, r2 = apply_to_long(table2_like(cohort), "opensafely", "table2")
    run = publish.Run("02_demo", tmp_path, tmp_path, tmp_path / "out", tmp_path, "private",
                      resolve_profile("auto", "private"), figure_policy("opensafely"), [r1, dc.empty_report(), r2])
    summary = run.write_disclosure_report()
    paths = [tmp_path / "out" / "disclosure" / "02_demo" / f"disclosure_report.{ext}" for ext in ("csv", "md")]
    assert capsys.readouterr().out.splitlines() == [f"wrote <outside the compendium>/{p.name}" for p in paths]
    back = pd.read_csv(paths[0], dtype=str, keep_default_na=False)
    assert len(back) == len(r1) + len(r2) == summary["cells"].sum()
    assert list(back["output"].unique()) == ["table1", "table2"]
    pd.testing.assert_frame_equal(back, pd.concat([r1, r2], ignore_index=True).astype(object), check_dtype=False)
    md = paths[1].read_text()
    assert md.startswith("# Disclosure report") and f"opensafely (profile version {dc.profiles_version()})" in md
    assert "| table1" in md and "| redacted " in md and "redacted-secondary" not in md
    # byte-identical when written twice
    first = paths[0].read_bytes(), paths[1].read_bytes()
    run.write_disclosure_report()
    assert (paths[0].read_bytes(), paths[1].read_bytes()) == first
    empty = dataclasses.replace(run, tables=tmp_path / "empty", reports=[])
    assert empty.write_disclosure_report()["cells"].tolist() == [0]
    folder = tmp_path / "empty" / "disclosure" / "02_demo"
    assert "No disclosure-control actions" in (folder / "disclosure_report.md").read_text()
    assert (folder / "disclosure_report.csv").read_text() == "output,row_key,column,kind,action,rule\n"


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


def test_report_summary_counts_cells_per_output_and_action(tmp_path):
    report = pd.DataFrame({"output": ["t1", "t1", "t2"], "row_key": ["a", "b", "c"], "column": ["n", "n", "n"],
                           "kind": ["count"] * 3, "action": ["redacted", "rounded", "rounded"],
                           "rule": ["opensafely: <=7"] * 3})
    run = publish.Run("05_demo", tmp_path, tmp_path, tmp_path, tmp_path, "private", get_profile("opensafely"),
                      figure_policy("opensafely"), [report])
    got = run.write_disclosure_report()["cells"].to_dict()
    assert got == {("t1", "redacted"): 1, ("t1", "rounded"): 1, ("t2", "rounded"): 1}
    assert dataclasses.replace(run, reports=[]).write_disclosure_report()["cells"].to_dict() == {"no action needed": 0}


def test_a_percentage_row_that_implies_a_small_count_is_redacted():
    """93.3% inside the limits of 30 patients means 2 outside: hidden; 80% of 30 (6 outside) too; 50% not."""
    t = pd.DataFrame({"measure": ["Bland-Altman differences inside the limits (%)"] * 3,
                      "estimate": [100 * 28 / 30, 80.0, 50.0], "ci_low": [78.0, 61.0, 31.0], "n": [30, 30, 30]})
    safe, report = dc.apply_to_statistics(t, "opensafely", "demo")
    assert safe["estimate"].isna().tolist() == [True, True, False]
    assert safe["ci_low"].isna().tolist() == [True, True, False]
    assert set(report.loc[report["column"] == "estimate", "action"]) == {"redacted"}
    assert dc.apply_to_statistics(t, "none", "demo")[0]["estimate"].notna().all()
