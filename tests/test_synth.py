"""The synthetic-data generator: determinism, calibration, raw formats and scaling."""

from __future__ import annotations

import csv
import io
import re

import numpy as np
import pandas as pd
import pytest

from imr_analysis import constants as C
from imr_analysis.published import load_published
from imr_analysis.reproduce import check_published, read_metrics
from imr_synth import DEFAULT_SEED, cli, generate, write_exports
from imr_synth.generator import (
    DEPARTMENTS,
    _TARGET,
    _adjust_integers,
    _fmt,
    _pick_k,
    _rescale,
    calibration_problems,
    department,
    marker_line,
)

from conftest import audit_outputs

SEEDS = (DEFAULT_SEED, 1, 2)


@pytest.fixture(scope="module")
def syn():
    return generate()


@pytest.fixture(scope="module")
def written(tmp_path_factory, syn):
    folder = tmp_path_factory.mktemp("raw")
    write_exports(folder)
    return folder


# --------------------------------------------------------------------------- determinism
def test_same_seed_gives_byte_identical_files(tmp_path, written):
    write_exports(tmp_path, seed=DEFAULT_SEED)
    for name in C.RAW_FILES.values():
        assert (tmp_path / name).read_bytes() == (written / name).read_bytes(), name


def test_different_seed_gives_different_files(tmp_path, written):
    write_exports(tmp_path, seed=DEFAULT_SEED + 1)
    for name in C.RAW_FILES.values():
        assert (tmp_path / name).read_bytes() != (written / name).read_bytes(), name


# --------------------------------------------------------------------------- calibration
@pytest.mark.parametrize("seed", SEEDS)
def test_truth_reproduces_every_consistent_published_figure(seed):
    truth = generate(seed=seed).truth
    check = check_published(audit_outputs(truth))
    mismatched = check[check["status"] == "mismatch"]
    assert mismatched.empty, mismatched[["id", "published", "recomputed_printed"]].to_string()
    assert (check["status"] == "match").sum() >= 80
    assert calibration_problems(truth) == []


def test_calibration_targets_are_the_published_figures():
    published = load_published().sort_values("decimals").drop_duplicates("metric", keep="last").set_index("metric")
    metric = {"age": "age_imr", "age_first": "age_first", "dur": "imr_duration", "ses": "sessions",
              "user_total": "imrs_user_total", "prov_total": "imrs_provider_total"}
    for name, prefix in metric.items():
        for stat in ("mean", "sd"):
            value, decimals = _TARGET[f"{name}_{stat}"]
            row = published.loc[f"{prefix}_{stat}"]
            assert (value, decimals) == (row["value"], row["decimals"]), (name, stat)
    assert _TARGET["item_r"] == (published.loc["imrs_item_profile_pearson_r", "value"], 2)
    assert _TARGET["men"] == published.loc["n_men", "value"]


def test_truth_structure_explicitly(syn):
    t = syn.truth
    svc = t["service_type"]
    assert svc.value_counts().to_dict() == {"CMHC": 69, "SerD": 52, "EDP": 5}
    assert t["service_unit"].nunique() == 10
    assert (t["sex"] == "M").sum() == 77
    assert t.loc[svc == "SerD", "diagnosis_group"].eq("substance_use").all()
    assert (t["diagnosis_group"] == "substance_use").sum() == 53
    assert t.loc[svc == "EDP", "diagnosis_group"].eq("eating").all()
    counts = t[C.MODULE_COLUMNS].sum()
    assert counts["module_01"] == 89 and counts["module_06"] == 54 and counts["module_11"] == 55
    assert counts["module_09"] == counts["module_10"] == 8
    assert (t["n_modules"].min(), t["n_modules"].max()) == (1, 10)
    edp = t[svc == "EDP"]
    assert (edp["module_03"] & edp["module_08"] & (edp["n_modules"] == 2)).all()
    assert (edp["age_at_imr_start"] == 18).all() and (t["age_at_imr_start"] >= 18).all()
    assert (t[["med_antipsychotic", "med_anxiolytic_sedative", "med_none"]].sum().tolist() == [54, 51, 26])
    assert (t["imr_format"] == "group").sum() == 104
    assert t[C.IMRS_USER_COLUMNS + C.IMRS_PROVIDER_COLUMNS].notna().all().all()
    # providers track users with noise: patient-level agreement is realistic, not perfect
    r = np.corrcoef(t["imrs_user_total"], t["imrs_provider_total"])[0, 1]
    assert 0.5 <= r <= 0.8
    # clinically plausible: alcohol/drug items lower at the SerD than at the CMHCs
    for col in ("imrs_user_14", "imrs_user_15"):
        assert t.loc[svc == "SerD", col].mean() < t.loc[svc == "CMHC", col].mean()
    # illness is short at the EDP, long at the CMHCs
    ill = t.groupby("service_type")["illness_duration_years"].mean()
    assert ill["EDP"] < 1 < ill["SerD"] < ill["CMHC"]
    # social variables have a few missing values (2-6%)
    miss = t[["education_years", "marital_status", "living_condition", "employment_status"]].isna().mean()
    assert ((miss >= 0.02) & (miss <= 0.06)).all()
    assert (t["residence_district"] == "outside").sum() >= 2


