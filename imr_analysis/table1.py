"""Table 1: demographic and clinical characteristics, by service type and in total.

:func:`table1_long` gives the numbers, :func:`table1_tests` the tests, :func:`format_table1` the
table as printed, :func:`table1_notes` its footnotes. Percentages are of the patients with a known
value (the others are counted as missing); quartiles by :data:`QUANTILE_METHOD` (SPSS's), SDs have
ddof 1. Table 2 and Figure 1 share :func:`select_services` and the cell formats.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from . import stats as st
from .constants import (DIAGNOSIS_GROUP_LABELS, DIAGNOSIS_GROUPS, DISTRICTS, EMPLOYMENT_STATUS, LIVING_CONDITION,
                        MARITAL_STATUS, MEDICATION_CLASS_LABELS, SERVICE_TYPES, SEXES)

GROUP_COLUMN = "service_type"
TOTAL = "Total"
ALL_SERVICES = "all services"
LONG_COLUMNS = ["variable", "level", "group", "kind", "n", "denominator", "percent", "n_missing",
                "mean", "sd", "median", "q1", "q3", "min", "max"]
LONG_DTYPES = {c: "str" if i < 4 else "int64" if c in ("n", "denominator", "n_missing") else "float64"
               for i, c in enumerate(LONG_COLUMNS)}


@dataclass(frozen=True)
class Variable:
    """A Table 1 variable; a ``"binary"`` one is a medication class, shown as its level "yes"."""
    column: str
    label: str
    kind: str
    levels: tuple = ()


MEDICATION_SECTION = "Psychotropic medication at IMR start"
TABLE1_VARIABLES: tuple[Variable, ...] = (
    Variable("sex", "Sex", "categorical", SEXES),
    Variable("age_at_imr_start", "Age at IMR start, years", "continuous"),
    Variable("age_at_first_treatment", "Age at first mental health treatment, years", "continuous"),
    Variable("residence_district", "Residence (health district)", "categorical", DISTRICTS),
    Variable("education_years", "Education, years", "continuous"),
    Variable("marital_status", "Marital status", "categorical", MARITAL_STATUS),
    Variable("living_condition", "Living condition", "categorical", LIVING_CONDITION),
    Variable("employment_status", "Employment", "categorical", EMPLOYMENT_STATUS),
    Variable("diagnosis_group", "Diagnosis (ICD-10)", "categorical", DIAGNOSIS_GROUPS),
    Variable("illness_duration_years", "Duration of illness, years", "continuous"),
    *(Variable(f"med_{c}", MEDICATION_CLASS_LABELS[c], "binary", ("yes",))
      for c in ("antipsychotic", "antidepressant", "mood_stabilizer", "anxiolytic_sedative", "addiction", "none")),
)
VARIABLES_BY_COLUMN = {v.column: v for v in TABLE1_VARIABLES}
LEVEL_LABELS: dict[str, dict[str, str]] = {
    "sex": {"M": "Male", "F": "Female"},
    "residence_district": {"outside": "Outside the province"},
    "marital_status": {"never_married": "Never married", "married_cohabiting": "Married or cohabiting",
                       "separated_divorced": "Separated or divorced", "widowed": "Widowed"},
    "living_condition": {"alone": "Alone", "family_of_origin": "With family of origin",
                         "partner_children": "With partner and/or children",
                         "supported_housing": "Supported housing or residential facility", "other": "Other"},
    "employment_status": {"employed": "Employed", "unemployed": "Unemployed", "student": "Student",
                          "pensioner": "Pensioner", "other": "Other"},
    "diagnosis_group": dict(DIAGNOSIS_GROUP_LABELS),
}
DEFAULT_DECIMALS = {"percent": 1, "mean": 2, "quantile": 1, "p": 3}
#: numpy.quantile's methods, each with what it is; the default is SPSS's (the paper's software).
QUANTILE_METHODS = {"weibull": "the (n + 1)p-th ordered value, interpolated: SPSS's default, R's type 6",
                    "linear": "the ((n - 1)p + 1)-th ordered value, interpolated: pandas' and R's default, type 7",
                    **{m: f"R's type {k}" for k, m in enumerate(["inverted_cdf", "averaged_inverted_cdf",
                       "closest_observation", "interpolated_inverted_cdf", "hazen"], 1)},
                    "median_unbiased": "R's type 8", "normal_unbiased": "R's type 9",
                    **dict.fromkeys(["lower", "higher", "midpoint", "nearest"], "numpy's discontinuous rule")}
QUANTILE_METHOD = "weibull"
#: Levels of age at IMR start counted besides its summary (the paper counts the 18-year-olds).
AGE_BANDS = ("under_18", "18", "over_18")


def require_columns(df: pd.DataFrame, columns: Iterable[str], what: str = "cohort") -> None:
    """Raise a ``KeyError`` naming the ``columns`` that ``df`` lacks."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise KeyError(f"the {what} lacks column(s) {missing}; is it the cleaned cohort "
                       "(imr_analysis.cohort.load_cohort)?")


