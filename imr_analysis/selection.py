"""A slice of the cohort: the patients an analysis covers, by service type, service unit, diagnosis
group, IMR start period, sex and IMR format (:func:`select`; the values to choose from: :func:`choices`).

A filter left empty (or ``None``) keeps everyone; values are checked against the codebook and the
cohort, dates against ``yyyy-mm-dd`` (both ends included). A service type left without patients is
dropped, with a note; an empty selection is an error (:class:`EmptySelectionError`).
"""

from __future__ import annotations

import dataclasses
import datetime

import pandas as pd

from . import constants as C

#: Each list filter: its cohort column and the codebook's values, in their canonical order.
FILTERS = {"services": ("service_type", C.SERVICE_TYPES), "service_units": ("service_unit", tuple(C.SERVICE_UNITS)),
           "diagnosis_groups": ("diagnosis_group", C.DIAGNOSIS_GROUPS), "sex": ("sex", C.SEXES),
           "imr_formats": ("imr_format", C.IMR_FORMATS)}
NAMES = {"services": "service type", "service_units": "service unit", "diagnosis_groups": "diagnosis group",
         "sex": "sex", "imr_formats": "IMR format"}
#: Labels of the values, for the filters whose values are codes (e.g. the options of a widget).
LABELS = {"services": C.SERVICE_TYPE_LABELS, "diagnosis_groups": C.DIAGNOSIS_GROUP_LABELS,
          "sex": {"M": "Male", "F": "Female"}, "imr_formats": {"group": "Group", "individual": "Individual"}}
DATE_COLUMN, DATE_FORMAT = "imr_start", "%Y-%m-%d"


class EmptySelectionError(ValueError):
    """No patient is left in the selection."""


def describe(filters: dict) -> str:
    """``filters`` (as :attr:`Selection.filters`) in words.

    Examples
    --------
    >>> describe({"services": ["CMHC", "SerD"], "imr_start_from": "2018-01-01"})
    'service type CMHC or SerD; IMR start from 2018-01-01'
    >>> describe({})
    'all patients'
    """
    parts = [f"{NAMES[k]} {' or '.join(v)}" for k, v in filters.items() if k in NAMES]
    start, end = filters.get("imr_start_from"), filters.get("imr_start_to")
    if start or end:
        parts.append(" ".join(["IMR start", *[f"{w} {d}" for w, d in (("from", start), ("to", end)) if d]]))
    return "; ".join(parts) or "all patients"


@dataclasses.dataclass(frozen=True)
class Selection:
    """What :func:`select` kept: ``cohort`` (unused categories removed), ``services`` (the service types
    with patients, in canonical order), ``notes`` (what was dropped) and ``filters`` (those that left
    patients out; a filter naming every value present is none)."""

    cohort: pd.DataFrame
    services: list
    notes: list
    filters: dict

    def describe(self) -> str:
        """The selection in one line, for captions and colophons (no count: it may need disclosure control)."""
        return describe(self.filters)

    def caption(self, text: str) -> str:
        """``text``, then the selection when a filter left patients out.

        Examples
        --------
        >>> Selection(pd.DataFrame(), [], [], {"sex": ["F"]}).caption("Table 1"), Selection(None, [], [], {}).caption("T")
        ('Table 1 (selection: sex F)', 'T')
        """
        return f"{text} (selection: {self.describe()})" if self.filters else text


def _ordered(values, known) -> list:
    """``values`` in the codebook's order, others after, sorted."""
    values = set(values)
    return [v for v in known if v in values] + sorted(map(str, values - set(known)))


def choices(cohort: pd.DataFrame) -> dict:
    """The values each filter can take on ``cohort``: those present, in the codebook's order, and under
    ``"imr_start"`` the first and last IMR start (``yyyy-mm-dd``).

    Examples
    --------
    >>> cohort = pd.DataFrame({"service_type": ["SerD", "CMHC"], "service_unit": ["SerD Cento", "CMHC Cento"],
    ...     "diagnosis_group": ["substance_use", "bipolar"], "sex": ["M", "M"], "imr_format": ["group", None],
    ...     "imr_start": pd.to_datetime(["2018-03-01", "2017-05-02"])})
    >>> choices(cohort)
    {'services': ['CMHC', 'SerD'], 'service_units': ['CMHC Cento', 'SerD Cento'], 'diagnosis_groups': ['bipolar', \
'substance_use'], 'sex': ['M'], 'imr_formats': ['group'], 'imr_start': ('2017-05-02', '2018-03-01')}
    """
    out = {name: _ordered(cohort[col].dropna().unique(), known) for name, (col, known) in FILTERS.items()}
    start = pd.to_datetime(cohort[DATE_COLUMN]).dropna()
    return out | {"imr_start": (f"{start.min():{DATE_FORMAT}}", f"{start.max():{DATE_FORMAT}}") if len(start) else ()}