def test_structural_check_can_fail(syn):
    t = syn.truth.copy()
    t.loc[0, C.MODULE_COLUMNS] = True
    t.loc[0, "n_modules"] = 11
    t.loc[1, "age_at_imr_start"] = 17
    problems = calibration_problems(t)
    assert any("never all 11" in p for p in problems)
    assert any("five 18-year-olds" in p for p in problems)


def test_truth_is_what_the_raw_files_say(syn):
    """Recompute truth columns from the raw text with pandas only (independent of the cleaner)."""
    efeso = syn.efeso.rename(columns={v: k for k, v in C.EHR_COLUMNS["EFESO"].items()})
    sister = syn.sister.rename(columns={v: k for k, v in C.EHR_COLUMNS["Sister"].items()})
    efeso["first"] = pd.to_datetime(efeso["first_access_date"], format="%d/%m/%Y")
    sister["first"] = pd.to_datetime(sister["first_access_date"], format="%Y-%m-%d")
    sister["sex"] = sister["sex"].map({"1": "M", "2": "F"})
    sister["diagnosis"] = sister["diagnosis"].str[:3] + "." + sister["diagnosis"].str[3:]
    ehr = pd.concat([efeso, sister], ignore_index=True)
    form = syn.form.rename(columns={v: k for k, v in C.FORM_COLUMNS.items()})
    form["start"] = pd.to_datetime(form["start_date"], format="%d/%m/%Y")
    form["stop"] = pd.to_datetime(form["stop_date"], format="%d/%m/%Y")
    form = form[form["stop"] <= pd.Timestamp("2021-07-31")]
    df = form.merge(ehr, on="patient_code", validate="one_to_one").set_index("patient_code")
    t = syn.truth.set_index("patient_id")
    df = df.loc[t.index]
    assert (df["start"].dt.year - df["birth_year"].astype(int) == t["age_at_imr_start"]).all()
    assert (df["first"].dt.year - df["birth_year"].astype(int) == t["age_at_first_treatment"]).all()
    assert (df["n_sessions"].astype(int) == t["n_sessions"]).all()
    assert (df["modules"].str.count(";") + 1 == t["n_modules"]).all()
    assert (df["sex"] == t["sex"]).all() and (df["diagnosis"] == t["diagnosis_icd10"]).all()
    user = df[[C.FORM_IMRS_USER[k] for k in C.IMRS_ITEMS]].astype(int).sum(axis=1)
    assert (user == t["imrs_user_total"]).all()
    days = (df["stop"] - df["start"]).dt.days
    assert np.allclose(days / C.DAYS_PER_MONTH, t["imr_duration_months"])
    assert np.allclose((df["start"] - df["first"]).dt.days / C.DAYS_PER_YEAR, t["illness_duration_years"])


def test_the_cleaner_reproduces_the_truth(written, syn):
    clean = pytest.importorskip("imr_analysis.cohort")
    result = clean.clean_raw(written, today="2030-01-01")
    pd.testing.assert_frame_equal(result.cohort.reset_index(drop=True), syn.truth.reset_index(drop=True))
    excluded = result.flow[result.flow["status"] == "excluded"]
    assert len(excluded) == 7  # 3 EHR without form, 2 late form rows and their 2 EHR records


def test_excluded_records(syn):
    """Beside the cohort: 3 EHR records without a form row, 2 form rows completed late (with EHR records)."""
    ehr = pd.concat([syn.efeso["COD_PAZIENTE"].to_frame("code").assign(source="EFESO"),
                     syn.sister["id_paziente"].to_frame("code").assign(source="Sister")])
    form = syn.form.set_index(C.FORM_COLUMNS["patient_code"])
    stops = pd.to_datetime(form[C.FORM_COLUMNS["stop_date"]], format="%d/%m/%Y")
    cohort = set(syn.truth["patient_id"])
    no_form = ehr[~ehr["code"].isin(form.index)]
    late = stops[stops > pd.Timestamp("2021-07-31")]
    assert sorted(no_form["source"]) == ["EFESO", "EFESO", "Sister"]
    assert len(late) == 2 and not set(late.index) & cohort
    assert set(late.index) <= set(ehr["code"])
    assert set(ehr["code"]) - cohort == set(no_form["code"]) | set(late.index)
    assert len(syn.efeso) + len(syn.sister) == 126 + 5 and len(syn.form) == 128


