# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3 (IMR compendium)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 · Clean the cohort
#
# Reads the three raw exports (EFESO and Sister EHR extracts, IMR summary form), validates them
# against the raw-data contract (`data/raw/README.md`), harmonises the two EHRs, links each completed
# programme to its patient's EHR record by pseudonymous code, derives the analysis variables and
# accounts for every input record.
#
# **Writes** `data/processed/cohort.parquet` (one row per patient, the canonical columns; its text
# columns are categorical, except the patient code) and
# `data/processed/cohort_flow.csv` (every record of every raw file once, included or excluded with the reason).
#
# **Parameters**
#
# | name | default | meaning |
# |---|---|---|
# | `raw_dir` | `""` (= `data/raw`) | folder with the three exports |
# | `processed_dir` | `""` (= `data/processed`) | where the cohort and its flow are written |
# | `study_start`, `study_end` | `"2017-04-01"`, `"2021-07-31"` | observation period: programmes that started and stopped within it |
# | `disclosure_profile` | `"auto"` | disclosure control of the counts this notebook prints (`none` on synthetic data, `opensafely` on private data; see `DISCLOSURE.md`) |
# | `allow_weaker_profile` | `False` | permit a profile weaker than the default on private data |
#
# Relative paths are taken from the compendium's root, whatever the working directory. On private data
# every count printed here passes the disclosure profile (the written cohort and flow are patient-level
# and stay with the data).
#
# **Where it writes.** Run by `make reproduce` or `make notebooks`, the notebook writes the committed outputs; run any
# other way (JupyterLab, nbclient, a copy), it writes them under `scratch/` (git-ignored) and reads there what such a
# run wrote, else the committed outputs. Its first output line says which; folders given as parameters are used as
# given.

# %% tags=["parameters"]
raw_dir = ""
processed_dir = ""
study_start = "2017-04-01"
study_end = "2021-07-31"
disclosure_profile = "auto"
allow_weaker_profile = False

# %%
from imr_analysis import paths, publish, sources
from imr_analysis.cohort import (check_flow, cohort_flow, cohort_overview, derive, flow_summary, harmonise, link,
                                 linkage_warnings, write_outputs)
from imr_workflow.display import display_table

run = publish.setup("01_clean_cohort", raw_dir=raw_dir, processed_dir=processed_dir,
                    disclosure_profile=disclosure_profile, allow_weaker_profile=allow_weaker_profile,
                    writes_cohort=True)
RAW, PROCESSED, profile = run.raw, run.processed, run.profile

# %% [markdown]
# ## Read and validate the exports
#
# Each export is read as the raw-data contract describes it (encoding, delimiter, header names, the line of
# every record). Unusable values stop the run with one message listing every problem (file, line, column,
# value); warnings are collected in `log`.

# %%
log = sources.ProblemLog()
tables = sources.read_exports(RAW, log)
display_table(publish.protect_counts(sources.summary(tables), profile, counts=["records"]))

# %% [markdown]
# ## Harmonise the two EHRs
#
# EFESO and Sister write dates, ICD-10 and ATC codes and the social variables each in their own way; both become
# the same typed records, and the form's answers are typed too. A patient code held twice in the EHRs, and an IMR
# start before the first access of the linked EHR record, are errors.

# %%
form, ehr = harmonise(tables, log)
print(publish.cohort_size_line(len(form), profile, "form rows (completed programmes)"))
print(publish.cohort_size_line(len(ehr), profile, "EHR records (EFESO and Sister)"))

# %% [markdown]
# ## Link the form to the EHR records within the study period
#
# Records that are valid but outside the study are excluded, each with the first reason that applies: outside the
# observation period, no EHR record, a further programme of a patient already included.

# %%
form, ehr = link(form, ehr, study_start=study_start, study_end=study_end)
linkage_warnings(form, ehr, tables["form"], log)
print(publish.cohort_size_line(int((form["reason"] == "included").sum()), profile, "programmes analysed"))
for line in publish.warnings_for_display([str(w) for w in log.warnings], profile, PROCESSED):
    print(line)

# %% [markdown]
# ## Derive the analysis variables
#
# One row per patient: the included programme joined to its EHR record, with ages, durations, district, diagnosis
# group, medication classes, number of modules and the IMRS totals and item means. An aggregate overview of the
# canonical columns (no individual record is displayed).

# %%
cohort = derive(form, ehr)
print(publish.cohort_size_line(len(cohort), profile))
display_table(publish.protect_counts(cohort_overview(cohort), profile, counts=["non_missing", "missing"], withhold=["distinct"]))

# %%
patients = cohort.groupby("service_type", observed=True).size().rename("patients").reset_index()
display_table(publish.protect_counts(patients, profile, counts=["patients"]))

# %% [markdown]
# ## Cohort flow
#
# Every record of every raw file appears once. The totals per file equal the number of records in
# the file (the cleaner checks it).

# %%
flow = cohort_flow(form, ehr)
check_flow(flow, tables, cohort)
display_table(publish.protect_counts(flow_summary(flow), profile, counts=["records"]))

# %%
by_status = flow.groupby(["source", "status"]).size().unstack(fill_value=0).reset_index()
display_table(publish.protect_counts(by_status, profile, counts=["excluded", "included"]))

# %% [markdown]
# ## Save

# %%
for path in write_outputs(cohort, flow, PROCESSED):
    print("wrote", paths.display_path(path))
