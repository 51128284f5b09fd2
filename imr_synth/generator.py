"""Draw a synthetic IMR cohort and write it as the EFESO, Sister and IMR-summary-form exports.

Clinically plausible distributions depend on service type, diagnosis, age and illness duration. At the paper's 126
patients the draw is *calibrated*: counts exact; ages, days, sessions and IMRS totals moved by +-1 until mean and SD
print as published; modules swapped; points moved between items for the item-profile r. A draw missing a target of
:func:`calibration_problems` is redrawn with the next sub-seed: any seed works, and the same seed gives the same
bytes. Other sizes scale the paper's counts. The exports also hold the records the cleaner excludes (EHR records
without a form, late forms). A :class:`Department` (:data:`DEPARTMENTS`) draws another, uncalibrated department with its
own size, service mix, units, group share, sessions and provider leniency, for the pooling notebook.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from imr_analysis import constants as C
from imr_analysis import paths

#: Default seed of the shipped exports (the month enrolment started: April 2017).
DEFAULT_SEED = 20170401
#: Cohort size of the paper; only this size is calibrated.
N_PUBLISHED = 126
#: Sub-seeds tried before giving up on calibrating a seed.
MAX_ATTEMPTS = 60

OBS_START, OBS_END = "2017-04-01", "2021-07-31"
_OBS_END_DAY = np.datetime64(OBS_END, "D").astype(np.int64)
#: Earliest IMR start per service type, as day numbers (the SerD and the EDP joined later).
_FIRST_START_DAY = np.array(["2017-04-01", "2017-10-02", "2019-02-04"], dtype="datetime64[D]").astype(np.int64)
_SVC = C.SERVICE_TYPES
_SVC_REF = np.array([69, 52, 5])  # patients per service type in the paper

#: Published figures the calibration aims at: counts, and (value, decimals) of means and SDs.
#: ``imr_analysis/resources/published_figures.yaml`` is the audit's copy; a test compares the two.
_TARGET = {
    "men": 77, "individual": 22, "med_none": 26, "med_antipsychotic": 54, "med_anxiolytic": 51, "sud_cmhc": 1,
    "outside_province": 4,
    "missing": {"education_years": 4, "marital_status": 3, "living_condition": 5, "employment_status": 6},
    "age_mean": (40.14, 2), "age_sd": (12.92, 2), "age_first_mean": (34.55, 2), "age_first_sd": (12.06, 2),
    "dur_mean": (9.6, 1), "dur_sd": (7.5, 1), "ses_mean": (21.4, 1), "ses_sd": (12.6, 1),
    "user_total_mean": (55.1, 1), "user_total_sd": (7.47, 2), "prov_total_mean": (54.18, 2),
    "prov_total_sd": (8.45, 2), "item_r": (0.96, 2),
}
_MIN_DAYS, _MAX_DAYS = 61, 1157  # 2.0 and 38.0 months
_MIN_SESSIONS, _MAX_SESSIONS = 1, 70
_MAX_ILLNESS_YEARS = 26

#: Patients per service type receiving each module M1..M11 in the paper-sized cohort.
#: Totals: M1 89, M2 60, M3 65, M4 30, M5 50, M6 54, M7 62, M8 66, M9 8, M10 8, M11 55.
_MODULE_TARGET = np.array([[49, 40, 38, 22, 40, 2, 27, 31, 8, 0, 30],   # CMHC (never M10)
                           [40, 20, 22, 8, 10, 52, 35, 30, 0, 8, 25],   # SerD (M6 for all, never M9)
                           [0, 0, 5, 0, 0, 0, 0, 5, 0, 0, 0]])          # EDP (M3 + M8 only)

_UNIT_NAMES = list(C.SERVICE_UNITS)
#: Share of a service type's patients per unit (units in the order of constants.SERVICE_UNITS).
_UNIT_PROBS = {"CMHC": (.17, .14, .14, .38, .17), "SerD": (.20, .18, .42, .20), "EDP": (1.0,)}
_OUTSIDE_MUNICIPALITIES = ("Bologna", "Rovigo", "Modena", "Ravenna")

#: Diagnoses (dotted ICD-10) with their probabilities within a service type.
_DX_TABLE = {
    "CMHC": (("F20.0", .24), ("F20.5", .05), ("F25.0", .10), ("F22.0", .07), ("F31.1", .10),
             ("F31.2", .04), ("F31.7", .09), ("F32.2", .07), ("F33.1", .13), ("F33.2", .06)),
    "SerD": (("F10.2", .44), ("F11.2", .26), ("F14.2", .22), ("F12.2", .05), ("F19.2", .03)),
    "EDP": (("F50.0", .6), ("F50.2", .4)),
}
_DX_CMHC_SUD = "F10.2"  # the one CMHC patient with a substance use disorder (dual diagnosis)

#: ATC codes per medication class, in the order of the columns of the drawn code matrix.
_ATC = {
    "antipsychotic": ("N05AH03", "N05AX08", "N05AX12", "N05AH04", "N05AD01", "N05AH02", "N05AX13"),
    "antidepressant": ("N06AB06", "N06AB10", "N06AX16", "N06AX11", "N06AB03"),
    "mood_stabilizer": ("N05AN01", "N03AG01", "N03AX09"),
    "anxiolytic_sedative": ("N05BA12", "N05BA06", "N05BA01", "N05CF02", "N05BA08"),
    "addiction": ("N07BC02", "N07BC01", "N07BB04", "N07BB01", "N07BB03"),
    "other": ("A02BC01", "C07AB07", "A10BA02", "C09AA05"),
}

#: IMRS item profiles (items 1..15; higher = better) of users, and how providers differ.
_IMRS_BASE_USER = np.array([3.75, 3.95, 3.65, 3.45, 3.25, 3.55, 3.55, 3.65, 3.55, 4.20, 3.75, 2.75, 3.95, 4.35, 4.40])
_IMRS_PROVIDER_SHIFT = np.array([-.10, -.15, 0., -.15, -.10, -.05, -.10, -.15, -.05, 0., -.10, -.05, -.05, -.10, -.05])

_EDUCATION_VALUES = np.array([5, 8, 11, 12, 13, 16, 18])
_EDUCATION_PROBS = np.array([[.07, .36, .10, .00, .33, .10, .04],   # CMHC
                             [.05, .50, .12, .00, .24, .07, .02],   # SerD
                             [.00, .00, .00, .50, .50, .00, .00]])  # EDP (18-year-olds, still at school)
#: Social variables (categories in the codebook's order) in rows: CMHC, SerD, EDP, under 25 outside the EDP.
_SOCIAL_PROBS = {
    "marital_status": [[.62, .22, .13, .03], [.52, .26, .19, .03], [1, 0, 0, 0], [.95, .05, 0, 0]],
    "living_condition": [[.44, .20, .21, .10, .05], [.30, .36, .24, .05, .05], [0, 1, 0, 0, 0],
                         [.10, .80, .05, .03, .02]],
    "employment_status": [[.26, .44, .03, .20, .07], [.40, .45, .02, .05, .08], [0, 0, 1, 0, 0],
                          [.22, .43, .30, 0, .05]],
}
#: How often the EHRs use each of their codes for one canonical category (default: equally).
_SOURCE_KEY_WEIGHTS = {"married_cohabiting": [.8, .2], "separated_divorced": [.6, .4]}


@dataclass(frozen=True)
class Department:
    """A synthetic department other than the paper's: ``None`` or empty fields keep the paper's settings.

    ``mix``: patients per service type (CMHC, SerD, EDP) as shares; ``unit_probs``: each service type's shares of its
    units (constants.SERVICE_UNITS order, 0 = no such unit); ``group_share``: patients in group format;
    ``provider_shift``: added to every provider item's expected rating (negative: stricter providers, a larger
    user - provider bias); ``targets``: means and SDs of :data:`_TARGET` to draw to, e.g. ``{"ses_mean": (17.0, 1)}``.
    """

    name: str
    seed: int
    n_patients: int
    mix: tuple | None = None
    unit_probs: dict | None = None
    group_share: float | None = None
    provider_shift: float = 0.0
    targets: dict = field(default_factory=dict)


#: The paper's department: every setting as calibrated.
PAPER = Department("", DEFAULT_SEED, N_PUBLISHED)
#: The synthetic departments of ``data/bundles`` (``python -m imr_analysis synth --departments DIR``): a small one
#: with fewer units, more individual sessions and fewer sessions; a middle one with more SerD and EDP patients and
#: stricter providers; a large one with more CMHC patients, groups and sessions and more lenient providers. Ages,
#: sexes and medications follow the paper's counts in all three (no between-department difference by design).
DEPARTMENTS = {d.name: d for d in (
    Department("north", 1101, 90, mix=(.62, .32, .06), group_share=.60, provider_shift=0.0,
               unit_probs={"CMHC": (.55, 0, .45, 0, 0), "SerD": (1.0, 0, 0, 0), "EDP": (1.0,)},
               targets={"ses_mean": (16.5, 1), "ses_sd": (10.5, 1), "dur_mean": (8.5, 1), "dur_sd": (6.5, 1)}),
    Department("central", 2202, 200, mix=(.50, .42, .08), group_share=.82, provider_shift=-.15),
    Department("coastal", 3303, 400, mix=(.65, .30, .05), group_share=.90, provider_shift=.12,
               unit_probs={"CMHC": (0, .35, 0, .40, .25), "SerD": (0, .55, 0, .45), "EDP": (1.0,)},
               targets={"ses_mean": (25.0, 1), "ses_sd": (13.5, 1), "dur_mean": (11.0, 1), "dur_sd": (8.0, 1)}),
)}


def department(name: str) -> Department:
    """The synthetic department ``name`` of :data:`DEPARTMENTS` (ValueError naming the choices)."""
    if name not in DEPARTMENTS:
        raise ValueError(f"unknown department {name!r}; choose from {', '.join(DEPARTMENTS)}")
    return DEPARTMENTS[name]


class CalibrationError(RuntimeError):
    """A draw could not be calibrated to the published figures (the caller retries)."""


@dataclass(frozen=True)
class Synthetic:
    """One synthetic data set: the raw exports ``efeso``, ``sister``, ``form`` as written (text, missing ``""``,
    file order) and the ``truth`` (:data:`constants.COHORT_COLUMNS`, typed as the cleaner types it)."""

    efeso: pd.DataFrame
    sister: pd.DataFrame
    form: pd.DataFrame
    truth: pd.DataFrame


def marker_line(seed: int, n_patients: int, department: str = "") -> str:
    """The metadata line that opens every synthetic export (naming the department, if any).

    Examples
    --------
    >>> marker_line(1101, 90, "north")
    '# SYNTHETIC DATA - generated by imr_analysis synth (seed=1101, n_patients=90, department=north); not real patients'
    """
    return (f"{C.SYNTHETIC_MARKER} - generated by imr_analysis synth (seed={int(seed)}, "
            f"n_patients={int(n_patients)}{f', department={department}' if department else ''}); not real patients")


def _require(ok, message: str) -> None:
    """Raise :class:`CalibrationError` with ``message`` unless ``ok``."""
    if not ok:
        raise CalibrationError(message)


def _fmt(x: float, decimals: int) -> str:
    """Print a number at ``decimals`` places, rounding half away from zero (as SPSS)."""
    if x is None or not np.isfinite(x):
        return "nan"
    s = f"{Decimal(repr(float(x))).quantize(Decimal(1).scaleb(-int(decimals)), rounding=ROUND_HALF_UP):f}"
    return "0" + s[2:] if s.startswith("-0") and float(s) == 0 else s


def _scaled(count: int, n: int, n_ref: int = N_PUBLISHED) -> int:
    """A count of the paper's cohort (of ``n_ref`` patients) scaled to a group of ``n``: exact when n == n_ref."""
    return int(min(n, max(0, round(count * n / n_ref))))