# --------------------------------------------------------------------------- raw formats
def test_file_format(written, syn):
    marker = marker_line(DEFAULT_SEED, 126)
    assert marker.startswith(C.SYNTHETIC_MARKER)
    delims = {"EFESO": ";", "Sister": ",", "form": ","}
    for source, name in C.RAW_FILES.items():
        raw = (written / name).read_bytes()
        assert not raw.startswith(b"\xef\xbb\xbf") and b"\r" not in raw
        text = raw.decode("utf-8")
        lines = text.split("\n")
        assert lines[0] == marker and text.endswith("\n")
        rows = list(csv.reader(io.StringIO("\n".join(lines[1:])), delimiter=delims[source]))
        header = rows[0]
        if source == "form":
            expected = ([C.FORM_COLUMNS[k] for k in ("timestamp", "patient_code", "service_unit", "start_date",
                                                     "stop_date", "format", "manual_version", "n_sessions",
                                                     "modules")]
                        + list(C.FORM_IMRS_USER.values()) + list(C.FORM_IMRS_PROVIDER.values()))
        else:
            expected = list(C.EHR_COLUMNS[source].values())
        assert header == expected
        assert all(len(r) == len(header) for r in rows[1:])


def test_ehr_codings(syn):
    e, s = syn.efeso, syn.sister
    assert e["COD_PAZIENTE"].str.fullmatch(r"EF\d{5}").all() and e["COD_PAZIENTE"].is_unique
    assert s["id_paziente"].str.fullmatch(r"SD\d{5}").all() and s["id_paziente"].is_unique
    # random, not sequential
    nums = np.sort(e["COD_PAZIENTE"].str[2:].astype(int).to_numpy())
    assert (np.diff(nums) > 1).mean() > 0.9
    assert e["DATA_PRIMO_ACCESSO"].str.fullmatch(r"\d{2}/\d{2}/\d{4}").all()
    assert s["data_primo_contatto"].str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()
    assert e["DIAGNOSI_ICD10"].str.fullmatch(r"F\d{2}\.\d").all()
    assert s["diagnosi_principale"].str.fullmatch(r"F\d{3}").all()
    assert set(e["SESSO"]) <= {"M", "F"} and set(s["sesso"]) <= {"1", "2"}
    meds_e = e["FARMACI_ATC"][e["FARMACI_ATC"] != ""]
    assert meds_e.str.fullmatch(r"[A-Z]\d{2}[A-Z]{2}\d{2}(, [A-Z]\d{2}[A-Z]{2}\d{2})*").all()
    meds_s = s["terapia_atc"][s["terapia_atc"] != ""]
    assert meds_s.str.fullmatch(r"[A-Z]\d{2}[A-Z]{2}\d{2}(\|[A-Z]\d{2}[A-Z]{2}\d{2})*").all()
    for frame, src in ((e, "EFESO"), (s, "Sister")):
        cols = C.EHR_COLUMNS[src]
        for fld in ("marital_status", "living_condition", "employment_status"):
            values = set(frame[cols[fld]]) - {""}
            assert values <= set(C.EHR_CODINGS[src][fld]), (src, fld)
            assert (frame[cols[fld]] == "").any()
    assert set(s["stato_civile"]) - {""} <= {"1", "2", "3", "4", "5"}
    edu = e["ANNI_SCOLARITA"]
    assert edu[edu != ""].str.fullmatch(r"\d{1,2}").all()
    outside = set(e["COMUNE_RESIDENZA"]) | set(s["comune_residenza"])
    assert outside - set(C.MUNICIPALITY_DISTRICT)  # a few patients live outside the province


