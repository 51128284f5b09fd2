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
# `tables/module_frequency_values.csv` (each CSV's footnotes in `<name>.csv-metadata.json`, the other formats carry
# them under the table), and `tables/disclosure/03_table2_intervention/disclosure_report.{csv,md}`.
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
# | `table_formats` | `["csv", "md", "tex", "html"]` | formats of the formatted tables |
# | `disclosure_profile` | `"auto"` | `auto` (by data mode), `none`, `opensafely`, `opensafely_midpoint6`, `sistan_min3` |
# | `allow_weaker_profile` | `False` | on private data, allow a profile weaker than `opensafely` (recorded in the colophon) |
# | `seed`, `n_resamples` | `0`, `10000` | bootstrap CIs of the rank-based effect sizes: seed and number of resamples |
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

# %%
from imr_analysis import publish, table1, table2
from imr_workflow.display import display_table

run = publish.setup("03_table2_intervention", raw_dir=raw_dir, processed_dir=processed_dir,
                    tables_dir=tables_dir, disclosure_profile=disclosure_profile,
                    allow_weaker_profile=allow_weaker_profile)
sel = run.select(services=services, service_units=service_units, diagnosis_groups=diagnosis_groups,
                 imr_start_from=imr_start_from, imr_start_to=imr_start_to, sex=sex, imr_formats=imr_formats)
cohort = sel.cohort

# %% [markdown]
# ## The numbers
#
# One row per unit (or service type, or total) and measure; units without patients in the selection are left out.
# Disclosure control treats units as members of their service type and service types as members of the total.

# %%
long = table2.table2_long(cohort, services=sel.services, all_units=False)
shown_long = run.publish(long, "table2", stem="table2_long", notes=table2.table2_notes(None))
print(f"{len(long)} cells")

# %% [markdown]
# ## Between-service tests
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
tests = table2.table2_tests(cohort, services=sel.services, alpha=alpha, seed=seed, n_resamples=n_resamples)
published_tests = run.publish(tests, "table2_tests", kind="tests",
                              notes=table2.table2_notes(tests, alpha, n_resamples, seed))
display_table(published_tests.filter(items=["variable", "comparison", "test", "p_value", "effect_size", "effect", "effect_ci_low",
                              "effect_ci_high", "p_equal_var", "p_welch", "p_nonparametric",
                              "conclusion_depends_on_test", "reason"]))

# %% [markdown]
# ## Table 2
#
# Patients n (% of all patients); group format n (% of patients with a known format); duration, sessions and
# modules per patient mean (SD) [min-max]; M1-M11 n (% of the unit's patients). The last rows give the p-values,
# unadjusted and exploratory, each followed by a row of effect sizes with 95% CIs; † marks a p whose conclusion at
# `alpha` changes with the test. The footnotes (`table2.table2_notes`) name each test and effect size.

# %%
caption = sel.caption("Table 2. Services where IMR was implemented, and IMR modules and sessions administered")
notes = table2.table2_notes(published_tests, alpha, n_resamples, seed)
table = run.publish(table2.format_table2(shown_long, published_tests), "table2", formats=table_formats,
                    caption=caption, kind="protected", notes=notes)
display_table(table, caption, notes)

# %% [markdown]
# ## Modules ranked by frequency
#
# Computed from the same (protected) numbers: rank 1 is the module most patients received; ties share a rank.

# %%
modules = run.publish(table2.module_frequency_from_long(shown_long), "module_frequency_values", kind="protected",
                      notes=table2.MODULE_FREQUENCY_NOTES)
caption = sel.caption("IMR modules ranked by the number of patients who received them")
modules_table = run.publish(table2.format_module_frequency(modules), "module_frequency", formats=table_formats,
                            caption=caption, kind="protected", notes=table2.MODULE_FREQUENCY_NOTES)
display_table(modules_table, caption, table2.MODULE_FREQUENCY_NOTES)

# %% [markdown]
# ## Disclosure report
#
# What disclosure control did to the published numbers (cells and actions, never values).

# %%
display_table(run.write_disclosure_report())
