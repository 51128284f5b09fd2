"""The fast paths used on large exports give exactly what the plain paths give.

Large exports are read by pyarrow straight from their bytes, every column but the patient
code and the timestamp as a ``Categorical``; parsers then run once per distinct value
(:func:`imr_analysis.normalise.per_distinct`), timestamps are parsed by date and time part,
linkage compares integer keys, and the identifier guard skips values shaped like patient
codes. Each test below runs the fast path and the plain one on the same input and requires
identical results (values, dtypes, index).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from imr_analysis import clean as CL
from imr_analysis import constants as C
from imr_analysis import identifiers as ID
from imr_analysis import ingest
from imr_analysis import normalise as N

import rawfactory as rf

MESSY = ["F20.0", " f200 ", "", None, "F31", "x", "F10.2", "F20.0", "  ", "N05AH03, n06ab06", "N07BC02|N05BA12",
         "XYZ", "15/03/2010", "2010-03-15", "43528", "31/02/2019", "01/01/1650", "21", "21,0", "2.5", "+3",
         "Celibe/Nubile", "celibe/nubile ", "1", "1,0", "FERRARA", "Cento ", "Bologna", "cmhc  ferrara",
         "CSM Cento", "Ser.D. Codigoro", "DCA Ferrara", "M1. Recovery Strategies;M6. Drug and Alcohol Use",
         "M12. Extra", "Revised edition  (Gingerich & Mueser 2011)", " ef 0001 ", "SD0002", "Group", "Gruppo"]


def _both(func, values, *args, **kwargs):
    plain = pd.Series(values * 3, dtype="str")
    cat = plain.astype("category")
    return func(plain, *args, **kwargs), func(cat, *args, **kwargs)


def _equal(a, b):
    if isinstance(a, tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _equal(x, y)
    elif isinstance(a, N.DateParse):
        for f in ("dates", "bad", "too_early", "too_late"):
            _equal(getattr(a, f), getattr(b, f))
    elif isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    else:
        pd.testing.assert_series_equal(a, b, check_exact=True)


#: parsers of raw text columns whose result is text (the cleaner asks them for categories)
TEXT_PARSERS = [
    (N.normalise_icd10, ()),
    (N.atc_text, ()),
    (N.map_categories, (C.EHR_CODINGS["EFESO"]["marital_status"],)),
    (N.municipality_district, ()),
    (N.canonical_municipality, ()),
    (N.normalise_service_unit, ()),
    (N.canonical_manual_version, ()),
]


@pytest.mark.parametrize("func,args", [
    (N.parse_date_column, ("%d/%m/%Y",)),
    (N.parse_dates, ()),
    (N.parse_integers, (1, 30)),
    (N.parse_imrs_item, ()),
    (N.split_atc, ()),
    (N.malformed_atc, ()),
    (N.unknown_modules, ()),
    (N.parse_modules, ()),
    (N.normalise_code, ()),
    (N.parse_timestamps, ()),
    *TEXT_PARSERS,
])
def test_per_distinct_equals_row_by_row(func, args):
    plain, cat = _both(func, MESSY, *args)
    _equal(plain, cat)


def _spelled_out(result):
    """Categorical text of a result (or of the text parts of a tuple) spelled out as ``string``."""
    if isinstance(result, tuple):
        return tuple(_spelled_out(r) for r in result)
    return CL._string_column(result) if isinstance(result.dtype, pd.CategoricalDtype) else result


@pytest.mark.parametrize("func,args", TEXT_PARSERS + [(N.diagnosis_group, ())])  # derive's, on ICD-10 codes
def test_as_category_holds_the_same_text(func, args):
    """``as_category=True`` returns the parsers' text as a Categorical, from plain and from
    categorical input alike; spelled out, it is exactly the plain result as ``string``."""
    as_tuple = lambda r: r if isinstance(r, tuple) else (r,)  # noqa: E731
    plain, _ = _both(func, MESSY, *args)
    expected = tuple(p if p.dtype == bool else p.astype("string") for p in as_tuple(plain))
    for got in _both(func, MESSY, *args, as_category=True):
        parts = as_tuple(got)
        text = [p for p in parts if isinstance(p.dtype, pd.CategoricalDtype)]
        assert len(text) == 1 and text[0].cat.categories.is_unique and not text[0].cat.categories.hasnans
        _equal(_spelled_out(parts), expected)


def test_as_category_leaves_non_text_alone():
    """Tuples of ATC codes, masks and numbers are not text: ``as_category`` leaves them as they are."""
    raw = pd.Series(["N05AH03, n06ab06", "", "XYZ|N07BC02"] * 400, dtype="category")
    for func in (N.split_atc, N.parse_imrs_item, N.malformed_atc):
        plain, asked = func(raw), func(raw, as_category=True)
        _equal(plain, asked)


def test_string_column_equals_astype_string():
    values = ["b", None, "a", "", "b", "à la", None]
    cat = pd.Series(pd.Categorical(values, categories=["z", "a", "b", "", "à la"]), index=range(10, 17), name="x")
    pd.testing.assert_series_equal(CL._string_column(cat), cat.astype("string"), check_exact=True)
    assert CL._string_column(cat).array._pa_array.type == cat.astype("string").array._pa_array.type
    plain = pd.Series(values, dtype=object)
    pd.testing.assert_series_equal(CL._string_column(plain), plain.astype("string"), check_exact=True)
    empty = pd.Series(pd.Categorical([], categories=["a"]))
    pd.testing.assert_series_equal(CL._string_column(empty), empty.astype("string"), check_exact=True)


def test_concat_records_keeps_categories_and_values():
    a = pd.DataFrame({"src": pd.Categorical(["EFESO"] * 2), "sex": pd.Categorical(["M", None]),
                      "n": [1, 2], "code": pd.array(["A", "B"], dtype="string")})
    b = pd.DataFrame({"src": pd.Categorical(["Sister"] * 3), "sex": pd.Categorical(["F", "F", "M"],
                                                                                  categories=["M", "F"]),
                      "n": [3, 4, 5], "code": pd.array(["C", "D", None], dtype="string")})
    both = CL._concat_records([a, b])
    plain = pd.concat([a, b], ignore_index=True)
    for col in ("src", "sex"):
        assert isinstance(both[col].dtype, pd.CategoricalDtype)
        assert plain[col].dtype != both[col].dtype  # what pandas alone would have given
        assert both[col].astype(object).where(both[col].notna(), None).tolist() == \
            plain[col].astype(object).where(plain[col].notna(), None).tolist()
    pd.testing.assert_frame_equal(both[["n", "code"]], plain[["n", "code"]], check_exact=True)


def test_diagnosis_group_and_atc_classes_per_distinct():
    codes = pd.Series(["F20.0", "F31.1", None, "F50.0", "Z99", "F10.2"] * 4, dtype="string")
    pd.testing.assert_series_equal(N.diagnosis_group(codes), N.diagnosis_group(codes.astype("category")),
                                   check_exact=True)
    joined = pd.Series(["N05AH03;N07BC02", "", "N05AN01", "A02BC01", "N05AH03;N07BC02"], dtype="str")
    tuples = pd.Series([tuple(x for x in t.split(";") if x) for t in joined], dtype=object)
    pd.testing.assert_frame_equal(N.atc_classes(tuples), N.atc_classes(joined.astype("category")),
                                  check_exact=True)


def test_timestamps_by_parts_equal_pandas(monkeypatch):
    rng = np.random.default_rng(7)
    stamps = pd.Timestamp("2017-01-01") + pd.to_timedelta(rng.integers(0, 5 * 365 * 86400, 20_000), unit="s")
    text = list(stamps.strftime("%d/%m/%Y %H:%M:%S")) + [
        "31/02/2021 10:00:00", "1/2/2021 10:00:00", "29/02/2020 23:59:59", "29/02/2021 23:59:59",
        "01/01/2021 24:00:00", "01/01/2021 23:60:00", "01/01/2021 23:59:60", "", None, "15/07/2021 10.32.11",
        "2021/07/15 10:32:11 AM GMT+2", "2021-07-15T10:32:11", "00/01/2021 10:00:00", "01/00/2021 10:00:00"]
    s = pd.Series(text, dtype="str")
    fast = N.parse_timestamps(s)
    monkeypatch.setattr(N, "_BY_PARTS_MIN_ROWS", 10**12)
    slow = N.parse_timestamps(s)
    _equal(fast, slow)
    assert fast[1].sum() == 6  # 31/02, 29/02/2021, 24:00:00, 23:60:00, 00/01, 01/00
    assert fast[0].iloc[len(stamps) + 6] == pd.Timestamp("2021-01-02 00:00:00")  # second 60, as pandas reads it


def _columns_equal(fast, slow):
    assert list(fast.columns) == list(slow.columns)
    for col in fast.columns:
        a, b = fast[col], slow[col]
        if col == "_line":
            assert a.tolist() == b.tolist()
            continue
        assert a.astype(object).where(a.notna(), None).tolist() == b.astype(object).where(b.notna(), None).tolist()
        assert str(a.dtype) == str(b.dtype)


@pytest.mark.parametrize("style", ["plain", "bom_crlf", "quoted", "excel_wrapped"])
def test_fast_reader_equals_csv_reader(tmp_path, monkeypatch, style):
    efeso = [rf.efeso_row(code=f"EF{i:05d}", municipality="Ferrara" if i % 3 else " Cento ",
                          meds="N05AH03, N06AB06" if i % 2 else "") for i in range(1, 40)]
    if style == "quoted":
        efeso[3] = rf.efeso_row(code="EF90001", municipality='Porto "Garibaldi", FE')
    if style == "excel_wrapped":
        efeso[4] = rf.efeso_row(code='="EF00007"', education='="08"')
    folder = rf.write_exports(tmp_path / "x", efeso=efeso)
    path = folder / C.RAW_FILES["EFESO"]
    if style == "bom_crlf":
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes().replace(b"\n", b"\r\n"))
    assert ingest._read_fast(path.read_bytes(), "EFESO") is not None  # the fast path is taken
    fast = ingest.read_raw(path, "EFESO")
    monkeypatch.setattr(ingest, "_read_fast", lambda raw, source: None)
    slow = ingest.read_raw(path, "EFESO")
    _columns_equal(fast.data, slow.data)
    assert (fast.encoding, fast.delimiter, fast.n_records, fast.headers) == (
        slow.encoding, slow.delimiter, slow.n_records, slow.headers)
    assert isinstance(fast.data["sex"].dtype, pd.CategoricalDtype)
    assert not isinstance(fast.data["patient_code"].dtype, pd.CategoricalDtype)


@pytest.mark.parametrize("damage", [b"\n", b'"', b"\r", b";;;\n", b" ; ;;;;;;;;;;\n"])
def test_fast_reader_declines_irregular_files(tmp_path, damage):
    """Blank line, quoted field spanning lines, lone CR, short row, row without content: the
    csv module reads these files (and reports what it must), not pyarrow."""
    folder = rf.write_exports(tmp_path / "x", efeso=[rf.efeso_row(code=f"EF{i}") for i in range(1, 4)])
    path = folder / C.RAW_FILES["EFESO"]
    raw = path.read_bytes()
    assert ingest._read_fast(raw, "EFESO") is not None
    cut = raw.rindex(b"\n", 0, len(raw) - 1) + 1  # start of the last line
    assert ingest._read_fast(raw[:cut] + damage + raw[cut:], "EFESO") is None


def test_clean_raw_fast_equals_plain_on_generated_cohort(tmp_path, monkeypatch):
    from imr_synth.generator import write_exports

    folder = tmp_path / "raw"
    write_exports(folder, seed=11, n_patients=3000)
    fast = CL.clean_raw(folder, today="2025-01-01")
    monkeypatch.setattr(ingest, "_read_fast", lambda raw, source: None)
    monkeypatch.setattr(N, "_categories", lambda s: None)
    monkeypatch.setattr(N, "_BY_PARTS_MIN_ROWS", 10**12)
    monkeypatch.setattr(ID, "_inert", lambda text: None)
    slow = CL.clean_raw(folder, today="2025-01-01")
    pd.testing.assert_frame_equal(fast.cohort, slow.cohort, check_exact=True)
    pd.testing.assert_frame_equal(fast.flow, slow.flow, check_exact=True)
    assert fast.warnings == slow.warnings
    assert len(fast.cohort) > 1000


def test_cohort_built_while_letting_go_of_its_inputs_equals_the_plain_join(tmp_path, monkeypatch):
    # clean_raw lets derive drop each harmonised column once gathered (lower peak memory);
    # the cohort and the flow must be those of the join that keeps its inputs whole
    from imr_synth.generator import write_exports

    folder = tmp_path / "raw"
    write_exports(folder, seed=12, n_patients=2000)
    original, seen = CL.derive, {}

    def spy(form, ehr, **kwargs):
        out = original(form, ehr, **kwargs)
        seen.update(consume=kwargs.get("consume"), form=set(form.columns), ehr=set(ehr.columns))
        return out

    monkeypatch.setattr(CL, "derive", spy)
    consumed = CL.clean_raw(folder, today="2025-01-01")
    assert seen["consume"] is True
    assert seen["form"] == {"_line", "_key", "patient_code"}
    assert seen["ehr"] == {"_line", "_key", "_file", "patient_code"}
    monkeypatch.setattr(CL, "derive", lambda form, ehr, **kw: original(form, ehr, **{**kw, "consume": False}))
    plain = CL.clean_raw(folder, today="2025-01-01")
    pd.testing.assert_frame_equal(consumed.cohort, plain.cohort, check_exact=True)
    pd.testing.assert_frame_equal(consumed.flow, plain.flow, check_exact=True)
    assert list(consumed.cohort.columns) == C.COHORT_COLUMNS and len(consumed.cohort) > 500


def _link_reference(form, ehr, start, end):
    """The linkage rules written the straightforward way (pandas sort, duplicated, isin)."""
    s, e = pd.Timestamp(start), pd.Timestamp(end)
    reason = pd.Series(CL.REASON_INCLUDED, index=form.index, dtype=object)
    outside = (form["imr_end"] < s) | (form["imr_end"] > e) | (form["imr_start"] < s)
    reason[outside] = CL.REASON_OUTSIDE_PERIOD + f" ({start} to {end})"
    known = form["patient_code"].isin(set(ehr["patient_code"].dropna()))
    reason[~outside & ~known] = CL.REASON_NO_EHR
    cand = form[reason == CL.REASON_INCLUDED].sort_values(["imr_end", "imr_start", "_line"], kind="stable")
    rep = cand.duplicated("patient_code", keep="first")
    reason[rep[rep].index] = CL.REASON_REPEAT
    inc = set(form.loc[reason == CL.REASON_INCLUDED, "patient_code"])
    anyf = set(form["patient_code"].dropna())
    er = pd.Series(CL.REASON_INCLUDED, index=ehr.index, dtype=object)
    in_form = ehr["patient_code"].isin(anyf)
    er[~in_form] = CL.REASON_NO_FORM
    er[in_form & ~ehr["patient_code"].isin(inc)] = CL.REASON_FORM_EXCLUDED
    return reason, er


def test_link_with_integer_keys_equals_reference():
    rng = np.random.default_rng(3)
    n = 5000
    codes = np.array([f"P{i:05d}" for i in rng.integers(0, 2500, n)], dtype=object)
    start = pd.Timestamp("2016-01-01") + pd.to_timedelta(rng.integers(0, 6 * 365, n), unit="D")
    form = pd.DataFrame({"patient_code": pd.array(codes, dtype="string"), "imr_start": start,
                         "imr_end": start + pd.to_timedelta(rng.integers(0, 400, n), unit="D"),
                         "_line": np.arange(2, n + 2)})
    form.loc[rng.integers(0, n, 50), "imr_end"] = form["imr_end"].iloc[0]  # ties on the stop date
    ehr = pd.DataFrame({"patient_code": pd.array([f"P{i:05d}" for i in range(0, 3000, 2)], dtype="string")})
    got = CL.link(form, ehr, CL.STUDY_START, CL.STUDY_END)
    want = _link_reference(form, ehr, CL.STUDY_START, CL.STUDY_END)
    pd.testing.assert_series_equal(got[0], want[0])
    pd.testing.assert_series_equal(got[1], want[1])
    assert set(got[0]) == {CL.REASON_INCLUDED, CL.REASON_REPEAT, CL.REASON_NO_EHR,
                           CL.REASON_OUTSIDE_PERIOD + f" ({CL.STUDY_START} to {CL.STUDY_END})"}


@pytest.mark.parametrize("sizes", [(40, 25, 10), (0, 12, 0), (0,), (30, 0, 30)])
def test_patient_keys_equal_pandas_factorize(sizes):
    # keys numbered by first appearance across all the Series, -1 where missing, as
    # pandas.factorize numbers the concatenated codes; empty Series keep their place
    rng = np.random.default_rng(sum(sizes))
    series = []
    for k, n in enumerate(sizes):
        values = [None if rng.random() < 0.15 else f"P{rng.integers(0, 20):03d}" for _ in range(n)]
        dtype = ("str", "string", object, "category")[k % 4]
        series.append(pd.Series(values, dtype=dtype, index=rng.permutation(n) + 7))
    got = CL.patient_keys(*series)
    allc = pd.concat([s.astype("string").reset_index(drop=True) for s in series], ignore_index=True)
    want = np.split(pd.factorize(allc, use_na_sentinel=True)[0].astype(np.int64), np.cumsum(sizes)[:-1])
    assert [len(g) for g in got] == list(sizes)
    for g, w in zip(got, want):
        assert g.dtype == np.int64
        np.testing.assert_array_equal(g, w)


def test_guard_skips_code_shaped_values_but_still_finds_identifiers():
    codes = [f"EF{i:08d}" for i in range(5000)]
    assert ID.find_identifier_columns(pd.DataFrame({"COD": pd.Series(codes, dtype="str")}), "x.csv") == []
    stamps = ["15/07/2021 10:32:11", "03/06/2017 03:33:33", "00/00/3939 39:39:39"]
    others = ["RSSMRA80A01H501U", "EF 0001", "3331234567", "3/06/2017 11:46:43", "15/07/2021 10:32",
              "0532 123456", "+39 0532 1234567"]
    inert = ID._inert(pd.Series(codes + stamps + others, dtype="str"))
    assert inert[:5003].all() and not inert[5003:].any()
    # and indeed no check finds anything in the inert shapes when they are examined
    full = ID.find_identifier_columns(pd.DataFrame({"NOTE": pd.Series(codes[:50] + stamps, dtype="str")}), "x.csv")
    assert full == []
    with_phone = pd.Series(codes + ["tel 333 1234567"], dtype="str")
    found = ID.find_identifier_columns(pd.DataFrame({"NOTE": with_phone}), "x.csv")
    assert [(f.kind, f.row) for f in found] == [("phone", 5001)]
    with_cf = pd.Series(codes + ["RSSMRA80A01H501U"], dtype="str")
    found = ID.find_identifier_columns(pd.DataFrame({"NOTE": with_cf}), "x.csv")
    assert [(f.kind, f.row) for f in found] == [("fiscal_code", 5001)]


def test_code_check_reports_white_space():
    from imr_analysis.schemas import form_schema, validate

    form = pd.DataFrame({"_line": [2, 3], "patient_code": pd.array(["EF1", "EF 2"], dtype="string")})
    problems = validate(form_schema(), form, "form.csv", {"patient_code": "Patient code"})
    mine = [p for p in problems if p.column == "Patient code"]
    assert [(p.line, p.value, p.message) for p in mine] == [(3, "EF 2", "value does not have the expected format")]


def test_validation_leaves_the_frame_as_it_was():
    """Schemas that do not coerce are validated in place (no copy); one that coerces gets a copy."""
    import pandera.pandas as pa

    from imr_analysis.schemas import validate

    df = pd.DataFrame({"_line": [3, 4], "n": pd.array([2, 0], dtype="Int64")})
    before = df.copy()
    problems = validate(pa.DataFrameSchema({"n": pa.Column("Int64", pa.Check.ge(1))}), df, "form.csv")
    assert [p.line for p in problems] == [4]
    pd.testing.assert_frame_equal(df, before)
    text = pd.DataFrame({"_line": [3, 4], "n": ["2", "0"]})
    problems = validate(pa.DataFrameSchema({"n": pa.Column("Int64", pa.Check.ge(1), coerce=True)}), text, "form.csv")
    assert [p.line for p in problems] == [4]
    assert text["n"].tolist() == ["2", "0"] and text["n"].dtype != "Int64"


@pytest.mark.parametrize("style", ["plain", "bom_crlf", "no_final_newline"])
def test_memory_mapped_export_reads_like_bytes(tmp_path, monkeypatch, style):
    """Large exports are memory-mapped and scanned in chunks; with a tiny chunk size every
    file here is, and line ends fall on chunk boundaries."""
    folder = rf.write_exports(tmp_path / "x", efeso=[rf.efeso_row(code=f"EF{i:05d}") for i in range(1, 60)])
    path = folder / C.RAW_FILES["EFESO"]
    if style == "bom_crlf":
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes().replace(b"\n", b"\r\n"))
    if style == "no_final_newline":
        path.write_bytes(path.read_bytes().rstrip(b"\n"))
    as_bytes = ingest.read_raw(path, "EFESO")
    monkeypatch.setattr(ingest, "_SCAN_BYTES", 7)
    mapped_raw = ingest._open_bytes(path)
    assert not isinstance(mapped_raw, bytes)  # memory-mapped
    assert ingest._count_byte(mapped_raw, ord("\n")) == path.read_bytes().count(b"\n")
    assert ingest._read_fast(mapped_raw, "EFESO") is not None
    mapped = ingest.read_raw(path, "EFESO")
    _columns_equal(mapped.data, as_bytes.data)
    assert (mapped.encoding, mapped.n_records, mapped.headers) == (as_bytes.encoding, as_bytes.n_records,
                                                                   as_bytes.headers) and mapped.n_records == 59


def test_memory_mapped_export_with_a_lone_carriage_return_goes_to_the_csv_reader(tmp_path, monkeypatch):
    folder = rf.write_exports(tmp_path / "x", efeso=[rf.efeso_row(code=f"EF{i:05d}") for i in range(1, 9)])
    path = folder / C.RAW_FILES["EFESO"]
    raw = path.read_bytes()
    cut = raw.rindex(b"\n", 0, len(raw) - 1) + 1
    path.write_bytes(raw[:cut] + b"\r" + raw[cut:])
    monkeypatch.setattr(ingest, "_SCAN_BYTES", 7)
    assert ingest._read_fast(ingest._open_bytes(path), "EFESO") is None
    monkeypatch.setattr(ingest, "_SCAN_BYTES", 1 << 24)
    assert ingest._read_fast(path.read_bytes(), "EFESO") is None