def test_form_codings(syn):
    f = syn.form
    fc = C.FORM_COLUMNS
    ts = pd.to_datetime(f[fc["timestamp"]], format=C.FORM_TIMESTAMP_FORMAT)
    assert ts.is_monotonic_increasing
    stop = pd.to_datetime(f[fc["stop_date"]], format=C.FORM_DATE_FORMAT)
    start = pd.to_datetime(f[fc["start_date"]], format=C.FORM_DATE_FORMAT)
    gap = (ts.dt.normalize() - stop).dt.days
    assert ((gap >= 1) & (gap <= 14)).all() and (stop > start).all()
    assert set(f[fc["service_unit"]]) == set(C.SERVICE_UNITS)
    assert set(f[fc["format"]]) == set(C.FORM_FORMATS)
    assert set(f[fc["manual_version"]]) <= set(C.MANUAL_VERSIONS)
    labels = list(C.MODULE_FORM_LABELS.values())
    for cell in f[fc["modules"]]:
        parts = cell.split(C.FORM_CHECKBOX_SEP)
        assert parts and all(p in labels for p in parts)
        assert [labels.index(p) for p in parts] == sorted(labels.index(p) for p in parts)
    items = f[list(C.FORM_IMRS_USER.values()) + list(C.FORM_IMRS_PROVIDER.values())]
    assert items.isin(["1", "2", "3", "4", "5"]).all().all()
    assert f[fc["n_sessions"]].str.fullmatch(r"\d+").all()


def test_the_written_files_are_the_export_frames(written, syn):
    for source, frame in (("EFESO", syn.efeso), ("Sister", syn.sister), ("form", syn.form)):
        delimiter = C.EHR_FORMATS[source]["delimiter"] if source in C.EHR_FORMATS else ","
        back = pd.read_csv(written / C.RAW_FILES[source], sep=delimiter, skiprows=1, dtype=str, keep_default_na=False)
        pd.testing.assert_frame_equal(back, frame, check_dtype=False)


# --------------------------------------------------------------------------- helpers
def test_adjust_integers_hits_mean_and_sd_within_bounds():
    rng = np.random.default_rng(0)
    x = np.clip(np.rint(rng.normal(40, 9, 126)), 19, 75).astype(int)
    lo, hi = 19, 75
    free = np.ones(126, dtype=bool)
    free[:5] = False
    x[:5] = 18
    y = _adjust_integers(rng, x, lo, hi, free, (40.14, 2), (12.92, 2))
    assert _fmt(y.mean(), 2) == "40.14" and _fmt(y.std(ddof=1), 2) == "12.92"
    assert (y[:5] == 18).all() and y[5:].min() >= 19 and y.max() <= 75


def test_rescale_and_pick_k():
    rng = np.random.default_rng(1)
    x = rng.gamma(2, 3, 200)
    free = np.r_[np.zeros(10, bool), np.ones(190, bool)]
    y = _rescale(x, free, 10.0, 4.0)
    assert y.mean() == pytest.approx(10.0) and y.std(ddof=1) == pytest.approx(4.0)
    assert np.array_equal(y[:10], x[:10])
    mask = _pick_k(rng, np.r_[np.zeros(50), np.ones(50)], 30)
    assert mask.sum() == 30 and not mask[:50].any()


# --------------------------------------------------------------------------- other sizes
def test_large_cohort_keeps_proportions():
    syn = generate(seed=11, n_patients=5000)
    t = syn.truth
    assert len(t) == 5000 and t["patient_id"].is_unique
    share = t["service_type"].value_counts(normalize=True)
    assert share["CMHC"] == pytest.approx(69 / 126, abs=0.01)
    assert share["SerD"] == pytest.approx(52 / 126, abs=0.01)
    assert share["EDP"] == pytest.approx(5 / 126, abs=0.01)
    m = read_metrics(audit_outputs(t, n_resamples=1000))
    assert m["pct_men"] == pytest.approx(61.1, abs=3)
    assert m["pct_module_01"] == pytest.approx(70.6, abs=4)
    assert m["pct_med_none"] == pytest.approx(20.6, abs=3)
    assert m["age_imr_mean"] == pytest.approx(40.1, abs=1.5)
    assert m["imrs_user_item_mean_mean"] == pytest.approx(3.7, abs=0.1)
    assert m["illness_duration_service_p"] < 0.001
    assert calibration_problems(t, calibrated=False) == []
    assert len(syn.form) > len(t) and len(syn.efeso) + len(syn.sister) > len(t)
    ehr = pd.concat([syn.efeso["COD_PAZIENTE"], syn.sister["id_paziente"]])
    assert ehr.is_unique


def test_small_and_invalid_sizes():
    assert len(generate(seed=3, n_patients=10).truth) == 10
    with pytest.raises(ValueError):
        generate(n_patients=0)


# --------------------------------------------------------------------------- synthetic departments
@pytest.fixture(scope="module")
def departments():
    return {name: generate(d.seed, d.n_patients, d).truth for name, d in DEPARTMENTS.items()}