def select_services(cohort: pd.DataFrame, services: Sequence[str] | None = None) -> tuple[pd.DataFrame, list[str]]:
    """The patients of ``services`` (default: all) and the service types to show, even without patients.

    Examples
    --------
    >>> data, groups = select_services(pd.DataFrame({"service_type": ["SerD", "CMHC", "EDP"]}), ["SerD", "CMHC"])
    >>> len(data), groups
    (2, ['CMHC', 'SerD'])
    """
    require_columns(cohort, [GROUP_COLUMN])
    present = set(cohort[GROUP_COLUMN].dropna().unique())
    if unknown := sorted(map(str, present - set(SERVICE_TYPES))):
        raise ValueError(f"unknown service type(s) in the data: {unknown}; expected {list(SERVICE_TYPES)}")
    services = present if services is None else {services} if isinstance(services, str) else set(services)
    if unknown := sorted(services - set(SERVICE_TYPES)):
        raise ValueError(f"unknown service type(s) {unknown}; choose from {list(SERVICE_TYPES)}")
    if not (groups := [s for s in SERVICE_TYPES if s in services]):
        raise ValueError("no service type selected (empty cohort or empty 'services')")
    return cohort.loc[cohort[GROUP_COLUMN].isin(groups)], groups


def comparisons(groups: Sequence[str]) -> list[tuple[str, list[str]]]:
    """The between-service comparisons of ``groups``: all of them (:data:`ALL_SERVICES`) and, as in the paper,
    CMHC vs SerD; two groups are compared once ("A vs B"), one not at all.

    Examples
    --------
    >>> comparisons(["CMHC", "SerD", "EDP"])
    [('all services', ['CMHC', 'SerD', 'EDP']), ('CMHC vs SerD', ['CMHC', 'SerD'])]
    >>> comparisons(["CMHC", "EDP"]), comparisons(["SerD"])
    ([('CMHC vs EDP', ['CMHC', 'EDP'])], [])
    """
    groups = list(groups)
    if len(groups) < 3:
        return [(" vs ".join(groups), groups)] if len(groups) == 2 else []
    return [(ALL_SERVICES, groups)] + ([("CMHC vs SerD", ["CMHC", "SerD"])] if {"CMHC", "SerD"} <= set(groups) else [])


def describe_comparisons(groups: Sequence[str]) -> str:
    """What the tests of :func:`comparisons` compare, in words (the tables label them so).

    Examples
    --------
    >>> describe_comparisons(["CMHC", "SerD", "EDP"])
    "Comparisons: 'all services' compares CMHC, SerD, EDP; 'CMHC vs SerD' compares CMHC with SerD."
    >>> describe_comparisons(["SerD"])
    'One service type (SerD): no between-service test.'
    """
    if not (comps := comparisons(groups)):
        return f"One service type ({', '.join(groups)}): no between-service test."
    return "Comparisons: " + "; ".join(f"{label!r} compares " + (" with ".join(levels) if len(levels) == 2 else
                                                                   ", ".join(levels)) for label, levels in comps) + "."


def compare_services(data: pd.DataFrame, variable: str, kind: str, groups: list[str], alpha: float = 0.05,
                     seed: int = 0, n_resamples: int = st.N_RESAMPLES) -> list[dict]:
    """The :func:`comparisons` of a variable between ``groups``, with :mod:`imr_analysis.stats`."""
    if kind == "continuous":
        samples = st.group_samples(data, variable, GROUP_COLUMN, groups)
        return [st.compare_continuous({g: samples[g] for g in levels}, variable, alpha, label, seed, n_resamples)
                for label, levels in comparisons(groups)]
    table = st.contingency_table(data, variable, GROUP_COLUMN, groups)
    return [st.compare_categorical(table[levels], variable, alpha, seed, n_resamples, comparison=label)
            for label, levels in comparisons(groups)]


