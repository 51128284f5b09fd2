"""Tests of imr_analysis.identifiers (the identifier guard) and imr_workflow.scan.

Known fiscal codes are assembled from pieces at run time so that this file itself
never holds a 16-character code (the scanner runs over the repository).
"""

from __future__ import annotations

import json
import string
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest

from imr_analysis import constants as c
from imr_analysis import identifiers as ident
from imr_analysis.identifiers import (
    Finding,
    IdentifierError,
    find_identifier_columns,
    guard_dataframe,
    is_valid_fiscal_code,
    mask_value,
)
from imr_workflow import scan
from imr_workflow.scan import main, scan_paths, scan_text

ROOT = Path(__file__).resolve().parents[1]


def cf(*parts: str) -> str:
    return "".join(parts)


#: Published test vectors of the python-codicefiscale project (valid codes, including
#: every omocodia variant of the same person) and the widely used "Mario Rossi" examples.
VALID_CODES = [
    cf("CCCFBA", "85D03", "L219P"),
    cf("CCCFBA", "85D03", "L21VE"),
    cf("CCCFBA", "85D03", "L2MVP"),
    cf("CCCFBA", "85D03", "LNMVE"),
    cf("CCCFBA", "85D0P", "LNMVA"),
    cf("CCCFBA", "85DLP", "LNMVL"),
    cf("CCCFBA", "8RDLP", "LNMVX"),
    cf("CCCFBA", "URDLP", "LNMVU"),
    cf("RSSMRA", "85T10", "A562S"),
    cf("RSSMRA", "85H12", "F205Y"),
]
INVALID_CODES = [
    cf("CCCFBA", "85D03", "L219B"),  # wrong check character
    cf("RSSMRA", "85H12", "F205X"),  # wrong check character
    cf("RSSMRA", "85T32", "A562S"),  # day 32 does not exist
    cf("RSSMRA", "85Z10", "A562S"),  # Z is not a month letter
    "EF12345",
    "F20.0",
]


# --------------------------------------------------------------------------------------
# fiscal code algorithm
# --------------------------------------------------------------------------------------
ODD = dict(zip("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ",
               [1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20,
                11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23]))
EVEN = {ch: (int(ch) if ch.isdigit() else ord(ch) - ord("A")) for ch in "0123456789" + string.ascii_uppercase}


def check_character_by_hand(first15: str) -> str:
    """DM 23/12/1976: odd positions (1st, 3rd ...) use the odd table, even positions the plain values."""
    total = sum(ODD[ch] if i % 2 == 0 else EVEN[ch] for i, ch in enumerate(first15))
    return chr(ord("A") + total % 26)


@pytest.mark.parametrize("code", VALID_CODES)
def test_valid_fiscal_codes_and_check_character(code):
    assert is_valid_fiscal_code(code)
    assert is_valid_fiscal_code(code.lower())
    assert is_valid_fiscal_code(" ".join([code[:3], code[3:6], code[6:11], code[11:]]))
    assert check_character_by_hand(code[:15]) == code[15]


@pytest.mark.parametrize("code", INVALID_CODES + ["SHORT", "00743110157"])  # a company's 11-digit code
def test_invalid_fiscal_codes(code):
    assert not is_valid_fiscal_code(code)


def test_every_wrong_check_letter_is_rejected():
    base = VALID_CODES[0]
    wrong = [base[:15] + ch for ch in string.ascii_uppercase if ch != base[15]]
    assert len(wrong) == 25 and not any(is_valid_fiscal_code(w) for w in wrong)
    assert find_identifier_columns(pd.DataFrame({"CODE": wrong}), "x.csv") == []


@pytest.mark.parametrize("birth", ["85T32", "85T00", "85B30", "85T72"])  # day 32, 0, 30 Feb, 72
def test_impossible_birth_dates_are_rejected_even_with_the_right_check_letter(birth):
    first15 = "RSSMRA" + birth + "A562"
    assert not is_valid_fiscal_code(first15 + check_character_by_hand(first15))
    ok = "RSSMRA85T41A562"  # day 41: a woman born on the 1st
    assert is_valid_fiscal_code(ok + check_character_by_hand(ok))


