"""The reproduction audit: recompute every published figure from a cohort and compare.

:func:`compute_metrics` computes, from a cohort with the canonical columns
(:data:`imr_analysis.constants.COHORT_COLUMNS`), every quantity the paper states and
that the data can give (the ``metric`` keys of
``imr_analysis/resources/published_figures.yaml``). :func:`check_published` prints
each recomputed value at the paper's precision and compares it with the published one.

This module is the audit: it is the only part of the analysis that reads
:mod:`imr_analysis.published` (the paper's numbers); the analyses never see them.

Conventions: SDs are sample SDs (ddof = 1, as SPSS); percentages are of all patients
in the cohort (or of the service type named in the metric); numbers are printed
rounding half away from zero (as SPSS does); yes/no statements are 1.0 / 0.0.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from . import constants as C

STATUS_ORDER = ("match", "mismatch", "paper-inconsistent", "not-recomputable")
CHECK_COLUMNS = ["id", "quote", "kind", "published", "decimals", "recomputed", "recomputed_printed", "status",
                 "reason"]
OBSERVATION_START = "2017-04-01"
OBSERVATION_END = "2021-07-31"


def print_value(x, decimals: int) -> str:
    """Print ``x`` with ``decimals`` places, rounding half away from zero.

    Examples
    --------
    >>> print_value(40.145, 2), print_value(0.125, 2), print_value(3.968, 0), print_value(float("nan"), 1)
    ('40.15', '0.13', '4', 'nan')
    """
    import math

    if x is None:
        return "nan"
    x = float(x)
    if not math.isfinite(x):
        return "nan"
    q = Decimal(1).scaleb(-int(decimals))
    s = f"{Decimal(repr(x)).quantize(q, rounding=ROUND_HALF_UP):f}"
    if s.startswith("-") and float(s) == 0:
        s = s[1:]
    return s


def _flag(cond) -> float:
    return 1.0 if bool(cond) else 0.0


def compute_metrics(cohort) -> dict[str, float]:
    """Recompute every published quantity that the cohort can give.

    Parameters
    ----------
    cohort : pandas.DataFrame
        One row per patient with the canonical cohort columns.

    Returns
    -------
    dict of str to float
        Metric key -> value. Counts and percentages (0-100), means and sample SDs,
        ranges, p-values, correlations; yes/no statements as 1.0/0.0. Metrics that
        cannot be computed (e.g. a test with fewer than two groups) are NaN.

    Examples
    --------
    >>> from imr_analysis.cohort import load_cohort
    >>> m = compute_metrics(load_cohort())  # doctest: +SKIP
    >>> m["n_patients"], round(m["pct_men"], 1)  # doctest: +SKIP
    (126.0, 61.1)
    """
    import numpy as np
    import pandas as pd
    from scipy import stats

    nan = float("nan")
    df = cohort.reset_index(drop=True)
    n = len(df)
    out: dict[str, float] = {}
    svc = df["service_type"].astype(str)

    def pct(k, denom=n):
        return 100.0 * k / denom if denom else nan

    out["n_patients"] = float(n)
    out["n_service_types"] = float(svc.nunique())
    out["n_units"] = float(df["service_unit"].nunique())
    for s in C.SERVICE_TYPES:
        k = int((svc == s).sum())
        out[f"n_{s.lower()}"] = float(k)
        out[f"pct_{s.lower()}"] = pct(k)
        out[f"n_units_{s.lower()}"] = float(df.loc[svc == s, "service_unit"].nunique())
    out["n_service_total"] = float(sum(int((svc == s).sum()) for s in C.SERVICE_TYPES))

    # --- demographics
    men = int((df["sex"].astype(str) == "M").sum())
    out["n_men"], out["pct_men"] = float(men), pct(men)
    age = df["age_at_imr_start"].astype(float)
    out["age_imr_mean"], out["age_imr_sd"] = float(age.mean()), float(age.std(ddof=1))
    out["age_imr_min"], out["age_imr_max"] = float(age.min()), float(age.max())
    out["n_age_18"] = float((age == 18).sum())
    out["n_age_under_18"] = float((age < 18).sum())
    first = df["age_at_first_treatment"].astype(float)
    out["age_first_mean"], out["age_first_sd"] = float(first.mean()), float(first.std(ddof=1))

    # --- diagnoses
    grp = df["diagnosis_group"].astype(str)
    counts = grp.value_counts()
    for g in C.DIAGNOSIS_GROUPS:
        out[f"n_dx_{g}"] = float(counts.get(g, 0))
        out[f"pct_dx_{g}"] = pct(int(counts.get(g, 0)))
    sud = grp == "substance_use"
    for s in C.SERVICE_TYPES:
        out[f"n_sud_{s.lower()}"] = float((sud & (svc == s)).sum())
    top = counts.sort_values(ascending=False)
    out["dx_substance_use_most_frequent"] = _flag(
        len(top) > 0 and top.index[0] == "substance_use" and (len(top) == 1 or top.iloc[0] > top.iloc[1]))
    tab = pd.crosstab(grp, svc)
    if tab.shape[0] >= 2 and tab.shape[1] >= 2:
        out["diagnosis_service_chi2_p"] = float(stats.chi2_contingency(tab.to_numpy())[1])
    else:
        out["diagnosis_service_chi2_p"] = nan

    # --- illness duration
    ill = df["illness_duration_years"].astype(float)
    out["illness_duration_min"], out["illness_duration_max"] = float(ill.min()), float(ill.max())
    out["illness_duration_mean"] = float(ill.mean())
    out["illness_duration_min_at_edp"] = _flag(n and (svc[ill == ill.min()] == "EDP").all())
    groups = [ill[svc == s].dropna().to_numpy() for s in C.SERVICE_TYPES if (svc == s).any()]
    groups = [g for g in groups if g.size]
    if len(groups) >= 2 and sum(g.size for g in groups) > len(groups):
        p_kw = float(stats.kruskal(*groups).pvalue)
        p_an = float(stats.f_oneway(*groups).pvalue)
    else:
        p_kw = p_an = nan
    out["illness_duration_service_kruskal_p"] = p_kw
    out["illness_duration_service_anova_p"] = p_an
    out["illness_duration_service_p"] = max(p_kw, p_an) if not (np.isnan(p_kw) or np.isnan(p_an)) else nan

    # --- medications
    for c in list(C.MEDICATION_CLASSES) + ["none"]:
        k = int(df[f"med_{c}"].astype(bool).sum())
        out[f"n_med_{c}"], out[f"pct_med_{c}"] = float(k), pct(k)
    others = [out[f"n_med_{c}"] for c in ("antidepressant", "mood_stabilizer", "addiction")]
    out["med_top2_antipsychotic_anxiolytic"] = _flag(
        n and min(out["n_med_antipsychotic"], out["n_med_anxiolytic_sedative"]) > max(others))

    # --- format, duration, sessions
    grp_fmt = int((df["imr_format"].astype(str) == "group").sum())
    out["n_group"], out["pct_group"] = float(grp_fmt), pct(grp_fmt)
    dur = df["imr_duration_months"].astype(float)
    out["imr_duration_mean"], out["imr_duration_sd"] = float(dur.mean()), float(dur.std(ddof=1))
    out["imr_duration_min"], out["imr_duration_max"] = float(dur.min()), float(dur.max())
    ses = df["n_sessions"].astype(float)
    out["sessions_mean"], out["sessions_sd"] = float(ses.mean()), float(ses.std(ddof=1))
    out["sessions_min"], out["sessions_max"] = float(ses.min()), float(ses.max())
    at_min, at_max = svc[ses == ses.min()], svc[ses == ses.max()]
    out["sessions_min_unique_serd"] = _flag(len(at_min) == 1 and (at_min == "SerD").all())
    out["sessions_max_unique_cmhc"] = _flag(len(at_max) == 1 and (at_max == "CMHC").all())
    start, end = pd.to_datetime(df["imr_start"]), pd.to_datetime(df["imr_end"])
    out["imr_within_observation_period"] = _flag(
        n and start.min() >= pd.Timestamp(OBSERVATION_START) and end.max() <= pd.Timestamp(OBSERVATION_END))

    # --- modules
    M = df[C.MODULE_COLUMNS].to_numpy(dtype=bool)
    col = M.sum(axis=0)
    per = M.sum(axis=1)
    for k in range(C.N_MODULES):
        out[f"n_module_{k + 1:02d}"] = float(col[k])
        out[f"pct_module_{k + 1:02d}"] = pct(int(col[k]))
    out["n_modules_min"] = float(per.min()) if n else nan
    out["n_modules_max"] = float(per.max()) if n else nan
    out["n_modules_mean"] = float(per.mean()) if n else nan
    out["module_01_most_frequent"] = _flag(n and (col[0] > np.delete(col, 0)).all())
    low = col.min() if n else 0
    out["modules_09_10_least"] = _flag(n and col[8] == low and col[9] == low and (np.delete(col, [8, 9]) > low).all())
    serd, cmhc, edp = (svc == "SerD").to_numpy(), (svc == "CMHC").to_numpy(), (svc == "EDP").to_numpy()
    out["pct_module_06_serd"] = pct(int(M[serd, 5].sum()), int(serd.sum()))
    out["n_module_06_cmhc"] = float(M[cmhc, 5].sum())
    out["n_module_06_edp"] = float(M[edp, 5].sum())
    serd_col = M[serd].sum(axis=0)
    out["module_06_most_frequent_serd"] = _flag(serd.any() and (serd_col[5] > np.delete(serd_col, 5)).all())
    m38 = np.zeros(C.N_MODULES, dtype=bool)
    m38[[2, 7]] = True
    out["edp_only_m3_m8"] = _flag(edp.any() and (M[edp] == m38).all())
    out["no_patient_all_11"] = _flag(n and per.max() < C.N_MODULES)
    cover_unit = pd.DataFrame(M).groupby(df["service_unit"].astype(str).to_numpy()).any().all(axis=1)
    cover_type = pd.DataFrame(M).groupby(svc.to_numpy()).any().all(axis=1)
    out["no_service_all_11"] = _flag(n and not cover_unit.any() and not cover_type.any())

    # --- IMRS
    out["imrs_user_item_mean_mean"] = float(df["imrs_user_mean"].mean())
    out["imrs_user_item_mean_sd"] = float(df["imrs_user_mean"].std(ddof=1))
    out["imrs_provider_item_mean_mean"] = float(df["imrs_provider_mean"].mean())
    out["imrs_provider_item_mean_sd"] = float(df["imrs_provider_mean"].std(ddof=1))
    out["imrs_user_total_mean"] = float(df["imrs_user_total"].mean())
    out["imrs_user_total_sd"] = float(df["imrs_user_total"].std(ddof=1))
    out["imrs_provider_total_mean"] = float(df["imrs_provider_total"].mean())
    out["imrs_provider_total_sd"] = float(df["imrs_provider_total"].std(ddof=1))
    um = df[C.IMRS_USER_COLUMNS].astype("Float64").mean().to_numpy(dtype=float, na_value=np.nan)
    pm = df[C.IMRS_PROVIDER_COLUMNS].astype("Float64").mean().to_numpy(dtype=float, na_value=np.nan)
    ok = ~np.isnan(um) & ~np.isnan(pm)
    out["imrs_item_profile_n"] = float(ok.sum())
    if ok.sum() >= 3 and np.std(um[ok]) > 0 and np.std(pm[ok]) > 0:
        pr = stats.pearsonr(um[ok], pm[ok])
        sr = stats.spearmanr(um[ok], pm[ok])
        out["imrs_item_profile_pearson_r"] = float(pr.statistic)
        out["imrs_item_profile_pearson_p"] = float(pr.pvalue)
        out["imrs_item_profile_spearman_r"] = float(sr.statistic)
        out["imrs_item_profile_spearman_p"] = float(sr.pvalue)
    else:
        for k in ("pearson_r", "pearson_p", "spearman_r", "spearman_p"):
            out[f"imrs_item_profile_{k}"] = nan
    tot = df[["imrs_user_total", "imrs_provider_total"]].dropna()
    if len(tot) >= 3:
        pt = stats.pearsonr(tot["imrs_user_total"], tot["imrs_provider_total"])
        out["imrs_total_pearson_r"], out["imrs_total_pearson_p"] = float(pt.statistic), float(pt.pvalue)
    else:
        out["imrs_total_pearson_r"] = out["imrs_total_pearson_p"] = nan
    return out


def _compare(value: float, published: float, decimals: int, comparator: str) -> tuple[bool, str]:
    import math

    if value is None or not math.isfinite(float(value)):
        return False, "nan"
    if comparator == "<":
        return float(value) < float(published), ("< " if float(value) < float(published) else "") + _short(value)
    if comparator == ">":
        return float(value) > float(published), ("> " if float(value) > float(published) else "") + _short(value)
    printed = print_value(value, decimals)
    return printed == print_value(published, decimals), printed


def _short(x: float) -> str:
    x = float(x)
    return f"{x:.3g}" if abs(x) < 0.001 and x != 0 else print_value(x, 3)


def check_published(cohort, published=None):
    """Compare every published figure with its recomputation from ``cohort``.

    Parameters
    ----------
    cohort : pandas.DataFrame
        The cohort (canonical columns).
    published : pandas.DataFrame, optional
        As returned by :func:`imr_analysis.published.load_published` (the default).

    Returns
    -------
    pandas.DataFrame
        Columns ``id, quote, kind, published, decimals, recomputed, recomputed_printed,
        status, reason``. ``status`` is ``match`` (recomputed value printed at the
        published precision equals the published value, or satisfies the comparator
        such as ``< 0.001``), ``mismatch``, ``paper-inconsistent`` (the paper contradicts
        itself or arithmetic; the reason says which competing statement the data
        honour) or ``not-recomputable`` (no metric: literature, setting).

    Examples
    --------
    >>> check = check_published(load_cohort())  # doctest: +SKIP
    >>> summary_line(check)  # doctest: +SKIP
    '47 matched, 0 mismatched, 7 paper-inconsistent, 20 not recomputable'
    """
    import math

    import pandas as pd

    if published is None:
        from .published import load_published

        published = load_published()
    metrics = compute_metrics(cohort)
    rows = []
    for e in published.to_dict("records"):
        metric = e.get("metric")
        has_metric = isinstance(metric, str) and metric != ""
        if has_metric and metric not in metrics:
            raise KeyError(f"published figure {e['id']!r} names metric {metric!r}, which compute_metrics "
                           f"does not know; known metrics: {sorted(metrics)}")
        value = metrics[metric] if has_metric else float("nan")
        decimals = int(e["decimals"]) if e.get("decimals") is not None and not _isnan(e.get("decimals")) else 0
        comparator = e.get("comparator") or "="
        if isinstance(comparator, float) and math.isnan(comparator):
            comparator = "="
        pub = e.get("value")
        reason = e.get("reason") or ""
        if isinstance(reason, float):
            reason = ""
        if has_metric and pub is not None and not _isnan(pub):
            matched, printed = _compare(value, float(pub), decimals, comparator)
        else:
            matched, printed = False, (print_value(value, decimals) if has_metric else "")
        if e["kind"] == "p" and comparator == "=" and has_metric and 0 < value < 10.0 ** (-decimals):
            printed = f"{printed} (p = {value:.2g})"
        if e.get("verdict") == "paper-inconsistent":
            status = "paper-inconsistent"
        elif not has_metric:
            status = "not-recomputable"
        elif matched:
            status = "match"
        else:
            status = "mismatch"
            shown = ("< " if comparator == "<" else "> " if comparator == ">" else "") + print_value(pub, decimals)
            reason = f"recomputed {printed} but the paper states {shown}" + (f"; {reason}" if reason else "")
        rows.append({
            "id": e["id"], "quote": e["quote"], "kind": e["kind"],
            "published": (float(pub) if pub is not None and not _isnan(pub) else float("nan")),
            "decimals": decimals, "recomputed": float(value), "recomputed_printed": printed,
            "status": status, "reason": reason,
        })
    out = pd.DataFrame(rows, columns=CHECK_COLUMNS)
    out["decimals"] = out["decimals"].astype("int64")
    return out


def _isnan(x) -> bool:
    try:
        return x != x
    except Exception:  # pragma: no cover
        return False


def summary_line(check_df) -> str:
    """One line counting the statuses of :func:`check_published`.

    Examples
    --------
    >>> import pandas as pd
    >>> summary_line(pd.DataFrame({"status": ["match", "match", "paper-inconsistent", "not-recomputable"]}))
    '2 matched, 0 mismatched, 1 paper-inconsistent, 1 not recomputable'
    """
    counts = check_df["status"].value_counts()
    line = (f"{int(counts.get('match', 0))} matched, {int(counts.get('mismatch', 0))} mismatched, "
            f"{int(counts.get('paper-inconsistent', 0))} paper-inconsistent, "
            f"{int(counts.get('not-recomputable', 0))} not recomputable")
    if counts.get(WITHHELD, 0):
        line = (f"{int(counts[WITHHELD])} comparisons withheld (private data), "
                f"{int(counts.get('paper-inconsistent', 0))} paper-inconsistent, "
                f"{int(counts.get('not-recomputable', 0))} not recomputable")
    return line


#: Status of a figure whose comparison is not published (private data).
WITHHELD = "withheld (private data)"


def public_check(check_df, profile):
    """The audit of :func:`check_published` as it may be shown under a disclosure profile.

    With the ``none`` profile (the shipped synthetic data) the audit is returned as it is.
    Otherwise the cohort is a department's own: its recomputed values describe groups of
    any size (a service of 5 patients, the youngest patient's age) and even a status
    discloses them (``match`` against "five patients" says the count is 5). The recomputed
    values are then removed and every status but ``paper-inconsistent`` and
    ``not-recomputable`` (verdicts about the paper, not the data) becomes
    :data:`WITHHELD`; the disclosure-controlled tables of notebooks 02-05 are the
    department's results.

    Examples
    --------
    >>> import pandas as pd
    >>> check = pd.DataFrame({"id": ["n", "p"], "recomputed": [5.0, 0.3], "recomputed_printed": ["5", "0.3"],
    ...                       "status": ["match", "paper-inconsistent"], "reason": ["", "typo"]})
    >>> public_check(check, "opensafely")[["recomputed_printed", "status"]].values.tolist()
    [['[REDACTED]', 'withheld (private data)'], ['[REDACTED]', 'paper-inconsistent']]
    """
    from . import disclosure

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