def _variables(cohort: pd.DataFrame, variables: Sequence[str | Variable] | None) -> list[Variable]:
    if unknown := [v for v in variables or [] if not isinstance(v, Variable) and v not in VARIABLES_BY_COLUMN]:
        raise KeyError(f"unknown Table 1 variable(s) {unknown}; known: {list(VARIABLES_BY_COLUMN)}")
    variables = [v if isinstance(v, Variable) else VARIABLES_BY_COLUMN[v] for v in variables or TABLE1_VARIABLES]
    require_columns(cohort, [v.column for v in variables])
    return variables


def _continuous_rows(data: pd.DataFrame, groups: list[str], columns: list[str], sizes: pd.Series,
                     method: str) -> pd.DataFrame:
    """n, mean, SD, median, quartiles (numpy.quantile's ``method``) and range of each column in each group, then
    in total."""
    group = pd.CategoricalDtype([*groups, TOTAL])
    both = pd.concat([data[columns].assign(group=data[GROUP_COLUMN].astype(group)),  # each patient twice
                      data[columns].assign(group=pd.Series(TOTAL, index=data.index, dtype=group))], ignore_index=True)
    by = both[columns].apply(pd.to_numeric, errors="raise").astype("float64").groupby(both["group"], observed=False)
    summary = by.agg(["count", "mean", "std", "median", "min", "max"])
    quartiles = {q: by.agg(lambda s: np.quantile(s.dropna(), q, method=method) if s.notna().any() else np.nan)
                 for q in (0.25, 0.75)}
    parts = []
    for c in columns:
        part = summary[c].rename(columns={"count": "n", "std": "sd"}).assign(q1=quartiles[0.25][c],
                                                                             q3=quartiles[0.75][c])
        parts.append(part.assign(variable=c, level="", kind="continuous", denominator=part["n"],
                                 n_missing=sizes.to_numpy() - part["n"]).rename_axis("group").reset_index())
    return pd.concat(parts, ignore_index=True)


def _categorical_rows(data: pd.DataFrame, var: Variable, groups: list[str], sizes: pd.Series) -> pd.DataFrame:
    """Patients with each level in each group and in total; denominator: those with a known value."""
    binary = var.kind == "binary"
    values = data[[GROUP_COLUMN]].assign(level=data[var.column].astype("boolean") if binary else data[var.column])
    table = st.contingency_table(values, "level", GROUP_COLUMN, groups)
    table[TOTAL] = table.sum(axis=1)
    table.index = table.index.map({True: "yes", False: "no"}) if binary else table.index.astype("str")
    shown = list(var.levels) + ([] if binary else sorted(set(table.index) - set(var.levels)))
    long = table.reindex(shown, fill_value=0).rename_axis(index="level", columns="group").stack().rename("n")
    long = long.reset_index().assign(variable=var.column, kind="categorical")
    long["denominator"] = long["group"].map(table.sum())
    long["n_missing"] = long["group"].map(sizes - table.sum())
    long["percent"] = 100 * long["n"] / long["denominator"].where(long["denominator"] > 0)
    return long