# --------------------------------------------------------------------------------------
# DataFrame guard
# --------------------------------------------------------------------------------------
def synthetic_like_exports() -> dict[str, pd.DataFrame]:
    """Frames shaped like the compendium's raw exports (values from its vocabulary)."""
    n = 40
    idx = np.arange(n)
    munis = list(c.MUNICIPALITY_DISTRICT) + ["Bologna", "San Lazzaro di Savena"]
    efeso_cod = c.EHR_CODINGS["EFESO"]
    sister_cod = c.EHR_CODINGS["Sister"]
    efeso = pd.DataFrame({
        "COD_PAZIENTE": [f"EF{10000 + i}" for i in idx],
        "ANNO_NASCITA": 1960 + idx % 40,
        "SESSO": np.where(idx % 2 == 0, "M", "F"),
        "COMUNE_RESIDENZA": [munis[i % len(munis)] for i in idx],
        "DATA_PRIMO_ACCESSO": [f"{1 + i % 28:02d}/{1 + i % 12:02d}/{2000 + i % 20}" for i in idx],
        "DIAGNOSI_ICD10": [["F20.0", "F31.1", "F32.2", "F10.2", "F50.0"][i % 5] for i in idx],
        "FARMACI_ATC": [["N05AH04, N06AB06", "N05AN01", "", "N07BC02"][i % 4] for i in idx],
        "DATA_INIZIO_PROGRAMMA": [f"{1 + i % 28:02d}/03/2017" for i in idx],
        "ANNI_SCOLARITA": 8 + idx % 10,
        "STATO_CIVILE": [list(efeso_cod["marital_status"])[i % 6] for i in idx],
        "CONDIZIONE_ABITATIVA": [list(efeso_cod["living_condition"])[i % 5] for i in idx],
        "CONDIZIONE_LAVORATIVA": [list(efeso_cod["employment_status"])[i % 5] for i in idx],
    })
    sister = pd.DataFrame({
        "id_paziente": [f"SD{i:05d}" for i in idx],
        "anno_nascita": 1970 + idx % 30,
        "sesso": np.where(idx % 3 == 0, "2", "1"),
        "comune_residenza": [munis[(i * 7) % len(munis)] for i in idx],
        "data_primo_contatto": [f"{2001 + i % 20}-{1 + i % 12:02d}-{1 + i % 28:02d}" for i in idx],
        "diagnosi_principale": [["F200", "F112", "F102", "F322"][i % 4] for i in idx],
        "terapia_atc": [["N07BC02|N05BA01", "N07BC01", ""][i % 3] for i in idx],
        "stato_civile": [str(1 + i % 5) for i in idx],
        "condizione_abitativa": [list(sister_cod["living_condition"])[i % 5] for i in idx],
        "condizione_lavorativa": [list(sister_cod["employment_status"])[i % 5] for i in idx],
    })
    form = pd.DataFrame({
        "Timestamp": [f"{1 + i % 28:02d}/06/2018 10:{i % 60:02d}:00" for i in idx],
        "Patient code": [f"EF{10000 + i}" for i in idx],
        "Service unit": [list(c.SERVICE_UNITS)[i % 10] for i in idx],
        "IMR start date": [f"{1 + i % 28:02d}/04/2017" for i in idx],
        "IMR format": [list(c.FORM_FORMATS)[i % 2] for i in idx],
        "Manual version": [c.MANUAL_VERSIONS[i % 2] for i in idx],
        "Number of sessions": 1 + idx % 70,
        "Modules administered": [c.FORM_CHECKBOX_SEP.join(c.MODULE_FORM_LABELS[k] for k in (1, 1 + i % 11))
                                 for i in idx],
        c.FORM_IMRS_USER[1]: 1 + idx % 5,
    })
    return {"efeso_extract.csv": efeso, "sister_extract.csv": sister, "imr_summary_form.csv": form}


@pytest.mark.parametrize("name", ["efeso_extract.csv", "sister_extract.csv", "imr_summary_form.csv"])
def test_no_false_positives_on_export_shaped_frames(name):
    df = synthetic_like_exports()[name]
    assert find_identifier_columns(df, name) == []
    assert guard_dataframe(df, name) is df