def _values(name: str, values, cohort: pd.DataFrame) -> list:
    values = [] if values is None else [values] if isinstance(values, str) else list(values)
    column, known = FILTERS[name]
    allowed = _ordered({*known, *(cohort[column].dropna().unique() if column in cohort else ())}, known)
    if bad := [v for v in values if v not in allowed]:
        raise ValueError(f"{name}: unknown value(s) {bad}; choose from {allowed}")
    return _ordered(values, known)


def _date(name: str, value) -> pd.Timestamp | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, datetime.date):
        return pd.Timestamp(value)
    try:
        return pd.to_datetime(str(value), format=DATE_FORMAT)
    except ValueError:
        raise ValueError(f"{name}: {value!r} is not a date; expected yyyy-mm-dd, e.g. '2018-01-31'") from None


def select(cohort: pd.DataFrame, services=None, service_units=(), diagnosis_groups=(), imr_start_from="",
           imr_start_to="", sex=(), imr_formats=()) -> Selection:
    """The patients of ``cohort`` that every filter given keeps (:class:`Selection`).

    List filters keep the patients with one of their values (:data:`FILTERS`); ``imr_start_from`` and
    ``imr_start_to`` (``yyyy-mm-dd``, included) bound the IMR start. An unknown value, a bad date or a
    period ending before it starts raise ``ValueError``; no patient left, :class:`EmptySelectionError`.

    Examples
    --------
    >>> cohort = pd.DataFrame({"service_type": ["CMHC", "SerD", "EDP"], "sex": ["F", "M", "F"],
    ...                        "imr_start": pd.to_datetime(["2018-01-05", "2019-02-01", "2020-03-01"])})
    >>> sel = select(cohort, sex=["F"], imr_start_to="2019-12-31")
    >>> sel.services, sel.notes, sel.describe()
    (['CMHC'], ['SerD dropped: no patient in the selection', 'EDP dropped: no patient in the selection'], \
'sex F; IMR start to 2019-12-31')
    """
    given = dict(services=services, service_units=service_units, diagnosis_groups=diagnosis_groups, sex=sex,
                 imr_formats=imr_formats)
    given = {name: _values(name, values, cohort) for name, values in given.items()}
    masks = {name: cohort[FILTERS[name][0]].isin(values) for name, values in given.items() if values}
    filters = {name: given[name] for name, mask in masks.items() if not mask.all()}  # those that leave someone out
    keep = pd.Series(True, index=cohort.index)
    for name in filters:
        keep &= masks[name]
    start, end = _date("imr_start_from", imr_start_from), _date("imr_start_to", imr_start_to)
    if start is not None and end is not None and start > end:
        raise ValueError(f"imr_start_from {start:{DATE_FORMAT}} is after imr_start_to {end:{DATE_FORMAT}}")
    if start is not None:
        keep &= pd.to_datetime(cohort[DATE_COLUMN]) >= start
        filters["imr_start_from"] = f"{start:{DATE_FORMAT}}"
    if end is not None:
        keep &= pd.to_datetime(cohort[DATE_COLUMN]) <= end
        filters["imr_start_to"] = f"{end:{DATE_FORMAT}}"
    if not keep.any():
        raise EmptySelectionError(f"no patient in the selection ({describe(filters)}): widen a filter")
    kept = cohort.loc[keep].reset_index(drop=True)
    kept = kept.apply(lambda s: s.cat.remove_unused_categories() if isinstance(s.dtype, pd.CategoricalDtype) else s)
    present = set(kept["service_type"].dropna())
    wanted = given["services"] or _ordered(cohort["service_type"].dropna().unique(), C.SERVICE_TYPES)
    notes = [f"{s} dropped: no patient in the selection" for s in wanted if s not in present]
    notes += [f"{NAMES[name]} {v}: no patient in the selection" for name, values in given.items()
              if name != "services" for v in values if not kept[FILTERS[name][0]].eq(v).any()]
    return Selection(kept, [s for s in wanted if s in present], notes, filters)