def table1_long(cohort: pd.DataFrame, services: Sequence[str] | None = None,
                variables: Sequence[str | Variable] | None = None,
                quantile_method: str = QUANTILE_METHOD) -> pd.DataFrame:
    """Table 1 numbers, tidy: one row per (variable, level, group).

    Groups: the service types of ``services`` (default: those present), then "Total"; ``variables``:
    of :data:`TABLE1_VARIABLES` (default all). A categorical row (levels in the codebook's order,
    others after; a medication class has the one level "yes") has ``n``, ``denominator`` (known
    value), ``percent``, ``n_missing``; a continuous row (``level`` "") the summary statistics. Age
    at IMR start also has the levels :data:`AGE_BANDS`, last (not shown in the display table).
    ``quantile_method``: numpy.quantile's definition of the quartiles (:data:`QUANTILE_METHODS`).

    Examples
    --------
    >>> cohort = pd.DataFrame({"service_type": ["CMHC", "CMHC", "SerD"], "sex": ["M", "F", "M"],
    ...                        "age_at_imr_start": [30, 40, 50]})
    >>> long = table1_long(cohort, variables=["sex", "age_at_imr_start"])
    >>> long.query("level == 'M'")[["group", "n", "denominator", "percent"]].round(1).to_numpy().tolist()
    [['CMHC', 1, 2, 50.0], ['SerD', 1, 1, 100.0], ['Total', 2, 3, 66.7]]
    >>> long.query("variable == 'age_at_imr_start' and level == ''")[["group", "n", "mean", "q1"]].to_numpy().tolist()
    [['CMHC', 2, 35.0, 30.0], ['SerD', 1, 50.0, 50.0], ['Total', 3, 40.0, 30.0]]
    """
    if quantile_method not in QUANTILE_METHODS:
        raise ValueError(f"unknown quantile_method {quantile_method!r}; choose from {', '.join(QUANTILE_METHODS)}")
    variables = _variables(cohort, variables)
    data, groups = select_services(cohort, services)
    sizes = data[GROUP_COLUMN].value_counts().reindex(groups, fill_value=0).set_axis(groups)
    sizes[TOTAL] = sizes.sum()
    continuous = list(dict.fromkeys(v.column for v in variables if v.kind == "continuous"))
    rows = _continuous_rows(data, groups, continuous, sizes, quantile_method) if continuous else None
    parts = [rows.loc[rows["variable"].eq(v.column)] if v.kind == "continuous" else
             _categorical_rows(data, v, groups, sizes) for v in variables]
    if "age_at_imr_start" in continuous:
        age = pd.to_numeric(data["age_at_imr_start"])
        band = pd.Series(np.select([age < 18, age == 18], AGE_BANDS[:2], AGE_BANDS[2]), data.index).where(age.notna())
        parts.append(_categorical_rows(data.assign(age_at_imr_start=band), Variable(
            "age_at_imr_start", "", "categorical", AGE_BANDS), groups, sizes))
    return pd.concat(parts, ignore_index=True).reindex(columns=LONG_COLUMNS).astype(LONG_DTYPES)


def table1_tests(cohort: pd.DataFrame, services: Sequence[str] | None = None, alpha: float = 0.05,
                 seed: int = 0, n_resamples: int = st.N_RESAMPLES,
                 variables: Sequence[str | Variable] | None = None) -> pd.DataFrame:
    """Between-service tests of the Table 1 variables: :func:`compare_services` of each.

    Examples
    --------
    >>> cohort = pd.DataFrame({"service_type": ["CMHC"] * 4 + ["SerD"] * 4, "age_at_imr_start": range(20, 28)})
    >>> table1_tests(cohort, variables=["age_at_imr_start"])[["comparison", "test"]].to_numpy().tolist()
    [['CMHC vs SerD', 'Student t-test']]
    """
    variables = _variables(cohort, variables)
    data, groups = select_services(cohort, services)
    return st.results_frame(row for v in variables
                            for row in compare_services(data, v.column, v.kind, groups, alpha, seed, n_resamples))


# The cells of the display tables. Disclosure control may leave a string in a numeric cell
# ("[REDACTED]", "~"): it is printed as given; a missing number prints as ``na_rep``.
def finite_number(x) -> float | None:
    """A finite float, or None (missing, or text)."""
    f = pd.to_numeric(x, errors="coerce") if not isinstance(x, str) else np.nan
    return float(f) if pd.notna(f) and np.isfinite(f) else None


def _given(x) -> str | None:
    """Text that disclosure control put in a numeric cell, or None."""
    return x if isinstance(x, str) and x.strip() != "" else None


def format_p(p, digits: int = 3) -> str:
    """A p-value: ``"<0.001"`` below 10**-digits, else ``digits`` decimals.

    Examples
    --------
    >>> format_p(0.00002), format_p(0.0456), format_p(float("nan"))
    ('<0.001', '0.046', '')
    """
    v = finite_number(p)
    if _given(p) or v is None:
        return _given(p) or ""
    return f"<{10 ** -digits:.{digits}f}" if v < 10 ** -digits else f"{v:.{digits}f}"