def _pick_k(rng, weights, k: int) -> np.ndarray:
    """Exactly ``k`` elements drawn without replacement, P ~ weights (Efraimidis-Spirakis keys)."""
    w = np.asarray(weights, dtype=float)
    k = int(min(max(k, 0), w.size))
    mask = np.zeros(w.size, dtype=bool)
    if k == 0:
        return mask
    u = rng.random(w.size)
    with np.errstate(divide="ignore"):
        keys = np.where(w > 0, np.log(u) / np.where(w > 0, w, 1.0), -1e300 - u)
    mask[np.argpartition(-keys, k - 1)[:k]] = True
    return mask


def _bernoulli_exact(rng, p, k: int) -> np.ndarray:
    """Bernoulli(p) draws, then flipped (weighted by p) until exactly ``k`` are True."""
    p = np.clip(np.asarray(p, dtype=float), 0, 1)
    b = rng.random(p.size) < p
    diff = int(k) - int(b.sum())
    if diff > 0:
        b |= _pick_k(rng, np.where(~b, p, 0.0), diff) & ~b
    elif diff < 0:
        b &= ~(_pick_k(rng, np.where(b, 1.0 - p + 1e-9, 0.0), -diff) & b)
    return b


def _draw_cat(rng, probs, rows=None, n: int = 0) -> np.ndarray:
    """Category index per element: row ``rows[i]`` of the probability table (row 0 for ``n`` elements)."""
    P = np.asarray(probs, dtype=float)
    P = P / P.sum(axis=1, keepdims=True)
    rows = np.zeros(n, dtype=int) if rows is None else np.asarray(rows)
    u = rng.random(len(rows))
    return np.minimum((u[:, None] >= np.cumsum(P, axis=1)[rows]).sum(axis=1), P.shape[1] - 1)


def _rescale(x, free, mean: float, sd: float) -> np.ndarray:
    """Affinely rescale the free elements so the whole vector has this mean and sample SD."""
    x = np.asarray(x, dtype=float).copy()
    n, nf = x.size, int(free.sum())
    if nf < 2:
        return x
    mf = (mean * n - x[~free].sum()) / nf
    own = (n - 1) * sd**2 - ((x[~free] - mean) ** 2).sum() - nf * (mf - mean) ** 2
    cur = x[free]
    cs = cur.std()
    x[free] = mf + (cur - cur.mean()) * (math.sqrt(max(own, 0.0) / nf) / cs if cs > 0 else 0.0)
    return x