def test_fiscal_code_column_refused_with_file_column_and_row_never_the_value():
    df = synthetic_like_exports()["efeso_extract.csv"].head(5).copy()
    df.insert(1, "CF_ASSISTITO", ["", "", VALID_CODES[1], "", VALID_CODES[0]])
    with pytest.raises(IdentifierError) as err:
        guard_dataframe(df, "efeso_extract.csv")
    msg = str(err.value)
    assert "efeso_extract.csv" in msg and "'CF_ASSISTITO'" in msg and "data row 3" in msg
    assert "fiscal codes" in msg
    assert all(code not in msg for code in VALID_CODES)
    (f,) = err.value.findings
    assert (f.kind, f.column, f.row, f.masked) == ("fiscal_code", "CF_ASSISTITO", 3, "CC" + "*" * 14)
    assert "2 of 2 rows" in f.detail


def test_invalid_check_characters_are_not_fiscal_codes():
    df = pd.DataFrame({"CODE": [INVALID_CODES[0], INVALID_CODES[1]]})
    assert find_identifier_columns(df, "x.csv") == []


def test_fiscal_code_inside_free_text_refused():
    df = pd.DataFrame({"NOTE": ["controllo", f"paziente {VALID_CODES[8]} richiamato", ""]})
    (f,) = find_identifier_columns(df, "x.csv")
    assert (f.kind, f.row) == ("fiscal_code", 2)


@pytest.mark.parametrize("column, values, kind", [
    ("contatto", ["+39 340 1234567", "0532 236111", "3401234567", "340-123-4567"], "phone"),
    ("recapito", ["mario.rossi@ausl.fe.it", "", "", ""], "email"),
    ("residenza", ["Via Roma 12", "Corso Giovecca n. 203", "Piazza della Repubblica 3/A", "viale Cavour, 45"],
     "address"),
    ("paziente", ["Mario Rossi", "Anna De Luca", "GIUSEPPE VERDI", "Luca D'Angelo"], "person_name"),
    ("nascita", ["12/03/1980", "1975-01-02", "03.04.1990", "05/06/1985"], "date_of_birth"),
    ("ANNO_NASCITA", ["12/03/1980", "1975", "1990", "1985"], "date_of_birth"),
    ("COGNOME", ["Rossi", "Bianchi", "Verdi", "Neri"], "person_name"),
    ("Nome", ["Mario", "Anna", "Luca", "Sara"], "person_name"),
    ("codice_fiscale", ["n/a", "n/a", "n/a", "n/a"], "fiscal_code"),
    ("Telefono", ["n.d.", "", "", ""], "phone"),
    ("INDIRIZZO", ["-", "", "", ""], "address"),
    ("email", ["-", "", "", ""], "email"),
])
def test_identifier_columns_refused(column, values, kind):
    df = pd.DataFrame({"COD_PAZIENTE": ["EF00001", "EF00002", "EF00003", "EF00004"], column: values})
    with pytest.raises(IdentifierError) as err:
        guard_dataframe(df, "export.csv")
    kinds = {(f.column, f.kind) for f in err.value.findings}
    assert (column, kind) in kinds
    assert all(f.column == column for f in err.value.findings)
    for v in values:
        if len(v) > 4:
            assert v not in str(err.value)


def test_datetime_birth_column_refused_but_year_allowed():
    df = pd.DataFrame({"date_of_birth": pd.to_datetime(["1980-03-12", "1975-01-02"])})
    assert [f.kind for f in find_identifier_columns(df, "x")] == ["date_of_birth"]
    years = pd.DataFrame({"dob": ["1980", "1975"], "birth_year": [1980, 1975], "anno_nascita": ["1980", "1975"]})
    assert find_identifier_columns(years, "x") == []


@pytest.mark.parametrize("values", [
    ["EF12345", "SD12345", "EF00001", "SD99999"],               # pseudonymous codes
    ["F20.0", "F31.1", "F10.2", "F50.0"],                       # ICD-10, dotted
    ["F200", "F311", "F102", "F500"],                           # ICD-10, undotted
    ["N05AH04", "N06AB06, N05AN01", "N07BC02|N05BA01", ""],     # ATC
    ["12/03/2018", "01/01/2015", "31/12/2019", "05/06/2001"],   # first-access dates
    ["2018-03-12", "2015-01-01", "2019-12-31", "2001-06-05"],
    ["01-12-2019", "05-03-2018", "09-09-2020", "02-01-2017"],  # dashed dates are not landlines
    ["01/12/2019", "05.03.2018", "09 09 2020", "02-01-17"],
    ["CMHC Cento", "SerD Ferrara", "EDP Ferrara", "CMHC Ferrara"],
    ["Jolanda di Savoia", "Masi Torello", "Poggio Renatico", "Terre del Reno"],
    ["FAMIGLIA DI ORIGINE", "PARTNER/FIGLI", "FAMIGLIA DI ORIGINE", "SOLO"],
    ["Revised edition (Gingerich & Mueser 2011), Italian translation (Boggian et al. 2016)"] * 4,
    ["0.001", "3.5", "12", "126"],
])
def test_not_identifiers(values):
    df = pd.DataFrame({"VALUE": values})
    assert find_identifier_columns(df, "x.csv") == []
    assert scan_text("\n".join(values)) == []