def format_effect(name, value, low=None, high=None, digits: int = 2) -> str:
    """``"ε² 0.08 [0.05, 0.10]"``: an effect size (:data:`~imr_analysis.stats.EFFECT_ABBREVIATIONS`) and its CI.

    Examples
    --------
    >>> format_effect("Hedges' g", -0.2591, -0.6242, 0.106), format_effect("Cramér's V (bias-corrected)", None)
    ('g -0.26 [-0.62, 0.11]', '')
    """
    v, lo, hi = finite_number(value), finite_number(low), finite_number(high)
    if _given(value) or v is None:
        return _given(value) or ""
    ci = f" [{lo:.{digits}f}, {hi:.{digits}f}]" if lo is not None and hi is not None else ""
    return f"{st.EFFECT_ABBREVIATIONS.get(name, name or '')} {v:.{digits}f}{ci}".strip()


def result_cells(r, digits: int = 3) -> tuple[str, str, str]:
    """The p-value (marked :data:`~imr_analysis.stats.SENSITIVITY_MARK` if the conclusion depends on the
    test), the test's abbreviation and the effect size of a row of :func:`table1_tests`."""
    p = format_p(r.p_value, digits) + (st.SENSITIVITY_MARK if str(getattr(r, "conclusion_depends_on_test", "")) == "True"
                                       else "")
    return p, st.TEST_ABBREVIATIONS.get(r.test, r.test if isinstance(r.test, str) else ""), format_effect(
        *(getattr(r, c, None) for c in ("effect_size", "effect", "effect_ci_low", "effect_ci_high")))


def format_count_percent(n, percent, decimals: int = 1, na_rep: str = "[REDACTED]") -> str:
    """``"77 (61.1%)"``.

    Examples
    --------
    >>> format_count_percent(77, 61.111), format_count_percent("~", None), format_count_percent(0, None)
    ('77 (61.1%)', '~', '0 (–)')
    """
    v = finite_number(n)
    if _given(n) or v is None:
        return _given(n) or na_rep
    pv = finite_number(percent)
    pct = f"{pv:.{decimals}f}%" if pv is not None else (_given(percent) or "–")
    return f"{v:.0f} ({pct})" if v.is_integer() else f"{v:g} ({pct})"


def format_mean_sd(mean, sd, decimals: int = 2, na_rep: str = "[REDACTED]", vmin=None, vmax=None) -> str:
    """``"40.14 (12.92)"``; with ``vmin`` and ``vmax`` the range too, without decimals when both are whole.

    Examples
    --------
    >>> format_mean_sd(40.1428, 12.921), format_mean_sd(3.0, None), format_mean_sd(9.64, 7.49, 1, vmin=2, vmax=38)
    ('40.14 (12.92)', '3.00 (–)', '9.6 (7.5) [2-38]')
    """
    m, s, lo, hi = finite_number(mean), finite_number(sd), finite_number(vmin), finite_number(vmax)
    if _given(mean) or m is None:
        return _given(mean) or na_rep
    out = f"{m:.{decimals}f} ({s:.{decimals}f})" if s is not None else f"{m:.{decimals}f} (–)"
    if lo is not None and hi is not None:
        d = 0 if lo.is_integer() and hi.is_integer() else decimals
        return out + f" [{lo:.{d}f}-{hi:.{d}f}]"
    return out + (f" [{_given(vmin) or lo}-{_given(vmax) or hi}]" if _given(vmin) or _given(vmax) else "")


def _quantile_texts(values: list, decimals: int) -> list[str]:
    nums = [finite_number(v) for v in values]
    d = 0 if all(v is None or v.is_integer() for v in nums) else decimals
    return [f"{v:.{d}f}" if v is not None else (_given(o) or "–") for v, o in zip(nums, values)]


def format_median_iqr(median, q1, q3, vmin=None, vmax=None, decimals: int = 1, na_rep: str = "[REDACTED]") -> str:
    """``"40 [29-50]; 18-70"``: median [Q1-Q3]; min-max, without decimals when all are whole.

    Examples
    --------
    >>> format_median_iqr(40, 29, 50, 18, 70), format_median_iqr(48.5, 35.75, 58.5, 18, 69)
    ('40 [29-50]; 18-70', '48.5 [35.8-58.5]; 18-69')
    """
    if _given(median) or finite_number(median) is None:
        return _given(median) or na_rep
    med, lo, hi = _quantile_texts([median, q1, q3], decimals)
    out = f"{med} [{lo}-{hi}]"
    if any(finite_number(v) is not None or _given(v) for v in (vmin, vmax)):
        out += "; {}-{}".format(*_quantile_texts([vmin, vmax], decimals))
    return out


