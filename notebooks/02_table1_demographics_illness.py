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
# # 02 · Table 1: demographic and clinical characteristics
#
# Table 1 of the paper ("Demographic and clinical characteristics of the IMR participants") by service type
# (CMHC, SerD, EDP) and in total: sex, age at IMR start, age at first mental health treatment, residence
# (health district), years of education, marital status, living condition, employment, diagnosis group, duration
# of illness and psychotropic medication classes.
#
# Services are compared with the tests the paper names, chosen explicitly (`imr_analysis.stats`): Pearson
# chi-square for categorical variables, switching to Fisher's exact test (2 x 2) or a seeded Monte-Carlo
# chi-square when an expected count is below 5 (the EDP has 5 patients); one-way ANOVA or Kruskal-Wallis across
# services and t-test or Mann-Whitney U for CMHC vs SerD, the parametric test being reported only when
# Shapiro-Wilk (D'Agostino-Pearson K² for groups over 5000) and Levene's test allow it. All tests are two-tailed at `alpha` (the paper's "0.5" is a typo for 0.05).
#
# Every published number passes through the disclosure profile first (`none` on synthetic data, `opensafely`
# on private data; see DISCLOSURE.md): `run.publish` protects a table, writes it and returns it for display.
#
# **Writes** `tables/table1.{csv,md,tex,html}` (the formatted table), `tables/table1_long.csv` (the numbers,
# one row per variable x level x group, after disclosure control), `tables/table1_tests.csv` (one row per
# variable and comparison), each CSV's footnotes in `<name>.csv-metadata.json` (the other formats carry them under
# the table), and `tables/disclosure/02_table1_demographics_illness/disclosure_report.{csv,md}` (what disclosure
# control did, never a value).
#
# **Parameters**
#
# | name | default | meaning |
# |---|---|---|
# | `raw_dir` | `""` (= `data/raw`) | raw exports, read only to tell synthetic from private data |
# | `processed_dir` | `""` (= `data/processed`) | folder of `cohort.parquet` |
# | `tables_dir` | `""` (= `tables`) | where the tables are written |
# | `alpha` | `0.05` | significance level (two-tailed) of the tests and of the assumption checks |
# | `services` | `["CMHC", "SerD", "EDP"]` | service types to include; one left without patients by the other filters is dropped, with a note |
# | `service_units` | `[]` (= all) | service units, e.g. `["CMHC Ferrara", "SerD Ferrara"]` (the ten of `constants.SERVICE_UNITS`) |
# | `diagnosis_groups` | `[]` (= all) | diagnosis groups: `schizophrenia_spectrum`, `bipolar`, `depressive`, `substance_use`, `eating`, `other` |
# | `imr_start_from`, `imr_start_to` | `""` (= open) | IMR start period, `yyyy-mm-dd`, both days included |
# | `sex` | `[]` (= both) | `M`, `F` |
# | `imr_formats` | `[]` (= both) | `group`, `individual` |
# | `table_formats` | `["csv", "md", "tex", "html"]` | formats of the formatted table |
# | `disclosure_profile` | `"auto"` | `auto` (by data mode), `none`, `opensafely`, `opensafely_midpoint6`, `sistan_min3` |
# | `allow_weaker_profile` | `False` | on private data, allow a profile weaker than `opensafely` (recorded in the colophon) |
# | `seed`, `n_resamples` | `0`, `10000` | Monte-Carlo chi-square and bootstrap CIs of the rank-based effect sizes: seed and number of resamples |
# | `quantile_method` | `"weibull"` | definition of the quartiles, a `numpy.quantile` method: `weibull` is SPSS's default (the paper's software), `linear` pandas' and R's |
#
# The filters (`services` to `imr_formats`) keep the patients who pass every one (`imr_analysis.selection.select`);
# an unknown value or a malformed date stops the run naming the parameter and the choices, and so does a selection
# left without patients.
#
# Relative paths are taken from the compendium's root, whatever the working directory.
#
# **Where it writes.** Run by `make reproduce` or `make notebooks`, the notebook writes the committed outputs; run any
# other way (JupyterLab, nbclient, a copy), it writes them under `scratch/` (git-ignored) and reads there what such a
# run wrote, else the committed outputs. Its first output line says which; folders given as parameters are used as
# given.

# %% tags=["parameters"]
raw_dir = ""
processed_dir = ""
tables_dir = ""
alpha = 0.05
services = ["CMHC", "SerD", "EDP"]
service_units = []
diagnosis_groups = []
imr_start_from = ""
imr_start_to = ""
sex = []
imr_formats = []
table_formats = ["csv", "md", "tex", "html"]
disclosure_profile = "auto"
allow_weaker_profile = False
seed = 0
n_resamples = 10000
quantile_method = "weibull"

