"""The cohort (imr_analysis.cohort) from hand-made exports: derivations, linkage, the cohort flow and errors."""

import pandas as pd
import pytest

import rawfactory as rf
from imr_analysis import constants as C
from imr_analysis.cohort import (REASON_FORM_EXCLUDED, REASON_NO_EHR, REASON_NO_FORM, REASON_REPEAT, clean_raw,
                                 write_outputs)
from imr_analysis.sources import RawDataError, detect_data_mode


def test_derivations_known_answers(tmp_path):
    r = clean_raw(rf.write_exports(tmp_path))
    c = r.cohort.set_index("patient_id")
    ef, sd = c.loc["EF00001"], c.loc["SD00001"]
    # ages are year differences (only the birth year is known)
    assert ef.age_at_imr_start == 2019 - 1980 and ef.age_at_first_treatment == 2010 - 1980
    assert sd.age_at_imr_start == 2019 - 1990 and sd.age_at_first_treatment == 2015 - 1990
    # 2019-03-01 .. 2019-12-01 = 275 days
    assert ef.imr_duration_months == pytest.approx(275 / (365.25 / 12))
    # 2010-03-15 .. 2019-03-01 = 3273 days
    assert ef.illness_duration_years == pytest.approx(3273 / 365.25)
    assert (ef.service_type, sd.service_type) == ("CMHC", "SerD")
    assert (ef.source_ehr, sd.source_ehr) == ("EFESO", "Sister")
    assert sd.sex == "M" and sd.diagnosis_icd10 == "F11.2" and sd.diagnosis_group == "substance_use"
    assert ef.residence_district == "Centro-Nord" and sd.residence_district == "Ovest"
    assert ef.marital_status == "never_married" and sd.employment_status == "employed"
    assert bool(ef.med_antipsychotic) and bool(ef.med_antidepressant) and not bool(ef.med_none)
    assert bool(sd.med_addiction) and bool(sd.med_anxiolytic_sedative)
    assert ef.n_modules == 2 and bool(ef.module_01) and bool(ef.module_03) and not bool(ef.module_06)
    assert ef.imrs_user_total == 60 and ef.imrs_provider_total == 45
    assert ef.imrs_user_mean == 4 and ef.imrs_provider_mean == 3
    assert list(r.cohort.columns) == C.COHORT_COLUMNS
    assert r.data_mode == "synthetic"


def test_cohort_text_is_categorical_with_the_values_present_sorted(tmp_path):
    efeso = [rf.efeso_row(code="EF00001", sex="M"), rf.efeso_row(code="EF00002", sex="F"),
             rf.efeso_row(code="EF00003", sex="F", diagnosis="F31.1")]  # no form row: not in the cohort
    form = [rf.form_row(code="EF00001"), rf.form_row(code="EF00002"), rf.form_row(code="SD00001", unit="SerD Cento")]
    c = clean_raw(rf.write_exports(tmp_path, efeso=efeso, form=form)).cohort
    assert len(c) == 3
    assert c["patient_id"].dtype == "string"
    for col in C.COHORT_CATEGORICAL_COLUMNS:
        cats = list(c[col].cat.categories)
        assert c[col].cat.categories.dtype == "str", col
        assert cats == sorted(c[col].dropna().unique()), col  # no unused category, sorted
    assert list(c["sex"].cat.categories) == ["F", "M"]
    assert list(c["source_ehr"].cat.categories) == ["EFESO", "Sister"]
    assert list(c["diagnosis_group"].cat.categories) == ["schizophrenia_spectrum", "substance_use"]  # no bipolar


def test_linkage_exclusions_and_flow_balance(tmp_path):
    efeso = [rf.efeso_row(code="EF00001"), rf.efeso_row(code="EF00002"), rf.efeso_row(code="EF00003"),
             rf.efeso_row(code="EF00004")]
    sister = [rf.sister_row(code="SD00001")]
    form = [
        rf.form_row(code="EF00001"),
        rf.form_row(code="EF00001", start="01/01/2020", stop="01/06/2020"),  # second programme
        rf.form_row(code="EF00002", start="01/03/2021", stop="15/09/2021"),  # after the period
        rf.form_row(code=" ef00003 "),                                        # case/space in code
        rf.form_row(code="XX99999"),                                          # no EHR record
        rf.form_row(code="SD00001", unit="SerD Cento", modules="M6. Drug and Alcohol Use"),
    ]
    r = clean_raw(rf.write_exports(tmp_path, efeso=efeso, sister=sister, form=form))
    assert sorted(r.cohort.patient_id) == ["EF00001", "EF00003", "SD00001"]
    flow = r.flow
    assert len(flow) == len(efeso) + len(sister) + len(form)
    reasons = flow.set_index(["source", "line"])["reason"]
    assert reasons[("form", 4)] == REASON_REPEAT
    assert reasons[("form", 5)].startswith("programme completed outside the observation period")
    assert reasons[("form", 7)] == REASON_NO_EHR
    assert reasons[("EFESO", 4)] == REASON_FORM_EXCLUDED   # EF00002: its form row was outside the period
    assert reasons[("EFESO", 6)] == REASON_NO_FORM         # EF00004 never in the form
    counts = flow.groupby(["source", "status"]).size().to_dict()
    assert counts == {("EFESO", "excluded"): 2, ("EFESO", "included"): 2, ("Sister", "included"): 1,
                      ("form", "excluded"): 3, ("form", "included"): 3}
    # the first completed programme is the one analysed
    assert r.cohort.set_index("patient_id").loc["EF00001", "imr_start"] == pd.Timestamp("2019-03-01")