def _group_sizes(long: pd.DataFrame) -> dict:
    """Patients per group: the commonest ``denominator + n_missing`` (rounding can make rows differ)."""
    size = pd.to_numeric(long["denominator"], errors="coerce") + pd.to_numeric(long["n_missing"], errors="coerce")
    return size.groupby(long["group"], sort=False).agg(lambda s: s.mode().min()).to_dict()  # ties: the smallest


def format_table1(long: pd.DataFrame, tests: pd.DataFrame | None = None, decimals: dict | int | None = None,
                  na_rep: str = "[REDACTED]", missing_rows: bool = True) -> pd.DataFrame:
    """The display Table 1: one row per variable and level, one column per group, the p-values.

    ``long`` may come from disclosure control (text in a numeric cell is printed as given, a missing
    number as ``na_rep``, ``min``/``max`` may be dropped); ``tests`` adds ``p``, ``Test`` and effect size
    columns (:func:`result_cells`; the legend is :data:`~imr_analysis.stats.TESTS_NOTE`).
    ``decimals``: ``percent`` (1), ``mean`` (2, also SD), ``quantile`` (1), ``p`` (3); an int sets ``mean``.

    Examples
    --------
    >>> cohort = pd.DataFrame({"service_type": ["CMHC", "CMHC", "SerD"], "sex": ["M", "F", "M"]})
    >>> format_table1(table1_long(cohort, variables=["sex"])).iloc[1].tolist()
    ['', 'Male', '1 (50.0%)', '1 (100.0%)', '2 (66.7%)']
    """
    dec = {**DEFAULT_DECIMALS, **({"mean": decimals} if isinstance(decimals, int) else decimals or {})}
    require_columns(long, ["variable", "level", "group", "kind", "n"], what="long Table 1")
    long = long.reindex(columns=list(dict.fromkeys([*long.columns, *LONG_COLUMNS])))
    groups = list(pd.unique(long["group"]))
    sizes = _group_sizes(long)
    headers = {g: f"{g} (n={sizes[g]:.0f})" if finite_number(sizes.get(g)) is not None else g for g in groups}
    if tests is None or not len(tests):
        tests = pd.DataFrame(columns=["variable", "comparison", "p_value", "test"])
    suffixes = {comp: "" if comp == ALL_SERVICES else f" ({comp})" for comp in pd.unique(tests["comparison"])}
    test_columns = [(comp, [f"p{suffix}", f"Test{suffix}", f"Effect (95% CI){suffix}"])
                    for comp, suffix in suffixes.items()]
    pvalues = {(r.variable, r.comparison): result_cells(r, dec["p"]) for r in tests.itertuples(index=False)}
    cells = long.assign(
        count=[format_count_percent(n, p, dec["percent"], na_rep) for n, p in zip(long["n"], long["percent"])],
        mean_sd=["–" if finite_number(r.n) == 0 else format_mean_sd(r.mean, r.sd, dec["mean"], na_rep)
                 for r in long.itertuples()],
        median_iqr=["–" if finite_number(r.n) == 0 else format_median_iqr(r.median, r.q1, r.q3, r.min, r.max,
                                                                     dec["quantile"], na_rep)
                    for r in long.itertuples()])
    rows: list[dict] = []

    def add(characteristic: str, level: str, by_group=None, variable: str | None = None) -> None:
        by_group = {} if by_group is None else by_group
        row = {"Characteristic": characteristic, "Level": level, **{headers[g]: by_group.get(g, "") for g in groups}}
        for comp, names in test_columns:
            row.update(zip(names, pvalues.get((variable, comp), ("", "", ""))))
        rows.append(row)

    medication_header = False
    for variable, block in cells.groupby("variable", sort=False):
        spec = VARIABLES_BY_COLUMN.get(variable, Variable(variable, variable, block["kind"].iloc[0]))
        levels = {lvl: b.set_index("group") for lvl, b in block.groupby("level", sort=False)}
        first = next(iter(levels.values()))
        if spec.kind == "continuous":
            ranged = any(finite_number(v) is not None or _given(v) for v in first[["min", "max"]].to_numpy().ravel())
            add(spec.label, "", None, variable)
            add("", "Mean (SD)", first["mean_sd"])
            add("", "Median [IQR]; range" if ranged else "Median [IQR]", first["median_iqr"])
        elif spec.kind == "binary":
            if not medication_header:
                add(f"{MEDICATION_SECTION}, n (%)", "")
                medication_header = True
            add("", spec.label, levels.get("yes", first)["count"], variable)
        else:
            add(f"{spec.label}, n (%)", "", None, variable)
            for lvl, b in levels.items():
                add("", LEVEL_LABELS.get(variable, {}).get(lvl, lvl), b["count"])
        missing = first["n_missing"]
        if missing_rows and any((finite_number(m) or 0) > 0 or _given(m) for m in missing):
            pct = {g: 100 * finite_number(m) / finite_number(sizes.get(g)) if finite_number(m) is not None and finite_number(sizes.get(g))
                   else None for g, m in missing.items()}
            add("", "Missing" if spec.kind != "binary" else f"Missing ({spec.label})",
                {g: format_count_percent(m, pct[g], dec["percent"], na_rep) for g, m in missing.items()})
    columns = ["Characteristic", "Level", *headers.values(), *[c for _, names in test_columns for c in names]]
    return pd.DataFrame(rows, columns=columns)