@pytest.mark.parametrize("name", list(DEPARTMENTS))
def test_a_department_is_the_same_for_its_seed_and_names_itself_on_every_first_line(tmp_path, name):
    from imr_analysis.sources import detect_data_mode

    d = DEPARTMENTS[name]
    a, b = (write_exports(tmp_path / run, seed=d.seed, n_patients=d.n_patients, department=d) for run in "ab")
    other = write_exports(tmp_path / "c", seed=d.seed + 1, n_patients=d.n_patients, department=d)
    for pa, pb, pc in zip(a, b, other):
        assert pa.read_bytes() == pb.read_bytes() != pc.read_bytes(), pa.name
        assert pa.read_text(encoding="utf-8").split("\n", 1)[0] == (
            f"# SYNTHETIC DATA - generated by imr_analysis synth (seed={d.seed}, n_patients={d.n_patients}, "
            f"department={name}); not real patients")
    assert detect_data_mode(tmp_path / "a") == "synthetic"


def test_the_shipped_exports_name_no_department():
    from imr_analysis import paths

    for fname in C.RAW_FILES.values():
        first = (paths.raw_dir() / fname).read_text(encoding="utf-8").split("\n", 1)[0]
        assert first == marker_line(DEFAULT_SEED, 126) and "department=" not in first


def test_departments_differ_as_set_and_agree_where_not(departments):
    sizes = {name: len(t) for name, t in departments.items()}
    assert sizes == {"north": 90, "central": 200, "coastal": 400}
    mix = {name: t["service_type"].astype(str).value_counts().reindex(C.SERVICE_TYPES).tolist()
           for name, t in departments.items()}
    assert mix == {"north": [56, 29, 5], "central": [100, 84, 16], "coastal": [260, 120, 20]}  # largest remainder
    for name, t in departments.items():
        d = DEPARTMENTS[name]
        assert (t["imr_format"] == "group").sum() == round(d.group_share * d.n_patients)
        units = {u for s, probs in (d.unit_probs or {}).items() for u, pr in
                 zip([u for u, v in C.SERVICE_UNITS.items() if v["service_type"] == s], probs) if pr > 0}
        assert not units or set(t["service_unit"].astype(str)) == units
        assert (t["sex"] == "M").sum() == round(77 * d.n_patients / 126)  # the paper's share everywhere
        for key, (value, decimals) in d.targets.items():
            column = {"ses": "n_sessions", "dur": "imr_duration_months"}[key.split("_")[0]]
            x = t[column].astype(float)
            got = x.mean() if key.endswith("mean") else x.std(ddof=1)
            assert abs(got - value) < 0.1 * value, (name, key, got)  # drawn to it, then clipped to the bounds
        assert calibration_problems(t, calibrated=False) == []
    bias = {name: (t["imrs_user_total"] - t["imrs_provider_total"]).mean() for name, t in departments.items()}
    assert bias["central"] > bias["north"] > bias["coastal"] + 1  # stricter (central), more lenient (coastal)


def test_an_unknown_department_is_named_with_the_choices():
    with pytest.raises(ValueError, match="unknown department 'south'; choose from north, central, coastal"):
        department("south")


def test_cli_writes_every_department(tmp_path, capsys):
    assert cli.main(["--departments", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(DEPARTMENTS)
    for name, d in DEPARTMENTS.items():
        first = (tmp_path / name / C.RAW_FILES["EFESO"]).read_text(encoding="utf-8").split("\n", 1)[0]
        assert first == marker_line(d.seed, d.n_patients, name)
    assert cli.main(["--department", "north", "--out", str(tmp_path / "one"), "--seed", "9"]) == 0
    assert "department=north" in (tmp_path / "one" / C.RAW_FILES["form"]).read_text(encoding="utf-8")[:200]
    capsys.readouterr()
    assert cli.main(["--departments", str(tmp_path), "--seed", "3"]) == 2
    assert "takes no" in capsys.readouterr().err
    assert cli.main(["--department", "north"]) == 2
    assert "needs --out" in capsys.readouterr().err


# --------------------------------------------------------------------------- command line
def test_cli_writes_the_exports(tmp_path, capsys):
    assert cli.main(["--seed", "5", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "seed 5" in out
    first = (tmp_path / C.RAW_FILES["form"]).read_text(encoding="utf-8").split("\n", 1)[0]
    assert first == marker_line(5, 126)
    assert re.search(r"seed=5, n_patients=126", first)


def test_cli_rejects_bad_size(capsys):
    assert cli.main(["--n-patients", "0"]) == 2
    assert "at least 1" in capsys.readouterr().err