def test_errors_name_file_line_and_column(tmp_path):
    efeso = [rf.efeso_row(first_access="31/02/2010"), rf.efeso_row(code="EF00002", diagnosis="schizo")]
    form = [rf.form_row(sessions="0"), rf.form_row(code="EF00002", unit="CMHC Atlantis",
                                                   user=["4"] * 14 + ["7"])]
    with pytest.raises(RawDataError) as err:
        clean_raw(rf.write_exports(tmp_path, efeso=efeso, form=form))
    msg = str(err.value)
    assert "efeso_extract.csv, line 3, column 'DATA_PRIMO_ACCESSO'" in msg
    assert "efeso_extract.csv, line 4, column 'DIAGNOSI_ICD10': malformed ICD-10" in msg
    assert "imr_summary_form.csv, line 3, column 'Number of sessions'" in msg
    assert "imr_summary_form.csv, line 4, column 'Service unit': unknown service unit" in msg
    assert "column 'User IMRS [15. Functioning affected by drug use]': IMRS items are scored 1 to 5" in msg
    assert len(err.value.problems) == 5  # lazy: every problem at once


def test_duplicate_codes_across_ehrs_are_fatal(tmp_path):
    with pytest.raises(RawDataError, match="appears more than once in the EHR extracts"):
        clean_raw(rf.write_exports(tmp_path, sister=[rf.sister_row(code="EF00001")],
                                   form=[rf.form_row()]))


def test_stop_before_start_is_fatal(tmp_path):
    with pytest.raises(RawDataError, match="line 3, column 'IMR stop date': stop date is before start date"):
        clean_raw(rf.write_exports(tmp_path, form=[rf.form_row(start="01/06/2019", stop="01/05/2019")],
                                   sister=[]))


def test_missing_required_column(tmp_path):
    header = rf.efeso_header()
    header[header.index("SESSO")] = "GENDER_X"
    with pytest.raises(RawDataError, match="column 'SESSO': required column is missing"):
        clean_raw(rf.write_exports(tmp_path, efeso_header_=header))


def test_missing_social_variables_are_kept(tmp_path):
    r = clean_raw(rf.write_exports(tmp_path, efeso=[rf.efeso_row(education="", marital="")]))
    ef = r.cohort.set_index("patient_id").loc["EF00001"]
    assert pd.isna(ef.education_years) and pd.isna(ef.marital_status)


def test_missing_imrs_item_gives_missing_total(tmp_path):
    user = ["4"] * 14 + [""]
    r = clean_raw(rf.write_exports(tmp_path, form=[rf.form_row(user=user)], sister=[]))
    ef = r.cohort.iloc[0]
    assert pd.isna(ef.imrs_user_total) and ef.imrs_user_mean == 4


def test_data_mode_private_without_marker(tmp_path):
    rf.write_exports(tmp_path, marker=None)
    assert detect_data_mode(tmp_path) == "private"
    assert clean_raw(tmp_path).data_mode == "private"


def test_outputs_are_byte_identical(tmp_path):
    raw = rf.write_exports(tmp_path / "raw")
    first, second = clean_raw(raw), clean_raw(raw)
    a = write_outputs(first.cohort, first.flow, tmp_path / "a")
    b = write_outputs(second.cohort, second.flow, tmp_path / "b")
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    back = pd.read_parquet(a[0])
    assert back["imr_start"].dtype.kind == "M" and back["module_01"].dtype == bool


def test_italian_excel_conventions_give_the_same_cohort(tmp_path):
    """cp1252, ';' everywhere, accented municipality, Italian headers: same cohort."""
    plain = clean_raw(rf.write_exports(tmp_path / "a")).cohort
    rows = [rf.form_row(), rf.form_row(code="SD00001", unit="SerD Cento", modules="M6. Drug and Alcohol Use",
                                       timestamp="06/12/2019 10.00.00")]
    header = rf.form_header()
    header[0] = "Informazioni cronologiche"
    folder = tmp_path / "b"
    rf.write_exports(folder, form=rows, form_header_=header, encoding="cp1252", form_delimiter=";",
                     sister_delimiter=";")
    assert b";" in (folder / "sister_extract.csv").read_bytes().splitlines()[1]
    italian = clean_raw(folder).cohort
    pd.testing.assert_frame_equal(plain, italian)


def test_clean_command_keeps_private_cohorts_out_of_the_committed_folder(tmp_path, monkeypatch):
    """``python -m imr_analysis clean`` on private exports writes under outputs/private, never data/processed."""
    import hashlib

    from imr_analysis import paths
    from imr_workflow import clean

    committed = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths.processed_dir().iterdir()}
    target = tmp_path / "private"
    monkeypatch.setattr(paths, "private_outputs_dir", lambda: target)
    raw = rf.write_exports(tmp_path / "raw", marker=None)
    assert clean.main(["--raw-dir", str(raw)]) == 0
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths.processed_dir().iterdir()} == committed
    assert pd.read_parquet(target / "data" / "processed" / "cohort.parquet")["patient_id"].tolist() == \
        ["EF00001", "SD00001"]
