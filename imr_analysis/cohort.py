"""Read the cleaned cohort written by notebook 01 (``data/processed/cohort.parquet``)."""

from __future__ import annotations

from pathlib import Path

from . import paths

COHORT_FILE = "cohort.parquet"
FLOW_FILE = "cohort_flow.csv"


def load_cohort(processed_dir: str | Path | None = None, services=None):
    """Load the cleaned cohort, one row per patient.

    Parameters
    ----------
    processed_dir : folder holding ``cohort.parquet``; ``None`` or ``""`` means the
        compendium's ``data/processed``; relative paths are taken from the project root.
    services : optional iterable of service types (``CMHC``, ``SerD``, ``EDP``) to keep.

    Returns
    -------
    pandas.DataFrame
        Columns as :data:`imr_analysis.constants.COHORT_COLUMNS`; those of
        :data:`~imr_analysis.constants.COHORT_CATEGORICAL_COLUMNS` are ``category`` whose
        categories are the values present, sorted (also after ``services`` selects rows).

    Examples
    --------
    >>> cohort = load_cohort()  # doctest: +SKIP
    >>> cohort["service_type"].value_counts()  # doctest: +SKIP
    """
    import pandas as pd

    folder = paths.resolve(processed_dir, paths.processed_dir())
    path = folder / COHORT_FILE
    if not path.exists():
        raise FileNotFoundError(
            f"{path} does not exist: run notebooks/01_clean_cohort.ipynb (or 'make reproduce') first"
        )
    cohort = pd.read_parquet(path)
    if services is not None:
        services = list(services)
        from .constants import SERVICE_TYPES

        unknown = sorted(set(services) - set(SERVICE_TYPES))
        if unknown:
            raise ValueError(f"unknown service type(s) {unknown}; choose from {list(SERVICE_TYPES)}")
        cohort = cohort[cohort["service_type"].isin(services)].reset_index(drop=True)
        for col in cohort.select_dtypes("category").columns:
            cohort[col] = cohort[col].cat.remove_unused_categories()  # categories: the values present
    return cohort
