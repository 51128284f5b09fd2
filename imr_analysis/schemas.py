"""pandera schemas of the harmonised raw records and of the cleaned cohort.

The parsers in :mod:`imr_analysis.normalise` turn text into typed values and report
what they cannot parse; these schemas then enforce the raw-data contract on the typed
records (ranges, code lists, cross-field rules), lazily, and the failures are reported
with the file and line each record came from.
"""

from __future__ import annotations

from . import constants as C
from .problems import Problem


def _pa():
    import pandera.pandas as pa

    return pa


def _no_white_space():
    """``Check.str_matches(r"^\\S+$")`` (a non-empty code without white space), evaluated by
    pyarrow for plain letter-and-digit codes and by Python's ``re`` for the others only."""
    pa = _pa()

    def check(s):
        import pandas as pd

        plain = s.str.fullmatch(r"[A-Za-z0-9]+").fillna(False).to_numpy(dtype=bool)
        out = pd.Series(plain, index=s.index)
        if not plain.all():
            rest = ~plain
            out[rest] = s[rest].str.match(r"^\S+$").fillna(False).to_numpy(dtype=bool)
        return out

    return pa.Check(check, name="str_matches", error="str_matches('^\\S+$')")


def ehr_schema(reference_year: int):
    """Schema of one harmonised EHR extract (EFESO or Sister), one row per record."""
    pa = _pa()
    Check = pa.Check
    return pa.DataFrameSchema(
        {
            "patient_code": pa.Column("string", _no_white_space(), nullable=False),
            "birth_year": pa.Column("Int64", Check.in_range(1900, reference_year), nullable=False),
            "sex": pa.Column("category", Check.isin(C.SEXES), nullable=False),
            "municipality": pa.Column(nullable=False),
            "first_access_date": pa.Column("datetime64[ns]", Check.ge(_ts("1900-01-01")), nullable=False),
            "diagnosis_icd10": pa.Column("category", Check.str_matches(r"^[A-Z]\d{2}(\.[0-9A-Z]{1,2})?$"),
                                         nullable=False),
            "programme_start_date": pa.Column("datetime64[ns]", Check.ge(_ts("1900-01-01")), nullable=True),
            "education_years": pa.Column("Int64", Check.in_range(0, 30), nullable=True),
            "marital_status": pa.Column("category", Check.isin(C.MARITAL_STATUS), nullable=True),
            "living_condition": pa.Column("category", Check.isin(C.LIVING_CONDITION), nullable=True),
            "employment_status": pa.Column("category", Check.isin(C.EMPLOYMENT_STATUS), nullable=True),
        },
        checks=[
            pa.Check(lambda df: df["first_access_date"].dt.year.astype("Int64") >= df["birth_year"],
                     element_wise=False, error="first access is before the year of birth"),
        ],
        strict=False,
        coerce=False,
    )


def form_schema():
    """Schema of the harmonised IMR summary form, one row per completed programme."""
    pa = _pa()
    Check = pa.Check
    cols = {
        "patient_code": pa.Column("string", _no_white_space(), nullable=False),
        "service_unit": pa.Column("category", Check.isin(list(C.SERVICE_UNITS)), nullable=False),
        "imr_start": pa.Column("datetime64[ns]", Check.ge(_ts("1900-01-01")), nullable=False),
        "imr_end": pa.Column("datetime64[ns]", Check.ge(_ts("1900-01-01")), nullable=False),
        "imr_format": pa.Column("category", Check.isin(C.IMR_FORMATS), nullable=False),
        "n_sessions": pa.Column("Int64", Check.ge(1), nullable=False),
    }
    for col in C.IMRS_USER_COLUMNS + C.IMRS_PROVIDER_COLUMNS:
        cols[col] = pa.Column("Int8", Check.in_range(C.IMRS_MIN, C.IMRS_MAX), nullable=True)
    return pa.DataFrameSchema(
        cols,
        checks=[pa.Check(lambda df: df["imr_end"] >= df["imr_start"], element_wise=False,
                         error="stop date is before start date")],
        strict=False,
    )


