"""IMRS scoring: the one home of the total, the item mean and proration.

The Illness Management and Recovery Scale has 15 items rated 1 to 5, in a user and a provider
version. The **item mean** is the mean of the items answered; the **total** (15-75) their sum,
*prorated* (item mean x 15) when at most ``max_missing`` items are missing; with more missing,
both are missing. The cohort (notebook 01) keeps the total of complete scales and the mean of
whatever was answered; the agreement analysis (notebook 05) uses one ``max_missing`` for both.
Sums of whole ratings are exact in floating point: the order of the additions never matters. A
mean or prorated total is not (15/15 - 12/15 != 23/15 - 20/15), but every score is a multiple of
``1 / GRID`` (a sum over 1-15 items): :func:`exact` gives rank tests exact ties.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .constants import IMRS_PROVIDER_COLUMNS, IMRS_USER_COLUMNS, N_IMRS_ITEMS

#: The item columns of each version of the scale.
VERSIONS = {"user": IMRS_USER_COLUMNS, "provider": IMRS_PROVIDER_COLUMNS}
#: lcm(1, ..., 15): every item mean and (prorated) total, and their differences, is a multiple of 1 / GRID.
GRID = int(np.lcm.reduce(np.arange(1, N_IMRS_ITEMS + 1)))


def exact(values) -> np.ndarray:
    """IMRS scores or their differences as whole multiples of ``1 / GRID``: equal values are equal.

    >>> bool(15 / 15 - 12 / 15 == 23 / 15 - 20 / 15), bool(exact(15 / 15 - 12 / 15) == exact(23 / 15 - 20 / 15))
    (False, True)
    """
    return np.round(np.asarray(values, dtype=float) * GRID)


def imrs_scores(items: pd.DataFrame, max_missing: int = 0, mean_max_missing: int | None = None) -> pd.DataFrame:
    """Items answered, total and item mean of one version of the IMRS, patient by patient.

    ``items``: the 15 item columns of one version (ratings 1-5, missing as NA/NaN). A total needs
    at most ``max_missing`` items missing (0: complete scales only), a mean ``mean_max_missing``
    (default ``max_missing``). Returns ``n_items`` (items answered), ``total`` and ``mean`` (float,
    NaN when missing), on ``items``' index.

    Examples
    --------
    >>> items = pd.DataFrame([[4] * 15, [4] * 14 + [None], [None] * 15])
    >>> imrs_scores(items).to_dict("list")
    {'n_items': [15, 14, 0], 'total': [60.0, nan, nan], 'mean': [4.0, nan, nan]}
    >>> imrs_scores(items, max_missing=1)["total"].tolist()  # prorated: 4.0 x 15
    [60.0, 60.0, nan]
    >>> imrs_scores(items, mean_max_missing=14)["mean"].tolist()  # the cohort's rule
    [4.0, 4.0, nan]
    """
    if items.shape[1] != N_IMRS_ITEMS:
        raise ValueError(f"expected the {N_IMRS_ITEMS} IMRS items, got {items.shape[1]} columns")
    values = items.to_numpy(dtype="float64", na_value=np.nan)
    answered = (~np.isnan(values)).sum(axis=1)
    missing, answered_sum = N_IMRS_ITEMS - answered, np.nansum(values, axis=1)
    mean_allowed = max_missing if mean_max_missing is None else mean_max_missing
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = answered_sum / answered
    total = np.where(missing == 0, answered_sum, mean * N_IMRS_ITEMS)
    return pd.DataFrame({"n_items": answered.astype("int64"),
                         "total": np.where((answered > 0) & (missing <= max_missing), total, np.nan),
                         "mean": np.where((answered > 0) & (missing <= mean_allowed), mean, np.nan)}, index=items.index)
