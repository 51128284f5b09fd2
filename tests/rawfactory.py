"""Hand-made raw exports for tests, written in the raw-data contract's format.

Independent of the synthetic generator on purpose: the cleaner is tested against the
contract, not against the generator's output.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from imr_analysis import constants as C

MARKER = "# SYNTHETIC DATA - test fixture; not real patients"


def efeso_row(code="EF00001", birth_year="1980", sex="M", municipality="Ferrara",
              first_access="15/03/2010", diagnosis="F20.0", meds="N05AH03, N06AB06",
              programme_start="01/01/2018", education="13", marital="Celibe/Nubile",
              living="Con famiglia di origine", employment="Disoccupato/a"):
    return [code, birth_year, sex, municipality, first_access, diagnosis, meds, programme_start,
            education, marital, living, employment]


def sister_row(code="SD00001", birth_year="1990", sex="1", municipality="Cento",
               first_access="2015-06-01", diagnosis="F112", meds="N07BC02|N05BA12",
               programme_start="2018-02-01", education="8", marital="1",
               living="FAMIGLIA DI ORIGINE", employment="OCCUPATO"):
    return [code, birth_year, sex, municipality, first_access, diagnosis, meds, programme_start,
            education, marital, living, employment]


def form_row(code="EF00001", unit="CMHC Ferrara", start="01/03/2019", stop="01/12/2019",
             fmt="Group", sessions="20", modules="M1. Recovery Strategies;M3. The Stress-Vulnerability Model",
             user=None, provider=None, timestamp="05/12/2019 10:00:00", manual=C.MANUAL_VERSIONS[0]):
    user = user if user is not None else ["4"] * 15
    provider = provider if provider is not None else ["3"] * 15
    return [timestamp, code, unit, start, stop, fmt, manual, sessions, modules] + list(user) + list(provider)


def efeso_header():
    return list(C.EHR_COLUMNS["EFESO"].values())


def sister_header():
    return list(C.EHR_COLUMNS["Sister"].values())


def form_header():
    return ([C.FORM_COLUMNS[k] for k in ("timestamp", "patient_code", "service_unit", "start_date", "stop_date",
                                         "format", "manual_version", "n_sessions", "modules")]
            + [C.FORM_IMRS_USER[k] for k in C.IMRS_ITEMS] + [C.FORM_IMRS_PROVIDER[k] for k in C.IMRS_ITEMS])


def to_csv(header, rows, delimiter=",", marker=MARKER) -> str:
    buf = io.StringIO()
    if marker:
        buf.write(marker + "\n")
    w = csv.writer(buf, delimiter=delimiter, lineterminator="\n")
    if header is not None:
        w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def write_exports(folder: Path, efeso=None, sister=None, form=None, marker=MARKER,
                  efeso_header_=None, sister_header_=None, form_header_=None, encoding="utf-8",
                  form_delimiter=",", sister_delimiter=",") -> Path:
    """Write three exports; default: one CMHC and one SerD patient, both completed."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    efeso = [efeso_row()] if efeso is None else efeso
    sister = [sister_row()] if sister is None else sister
    form = [form_row(), form_row(code="SD00001", unit="SerD Cento", modules="M6. Drug and Alcohol Use",
                                 timestamp="06/12/2019 10:00:00")] if form is None else form
    (folder / C.RAW_FILES["EFESO"]).write_bytes(
        to_csv(efeso_header_ or efeso_header(), efeso, ";", marker).encode(encoding))
    (folder / C.RAW_FILES["Sister"]).write_bytes(
        to_csv(sister_header_ or sister_header(), sister, sister_delimiter, marker).encode(encoding))
    (folder / C.RAW_FILES["form"]).write_bytes(
        to_csv(form_header_ or form_header(), form, form_delimiter, marker).encode(encoding))
    return folder
