"""The reproduction audit: the paper's figures compared with the tables notebooks 02-05 publish.

For each ``metric`` of ``resources/published_figures.yaml``, :data:`WHERE` names the table, row
and column holding it, or :data:`STATEMENTS` reads it (a yes/no statement: 1.0 / 0.0, NaN when a
value it needs is redacted) off the same tables. :func:`check_published` prints each value at the
paper's precision, rounding half away from zero (as SPSS does), and compares. The audit computes
no statistic, and is the only module that reads :mod:`imr_analysis.published`.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import numpy as np
import pandas as pd

from . import disclosure, paths
from .constants import MEDICATION_CLASSES, MODULE_COLUMNS, SERVICE_TYPES
from .published import load_published

CHECK_COLUMNS = ["id", "quote", "kind", "published", "decimals", "recomputed", "recomputed_printed", "status",
                 "reason"]
#: The tables read (``<tables_dir>/<name>.csv``) and the notebook writing each.
OUTPUTS = {"table1_long": "02", "table1_tests": "02", "table2_long": "03", "module_frequency_values": "03",
           "table3_imrs_long": "05", "imrs_agreement": "05"}
INPUT_FILES = tuple(f"{name}.csv" for name in OUTPUTS)  #: what :func:`read_outputs` reads
OBSERVATION_PERIOD = (20170401, 20210731)  # April 2017 to July 2021, as Table 2's yyyymmdd dates


def print_value(x, decimals: int) -> str:
    """Print ``x`` with ``decimals`` places, rounding half away from zero.

    Examples
    --------
    >>> print_value(40.145, 2), print_value(0.125, 2), print_value(3.968, 0), print_value(float("nan"), 1)
    ('40.15', '0.13', '4', 'nan')
    """
    if x is None or not math.isfinite(float(x)):
        return "nan"
    s = f"{Decimal(repr(float(x))).quantize(Decimal(1).scaleb(-int(decimals)), rounding=ROUND_HALF_UP):f}"
    return s[1:] if s.startswith("-") and float(s) == 0 else s


def read_outputs(tables_dir=None) -> dict:
    """The tables of :data:`OUTPUTS` in ``tables_dir`` (default ``tables/``); an empty text cell is ""."""
    folder, out = Path(tables_dir) if tables_dir else paths.tables_dir(), {}
    for name, notebook in OUTPUTS.items():
        if not (folder / f"{name}.csv").exists():
            raise FileNotFoundError(f"{folder / name}.csv does not exist: run notebook {notebook} first")
        df = pd.read_csv(folder / f"{name}.csv")
        out[name] = df.fillna(dict.fromkeys(df.select_dtypes(exclude="number").columns, ""))
    return out


def _t1(variable, column, level="", group="Total"):
    return "table1_long", f"variable == '{variable}' and level == '{level}' and group == '{group}'", column


def _t2(measure, column, service_type="All"):
    level = "total" if service_type == "All" else "service_type"
    return "table2_long", f"level == '{level}' and service_type == '{service_type}' and measure == '{measure}'", column


def _tests(variable, column):
    return "table1_tests", f"variable == '{variable}' and comparison == 'all services'", column


def _agreement(section, measure, column):
    return "imrs_agreement", f"section.str.startswith('{section}') and measure == '{measure}'", column


#: Where each metric is read: (table, row as a pandas query, column).
WHERE = {
    "n_patients": _t2("patients", "n"), "pct_group": _t2("group_format", "percent"),
    **{f"{k}_{s.lower()}": _t2("patients", c, s) for s in SERVICE_TYPES for k, c in (("n", "n"), ("pct", "percent"))},
    "n_men": _t1("sex", "n", "M"), "pct_men": _t1("sex", "percent", "M"),
    **{f"age_imr_{c}": _t1("age_at_imr_start", c) for c in ("mean", "sd", "min", "max")},
    "n_age_18": _t1("age_at_imr_start", "n", "18"), "n_age_under_18": _t1("age_at_imr_start", "n", "under_18"),
    "age_first_mean": _t1("age_at_first_treatment", "mean"), "age_first_sd": _t1("age_at_first_treatment", "sd"),
    "pct_dx_substance_use": _t1("diagnosis_group", "percent", "substance_use"),
    **{f"n_sud_{s.lower()}": _t1("diagnosis_group", "n", "substance_use", s) for s in SERVICE_TYPES},
    "diagnosis_service_chi2_p": _tests("diagnosis_group", "p_value"),
    "illness_duration_service_kruskal_p": _tests("illness_duration_years", "p_nonparametric"),
    "illness_duration_service_anova_p": _tests("illness_duration_years", "p_parametric"),
    **{f"illness_duration_{c}": _t1("illness_duration_years", c) for c in ("min", "max", "mean")},
    **{f"{k}_med_{c}": _t1(f"med_{c}", k if k == "n" else "percent", "yes")
       for c in (*MEDICATION_CLASSES, "none") for k in ("n", "pct")},
    **{f"imr_duration_{c}": _t2("imr_duration_months", c) for c in ("mean", "sd", "min", "max")},
    **{f"sessions_{c}": _t2("n_sessions", c) for c in ("mean", "sd", "min", "max")},
    **{f"n_modules_{c}": _t2("n_modules", c) for c in ("mean", "min", "max")},
    **{f"{k}_{m}": _t2(m, k if k == "n" else "percent") for m in MODULE_COLUMNS for k in ("n", "pct")},
    "pct_module_06_serd": _t2("module_06", "percent", "SerD"), "n_module_06_cmhc": _t2("module_06", "n", "CMHC"),
    "n_module_06_edp": _t2("module_06", "n", "EDP"),
    **{f"imrs_{who}_{what}_{c}": ("table3_imrs_long", f"item_label == '{label}' and measure == '{who}'", c)
       for who in ("user", "provider") for what, label in (("item_mean", "Item mean (1-5)"), ("total", "Total (15-75)"))
       for c in ("mean", "sd")},
    **{f"imrs_item_profile_{k}": _agreement("item profile", m, c) for k, m, c in (
        ("n", "Pearson r", "n"), ("pearson_r", "Pearson r", "estimate"), ("pearson_p", "Pearson r", "p"),
        ("spearman_r", "Spearman rho", "estimate"), ("spearman_p", "Spearman rho", "p"))},
    **{f"imrs_total_pearson_{k}": _agreement("patient level: IMRS total", "Pearson r", c)
       for k, c in (("r", "estimate"), ("p", "p"))},
}


def _rows(outputs, table, query=""):
    if table not in outputs:
        raise KeyError(f"no output {table!r} among {sorted(outputs)}")
    return outputs[table].query(query, engine="python") if query else outputs[table]


def _num(values) -> np.ndarray:
    """Floats; a redacted cell (missing, or text) is NaN."""
    return pd.to_numeric(pd.Series(values), errors="coerce").astype("Float64").to_numpy("float64", na_value=np.nan)


def row_of(outputs, where) -> pd.Series:
    """The one row holding a metric (or at ``where``, a :data:`WHERE` value) as numbers (text, redacted: NaN)."""
    table, query, column = WHERE[where] if isinstance(where, str) else where
    rows = _rows(outputs, table, query)
    if len(rows) != 1 or column not in rows.columns:
        raise LookupError(f"{table}: {len(rows)} row(s) match {query!r}, expected one with column {column!r}")
    return pd.Series(_num(rows.iloc[0]), index=rows.columns)


def _one(outputs, where) -> float:
    """The value at ``where`` (table, query, column), which must name one cell."""
    return float(row_of(outputs, where)[where[2]])


def _yes(condition, *values) -> float:
    return np.nan if np.isnan(np.hstack([np.ravel(v) for v in values])).any() else float(condition)


def _above(values, mask) -> float:
    """Yes if each value in ``mask`` is above every other value."""
    return _yes(values[mask].min() > values[~mask].max(initial=-np.inf), values)


def _most(outputs, table, query, key, labels, column) -> float:
    rows = _rows(outputs, table, query)
    return _above(_num(rows[column]), rows[key].isin(labels).to_numpy())


def _count_positive(outputs, query, service_type=None) -> float:
    rows = _rows(outputs, "table2_long", query)
    n = _num(rows.loc[rows["service_type"].eq(service_type) if service_type else slice(None), "n"])
    return _yes(True, n) * float((n > 0).sum())


def _min_only_at_edp(outputs) -> float:
    """Yes if the shortest illness of the total is at the EDP, and at no other service type."""
    rows = _rows(outputs, "table1_long", "variable == 'illness_duration_years' and level == ''")
    low, group = _num(rows["min"]), rows["group"].to_numpy()
    total = low[group == "Total"]
    return _yes(low[group == "EDP"] == total and (low[~np.isin(group, ["EDP", "Total"])] > total).all(), low)


def _sessions_unique_at(outputs, end, service) -> float:
    """Yes if one patient has the fewest (``end`` "min") or most sessions, at ``service``."""
    n, here, total = (_one(outputs, w) for w in (_t2(f"n_sessions_at_{end}", "n"), _t2("n_sessions", end, service),
                                                 _t2("n_sessions", end)))
    return _yes(n == 1 and here == total, n, here, total)


def _edp_only_m3_m8(outputs) -> float:
    rows = _rows(outputs, "table2_long", "level == 'service_type' and service_type == 'EDP'")
    n = dict(zip(rows["measure"], _num(rows["n"])))
    got, want = np.array([n[c] for c in MODULE_COLUMNS]), np.isin(MODULE_COLUMNS, ["module_03", "module_08"])
    return _yes(n["patients"] > 0 and (got == want * n["patients"]).all(), got, n["patients"])


def _no_service_all_11(outputs) -> float:
    """Yes if no unit and no service type gave every module (each module's count above 0)."""
    rows = _rows(outputs, "table2_long", f"level != 'total' and measure in {list(MODULE_COLUMNS)}")
    given = pd.Series(_num(rows["n"]) > 0).groupby([rows[k].to_numpy() for k in ("level", "unit", "service_type")])
    return _yes(not given.all().any(), _num(rows["n"]))


def _within_period(outputs) -> float:
    """Yes if the first programme started and the last ended within :data:`OBSERVATION_PERIOD`."""
    first, last = _one(outputs, _t2("imr_start", "min")), _one(outputs, _t2("imr_end", "max"))
    return _yes(OBSERVATION_PERIOD[0] <= first and last <= OBSERVATION_PERIOD[1], first, last)


def _no_patient_all_11(outputs) -> float:
    most = _one(outputs, _t2("n_modules", "max"))
    return _yes(most < len(MODULE_COLUMNS), most)


def _m9_m10_least(outputs) -> float:
    n = _num(_rows(outputs, "module_frequency_values").sort_values("module")["n"])
    return _yes(n[8] == n[9], n) * _above(-n, np.isin(np.arange(len(n)), [8, 9]))


_TYPES, _UNITS = "level == 'service_type' and measure == 'patients'", "level == 'unit' and measure == 'patients'"
_MEDS = f"variable in {[f'med_{c}' for c in MEDICATION_CLASSES]} and level == 'yes' and group == 'Total'"
#: The paper's yes/no statements and derived numbers, read off the outputs (outputs -> value).
STATEMENTS = {
    "n_service_types": lambda o: _count_positive(o, _TYPES),
    "n_service_total": lambda o: _num(_rows(o, "table2_long", _TYPES)["n"]).sum(),
    "n_units": lambda o: _count_positive(o, _UNITS),
    **{f"n_units_{s.lower()}": lambda o, s=s: _count_positive(o, _UNITS, s) for s in SERVICE_TYPES},
    "dx_substance_use_most_frequent": lambda o: _most(
        o, "table1_long", "variable == 'diagnosis_group' and group == 'Total'", "level", ["substance_use"], "n"),
    "illness_duration_service_p": lambda o: np.max([_one(o, WHERE[f"illness_duration_service_{t}_p"])
                                                    for t in ("kruskal", "anova")]),  # the larger p
    "illness_duration_min_at_edp": _min_only_at_edp,
    "med_top2_antipsychotic_anxiolytic": lambda o: _most(
        o, "table1_long", _MEDS, "variable", ["med_antipsychotic", "med_anxiolytic_sedative"], "n"),
    "sessions_min_unique_serd": lambda o: _sessions_unique_at(o, "min", "SerD"),
    "sessions_max_unique_cmhc": lambda o: _sessions_unique_at(o, "max", "CMHC"),
    "imr_within_observation_period": _within_period,
    "module_01_most_frequent": lambda o: _most(o, "module_frequency_values", "", "module", [1], "n"),
    "module_06_most_frequent_serd": lambda o: _most(o, "module_frequency_values", "", "module", [6], "n_SerD"),
    "modules_09_10_least": _m9_m10_least,
    "edp_only_m3_m8": _edp_only_m3_m8,
    "no_patient_all_11": _no_patient_all_11,
    "no_service_all_11": _no_service_all_11,
}


def read_metrics(outputs, metrics=None) -> dict[str, float]:
    """The value of each of ``metrics`` (default: every one of :data:`WHERE` and :data:`STATEMENTS`)."""
    names = [*WHERE, *STATEMENTS] if metrics is None else list(metrics)
    if unknown := [m for m in names if m not in WHERE and m not in STATEMENTS]:
        raise KeyError(f"metric(s) {unknown} are in no output the audit reads (imr_analysis.reproduce.WHERE, "
                       f"STATEMENTS); known: {sorted([*WHERE, *STATEMENTS])}")
    return {m: float(STATEMENTS[m](outputs)) if m in STATEMENTS else _one(outputs, WHERE[m]) for m in names}


def _compare(value: float, published: float, decimals: int, comparator: str) -> tuple[bool, str]:
    if not math.isfinite(value):
        return False, "nan"
    if comparator in ("<", ">"):
        ok = value < published if comparator == "<" else value > published
        return ok, (f"{comparator} " if ok else "") + (f"{value:.3g}" if 0 < abs(value) < 0.001
                                                       else print_value(value, 3))
    printed = print_value(value, decimals)
    return printed == print_value(published, decimals), printed


def published_figures() -> pd.DataFrame:
    """The paper's figures (:func:`imr_analysis.published.load_published`) for the comparisons built on the audit
    (:mod:`.replicate`, :mod:`.pool`): the audit is the one reader of the published figures."""
    return load_published()


def check_published(outputs, published=None):
    """Compare every published figure (default :func:`~imr_analysis.published.load_published`) with ``outputs``.

    ``outputs`` are the tables of :data:`OUTPUTS` (:func:`read_outputs`). Returns
    :data:`CHECK_COLUMNS`; ``status`` is ``match`` (the value printed at the published precision
    equals the published one, or satisfies its comparator such as ``< 0.001``), ``mismatch``,
    ``paper-inconsistent`` (the reason says which competing statement the data honour) or
    ``not-recomputable`` (no metric: literature, setting).

    Examples
    --------
    >>> summary_line(check_published(read_outputs()))
    '85 matched, 0 mismatched, 8 paper-inconsistent, 20 not recomputable'
    """
    published = load_published() if published is None else published
    named = published["metric"].map(lambda m: isinstance(m, str) and m != "")
    metrics = read_metrics(outputs, pd.unique(published.loc[named, "metric"]))
    rows = []
    for e, has_metric in zip(published.to_dict("records"), named):
        value = metrics[e["metric"]] if has_metric else math.nan
        decimals, comparator, pub, reason = int(e["decimals"]), e["comparator"], float(e["value"]), e["reason"]
        if has_metric and not math.isnan(pub):
            matched, printed = _compare(value, pub, decimals, comparator)
        else:
            matched, printed = False, (print_value(value, decimals) if has_metric else "")
        if e["kind"] == "p" and comparator == "=" and has_metric and 0 < value < 10.0 ** (-decimals):
            printed = f"{printed} (p = {value:.2g})"
        status = ("paper-inconsistent" if e.get("verdict") == "paper-inconsistent" else "not-recomputable"
                  if not has_metric else "match" if matched else "mismatch")
        if status == "mismatch":
            shown = ("" if comparator == "=" else f"{comparator} ") + print_value(pub, decimals)
            reason = f"recomputed {printed} but the paper states {shown}" + (f"; {reason}" if reason else "")
        rows.append({"id": e["id"], "quote": e["quote"], "kind": e["kind"], "published": pub, "decimals": decimals,
                     "recomputed": value, "recomputed_printed": printed, "status": status, "reason": reason})
    return pd.DataFrame(rows, columns=CHECK_COLUMNS).astype({"decimals": "int64"})


def summary_line(check_df) -> str:
    """One line counting the statuses of :func:`check_published`.

    Examples
    --------
    >>> summary_line(pd.DataFrame({"status": ["match", "match", "paper-inconsistent", "not-recomputable"]}))
    '2 matched, 0 mismatched, 1 paper-inconsistent, 1 not recomputable'
    """
    n = check_df["status"].value_counts().to_dict()
    head = (f"{n[WITHHELD]} comparisons withheld (private data)" if n.get(WITHHELD)
            else f"{n.get('match', 0)} matched, {n.get('mismatch', 0)} mismatched")
    return (f"{head}, {n.get('paper-inconsistent', 0)} paper-inconsistent, "
            f"{n.get('not-recomputable', 0)} not recomputable")


#: Status of a figure whose comparison is not published (private data).
WITHHELD = "withheld (private data)"
#: The footnotes of ``tables/reproduction_check``.
NOTES = ("published: the paper's figure (decimals: the places it is printed with); recomputed: the value read from "
         "the compendium's tables; recomputed_printed: that value at the paper's precision, rounded half away from "
         "zero.",
         "status: match (equal as printed), mismatch, paper-inconsistent (the paper contradicts itself or "
         f"arithmetic: reason says how), not-recomputable (about the literature or the setting), {WITHHELD} (on "
         "private data a recomputed value and its status are not shown).")


def public_check(check_df, profile):
    """The audit of :func:`check_published` as it may be shown under a disclosure profile.

    Under ``none`` (the shipped synthetic data) it is unchanged. Otherwise recomputed values, and even a status
    (``match`` against "five patients"), describe groups of any size: values are removed and every status but the
    verdicts on the paper (``paper-inconsistent``, ``not-recomputable``) becomes :data:`WITHHELD`.

    Examples
    --------
    >>> check = pd.DataFrame({"id": ["n", "p"], "recomputed": [5.0, 0.3], "recomputed_printed": ["5", "0.3"],
    ...                       "status": ["match", "paper-inconsistent"], "reason": ["", "typo"]})
    >>> public_check(check, "opensafely")[["recomputed_printed", "status"]].values.tolist()
    [['[REDACTED]', 'withheld (private data)'], ['[REDACTED]', 'paper-inconsistent']]
    """
    prof = disclosure.get_profile(profile) if isinstance(profile, str) else profile
    out = check_df.copy()
    if prof.is_noop:
        return out
    out["recomputed"] = float("nan")
    out["recomputed_printed"] = disclosure.REDACTED_MARKER
    keep = out["status"].isin(["paper-inconsistent", "not-recomputable"])
    out["status"] = out["status"].where(keep, WITHHELD)
    out["reason"] = out["reason"].where(out["status"] == "paper-inconsistent", "")
    return out