def _adjust_integers(rng, x, lo, hi, free, mean, sd, scale=1.0, max_iter=20000) -> np.ndarray:
    """Move integers by +-1 within [lo, hi] until mean and SD, ``(value, decimals)`` of ``x / scale``, print so.

    First the sum, then pairs move apart or together until the SD is in the inner 60% of its rounding window.
    """
    x = np.asarray(x, dtype=np.int64).copy()
    lo, hi = (np.broadcast_to(np.asarray(bound, dtype=np.int64), x.shape) for bound in (lo, hi))
    _require(not np.any(free & (lo > hi)), "empty bounds")
    x[free] = np.clip(x[free], lo[free], hi[free])
    (m_t, m_d), (s_t, s_d), n = mean, sd, x.size
    s0, span = int(round(m_t * scale * n)), int(math.ceil(scale)) * 3 + 3  # the sum closest to the target mean
    sums = sorted(range(s0 - span, s0 + span + 1), key=lambda s: (abs(s / (n * scale) - m_t), s))
    target_sum = next((s for s in sums if _fmt(s / (n * scale), m_d) == _fmt(m_t, m_d)), None)
    _require(target_sum is not None, f"no integer sum gives a mean printing as {_fmt(m_t, m_d)}")
    for _ in range(max_iter):  # the sum
        diff = target_sum - int(x.sum())
        if diff == 0:
            break
        cand = free & ((x < hi) if diff > 0 else (x > lo))
        _require(cand.any(), "sum cannot be reached within bounds")
        side = (x < x.mean()) if (diff > 0) == (x.std(ddof=1) / scale > s_t) else (x > x.mean())
        pool = cand & side if (cand & side).any() else cand
        x[_pick_k(rng, pool.astype(float), min(abs(diff), int(pool.sum()), max(1, abs(diff) // 2)))] += np.sign(diff)
    else:
        raise CalibrationError("sum did not converge")
    ss_t = (n - 1) * (s_t * scale) ** 2
    for _ in range(max_iter):  # the SD, sum kept
        sdv = x.std(ddof=1) / scale
        if abs(sdv - s_t) <= 0.3 * 10.0 ** (-s_d) and _fmt(sdv, s_d) == _fmt(s_t, s_d):
            return x
        need = ss_t - float(((x - x.mean()) ** 2).sum())
        iu, jd = np.flatnonzero(free & (x < hi)), np.flatnonzero(free & (x > lo))
        _require(iu.size and jd.size, "SD cannot be reached within bounds")
        delta = 2.0 * (x[iu][:, None] - x[jd][None, :]) + 2.0  # change of the sum of squares
        valid = iu[:, None] != jd[None, :]
        ok = valid & ((delta > 0) & (delta <= need) if need > 0 else (delta < 0) & (delta >= need))
        if ok.any():
            big = ok & (np.abs(delta) >= abs(need) / 3)
            pool = np.flatnonzero((big if big.any() else ok).ravel())
            flat = pool[rng.integers(pool.size)]
        else:
            same = valid & (np.sign(delta) == np.sign(need))
            _require(same.any(), "SD cannot be reached")
            flat = int(np.argmin(np.where(same, np.abs(need - delta), np.inf)))
        a, b = divmod(int(flat), jd.size)
        x[[iu[a], jd[b]]] += [1, -1]
    raise CalibrationError("SD did not converge")


def _integers(rng, x, free, lo, hi, name: str, calibrate: bool, scale: float = 1.0, pins=(), target=None) -> np.ndarray:
    """Integers with the target mean and SD ``name``: ``pins`` (index, value; index -1 for none) fixed, the other
    free elements rescaled, rounded into [lo, hi] and adjusted."""
    x, free = np.array(x, dtype=float), np.array(free)
    for i, value in pins:
        if i >= 0:
            x[i], free[i] = value, False
    target = _TARGET if target is None else target
    mean, sd = target[f"{name}_mean"], target[f"{name}_sd"]
    x = _rescale(x, free, mean[0] * scale, sd[0] * scale)
    x = np.where(free, np.clip(np.rint(x), lo, hi), np.rint(x)).astype(np.int64)
    return _adjust_integers(rng, x, lo, hi, free, mean, sd, scale=scale) if calibrate else x


# --- drawing a population --------------------------------------------------------------
def _draw(rng, svc: np.ndarray, calibrate: bool, late: np.ndarray | None = None, dept: Department = PAPER) -> dict:
    """Every variable of patients of service types ``svc`` (0 CMHC, 1 SerD, 2 EDP); ``late``: excluded records."""
    n, P, target = svc.size, {"svc": svc}, {**_TARGET, **dept.targets}
    is_c, is_s, is_e = svc == 0, svc == 1, svc == 2
    # service unit; calibrated, every unit has at least 3 patients
    unit = np.zeros(n, dtype=np.int64)
    for s, name in enumerate(_SVC):
        codes = np.array([i for i, u in enumerate(_UNIT_NAMES) if C.SERVICE_UNITS[u]["service_type"] == name])
        idx = np.flatnonzero(svc == s)
        unit[idx] = codes[_draw_cat(rng, [(dept.unit_probs or _UNIT_PROBS)[name]], n=idx.size)]
        for _ in range(100 if calibrate and idx.size >= 3 * codes.size else 0):
            counts = dict(zip(codes, (unit[idx][:, None] == codes).sum(axis=0)))
            small = [u for u in codes if counts[u] < 3]
            if not small:
                break
            donors = idx[unit[idx] == max(codes, key=lambda u: counts[u])]
            unit[donors[rng.integers(donors.size)]] = small[0]
    P["unit"] = unit
    # sex; calibrated, at most one man among the EDP's five (the others swapped with CMHC women)
    male = _bernoulli_exact(rng, np.array([.52, .80, .05])[svc], _scaled(_TARGET["men"], n))
    if calibrate:
        extra, women = np.flatnonzero(is_e & male)[1:], np.flatnonzero(is_c & ~male)
        male[women[_pick_k(rng, np.ones(women.size), extra.size)]] = True
        male[extra] = False
    P["male"] = male
    # diagnosis
    dx = np.empty(n, dtype=object)
    for s, name in enumerate(_SVC):
        idx = np.flatnonzero(svc == s)
        codes, probs = zip(*_DX_TABLE[name])
        dx[idx] = np.array(codes, dtype=object)[_draw_cat(rng, [probs], n=idx.size)]
    cmhc_idx = np.flatnonzero(is_c)
    k_sud = _scaled(_TARGET["sud_cmhc"], cmhc_idx.size, _SVC_REF[0])
    dx[cmhc_idx[_pick_k(rng, np.ones(cmhc_idx.size), k_sud)]] = _DX_CMHC_SUD
    num = pd.Series(dx, dtype=object).str[1:3].astype(int).to_numpy()
    group = np.select([np.isin(num, codes) for codes in C.DIAGNOSIS_GROUP_CODES.values()],
                      list(C.DIAGNOSIS_GROUP_CODES), default="other")
    P["dx"], P["dx_group"] = dx, group
    schizo, bipolar, depress = group == "schizophrenia_spectrum", group == "bipolar", group == "depressive"
    sud = group == "substance_use"
    alcohol, opioid = np.char.startswith(dx.astype(str), "F10"), np.char.startswith(dx.astype(str), "F11")
    # age at IMR start (integer years); the EDP patients are 18
    age = np.where(is_e, 18.0, np.where(is_c, rng.normal(42.5, 11.5, n), rng.normal(41.0, 11.5, n)))
    P["age"] = age = _integers(rng, age, ~is_e, 19, 75, "age", calibrate, target=target)
    # the cohort's pinned patients: the single-session SerD user, the 70-session CMHC user, the 26-year illness
    pin_min = pin_max = pin_ill = -1
    if late is None:
        serd_idx = np.flatnonzero(is_s)
        if serd_idx.size:
            pin_min = int(serd_idx[rng.integers(serd_idx.size)])
        older = np.flatnonzero(is_c & (age >= 45))
        if older.size >= 2:
            pin_max, pin_ill = (int(i) for i in rng.choice(older, size=2, replace=False))
        elif cmhc_idx.size:
            pin_max = int(cmhc_idx[np.argmax(age[cmhc_idx])])
    P["pin_min"], P["pin_max"], P["pin_ill"] = pin_min, pin_max, pin_ill
    # age at first treatment; illness duration in calendar years D = age - age_first
    gam = np.where(is_c, rng.gamma(1.6, 4.0, n), rng.gamma(1.4, 2.1, n))
    stretch = np.clip((age - 15) / 26.0, 0.1, None) ** 0.8
    D = np.clip(np.rint(1 + gam * stretch), 1, np.maximum(np.minimum(25, age - 15), 1))
    D = np.where(is_e, 0, D)
    free = ~is_e
    if pin_ill >= 0:
        D[pin_ill], free[pin_ill] = _MAX_ILLNESS_YEARS, False
    F = _integers(rng, age - D, free, np.maximum(age - 25, 15), age - 1, "age_first", calibrate, target=target)
    P["age_first"], P["D"] = F, age - F
    # IMR duration in days (months = days / (365.25/12))
    days = np.array([8.0, 6.8, 3.2])[svc] * np.exp(np.array([.62, .62, .25])[svc] * rng.standard_normal(n))
    days = np.where(is_e, np.clip(days * C.DAYS_PER_MONTH, 62, 200), days * C.DAYS_PER_MONTH)
    P["days"] = days = _integers(rng, days, ~is_e, _MIN_DAYS + 1, _MAX_DAYS - 7, "dur", calibrate, C.DAYS_PER_MONTH,
                                 pins=((pin_min, _MIN_DAYS), (pin_max, _MAX_DAYS)), target=target)
    # format: 104 of 126 in groups (the EDP ran one group; the single-session user was seen alone)
    p_ind = np.array([.20, .18, 0.0])[svc]
    if pin_min >= 0:
        p_ind[pin_min] = 0.95
    P["individual"] = _bernoulli_exact(rng, p_ind, _scaled(_TARGET["individual"], n) if dept.group_share is None
                                       else round((1 - dept.group_share) * n))
    P["start"], P["stop"] = _imr_dates(rng, P, np.zeros(n, dtype=bool) if late is None else late)
    # sessions, at most about one a week
    weeks = days / 7.0
    ses = weeks ** 0.75 * np.exp(0.25 * rng.standard_normal(n))
    P["sessions"] = _integers(rng, ses, np.ones(n, dtype=bool), np.maximum(2, np.floor(weeks * 0.12)).astype(np.int64),
                              np.minimum(_MAX_SESSIONS - 1, np.floor(weeks) + 1).astype(np.int64), "ses", calibrate,
                              pins=((pin_min, _MIN_SESSIONS), (pin_max, _MAX_SESSIONS)), target=target)
    _draw_medications(rng, P, schizo, bipolar, depress, sud, alcohol, opioid)
    P["modules"] = _draw_modules(rng, P, calibrate, schizo)
    # education, marital status, living condition, employment, and which of them are missing
    P["education"] = _EDUCATION_VALUES[_draw_cat(rng, _EDUCATION_PROBS, svc)]
    row = np.where(is_e, 2, np.where(age < 25, 3, svc))  # row 3: under 25 outside the EDP
    for fld, probs in _SOCIAL_PROBS.items():  # categories in the codebook's order (C.MARITAL_STATUS, ...)
        P[fld] = np.array(getattr(C, fld.upper()), dtype=object)[_draw_cat(rng, probs, row)]
    P["missing"] = {fld: _pick_k(rng, np.ones(n), _scaled(k, n)) for fld, k in _TARGET["missing"].items()}
    P["municipality"] = _draw_residence(rng, P)
    user, prov = _draw_imrs(rng, P, calibrate, alcohol, sud, dept.provider_shift)
    P["imrs_user"], P["imrs_provider"] = user.astype(np.int8), prov.astype(np.int8)
    _draw_ehr_dates(rng, P)
    P["manual"] = np.where(is_e | (rng.random(n) < 0.9), 0, 1)
    return P


def _imr_dates(rng, P, late):
    """Start and stop day numbers; the group-format patients of a unit meet in groups of 6."""
    svc, unit, days, n = P["svc"], P["unit"], P["days"], P["svc"].size
    order = np.lexsort((rng.random(n), unit))  # patients of a unit in random order
    in_group = order[(~P["individual"] & ~late)[order]]
    group = np.arange(n, dtype=np.int64) + 10 * n  # singletons by default
    group[in_group] = unit[in_group] * n + pd.Series(unit[in_group]).groupby(unit[in_group]).cumcount() // 6
    lo = _FIRST_START_DAY[svc]
    hi = np.maximum(_OBS_END_DAY - pd.Series(days).groupby(group).transform("max").to_numpy()
                    - np.where(svc == 2, 60, 0), lo)
    u = pd.Series(rng.random(n)).groupby(group).transform("first").to_numpy()  # a group starts together
    start = lo + np.floor(u * (hi - lo + 1)).astype(np.int64)
    # the EDP started after the first weeks of a year, so first access can be that year
    start = np.where((svc == 2) & (pd.to_datetime(start, unit="D").day_of_year <= 45), start + 60, start)
    stop_late = _OBS_END_DAY + rng.integers(3, 100, n)  # completed after the observation period
    start = np.where(late, stop_late - days, start)
    return start.astype(np.int64), (start + days).astype(np.int64)


def _draw_medications(rng, P, schizo, bipolar, depress, sud, alcohol, opioid) -> None:
    """Medication classes (exact counts when calibrated) and one ATC code per class taken."""
    svc, n = P["svc"], P["svc"].size
    is_c, is_s, is_e = svc == 0, svc == 1, svc == 2
    p_none = np.select([is_s & (alcohol | opioid), is_s, is_e, schizo, bipolar, depress],
                       [.18, .45, .60, .02, .05, .15], default=.10)
    if P["pin_min"] >= 0:
        p_none[P["pin_min"]] = .5
    none = _bernoulli_exact(rng, p_none, _scaled(_TARGET["med_none"], n))
    p_ap = np.select([schizo, bipolar, depress, is_c & sud, is_s, is_e], [.97, .70, .15, .50, .10, .20], default=.1)
    ap = _bernoulli_exact(rng, np.where(none, 0, p_ap), _scaled(_TARGET["med_antipsychotic"], n)) & ~none
    p_ax = np.select([is_c, is_s, is_e], [.42, .55, .30], default=.4)
    ax = _bernoulli_exact(rng, np.where(none, 0, p_ax), _scaled(_TARGET["med_anxiolytic"], n)) & ~none
    p_ad = np.select([depress, bipolar, schizo, is_c & sud, is_s, is_e], [.90, .20, .15, .40, .12, .70], default=.1)
    ad = (rng.random(n) < p_ad) & ~none
    ms = (rng.random(n) < np.select([bipolar, schizo, is_s, depress], [.75, .12, .06, .05], default=0)) & ~none
    p_add = np.select([is_s & opioid, is_s & alcohol, is_s, is_c & sud], [.90, .45, .05, .30], default=0)
    add = (rng.random(n) < p_add) & ~none
    nothing = ~none & ~(ap | ad | ms | ax | add)  # on medication: at least one class
    add |= nothing & sud & (alcohol | opioid)
    ad |= nothing & ~(sud & (alcohol | opioid))
    P["med_none"] = none
    P["med"] = {"antipsychotic": ap, "antidepressant": ad, "mood_stabilizer": ms, "anxiolytic_sedative": ax,
                "addiction": add}
    # the ATC code of each class: 1 + its index in _ATC, 0 = class not taken
    atc = np.zeros((n, len(_ATC)), dtype=np.int64)
    atc[:, 0] = np.where(ap, 1 + _draw_cat(rng, [[.24, .20, .18, .16, .06, .08, .08]], n=n), 0)
    atc[:, 1] = np.where(ad, 1 + _draw_cat(rng, [[.30, .25, .18, .15, .12], [.20, .10, .05, .05, .60]],
                                           is_e.astype(int)), 0)
    atc[:, 2] = np.where(ms, 1 + _draw_cat(rng, [[.45, .40, .15]], n=n), 0)
    atc[:, 3] = np.where(ax, 1 + _draw_cat(rng, [[.30, .28, .17, .15, .10]], n=n), 0)
    atc[:, 4] = np.where(add, 1 + _draw_cat(rng, [[.6, .4, 0, 0, 0], [0, 0, .45, .25, .30], [0, 0, 1, 0, 0]],
                                            np.where(opioid, 0, np.where(alcohol, 1, 2))), 0)
    atc[:, 5] = np.where(rng.random(n) < 0.15, 1 + rng.integers(0, len(_ATC["other"]), n), 0)
    P["atc"] = atc


def _draw_modules(rng, P, calibrate, schizo) -> np.ndarray:
    """Module matrix (patients x 11): each module to its scaled number of a service type's patients, then
    (calibrated) swaps within a service type, column counts kept, for the paper's module statements."""
    svc, ses, pin_min, pin_max = P["svc"], P["sessions"], P["pin_min"], P["pin_max"]
    M = np.zeros((svc.size, C.N_MODULES), dtype=bool)
    intensity = np.maximum(ses, 1) ** 0.9 * np.exp(0.3 * rng.standard_normal(svc.size))
    affinity = np.ones(M.shape)
    affinity[~P["med_none"], 4] *= 3.0                # M5 medication
    affinity[schizo, 8] *= 3.0                        # M9 persistent symptoms
    affinity[(svc == 0) & (P["dx_group"] == "substance_use"), 5] *= 40.0  # M6 for the dual diagnosis
    for s in range(3):
        idx = np.flatnonzero(svc == s)
        for m in range(C.N_MODULES if idx.size else 0):
            k = _scaled(int(_MODULE_TARGET[s, m]), idx.size, int(_SVC_REF[s]))
            M[idx[_pick_k(rng, intensity[idx] * affinity[idx, m], k)], m] = True
    if not calibrate:  # nobody without a module: M1 at a CMHC, M6 at a SerD, M3 + M8 at the EDP
        empty = ~M.any(axis=1)
        for s, m in ((0, 0), (1, 5), (2, 2), (2, 7)):
            M[empty & (svc == s), m] = True
        return M
    allowed, pinned = _MODULE_TARGET > 0, {pin_min, pin_max}

    def patients(s, m, has, exclude, count_ok):  # of service s, with (without) module m
        ok = (svc == s) & (M[:, m] == has) & count_ok(M.sum(axis=1))
        ok[[e for e in exclude if e >= 0]] = False
        return np.flatnonzero(ok)

    def donors(s, m, least=2):
        return patients(s, m, True, pinned, lambda nm: nm >= least)

    if pin_min >= 0:  # the single-session SerD user received M6 only
        for m in np.flatnonzero(M[pin_min] & (np.arange(C.N_MODULES) != 5)):
            r = patients(1, m, False, pinned, lambda nm: nm < ses)
            _require(r.size, "no receiver for a module of the single-session user")
            M[pin_min, m], M[r[np.argmax(intensity[r])], m] = False, True
        _require(M[pin_min, 5], "single-session SerD user without M6")
    if pin_max >= 0:  # the 70-session CMHC user received every module the CMHCs delivered (10)
        for m in np.flatnonzero(allowed[0] & ~M[pin_max]):
            d = donors(0, m)
            _require(d.size, "no donor for the 10-module user")
            M[d[np.argmax(M.sum(axis=1)[d] + rng.random(d.size))], m], M[pin_max, m] = False, True
    for i in np.flatnonzero(~M.any(axis=1)):  # every patient received at least one module
        cand = [m for m in np.flatnonzero(allowed[svc[i]]) if donors(svc[i], m, 3).size]
        _require(cand, "no donor for a patient without modules")
        m = int(cand[rng.integers(len(cand))])
        d = donors(svc[i], m, 3)
        M[d[rng.integers(d.size)], m], M[i, m] = False, True
    for _ in range(500):  # no more modules than sessions
        nm = M.sum(axis=1)
        bad = np.flatnonzero(nm > ses)
        if not bad.size:
            return M
        i, s = int(bad[0]), svc[bad[0]]
        for m in rng.permutation([m for m in np.flatnonzero(M[i]) if not (s == 1 and m == 5) and s != 2]):
            r = patients(s, int(m), False, pinned | {i}, lambda nm: nm < ses)
            if r.size:
                M[i, m], M[r[np.argmax(ses[r] - nm[r])], m] = False, True
                break
        else:
            raise CalibrationError("cannot keep modules <= sessions")
    raise CalibrationError("modules <= sessions did not converge")


def _draw_residence(rng, P) -> np.ndarray:
    """Municipality: the unit's town, its district or another one; a few outside the province."""
    svc, unit = P["svc"], P["unit"]
    munis = np.array(list(C.MUNICIPALITY_DISTRICT), dtype=object)
    dist = np.array(list(C.MUNICIPALITY_DISTRICT.values()), dtype=object)
    out = np.empty(svc.size, dtype=object)
    where = _draw_cat(rng, [[.48, .45, .07]], n=svc.size)  # home town, same district, other district
    u = rng.random(svc.size)
    for j, uname in enumerate(_UNIT_NAMES):
        idx = np.flatnonzero(unit == j)
        if idx.size and uname.startswith("EDP"):  # province-wide programme: anywhere, Ferrara most often
            out[idx] = munis[_draw_cat(rng, [np.where(munis == "Ferrara", 8.0, 1.0)], n=idx.size)]
        elif idx.size:
            home = uname.split(" ", 1)[1]
            same = munis[(dist == C.MUNICIPALITY_DISTRICT[home]) & (munis != home)]
            other = munis[dist != C.MUNICIPALITY_DISTRICT[home]]
            out[idx] = np.where(where[idx] == 0, home, np.where(
                where[idx] == 1, same[(u[idx] * same.size).astype(int)], other[(u[idx] * other.size).astype(int)]))
    outside = _pick_k(rng, np.where(svc == 2, 0.0, 1.0), _scaled(_TARGET["outside_province"], svc.size))
    out[outside] = np.array(_OUTSIDE_MUNICIPALITIES, dtype=object)[
        rng.integers(0, len(_OUTSIDE_MUNICIPALITIES), int(outside.sum()))]
    return out


def _draw_imrs(rng, P, calibrate, alcohol, sud, provider_shift=0.0):
    """IMRS items 1-5 of users and providers: item profile + patient level + clinical adjustments; calibrated,
    totals to the published mean and SD, then points moved between items for the item-profile r."""
    svc, D, emp = P["svc"], P["D"], P["employment_status"]
    adj = np.zeros((svc.size, C.N_IMRS_ITEMS), dtype=np.float32)
    adj[svc == 1, 11] += 0.30                               # 12 self-help (mutual-help groups)
    adj[sud & alcohol, 13] -= 1.20                          # 14 alcohol
    adj[sud & alcohol, 14] -= 0.20
    adj[sud & ~alcohol, 14] -= 1.20                         # 15 drugs
    adj[sud & ~alcohol, 13] -= 0.30
    adj[:, 9] += np.where(svc == 0, 0.35 - 0.05 * D, 0.45)  # 10 hospitalisations: fewer when illness is short
    adj[P["med_none"], 12] += 0.60                          # 13 medication: nothing to manage
    adj[(emp == "employed") | (emp == "student"), 4] += 0.50  # 5 structured roles
    adj[emp == "unemployed", 4] -= 0.30
    adj[svc == 2, 5] -= 0.30                                # 6 symptom distress in eating disorders
    theta = (rng.standard_normal(svc.size) + 0.05 * (P["modules"].sum(axis=1) - 4)).astype(np.float32)
    theta_p = (0.75 * theta + 0.66 * rng.standard_normal(svc.size)).astype(np.float32)
    out = []
    for base, slope, lat in ((_IMRS_BASE_USER, 0.45, theta),
                             (_IMRS_BASE_USER + _IMRS_PROVIDER_SHIFT + provider_shift, 0.50, theta_p)):
        x = rng.standard_normal((svc.size, C.N_IMRS_ITEMS), dtype=np.float32) * np.float32(0.6)
        x += adj
        x += base.astype(np.float32)
        x += (np.float32(slope) * lat)[:, None]
        out.append(np.clip(np.rint(x), C.IMRS_MIN, C.IMRS_MAX).astype(np.int64))
    user, prov = out
    if not calibrate:
        return user, prov
    lo, hi = C.N_IMRS_ITEMS * C.IMRS_MIN, C.N_IMRS_ITEMS * C.IMRS_MAX
    free = np.ones(user.shape[0], dtype=bool)
    ut = _adjust_integers(rng, user.sum(axis=1), lo, hi, free, _TARGET["user_total_mean"], _TARGET["user_total_sd"])
    pt = _adjust_integers(rng, prov.sum(axis=1), lo, hi, free, _TARGET["prov_total_mean"], _TARGET["prov_total_sd"])
    for items, totals in ((user, ut), (prov, pt)):  # single items move by +-1 (within 1-5) to the new totals
        delta = totals - items.sum(axis=1)
        for i in np.flatnonzero(delta):
            step = 1 if delta[i] > 0 else -1
            for _ in range(abs(int(delta[i]))):
                room = (C.IMRS_MAX - items[i]) if step > 0 else (items[i] - C.IMRS_MIN)
                _require(room.sum(), "IMRS total outside 15-75")
                items[i, rng.choice(C.N_IMRS_ITEMS, p=room / room.sum())] += step
    target, dec = _TARGET["item_r"]
    pairs = np.array([(a, b) for a in range(C.N_IMRS_ITEMS) for b in range(C.N_IMRS_ITEMS) if a != b])
    each = np.arange(len(pairs))
    for _ in range(3000):
        us, ps = user.sum(axis=0).astype(float), prov.sum(axis=0).astype(float)
        r = float(np.corrcoef(us, ps)[0, 1])
        if abs(r - target) <= 0.3 * 10.0 ** (-dec) and _fmt(r, dec) == _fmt(target, dec):
            return user, prov
        best = []  # (gain in |r - target|, which matrix, pair): moving one point from item a to b
        for who, (mat, base, other) in enumerate(((user, us, ps), (prov, ps, us))):
            cand = np.repeat(base[None, :], len(pairs), axis=0)
            cand[each, pairs[:, 0]] -= 1
            cand[each, pairs[:, 1]] += 1
            cc, oc = cand - cand.mean(axis=1, keepdims=True), other - other.mean()
            rr = (cc @ oc) / np.sqrt((cc**2).sum(axis=1) * (oc**2).sum())
            feasible = ((mat[:, pairs[:, 0]] > C.IMRS_MIN) & (mat[:, pairs[:, 1]] < C.IMRS_MAX)).any(axis=0)
            gain = np.abs(r - target) - np.abs(rr - target)
            best += [(gain[q], who, q) for q in np.flatnonzero(feasible & (gain > 0))]
        _require(best, "item-profile correlation cannot be tuned")
        gains = np.array([b[0] for b in best])
        good = np.flatnonzero(gains >= 0.5 * gains.max())
        _, who, q = best[int(good[rng.integers(good.size)])]
        mat, (a, b) = (user, prov)[who], pairs[q]
        rows = np.flatnonzero((mat[:, a] > C.IMRS_MIN) & (mat[:, b] < C.IMRS_MAX))
        i = rows[rng.integers(rows.size)]
        mat[i, [a, b]] += [-1, 1]
    raise CalibrationError("item-profile correlation did not converge")


def _draw_ehr_dates(rng, P) -> None:
    """First access, start of the current programme, birth year and form timestamp."""
    start, D, pin, n = P["start"], P["D"], P["pin_ill"], P["start"].size
    y = pd.to_datetime(start, unit="D").year.to_numpy()
    first_year = (y - D - 1970).astype("datetime64[Y]")
    jan = first_year.astype("datetime64[D]").astype(np.int64)
    dec31 = (first_year + 1).astype("datetime64[D]").astype(np.int64) - 1
    # a one-calendar-year illness is at least a year long outside the EDP
    hi = np.where(D == 1, np.maximum(np.minimum(dec31, start - 366), jan), dec31)
    # EDP (same calendar year): first access 30-220 days before the IMR start
    hi = np.where(D == 0, start - 30, hi)
    lo = np.where(D == 0, np.maximum(jan, start - 220), jan)
    first = lo + np.floor(rng.random(n) * (hi - lo + 1)).astype(np.int64)
    if pin >= 0:
        first[pin] = max(start[pin] - 9500, int(jan[pin]))
    # the current therapeutic programme started between first access and shortly before IMR
    prog = start - 7 - np.floor(rng.random(n) * (np.minimum(start - 7 - first, 1800) + 1)).astype(np.int64)
    P["first_access"], P["programme_start"], P["birth_year"] = first, np.maximum(prog, first), y - P["age"]
    P["timestamp_s"] = (P["stop"] + rng.integers(1, 15, n)) * 86400 + rng.integers(8 * 3600, 20 * 3600, n)


def _codes(rng, prefix: str, n: int) -> np.ndarray:
    """Random, unique, non-sequential pseudonymous codes: prefix + 5 digits (more if needed)."""
    digits = max(5, int(math.ceil(math.log10(max(n, 1) * 20))))
    got = np.empty(0, dtype=np.int64)
    while got.size < n:
        got = pd.unique(np.concatenate([got, rng.integers(0, 10**digits, size=int((n - got.size) * 1.3) + 8)]))
    return np.array([f"{prefix}{v:0{digits}d}" for v in got[:n].tolist()], dtype=object)


def _build(rng, n_patients: int, calibrate: bool, dept: Department = PAPER) -> dict:
    """Draw the cohort and the records to exclude: arrays of one row per record, in patient-code order."""
    mix = _SVC_REF if dept.mix is None else np.asarray(dept.mix, dtype=float)
    q = mix / mix.sum() * n_patients  # the service mix (default the paper's), by the largest-remainder method
    counts = np.floor(q).astype(np.int64)
    counts[np.argsort(-(q - counts), kind="stable")[: n_patients - counts.sum()]] += 1
    P = _draw(rng, np.repeat(np.arange(3), counts), calibrate, dept=dept)
    # to exclude: EHR records without a form (EFESO, EFESO, Sister); late forms (CMHC, SerD) and their EHR records
    k = [_scaled(c, n_patients) for c in (2, 1, 1, 1)]
    late = np.repeat([False, False, True, True], k)
    X = _draw(rng, np.repeat([0, 1, 0, 1], k), calibrate=False, late=late, dept=dept)
    A = {key: ({f: np.concatenate([v[f], X[key][f]]) for f in v} if isinstance(v, dict)
               else np.concatenate([v, X[key]])) for key, v in P.items() if isinstance(v, (dict, np.ndarray))}
    A["cohort"] = np.r_[np.ones(n_patients, bool), np.zeros(late.size, bool)]
    A["has_form"] = np.r_[np.ones(n_patients, bool), late]
    efeso = A["svc"] != 1
    A["code"] = np.empty(efeso.size, dtype=object)
    A["code"][efeso] = _codes(rng, "EF", int(efeso.sum()))
    A["code"][~efeso] = _codes(rng, "SD", int((~efeso).sum()))
    return _take(A, pd.Series(A["code"], dtype="str").sort_values().index.to_numpy())


def _take(a: dict, idx) -> dict:
    """The rows ``idx`` of every array (nested dicts included)."""
    return {key: _take(v, idx) if isinstance(v, dict) else v[idx] for key, v in a.items()}


# --- the exports and the truth -----------------------------------------------------------
def _text(values, to_text) -> np.ndarray:
    """``to_text`` applied once to each distinct value (row, for a 2-D array), spread to every element."""
    distinct, which = np.unique(values, axis=0, return_inverse=True)
    return np.asarray(to_text(distinct), dtype=object)[which]


def _dates(days, fmt: str) -> np.ndarray:
    """Day numbers as text in the ``strftime`` format ``fmt``."""
    return _text(days, lambda d: pd.to_datetime(d, unit="D").strftime(fmt))


def _atc_text(atc, sep: str) -> np.ndarray:
    """Each patient's ATC codes, sorted and joined with ``sep``."""
    names = [("",) + codes for codes in _ATC.values()]
    return _text(atc, lambda rows: [sep.join(sorted(names[c][k] for c, k in enumerate(r) if k)) for r in rows])


def _ehr_frame(A, rng, source: str) -> pd.DataFrame:
    """The EFESO (CMHC, EDP) or Sister (SerD) extract, one row per patient, in patient-code order."""
    A = _take(A, (A["svc"] != 1) if source == "EFESO" else (A["svc"] == 1))
    fmt, coding = C.EHR_FORMATS[source], C.EHR_CODINGS[source]
    sex_codes = {canon: key for key, canon in coding["sex"].items()}
    data = {
        "patient_code": A["code"],
        "birth_year": pd.Series(A["birth_year"]).astype(str),
        "sex": np.where(A["male"], sex_codes["M"], sex_codes["F"]),
        "municipality": A["municipality"],
        "first_access_date": _dates(A["first_access"], fmt["date_format"]),
        "diagnosis": A["dx"] if fmt["icd_style"] == "dotted" else pd.Series(A["dx"]).str.replace(".", ""),
        "medications": _atc_text(A["atc"], fmt["med_sep"]),
        "programme_start_date": _dates(A["programme_start"], fmt["date_format"]),
        "education_years": pd.Series(A["education"]).astype(str).where(~A["missing"]["education_years"], ""),
    }
    for fld in _SOCIAL_PROBS:  # the source's codes; a category with several codes mixes them
        data[fld], u = np.empty(A[fld].size, dtype=object), rng.random(A[fld].size)
        for canon in dict.fromkeys(coding[fld].values()):
            keys, idx = [key for key, c in coding[fld].items() if c == canon], A[fld] == canon
            w = np.array(_SOURCE_KEY_WEIGHTS.get(canon, [1.0] * len(keys)), dtype=float)
            data[fld][idx] = np.array(keys, dtype=object)[
                np.minimum((u[idx, None] >= np.cumsum(w / w.sum())).sum(axis=1), len(keys) - 1)]
        data[fld][A["missing"][fld]] = ""
    return pd.DataFrame({col: data[key] for key, col in C.EHR_COLUMNS[source].items()}, dtype=object)


def _form_frame(A) -> pd.DataFrame:
    """The IMR summary form: one row per completed programme, in timestamp order."""
    A = _take(A, np.flatnonzero(A["has_form"])[np.argsort(A["timestamp_s"][A["has_form"]], kind="stable")])
    labels = np.array(list(C.MODULE_FORM_LABELS.values()), dtype=object)
    items = np.array(["", "1", "2", "3", "4", "5"], dtype=object)
    fc = C.FORM_COLUMNS
    data = {
        fc["timestamp"]: pd.to_datetime(A["timestamp_s"], unit="s").strftime(C.FORM_TIMESTAMP_FORMAT),
        fc["patient_code"]: A["code"],
        fc["service_unit"]: np.array(_UNIT_NAMES, dtype=object)[A["unit"]],
        fc["start_date"]: _dates(A["start"], C.FORM_DATE_FORMAT),
        fc["stop_date"]: _dates(A["stop"], C.FORM_DATE_FORMAT),
        fc["format"]: np.where(A["individual"], "Individual", "Group"),
        fc["manual_version"]: np.array(C.MANUAL_VERSIONS, dtype=object)[A["manual"]],
        fc["n_sessions"]: pd.Series(A["sessions"]).astype(str),
        fc["modules"]: _text(A["modules"], lambda rows: [C.FORM_CHECKBOX_SEP.join(labels[r]) for r in rows]),
        **{C.FORM_IMRS_USER[k]: items[A["imrs_user"][:, k - 1]] for k in C.IMRS_ITEMS},
        **{C.FORM_IMRS_PROVIDER[k]: items[A["imrs_provider"][:, k - 1]] for k in C.IMRS_ITEMS},
    }
    return pd.DataFrame(data, dtype=object)


def _truth_frame(A) -> pd.DataFrame:
    """The cohort as the cleaner makes it: :data:`constants.COHORT_COLUMNS`, sorted by patient_id."""
    A = _take(A, A["cohort"])
    start, stop, first = A["start"], A["stop"], A["first_access"]
    U, Pv, M = A["imrs_user"], A["imrs_provider"], A["modules"]

    def date(days):
        return days.astype("datetime64[D]").astype("datetime64[ns]")

    df = pd.DataFrame({
        "patient_id": pd.array(A["code"], dtype="string"),
        "source_ehr": np.where(A["svc"] == 1, "Sister", "EFESO"),
        "service_type": np.array(_SVC, dtype=object)[A["svc"]],
        "service_unit": np.array(_UNIT_NAMES, dtype=object)[A["unit"]],
        "sex": np.where(A["male"], "M", "F"),
        "birth_year": A["birth_year"],
        "age_at_imr_start": A["age"],
        "age_at_first_treatment": A["age_first"],
        "residence_municipality": A["municipality"],
        "residence_district": [C.MUNICIPALITY_DISTRICT.get(m, "outside") for m in A["municipality"]],
        "education_years": pd.array(A["education"], dtype="Int64"),
        **{fld: np.where(A["missing"][fld], None, A[fld]) for fld in _SOCIAL_PROBS},
        "first_treatment_date": date(first),
        "programme_start_date": date(A["programme_start"]),
        "diagnosis_icd10": A["dx"],
        "diagnosis_group": A["dx_group"],
        "atc_codes": _atc_text(A["atc"], ";"),
        **{f"med_{c}": A["med"][c] for c in C.MEDICATION_CLASSES},
        "med_none": A["med_none"],
        "imr_start": date(start),
        "imr_end": date(stop),
        "imr_duration_months": (stop - start) / C.DAYS_PER_MONTH,
        "illness_duration_years": (start - first) / C.DAYS_PER_YEAR,
        "imr_format": np.where(A["individual"], "individual", "group"),
        "manual_version": np.array(C.MANUAL_VERSIONS, dtype=object)[A["manual"]],
        "n_sessions": A["sessions"],
        **{col: M[:, k] for k, col in enumerate(C.MODULE_COLUMNS)},
        "n_modules": M.sum(axis=1),
        **{col: pd.array(U[:, k], dtype="Int64") for k, col in enumerate(C.IMRS_USER_COLUMNS)},
        **{col: pd.array(Pv[:, k], dtype="Int64") for k, col in enumerate(C.IMRS_PROVIDER_COLUMNS)},
        "imrs_user_total": U.sum(axis=1).astype("float64"),
        "imrs_provider_total": Pv.sum(axis=1).astype("float64"),
        "imrs_user_mean": U.mean(axis=1),
        "imrs_provider_mean": Pv.mean(axis=1),
    })
    df.loc[A["missing"]["education_years"], "education_years"] = pd.NA
    for col in C.COHORT_CATEGORICAL_COLUMNS:  # categories: the values present, sorted
        df[col] = pd.Categorical(df[col], categories=pd.Index(sorted(df[col].dropna().unique()), dtype="str"))
    return df[C.COHORT_COLUMNS]


# --- checking the calibration, and the public API -----------------------------------------
def calibration_problems(truth: pd.DataFrame, calibrated: bool = True) -> list[str]:
    """One ``expected ...`` sentence per calibration target the truth (a cohort) misses.

    ``calibrated=False`` checks only what holds at any size (coherent dates, diagnoses, modules, items in 1-5),
    not the paper's counts, means, SDs, ranges, tests and statements.

    Examples
    --------
    >>> truth = generate(seed=3).truth
    >>> calibration_problems(truth)
    []
    >>> calibration_problems(truth.assign(n_sessions=truth["n_sessions"] + 1))[:2]
    ['expected n_sessions mean 21.4 (got 22.4)', 'expected the unique single SerD session']
    """
    t = truth
    svc = t["service_type"].astype(str).to_numpy()
    edp, serd, cmhc = svc == "EDP", svc == "SerD", svc == "CMHC"
    group = t["diagnosis_group"].astype(str)
    M = t[C.MODULE_COLUMNS].to_numpy(dtype=bool)
    nm, ses = t["n_modules"].to_numpy(), t["n_sessions"].to_numpy()
    meds = t[[f"med_{c}" for c in C.MEDICATION_CLASSES]].to_numpy(dtype=bool)
    items = t[C.IMRS_USER_COLUMNS + C.IMRS_PROVIDER_COLUMNS]
    must = {  # statement -> whether the truth honours it
        "n_modules equal to the module columns": (M.sum(axis=1) == nm).all(),
        "at least one module and never all 11": nm.min() >= 1 and nm.max() <= C.N_MODULES - 1,
        "first treatment before IMR start": (t["age_at_first_treatment"] <= t["age_at_imr_start"]).all(),
        "IMR within the observation period": t["imr_start"].min() >= pd.Timestamp(OBS_START)
        and t["imr_end"].max() <= pd.Timestamp(OBS_END),
        "programme start between first access and IMR": (t["programme_start_date"] >= t["first_treatment_date"]).all()
        and (t["programme_start_date"] < t["imr_start"]).all(),
        "SUD at the SerD, eating disorders at the EDP, psychoses, mood disorders or SUD at the CMHCs":
            group[serd].eq("substance_use").all() and group[edp].eq("eating").all()
            and set(group[cmhc]) <= {"schizophrenia_spectrum", "bipolar", "depressive", "substance_use"},
        "M3 + M8 only at the EDP": (M[edp][:, [2, 7]].all(axis=1) & (M[edp].sum(axis=1) == 2)).all(),
        "med_none when no medication class": (t["med_none"].to_numpy() == ~meds.any(axis=1)).all(),
        "IMRS items present and in 1-5": items.notna().all().all() and ((items >= 1) & (items <= 5)).all().all(),
    }
    if not calibrated:
        return [f"expected {statement}" for statement, ok in must.items() if not ok]
    for name, col in (("age", "age_at_imr_start"), ("age_first", "age_at_first_treatment"),
                      ("dur", "imr_duration_months"), ("ses", "n_sessions"),
                      ("user_total", "imrs_user_total"), ("prov_total", "imrs_provider_total")):
        x = t[col].astype(float)  # as the audit computes them
        for stat, value in (("mean", x.mean()), ("SD", x.std(ddof=1))):
            want, dec = _TARGET[f"{name}_{stat.lower()}"]
            must[f"{col} {stat} {_fmt(want, dec)} (got {_fmt(value, dec)})"] = _fmt(value, dec) == _fmt(want, dec)
    col = M.sum(axis=0)
    ill, dur, age = t["illness_duration_years"], t["imr_duration_months"], t["age_at_imr_start"]
    item_r = stats.pearsonr(*(t[cols].astype(float).mean() for cols in (C.IMRS_USER_COLUMNS, C.IMRS_PROVIDER_COLUMNS)))
    top = group.value_counts()
    r_tot = np.corrcoef(t["imrs_user_total"], t["imrs_provider_total"])[0, 1]
    must.update({
        "69 CMHC, 52 SerD and 5 EDP patients": [(svc == s).sum() for s in _SVC] == list(_SVC_REF),
        "all ten units": t["service_unit"].nunique() == 10,
        "77 men": (t["sex"] == "M").sum() == _TARGET["men"],
        "SUD in 52 SerD + 1 CMHC patients, the most frequent group": top.index[0] == "substance_use"
        and top.iloc[0] == 53 > top.iloc[1] and (group[cmhc] == "substance_use").sum() == 1,
        "diagnoses differing across services at p < 0.001": stats.chi2_contingency(pd.crosstab(group, svc))[1] < 0.001,
        "54 on antipsychotics, 51 on anxiolytics (the two most frequent classes), 26 on none":
            [t[f"med_{c}"].sum() for c in ("antipsychotic", "anxiolytic_sedative", "none")] == [54, 51, 26]
            and max(t[f"med_{c}"].sum() for c in ("antidepressant", "mood_stabilizer", "addiction")) < 51,
        "104 in group format": (t["imr_format"] == "group").sum() == 104,
        "M1 the unique maximum (89)": col[0] == 89 and (col[1:] < 89).all(),
        "M9 and M10 the unique minimum (8)": col[8] == 8 and col[9] == 8 and (np.delete(col, [8, 9]) > 8).all(),
        "M11 55, M6 54: every SerD patient and 2 CMHC patients": col[10] == 55 and col[5] == 54
        and M[serd, 5].all() and M[cmhc, 5].sum() == 2,
        "modules per patient from 1 to 10": nm.min() == 1 and nm.max() == 10,
        "no unit and no service type administering all 11 modules": not any(
            pd.DataFrame(M).groupby(t[key].to_numpy()).any().all(axis=1).any()
            for key in ("service_unit", "service_type")),
        "five 18-year-olds, nobody younger": (age == 18).sum() == 5 and age.min() == 18,
        "the shortest illness under a year, at the EDP": ill.min() < 1 and svc[ill.to_numpy().argmin()] == "EDP",
        "the longest illness 26 years": _fmt(ill.max(), 0) == "26",
        "illness duration differing across services at p < 0.001": all(
            test(*(ill[svc == s] for s in _SVC)).pvalue < 0.001 for test in (stats.kruskal, stats.f_oneway)),
        "IMR from 2 to 38 months": _fmt(dur.min(), 0) == "2" and _fmt(dur.max(), 0) == "38",
        "the unique single SerD session": (ses == ses.min()).sum() == 1 and ses.min() == 1
        and svc[ses.argmin()] == "SerD",
        "the unique 70 sessions at a CMHC": (ses == ses.max()).sum() == 1 and ses.max() == 70
        and svc[ses.argmax()] == "CMHC",
        "no more sessions than weeks (+1)": (ses <= np.floor((t["imr_end"] - t["imr_start"]).dt.days / 7) + 1).all(),
        "no more modules than sessions": (nm <= ses).all(),
        f"item-profile r 0.96 with p < 0.05 (r = {_fmt(item_r.statistic, 2)})":
            _fmt(item_r.statistic, 2) == _fmt(*_TARGET["item_r"]) and item_r.pvalue < 0.05,
        f"patient-level user/provider correlation in 0.5-0.8 (r = {r_tot:.2f})": 0.5 <= r_tot <= 0.8,
    })
    return [f"expected {statement}" for statement, ok in must.items() if not ok]


def generate(seed: int = DEFAULT_SEED, n_patients: int = N_PUBLISHED, department: Department | None = None) -> Synthetic:
    """Draw a synthetic data set; same seed and size, same data (:class:`CalibrationError` if no sub-seed calibrates).

    With a ``department`` (:class:`Department`) its settings replace the paper's and nothing is calibrated.

    Examples
    --------
    >>> syn = generate(seed=7)
    >>> len(syn.truth), int((syn.truth["sex"] == "M").sum())
    (126, 77)
    >>> len(syn.form) - len(syn.truth)  # form rows completed after July 2021
    2
    """
    seed, n_patients = int(seed), int(n_patients)
    if n_patients < 1:
        raise ValueError(f"n_patients must be at least 1, not {n_patients}")
    calibrate = n_patients == N_PUBLISHED and department is None
    for attempt in range(MAX_ATTEMPTS if calibrate else 1):
        rng = np.random.default_rng([abs(seed), int(seed < 0), attempt])
        try:
            A = _build(rng, n_patients, calibrate, department or PAPER)
        except CalibrationError as err:
            problems = [str(err)]
            continue
        truth = _truth_frame(A)
        problems = calibration_problems(truth) if calibrate else []
        if not problems:
            efeso, sister = (_ehr_frame(A, np.random.default_rng([abs(seed), int(seed < 0), attempt, 7, i]), source)
                             for i, source in enumerate(("EFESO", "Sister")))
            return Synthetic(efeso=efeso, sister=sister, form=_form_frame(A), truth=truth)
    raise CalibrationError(f"seed {seed}: no calibrated draw in {MAX_ATTEMPTS} attempts; last problems: {problems}")


def write_exports(out_dir=None, seed: int = DEFAULT_SEED, n_patients: int = N_PUBLISHED,
                  department: Department | None = None) -> list[Path]:
    """Write :func:`generate`'s exports to ``out_dir``: the paths of the EFESO, Sister and form files.

    Each file is :func:`marker_line` (naming the ``department``, if any), then the CSV in the source's delimiter.
    ``out_dir`` (created if needed) is by default the compendium's ``data/raw``; relative paths are taken from the
    project root.

    Examples
    --------
    >>> import tempfile
    >>> written = write_exports(tempfile.mkdtemp(), seed=7)
    >>> [p.name for p in written]
    ['efeso_extract.csv', 'sister_extract.csv', 'imr_summary_form.csv']
    >>> written[2].read_text().splitlines()[1][:41]
    'Timestamp,Patient code,Service unit,IMR s'
    """
    folder = paths.resolve(out_dir, paths.raw_dir())
    folder.mkdir(parents=True, exist_ok=True)
    syn = generate(seed=seed, n_patients=n_patients, department=department)
    written = []
    for source, frame in (("EFESO", syn.efeso), ("Sister", syn.sister), ("form", syn.form)):
        written.append(folder / C.RAW_FILES[source])
        with open(written[-1], "w", encoding="utf-8", newline="") as fh:
            fh.write(marker_line(seed, n_patients, department.name if department else "") + "\n")
            frame.to_csv(fh, sep=C.EHR_FORMATS.get(source, {"delimiter": ","})["delimiter"], index=False,
                         lineterminator="\n")
    return written
