"""The committed data are what the code makes, and they reproduce the paper.

- data/raw holds exactly the generator's default exports;
- data/processed/cohort.parquet is exactly what the cleaner makes of them;
- the tables notebooks 02-05 wrote from it, read by the audit (imr_analysis.reproduce), match
  every consistent published figure.
"""

import pandas as pd
import pytest

from imr_analysis import constants as C
from imr_analysis import paths
from imr_analysis.cohort import clean_raw, load_cohort
from imr_analysis.export import _TEX_ESCAPES
from imr_analysis.reproduce import check_published, read_outputs
from imr_synth.generator import DEFAULT_SEED, write_exports


@pytest.fixture(scope="module")
def committed_cohort():
    return load_cohort()


def test_raw_exports_are_the_generators_default_output(tmp_path):
    for fresh in write_exports(tmp_path, seed=DEFAULT_SEED, n_patients=126):
        committed = (paths.raw_dir() / fresh.name).read_bytes()
        assert committed == fresh.read_bytes(), f"data/raw/{fresh.name} differs from the generator's output"


def test_committed_cohort_is_what_the_cleaner_makes(committed_cohort):
    fresh = clean_raw(paths.raw_dir()).cohort
    pd.testing.assert_frame_equal(committed_cohort, fresh)


def test_committed_cohort_meets_the_cohort_schema(committed_cohort):
    from pandera.errors import SchemaError

    from imr_analysis.sources import cohort_schema

    cohort_schema().validate(committed_cohort)
    bad = committed_cohort.copy()
    bad["sex"] = bad["sex"].cat.rename_categories({"M": "X"})
    with pytest.raises(SchemaError, match="sex"):
        cohort_schema().validate(bad)
    with pytest.raises(SchemaError, match="sex"):
        cohort_schema().validate(committed_cohort.assign(sex=committed_cohort["sex"].astype("string")))


def test_a_service_subset_keeps_only_the_categories_present():
    serd = load_cohort(services=["SerD"])
    assert len(serd) > 0 and set(serd["service_type"]) == {"SerD"}
    assert list(serd["service_type"].cat.categories) == ["SerD"]
    for col in C.COHORT_CATEGORICAL_COLUMNS:
        assert list(serd[col].cat.categories) == sorted(serd[col].dropna().unique()), col


def test_committed_tables_reproduce_every_consistent_published_figure():
    check = check_published(read_outputs())
    mismatched = check[check["status"] == "mismatch"]
    assert mismatched.empty, mismatched[["id", "published", "recomputed_printed"]].to_string()
    assert (check["status"] == "match").sum() >= 80
    # the paper's own contradictions are reported as such, not as matches
    inconsistent = set(check.loc[check["status"] == "paper-inconsistent", "id"])
    assert {"res_serd_pct", "res_m6_pct", "res_imrs_p", "methods_alpha", "methods_pearson_rank"} <= inconsistent


def test_committed_flow_accounts_for_every_raw_record():
    flow = pd.read_csv(paths.processed_dir() / "cohort_flow.csv")
    for source, fname in C.RAW_FILES.items():
        lines = (paths.raw_dir() / fname).read_text(encoding="utf-8").splitlines()
        n_records = sum(1 for line in lines[2:] if line.strip())  # marker line and header
        assert (flow["source"] == source).sum() == n_records
    assert flow.duplicated(["source", "line"]).sum() == 0
    assert (flow["status"] == "included").sum() == 2 * 126  # each patient: one form row, one EHR record


def test_every_committed_table_carries_its_footnotes():
    import json

    tables = paths.tables_dir()
    csvs = sorted(tables.glob("*.csv"))
    assert len(csvs) >= 12
    for csv in csvs:
        notes = json.loads((tables / f"{csv.name}-metadata.json").read_text(encoding="utf-8"))["dc:description"]
        assert notes and all(isinstance(n, str) and n.endswith(".") for n in notes), csv.name
        for other in (csv.with_suffix(s) for s in (".md", ".tex", ".html")):
            if other.exists():
                text = other.read_text(encoding="utf-8")
                assert (notes[-1].translate(_TEX_ESCAPES) if other.suffix == ".tex" else notes[-1]) in text, other
    table1 = pd.read_csv(tables / "table1.csv", keep_default_na=False)
    notes = json.loads((tables / "table1.csv-metadata.json").read_text(encoding="utf-8"))["dc:description"]
    shown = set(table1.filter(like="Test").to_numpy().ravel()) - {""}
    assert shown and all(f"{abbr}: " in notes[0] for abbr in shown)
    assert "10000 resampled tables, seed 0" in notes[0] and 'method "weibull"' in notes[-1]
    age = pd.read_csv(tables / "table1_long.csv").fillna({"level": ""}).query("variable == 'age_at_imr_start' and level == '' "
                                                       "and group == 'Total'").iloc[0]
    assert (age["q1"], age["q3"]) == (30.75, 50.0)  # SPSS's quartiles, as the paper's software gives them
    table3 = (tables / "table3_imrs.md").read_text(encoding="utf-8")
    assert "quadratic weights" in table3 and "Holm-adjusted over the family of the 15 items" in table3