def test_name_detection_needs_most_values_distinct():
    # a repeated two-word label is a category, not a person
    df = pd.DataFrame({"labels": ["Gruppo Alfa"] * 30 + ["Gruppo Beta"] * 30})
    assert find_identifier_columns(df, "x") == []


def test_masking_keeps_no_identifying_characters():
    assert mask_value(VALID_CODES[0], "fiscal_code") == "CC" + "*" * 14
    assert mask_value("Mario Rossi", "person_name") == "M**** R****"
    assert mask_value("mario.rossi@ausl.fe.it", "email") == "m**********@a******.it"
    assert mask_value("+39 340 1234567", "phone") == "+39 *** *****67"
    assert mask_value("Via Roma 12", "address") == "V** R*** 1*"


# --------------------------------------------------------------------------------------
# free text and files
# --------------------------------------------------------------------------------------
def test_scan_text_finds_each_kind_with_line_numbers():
    text = "\n".join([
        "clean line with EF12345 and F20.0",
        f"codice {VALID_CODES[2]}",
        "scrivere a mario.rossi@ausl.fe.it",
        "tel. 0532 236111",
        "abita in Via Garibaldi 3, Ferrara",
        "see https://docs.example.org and user@example.org",
    ])
    found = [(f.line, f.kind) for f in scan_text(text, "t.md")]
    assert found == [(2, "fiscal_code"), (3, "email"), (4, "phone"), (5, "address")]


@pytest.mark.parametrize("text", [
    "12/03/2018", "2018-03-12", "01-12-2019", "on 05-03-2018 at 10:00", "p = 0.001234", "n = 3401234", "1234567890", "0.0532236111",
    "10:05:32", "3.141592653", "2023-01-05 12:34:56", "CMHC (n=69)", "001234567",
    "released via Papermill 2.7 with Python 3.11", "via Python 3", "M 340 1234.5",
])
def test_scan_text_no_false_positives(text):
    assert scan_text(text) == []


def test_svg_geometry_is_not_scanned_but_text_comments_are(tmp_path):
    svg = tmp_path / "fig.svg"
    svg.write_text('<svg><path d="M 353 884 L 353 1716 Q 384 513 384 1019"/>\n'
                   f'<!-- {VALID_CODES[3]} -->\n<g id="text_1"><!-- CMHC --></g></svg>\n')
    found = scan_paths([svg])
    assert [(f.line, f.kind) for f in found] == [(2, "fiscal_code")]


def _notebook(path: Path, output_text: str | None, *, html: bool = False) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    cell = nbformat.v4.new_code_cell("x = 1\nx", execution_count=1)
    if output_text is not None:
        if html:
            cell.outputs = [nbformat.v4.new_output("display_data", data={
                "text/html": f"<table><tr><td>{output_text}</td></tr></table>", "text/plain": "<table>"})]
        else:
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=output_text + "\n")]
    png = nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo" + "A" * 200})
    cell.outputs.append(png)
    nb.cells = [nbformat.v4.new_markdown_cell("# Tiny"), cell]
    nbformat.write(nb, path)
    return path


def test_notebook_output_with_fiscal_code_fails_the_scan(tmp_path, capsys):
    bad = _notebook(tmp_path / "bad.ipynb", f"patient {VALID_CODES[0]} done", html=True)
    assert main([str(bad)]) == 1
    out = capsys.readouterr().out
    first = out.splitlines()[0]
    line = next(i for i, l in enumerate(bad.read_text().splitlines(), 1) if VALID_CODES[0] in l)
    assert first.startswith(f"{bad}:{line}: fiscal_code (CC**************)")
    assert "cell 2, output 1, text/html" in first
    assert VALID_CODES[0] not in out
    assert "suspected direct identifier(s) in 1 of 1 files" in out


