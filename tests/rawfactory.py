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
                  form_delimiter=",", sister_delimiter=",", efeso_delimiter=";", bom=False,
                  line_ending="\n") -> Path:
    """Write three exports; default: one CMHC and one SerD patient, both completed.

    ``encoding`` applies to all three files; ``bom`` prefixes each with a UTF-8 byte-order
    mark; ``line_ending`` "\r\n" writes Windows line ends.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    efeso = [efeso_row()] if efeso is None else efeso
    sister = [sister_row()] if sister is None else sister
    form = [form_row(), form_row(code="SD00001", unit="SerD Cento", modules="M6. Drug and Alcohol Use",
                                 timestamp="06/12/2019 10:00:00")] if form is None else form
    texts = {
        "EFESO": to_csv(efeso_header_ or efeso_header(), efeso, efeso_delimiter, marker),
        "Sister": to_csv(sister_header_ or sister_header(), sister, sister_delimiter, marker),
        "form": to_csv(form_header_ or form_header(), form, form_delimiter, marker),
    }
    return write_texts(folder, texts, encoding=encoding, bom=bom, line_ending=line_ending)


def write_texts(folder: Path, texts: dict, encoding="utf-8", bom=False, line_ending="\n") -> Path:
    """Write raw texts (keyed ``EFESO``, ``Sister``, ``form``) as the three export files."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for source, text in texts.items():
        data = text.replace("\n", line_ending).encode(encoding)
        (folder / C.RAW_FILES[source]).write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
    return folder


def read_texts(folder: Path) -> dict:
    """The three export files of ``folder`` as text (UTF-8), keyed by source."""
    return {source: (Path(folder) / name).read_text(encoding="utf-8") for source, name in C.RAW_FILES.items()}


def italian_timestamp(cell: str) -> str:
    """A Google Forms timestamp as the Italian-locale sheet writes it: ``15/07/2021 10.32.11``."""
    import re
    from datetime import datetime

    text = re.sub(r"\s*(GMT|UTC)[+-]?\d*(:?\d{2})?$", "", cell.strip())
    for fmt in ("%d/%m/%Y %H:%M:%S", "%Y/%m/%d %I:%M:%S %p", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S",
                "%d/%m/%Y %H.%M.%S"):
        try:
            return datetime.strptime(text, fmt).strftime("%d/%m/%Y %H.%M.%S")
        except ValueError:
            continue
    return cell


def rewrite_italian_excel(src: Path, dst: Path) -> Path:
    """Rewrite the exports in ``src`` as Italian Excel would save them into ``dst``.

    Every file: ``;`` delimiter (quoting only where needed), cp1252, CRLF line ends,
    dates ``dd/mm/yyyy`` (the Sister extract's ISO dates converted), whole numbers with a
    decimal comma (``20`` -> ``20,0``; birth years left alone), Google Forms timestamps in
    Italian locale (``10.32.11``). The marker line is kept, so that file lines (and the
    cohort flow) are the same.
    """
    import re

    src, dst = Path(src), Path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    iso = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
    for source, name in C.RAW_FILES.items():
        raw = (src / name).read_bytes().decode("utf-8-sig")
        lines = raw.split("\n")
        marker = [x for x in lines[:1] if x.startswith("#")]
        body = "\n".join(lines[len(marker):])
        delimiter = ";" if body.split("\n", 1)[0].count(";") > body.split("\n", 1)[0].count(",") else ","
        rows = list(csv.reader(io.StringIO(body), delimiter=delimiter))
        header, records = rows[0], [r for r in rows[1:] if r]
        numeric = {j for j, h in enumerate(header)
                   if h in {"ANNI_SCOLARITA", "scolarita_anni", "Number of sessions"} or "IMRS [" in h}
        stamp = header.index(C.FORM_COLUMNS["timestamp"]) if source == "form" else None
        out = []
        for rec in records:
            new = []
            for j, cell in enumerate(rec):
                m = iso.match(cell)
                if m:
                    cell = f"{m.group(3)}/{m.group(2)}/{m.group(1)}"
                elif j in numeric and re.fullmatch(r"\d+", cell):
                    cell = cell + ",0"
                elif j == stamp:
                    cell = italian_timestamp(cell)
                new.append(cell)
            out.append(new)
        buf = io.StringIO()
        buf.write("".join(x + "\n" for x in marker))
        w = csv.writer(buf, delimiter=";", lineterminator="\n")
        w.writerow(header)
        w.writerows(out)
        (dst / name).write_bytes(buf.getvalue().replace("\n", "\r\n").encode("cp1252"))
    return dst