# %%
from imr_analysis import publish, table1
from imr_workflow.display import display_table

run = publish.setup("02_table1_demographics_illness", raw_dir=raw_dir, processed_dir=processed_dir,
                    tables_dir=tables_dir, disclosure_profile=disclosure_profile,
                    allow_weaker_profile=allow_weaker_profile)
sel = run.select(services=services, service_units=service_units, diagnosis_groups=diagnosis_groups,
                 imr_start_from=imr_start_from, imr_start_to=imr_start_to, sex=sex, imr_formats=imr_formats)
cohort = sel.cohort

# %% [markdown]
# ## The numbers
#
# `table1_long` holds every count, percentage and summary statistic (SD with ddof 1, quartiles by
# `quantile_method`, SPSS's definition by default); percentages of categorical variables use the patients with a known value as denominator, and
# missing values are counted on their own. Disclosure control then redacts, rounds and recomputes as the profile says; the protected numbers are
# written to `tables/table1_long.csv` and shown with `[REDACTED]` in the redacted cells.

# %%
long = table1.table1_long(cohort, services=sel.services, quantile_method=quantile_method)
shown_long = run.publish(long, "table1", stem="table1_long", notes=table1.table1_notes(None, quantile_method))
print(f"{len(long)} cells")

# %% [markdown]
# ## Between-service tests
#
# One row per variable and comparison: `all services` (the service types in the selection) and `CMHC vs SerD`; with
# two service types the one comparison between them, with one no test (the line printed first says which).
# `test` is the reported test, `reason` why it was chosen; both the parametric and the rank-based p-values
# are kept in `tables/table1_tests.csv`. Under a disclosure profile only columns that reveal no patient count
# are published (no group sizes, degrees of freedom or free-text notes).
#
# Each comparison also has an effect size with its 95% CI (`effect_size`, `effect`, `effect_ci_low`,
# `effect_ci_high`, of the reported test; both the parametric and the rank-based one are kept): Cramér's V,
# bias-corrected, for categorical variables (CI from the noncentral chi-square); eta-squared (ANOVA; CI from the
# noncentral F) and epsilon-squared (Kruskal-Wallis); Hedges' g (analytic CI) and the rank-biserial r (Mann-Whitney)
# for CMHC vs SerD. The CIs of epsilon-squared and r are percentile bootstraps, patients resampled within each
# service (`n_resamples`, `seed`). Sensitivity: every continuous comparison also has the equal-variance test
# (`p_equal_var`: ANOVA or Student's t), Welch's (`p_welch`: Welch's ANOVA or t-test) and the rank test
# (`p_nonparametric`); `conclusion_depends_on_test` is true where they disagree at `alpha`.

# %%
print(table1.describe_comparisons(sel.services))
tests = table1.table1_tests(cohort, services=sel.services, alpha=alpha, seed=seed, n_resamples=n_resamples)
published_tests = run.publish(tests, "table1_tests", kind="tests",
                              notes=table1.p_value_notes(tests, alpha, n_resamples, seed))
display_table(published_tests.filter(items=["variable", "comparison", "test", "p_value", "effect_size", "effect", "effect_ci_low",
                              "effect_ci_high", "p_equal_var", "p_welch", "p_nonparametric",
                              "conclusion_depends_on_test", "reason", "note"]))

# %% [markdown]
# ## Table 1
#
# Cells are n (%) for categorical variables; continuous variables show mean (SD) and median [IQR]; range.
# `p` and `Test` compare all services, the columns marked `(CMHC vs SerD)` CMHC with SerD (with two service types, the
# columns marked `(A vs B)` compare them; with one there is none); `Effect (95% CI)` gives the effect size of
# each test. † marks a p whose conclusion at `alpha` changes with the test (ANOVA, Welch's ANOVA, Kruskal-Wallis; t,
# Welch t, Mann-Whitney U). The footnotes (`table1.table1_notes`), written under the table in every format, name each
# test and effect size, the Monte-Carlo and bootstrap settings, the denominators and the quartile definition, and say
# that these p-values are unadjusted and exploratory.

# %%
caption = sel.caption("Table 1. Demographic and clinical characteristics of the IMR participants")
notes = table1.table1_notes(published_tests, quantile_method, n_resamples, seed, alpha)
table = run.publish(table1.format_table1(shown_long, published_tests), "table1", formats=table_formats,
                    caption=caption, kind="protected", notes=notes)
display_table(table, caption, notes)

# %% [markdown]
# ## Disclosure report
#
# What disclosure control did to the published numbers (cells and actions, never values).

# %%
display_table(run.write_disclosure_report())