def cohort_schema():
    """Schema of the cleaned cohort written to ``data/processed/cohort.parquet``."""
    pa = _pa()
    Check = pa.Check
    cols = {
        "patient_id": pa.Column("string", unique=True, nullable=False),
        "service_type": pa.Column("category", Check.isin(C.SERVICE_TYPES)),
        "service_unit": pa.Column("category", Check.isin(list(C.SERVICE_UNITS))),
        "sex": pa.Column("category", Check.isin(C.SEXES)),
        "age_at_imr_start": pa.Column("int64", Check.in_range(0, 120)),
        "age_at_first_treatment": pa.Column("int64", Check.in_range(0, 120)),
        "residence_district": pa.Column("category", Check.isin(C.DISTRICTS)),
        "diagnosis_group": pa.Column("category", Check.isin(C.DIAGNOSIS_GROUPS)),
        "imr_duration_months": pa.Column("float64", Check.ge(0)),
        "illness_duration_years": pa.Column("float64", Check.ge(0)),
        "imr_format": pa.Column("category", Check.isin(C.IMR_FORMATS)),
        "n_sessions": pa.Column("int64", Check.ge(1)),
        "n_modules": pa.Column("int64", Check.in_range(0, C.N_MODULES)),
    }
    for col in C.MODULE_COLUMNS + C.MEDICATION_COLUMNS:
        cols[col] = pa.Column("bool")
    return pa.DataFrameSchema(cols, strict=False, ordered=False)


def _ts(value):
    import pandas as pd

    return pd.Timestamp(value)


#: Dataframe-wide checks and the column their problems are reported in.
_WIDE_CHECK_COLUMNS = {
    "first access is before the year of birth": "first_access_date",
    "stop date is before start date": "imr_end",
}


def validate(schema, df, file: str, headers: dict | None = None) -> list[Problem]:
    """Validate lazily; return every failure as a :class:`Problem` naming file, line and column.

    ``df`` must carry a ``_line`` column with each record's line in the file;
    ``headers`` maps canonical column names to the headers written in the file (columns
    not in it are named canonically). A dataframe-wide check gives one problem per
    failing record, not one per column.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"_line": [3, 4], "n": pd.array([2, 0], dtype="Int64")})
    >>> import pandera.pandas as pa
    >>> schema = pa.DataFrameSchema({"n": pa.Column("Int64", pa.Check.ge(1))})
    >>> [str(p) for p in validate(schema, df, "form.csv", {"n": "Number of sessions"})]
    ["form.csv, line 4, column 'Number of sessions': value below the allowed minimum (1) (value: '0')"]
    """
    import pandera.errors as pe

    headers = headers or {}
    # a schema that does not coerce leaves ``df`` as it is: in place, pandera does not copy it first
    coerces = bool(getattr(schema, "coerce", False)) or any(
        getattr(col, "coerce", False) for col in getattr(schema, "columns", {}).values())
    try:
        schema.validate(df, lazy=True, inplace=not coerces)
    except pe.SchemaErrors as err:
        problems = []
        seen = set()
        cases = err.failure_cases
        for rec in cases.itertuples(index=False):
            idx = getattr(rec, "index", None)
            line = None
            if idx is not None and idx == idx and idx in df.index:
                line = int(df.at[idx, "_line"])
            column = getattr(rec, "column", None)
            column = None if column != column else column
            check = str(getattr(rec, "check", ""))
            value = getattr(rec, "failure_case", None)
            if getattr(rec, "schema_context", "") == "DataFrameSchema" and check in _WIDE_CHECK_COLUMNS:
                if (line, check) in seen:
                    continue
                seen.add((line, check))
                column = _WIDE_CHECK_COLUMNS[check]
                value = df.at[idx, column] if line is not None else None
            problems.append(Problem(file, line, headers.get(column, column),
                                    None if value is None else str(value), _describe(check)))
        return problems
    return []


def _describe(check: str) -> str:
    """Turn a pandera check description into a sentence."""
    if check.startswith("in_range"):
        return f"value out of the allowed range {check[len('in_range'):]}"
    if check.startswith("isin"):
        return "value is not one of the allowed categories"
    if check.startswith("str_matches"):
        return "value does not have the expected format"
    if check.startswith("greater_than_or_equal_to"):
        return f"value below the allowed minimum {check[len('greater_than_or_equal_to'):]}"
    if check == "not_nullable":
        return "required value is missing"
    if check.startswith("field_uniqueness"):
        return "value must be unique"
    return check
