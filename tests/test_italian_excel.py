"""The default synthetic exports, re-saved as Italian Excel would save them, give the same cohort.

Italian Excel conventions: ``;`` delimiter, decimal commas, cp1252, CRLF line ends,
``dd/mm/yyyy`` dates everywhere (the Sister extract's ISO dates included) and Google
Forms timestamps in Italian locale (``10.32.11``). The rewrite (``rawfactory.
rewrite_italian_excel``) keeps every record on its line, so the cohort flow must be
identical too, line by line.
"""

from __future__ import annotations

import pandas as pd
import pytest

import rawfactory as rf
from imr_analysis import constants as C
from imr_analysis import paths
from imr_analysis.cohort import clean_raw
from imr_analysis.sources import read_raw

RAW = paths.raw_dir()
HAVE_RAW = all((RAW / name).exists() for name in C.RAW_FILES.values())
pytestmark = pytest.mark.skipif(
    not HAVE_RAW, reason="data/raw/*.csv not generated yet: run `python -m imr_analysis synth` first")

#: The Italian Google Forms headers of the form's first nine questions.
ITALIAN_FORM_HEADERS = {
    "Timestamp": "Informazioni cronologiche", "Patient code": "Codice paziente", "Service unit": "Servizio",
    "IMR start date": "Data inizio IMR", "IMR stop date": "Data fine IMR", "IMR format": "Formato IMR",
    "Manual version": "Versione del manuale", "Number of sessions": "Numero di sessioni",
    "Modules administered": "Moduli somministrati",
}


@pytest.fixture(scope="module")
def original():
    return clean_raw(RAW)


@pytest.fixture(scope="module")
def italian(tmp_path_factory):
    folder = rf.rewrite_italian_excel(RAW, tmp_path_factory.mktemp("italian_excel"))
    return folder, clean_raw(folder)


def test_the_rewrite_really_is_italian_excel(italian):
    folder, _ = italian
    for source, name in C.RAW_FILES.items():
        raw = (folder / name).read_bytes()
        raw.decode("cp1252")
        assert b"\r\n" in raw
        table = read_raw(folder / name, source)
        assert table.delimiter == ";"
        dates = [c for c in table.data.columns if "date" in c or c in {"start_date", "stop_date"}]
        for col in dates:
            filled = table.data[col][table.data[col] != ""]
            assert filled.str.fullmatch(r"\d{2}/\d{2}/\d{4}").all(), (name, col)
    form = read_raw(folder / C.RAW_FILES["form"], "form").data
    assert form["n_sessions"].str.endswith(",0").all()
    assert form["timestamp"].str.fullmatch(r"\d{2}/\d{2}/\d{4} \d{2}\.\d{2}\.\d{2}").all()
    sister = read_raw(folder / C.RAW_FILES["Sister"], "Sister").data
    assert sister["first_access_date"].str.fullmatch(r"\d{2}/\d{2}/\d{4}").all()


def test_italian_excel_gives_the_identical_cohort_and_flow(original, italian):
    _, result = italian
    assert len(original.cohort) > 0
    pd.testing.assert_frame_equal(result.cohort, original.cohort)
    pd.testing.assert_frame_equal(result.flow, original.flow)
    assert result.data_mode == original.data_mode
    assert result.warnings == original.warnings


def test_italian_google_forms_headers_too(original, tmp_path):
    folder = rf.rewrite_italian_excel(RAW, tmp_path)
    form = folder / C.RAW_FILES["form"]
    lines = form.read_bytes().decode("cp1252").split("\r\n")
    i = 1 if lines[0].startswith("#") else 0
    header = lines[i].split(";")
    header = [ITALIAN_FORM_HEADERS.get(h, h.replace("User IMRS", "Utente IMRS").replace("Provider IMRS",
                                                                                        "Operatore IMRS"))
              for h in header]
    lines[i] = ";".join(header)
    form.write_bytes("\r\n".join(lines).encode("cp1252"))
    result = clean_raw(folder)
    pd.testing.assert_frame_equal(result.cohort, original.cohort)
    pd.testing.assert_frame_equal(result.flow, original.flow)