def p_value_notes(tests: pd.DataFrame | None, alpha: float = 0.05, n_resamples: int = st.N_RESAMPLES,
                  seed: int = 0) -> list[str]:
    """Footnotes on the p-values of ``tests``: the tests used (abbreviation first), how each was chosen,
    the Monte-Carlo settings, no adjustment for multiplicity (the Holm family is Table 3's)."""
    if tests is not None and not len(tests):
        return ["No between-service test: the selection holds one service type."]
    used = set() if tests is None else set(tests["test"].dropna())
    categorical = used & {st.TEST_CHI2, st.TEST_CHI2_MC, st.TEST_FISHER}
    named = {st.TEST_CHI2_MC: f"{st.TEST_CHI2_MC}, {n_resamples} resampled tables, seed {seed}"}
    legend = "; ".join(f"{abbr}: {named.get(test, test)}" for test, abbr in st.TEST_ABBREVIATIONS.items()
                       if test in used)
    rules = ([f"the parametric test (Welch's t when Levene's test rejects equal variances) is reported when "
              f"Shapiro-Wilk rejects normality in no group and, for ANOVA, Levene's test does not reject equal "
              f"variances (at alpha = {alpha}), else the rank test"] if used - categorical else []) + \
        (["chi-square gives way to Fisher's exact test (2 x 2) or a Monte-Carlo p when an expected count is "
          "below 5"] if categorical else [])
    return [f"Tests: {legend}."] * bool(legend) + [
        "p: two-tailed, not adjusted for multiple comparisons, so exploratory (only the 15 IMRS item tests of "
        f"Table 3 form a Holm-adjusted family); {'; '.join(rules)}.",
        f"{st.TESTS_NOTE} The CIs of ε² and r_rb are percentile bootstraps ({n_resamples} resamples of the patients "
        f"within each service, seed {seed}; not computed above {st.BOOTSTRAP_MAX_N} patients); those of V and η² "
        "invert the noncentral chi-square and F, that of g is analytic."] * bool(used)


def table1_notes(tests: pd.DataFrame | None, quantile_method: str = QUANTILE_METHOD, n_resamples: int = st.N_RESAMPLES,
                 seed: int = 0, alpha: float = 0.05) -> list[str]:
    """The footnotes of Table 1 and its numbers: :func:`p_value_notes`, denominators, SD and quartiles.

    Examples
    --------
    >>> table1_notes(pd.DataFrame({"test": ["Kruskal-Wallis H"]}))[0]
    'Tests: KW: Kruskal-Wallis H.'
    """
    return [*p_value_notes(tests, alpha, n_resamples, seed),
            "n (%): percentage of the patients with a known value; Missing: n (%) of all the patients of the "
            "group (n in the column header).",
            f"Mean (SD): SD with denominator n - 1. Median [IQR]; range: quartiles by numpy.quantile method "
            f"\"{quantile_method}\" ({QUANTILE_METHODS[quantile_method]}); range: minimum-maximum."]