def test_notebook_stream_and_source_are_scanned(tmp_path):
    nb = _notebook(tmp_path / "s.ipynb", "contact mario.rossi@ausl.fe.it")
    assert [f.kind for f in scan_paths([nb])] == ["email"]
    raw = json.loads(nb.read_text())
    raw["cells"][1]["source"] = f"cf = '{VALID_CODES[5]}'"
    nb.write_text(json.dumps(raw))
    kinds = [(f.kind, f.location) for f in scan_paths([nb])]
    assert ("fiscal_code", "cell 2, source") in kinds


def test_clean_notebook_passes(tmp_path, capsys):
    good = _notebook(tmp_path / "good.ipynb", "n = 126 patients, EF12345, F20.0, 12/03/2018")
    assert main([str(good)]) == 0
    assert capsys.readouterr().out.strip() == "no direct identifiers found in 1 files"


def test_directory_walk_skips_tool_folders_and_binaries(tmp_path, capsys):
    (tmp_path / ".ipynb_checkpoints").mkdir()
    (tmp_path / ".ipynb_checkpoints" / "x.md").write_text(f"{VALID_CODES[0]}\n")
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "y.csv").write_text("mario.rossi@ausl.fe.it\n")
    (tmp_path / "figure.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00" + VALID_CODES[0].encode())
    (tmp_path / "table.csv").write_text("a;b\n1;2\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "t.tex").write_text("\\textbf{Via Roma 12}\n")
    assert main([str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"{tmp_path / 'sub' / 't.tex'}:1: address (V** R*** 1*)" in out
    assert ".ipynb_checkpoints" not in out and ".venv" not in out and "figure.png" not in out
    assert "in 1 of 2 files" in out


def test_csv_scan_checks_columns_too(tmp_path):
    p = tmp_path / "export.csv"
    p.write_text("# SYNTHETIC DATA\nCOD_PAZIENTE;NOMINATIVO;DATA_NASCITA\nEF00001;Mario Rossi;12/03/1980\n"
                 "EF00002;Anna Bianchi;01/02/1975\n")
    found = [(f.line, f.kind, f.column) for f in scan_paths([p])]
    assert found == [(3, "person_name", "NOMINATIVO"), (3, "date_of_birth", "DATA_NASCITA")]


def test_main_missing_path_exit_code_2(tmp_path, capsys):
    assert main([str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_dispatcher_runs_scan(tmp_path):
    (tmp_path / "ok.md").write_text("nothing here\n")
    res = subprocess.run([sys.executable, "-m", "imr_analysis", "scan", str(tmp_path)],
                         capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "no direct identifiers found in 1 files"


def test_compendium_data_and_outputs_are_clean():
    """The synthetic exports, notebooks, tables and figures hold no direct identifiers."""
    paths = [ROOT / d for d in ("data", "notebooks", "tables", "figures", "reports") if (ROOT / d).exists()]
    raw = sorted((ROOT / "data" / "raw").glob("*.csv"))
    if not raw:
        pytest.skip("data/raw/*.csv not generated yet")
    findings = scan_paths(paths)
    assert findings == [], "\n".join(map(scan.format_finding, findings))
    for p in raw:
        lines = p.read_text(encoding="utf-8").splitlines()
        skip = sum(1 for line in lines[:3] if line.startswith("#"))
        sep = ";" if lines[skip].count(";") > lines[skip].count(",") else ","
        df = pd.read_csv(p, sep=sep, skiprows=skip, dtype=str)
        assert find_identifier_columns(df, p.name) == []


def test_finding_str_format():
    f = Finding(path="a.csv", kind="email", masked="m***@a***.it", line=4, column="MAIL", detail="header")
    assert scan.format_finding(f) == "a.csv:4: email (m***@a***.it) [column 'MAIL'; header]"


def test_doctests():
    import doctest

    result = doctest.testmod(ident, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 10
    result = doctest.testmod(scan, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted >= 2


# --------------------------------------------------------------------------------------
# Large tables
# --------------------------------------------------------------------------------------
def _large_mixed_frame(n=6000, seed=3):
    """Columns with thousands of distinct values, identifiers hidden in a few rows."""
    rng = np.random.default_rng(seed)
    codes = [f"EF{i:07d}" for i in range(n)]
    stamps = [f"{d:02d}/{m:02d}/20{y:02d} {h:02d}:{mi:02d}:{s:02d}" for d, m, y, h, mi, s in
              zip(rng.integers(1, 29, n), rng.integers(1, 13, n), rng.integers(17, 22, n), rng.integers(0, 24, n),
                  rng.integers(0, 60, n), rng.integers(0, 60, n))]
    tricky = ["tel. 0532 123456", "chiamare il 333 1234567", "+39 051 6363636", "٠٥٣٢ ١٢٣٤٥٦", "via Roma 12",
              "Via  dei Mille, 3", "mario.rossi@gmail.com", "x@example.com", "RSSMRA85T10A944S",
              "note: RSSMRA85T10A944S ok", "Mario Rossi", "ANNA BIANCHI", "2021-07-15", "15/07/2021",
              "0532-123456", "F20.0", "Ferrara", "", " ", "n. 12", "Piazza Ariostea 1", "12/07/2021 10.32.11"]
    notes = [f"nota {i} punteggio {i % 97}" for i in range(n)]
    for i in rng.choice(n, 40, replace=False):
        notes[i] = tricky[i % len(tricky)]
    names = [f"{a} {b}{i}" for i, (a, b) in enumerate(zip(rng.choice(["Luca", "Anna"], n),
                                                          rng.choice(["Verdi", "Neri"], n)))]
    for i in rng.choice(n, 10, replace=False):
        names[i] = tricky[i % len(tricky)]
    return pd.DataFrame({"COD_PAZIENTE": codes, "Timestamp": stamps, "NOTE": notes, "ALTRO": names,
                         "MIXED": pd.Series([i if i % 3 else str(i) for i in range(n)], dtype=object)})


@pytest.mark.parametrize("seed", [3, 4, 5])
@pytest.mark.parametrize("dtype", [None, "category"])
def test_large_mixed_frames_give_the_row_by_row_findings(seed, dtype):
    df = _large_mixed_frame(seed=seed)
    if dtype:
        df = df.astype({"COD_PAZIENTE": dtype, "Timestamp": dtype, "NOTE": dtype, "ALTRO": dtype})
    # what a row-by-row scan reports on these frames
    expected = {3: {("NOTE", "phone"), ("NOTE", "email"), ("NOTE", "address"), ("ALTRO", "phone"),
                    ("ALTRO", "address")},
                4: {("NOTE", "address"), ("ALTRO", "email")},
                5: {("NOTE", "phone"), ("NOTE", "email"), ("NOTE", "address"), ("ALTRO", "address")}}[seed]
    assert {(f.column, f.kind) for f in find_identifier_columns(df, "big.csv")} == expected


def test_one_identifier_among_thousands_of_codes_is_found_at_its_row():
    codes = [f"EF{i:08d}" for i in range(5000)]
    assert find_identifier_columns(pd.DataFrame({"COD": pd.Series(codes, dtype="str")}), "x.csv") == []
    stamps = ["15/07/2021 10:32:11", "03/06/2017 03:33:33", "00/00/3939 39:39:39"]
    assert find_identifier_columns(pd.DataFrame({"NOTE": pd.Series(codes[:50] + stamps, dtype="str")}), "x") == []
    with_phone = pd.Series(codes + ["tel 333 1234567"], dtype="str")
    found = find_identifier_columns(pd.DataFrame({"NOTE": with_phone}), "x.csv")
    assert [(f.kind, f.row) for f in found] == [("phone", 5001)]
    with_cf = pd.Series(codes + ["RSSMRA80A01H501U"], dtype="str")
    found = find_identifier_columns(pd.DataFrame({"NOTE": with_cf}), "x.csv")
    assert [(f.kind, f.row) for f in found] == [("fiscal_code", 5001)]


def test_large_clean_table_has_no_finding():
    n = 5000
    df = pd.DataFrame({"COD_PAZIENTE": [f"SD{i:06d}" for i in range(n)],
                       "DATA": [f"2019-{1 + i % 12:02d}-{1 + i % 28:02d}" for i in range(n)],
                       "SESSIONI": [str(1 + i % 70) for i in range(n)]})
    assert find_identifier_columns(df, "x.csv") == []
