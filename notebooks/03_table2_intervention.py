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
# # 03 · Table 2: services, modules and sessions
#
# Table 2 of the paper ("Services where IMR was implemented, and IMR modules and sessions administered"): for each
# of the ten service units, each service type and in total, the number of patients, the share treated in group
# format, the duration of the programme in months, the number of sessions and of modules per patient (mean (SD)
# [range]) and the patients who received each module M1-M11. Also the modules ranked by how often they were
# administered, overall and by service (the Results' 70.6% for M1, 6.3% for M9 and M10, M6 at SerD...).
#
# Sessions, modules per patient and duration are compared across service types (one-way ANOVA and Kruskal-Wallis)
# and between CMHC and SerD (t-test and Mann-Whitney U); the reported test is chosen by Shapiro-Wilk and Levene's
# test at `alpha` (D'Agostino-Pearson K² instead of Shapiro-Wilk for groups over 5000; `imr_analysis.stats`).
#
# **Writes** `tables/table2.{csv,md,tex,html}` (formatted), `tables/table2_long.csv` (the numbers after disclosure
# control), `tables/table2_tests.csv`, `tables/module_frequency.{csv,md,tex,html}` (formatted) with its numbers in
# `tables/module_frequency_values.csv`, and `tables/disclosure/03_table2_intervention/disclosure_report.{csv,md}`.
#
# **Parameters**
#
# | name | default | meaning |
# |---|---|---|
# | `raw_dir` | `""` (= `data/raw`) | raw exports, read only to tell synthetic from private data |
# | `processed_dir` | `""` (= `data/processed`) | folder of `cohort.parquet` |
# | `tables_dir` | `""` (= `tables`) | where the tables are written |
# | `alpha` | `0.05` | significance level (two-tailed) of the tests and of the assumption checks |
# | `services` | `["CMHC", "SerD", "EDP"]` | service types to include |
# | `table_formats` | `["csv", "md", "tex", "html"]` | formats of the formatted tables |
# | `disclosure_profile` | `"auto"` | `auto` (by data mode), `none`, `opensafely`, `opensafely_midpoint6`, `sistan_min3` |
# | `allow_weaker_profile` | `False` | on private data, allow a profile weaker than `opensafely` (recorded in the colophon) |
#
# Relative paths are taken from the compendium's root, whatever the working directory.

# %% tags=["parameters"]
raw_dir = ""
processed_dir = ""
tables_dir = ""
alpha = 0.05
services = ["CMHC", "SerD", "EDP"]
table_formats = ["csv", "md", "tex", "html"]
disclosure_profile = "auto"
allow_weaker_profile = False

# %%
from imr_analysis import disclosure, paths
from imr_analysis.cohort import load_cohort
from imr_analysis.sources import detect_data_mode

RAW = paths.resolve(raw_dir, paths.raw_dir())
PROCESSED = paths.resolve(processed_dir, paths.processed_dir())
TABLES = paths.resolve(tables_dir, paths.tables_dir())
data_mode = detect_data_mode(RAW)
profile = disclosure.resolve_profile(disclosure_profile, data_mode, allow_weaker_profile=allow_weaker_profile)
print("cohort:", paths.display_path(PROCESSED / "cohort.parquet"))
print("data:", data_mode)
print("disclosure control:", profile.describe())

# %% [markdown]
# ## The numbers
#
# One row per unit (or service type, or total) and measure; units without patients are kept with zero counts.
# Disclosure control treats units as members of their service type and service types as members of the total.

# %%
from imr_analysis import stats, table2

cohort = load_cohort(PROCESSED, services=services)
long = table2.table2_long(cohort, services=services)
safe_long, disclosure_actions = disclosure.apply_to_long(long, profile, "table2")
print(f"{len(long)} cells; disclosure actions: {len(disclosure_actions)}")

# %% [markdown]
# ## Between-service tests

# %%
tests = table2.table2_tests(cohort, services=services, alpha=alpha)
published_tests = tests if profile.is_noop else stats.public_results(tests)
published_tests.filter(items=["variable", "comparison", "test", "p_value", "significant", "p_parametric",
                              "p_nonparametric", "reason"])

# %% [markdown]
# ## Table 2
#
# Patients n (% of all patients); group format n (% of patients with a known format); duration, sessions and
# modules per patient mean (SD) [min-max]; M1-M11 n (% of the unit's patients). The last rows give the p-values
# (KW: Kruskal-Wallis; MWU: Mann-Whitney U; ANOVA; t / Welch t).

# %%
table = table2.format_table2(disclosure.mark_redacted(safe_long), published_tests)
table

# %% [markdown]
# ## Modules ranked by frequency
#
# Computed from the same (protected) numbers: rank 1 is the module most patients received; ties share a rank.

# %%
modules = table2.module_frequency_from_long(safe_long)
modules_table = table2.format_module_frequency(modules)
modules_table

# %% [markdown]
# ## Save

# %%
from imr_analysis.export import export_table

caption = "Table 2. Services where IMR was implemented, and IMR modules and sessions administered"
written = export_table(table, TABLES, "table2", formats=table_formats, caption=caption)
written += export_table(safe_long, TABLES, "table2_long", formats=["csv"])
written += export_table(published_tests, TABLES, "table2_tests", formats=["csv"])
written += export_table(modules_table, TABLES, "module_frequency", formats=table_formats,
                        caption="IMR modules ranked by the number of patients who received them")
written += export_table(modules, TABLES, "module_frequency_values", formats=["csv"])
written += disclosure.write_disclosure_report(disclosure_actions, TABLES / "disclosure" / "03_table2_intervention",
                                             profile)
for path in written:
    print("wrote", paths.display_path(path))
