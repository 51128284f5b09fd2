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
# # 05 · IMRS agreement between users and providers
#
# The paper (Outcome Details) reports the post-intervention IMR Scale (IMRS) item means 3.7 (0.5) / 3.6 (0.6) and totals
# 55.1 (7.47) / 54.18 (8.45) for users / providers, and "r = 0.96, n = 15, p = 0.001". That r correlates the 15 **user
# item means** with the 15 **provider item means**: an *item-profile* (ecological) correlation with n = 15 items. It is
# reproduced here and labelled as such. Whether providers agree with *their own* patients is a different question,
# answered at the patient level: ICC(A,1) and ICC(C,1), Lin's concordance correlation coefficient, Bland-Altman bias and
# limits of agreement, paired tests, item-level quadratic-weighted kappa, and the same by service type (with small-n
# caveats: the EDP has very few patients).
#
# **Results on the shipped data are not findings.** The data shipped with the compendium are synthetic: on them,
# ICC(A,1) = 0.58, limits of agreement of -13 to +15 points, 94% of differences inside them and every other number
# below are properties of the generator that made the data, not facts about patients or providers. What the notebook
# shows is how each question is answered; on the department's data the same cells give its answers.
#
# **Writes** `tables/table3_imrs.{csv,md,tex,html}` (Table 3), `tables/table3_imrs_long.csv` (Table 3's numbers,
# one row per item and measure, numeric columns), `tables/imrs_agreement.{csv,md,tex,html}` (every result in one
# tidy table; in the CSV a redacted value is an empty cell flagged in `redacted`), `figures/figure2_bland_altman.{png,pdf,svg}`, and the disclosure-control report
# `tables/disclosure/05_imrs_agreement/disclosure_report.{csv,md}`. Every table carries its footnotes (the CSVs in
# `<name>.csv-metadata.json`): what each p is and whether it is Holm-adjusted, the kappa weights, the CI level.
#
# **Parameters**
#
# | name | default | meaning |
# |---|---|---|
# | `raw_dir` | `""` (= `data/raw`) | raw exports, only read to tell synthetic from private data |
# | `processed_dir` | `""` (= `data/processed`) | folder with `cohort.parquet` |
# | `tables_dir`, `figures_dir` | `""` (= `tables`, `figures`) | output folders |
# | `alpha` | `0.05` | 1 - confidence level of every interval |
# | `max_missing` | `0` | IMRS items that may be missing per version (0: complete scales only; k > 0: prorated total) |
# | `services` | `["CMHC", "SerD", "EDP"]` | service types to include; one left without patients by the other filters is dropped, with a note |
# | `service_units` | `[]` (= all) | service units, e.g. `["CMHC Ferrara", "SerD Ferrara"]` (the ten of `constants.SERVICE_UNITS`) |
# | `diagnosis_groups` | `[]` (= all) | diagnosis groups: `schizophrenia_spectrum`, `bipolar`, `depressive`, `substance_use`, `eating`, `other` |
# | `imr_start_from`, `imr_start_to` | `""` (= open) | IMR start period, `yyyy-mm-dd`, both days included |
# | `sex` | `[]` (= both) | `M`, `F` |
# | `imr_formats` | `[]` (= both) | `group`, `individual` |
# | `table_formats`, `figure_formats`, `dpi` | all formats, 300 | output formats |
# | `disclosure_profile` | `"auto"` | disclosure control (`auto`: none on synthetic data, opensafely on private data) |
# | `allow_weaker_profile` | `False` | allow a profile weaker than the default on private data (recorded) |
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
figures_dir = ""
alpha = 0.05
max_missing = 0
services = ["CMHC", "SerD", "EDP"]
service_units = []
diagnosis_groups = []
imr_start_from = ""
imr_start_to = ""
sex = []
imr_formats = []
table_formats = ["csv", "md", "tex", "html"]
figure_formats = ["png", "pdf", "svg"]
dpi = 300
disclosure_profile = "auto"
allow_weaker_profile = False

# %%
from imr_analysis import agreement, bland_altman, publish
from imr_analysis.figio import preview
from imr_workflow.display import display_table

run = publish.setup("05_imrs_agreement", raw_dir=raw_dir, processed_dir=processed_dir,
                    tables_dir=tables_dir, figures_dir=figures_dir, disclosure_profile=disclosure_profile,
                    allow_weaker_profile=allow_weaker_profile)
sel = run.select(services=services, service_units=service_units, diagnosis_groups=diagnosis_groups,
                 imr_start_from=imr_start_from, imr_start_to=imr_start_to, sex=sex, imr_formats=imr_formats)
cohort = sel.cohort

# %% [markdown]
# ## Table 3: IMRS at post-intervention, users and providers
#
# Per item (complete user-provider pairs of that item): mean (SD) of each version, mean paired difference
# (user - provider), Wilcoxon signed-rank test with Holm adjustment across the 15 items, and quadratic-weighted Cohen's
# kappa with its asymptotic CI. The last two rows are the patient scores: item mean (1-5) and total (15-75); their
# tests rank the exact differences, so the item mean (total / 15) gives the total's W and p.
#
# **Sensitivity, shown.** Beside each primary choice, the alternative: Wilcoxon with zero differences dropped (primary)
# and Pratt's handling (zeros ranked, then dropped); kappa quadratic-weighted (primary), linear-weighted and
# unweighted. The last column names the choices that change a row's conclusion at alpha: significance of the
# unadjusted or Holm-adjusted Wilcoxon p, or of the test of kappa = 0 (its p-values are in `table3_imrs_long`).

# %%
t3 = agreement.table3(cohort, max_missing=max_missing, alpha=alpha)
t3_safe = run.protect(t3, "table3_imrs", kind="statistics")
t3_notes = agreement.table3_notes(alpha, max_missing)
caption = sel.caption("Table 3. IMR Scale (IMRS) at post-intervention: users and providers")
table3 = run.publish(agreement.format_table3(t3_safe, alpha=alpha), "table3_imrs", formats=table_formats,
                     caption=caption, kind="protected", notes=t3_notes)
run.publish(agreement.table3_long(t3), "table3_imrs_long", kind="statistics", notes=t3_notes)
display_table(table3, caption, t3_notes)

# %% [markdown]
# ## The paper's analysis: the item-profile correlation
#
# Each IMRS item is one point (its mean user rating, its mean provider rating): n = 15 items. Two intervals answer two
# questions. The Fisher-z CI treats the 15 items as a sample of items; they are the whole scale, rated on the same
# patients. The patient bootstrap (seeded) resamples the patients and recomputes both raters' item means: how much r
# would move with another sample of patients. Resampling adds noise to the item means, so this interval leans low.

# %%
profile_r = agreement.item_profile_correlation(cohort, alpha=alpha)
print(agreement.describe_item_profile(profile_r))
display_table(profile_r[["measure", "estimate", "ci_low", "ci_high", "n", "p"]])

# %% [markdown]
# ## Patient-level agreement (IMRS total, 15-75)
#
# Does a provider's rating agree with their own patient's? Pearson/Spearman measure association only; ICC(A,1) and
# Lin's CCC penalise systematic differences as well; Bland-Altman gives the bias and the range within which 95% of
# user - provider differences fall (limits of agreement, exact CIs of Carkeet 2015), the share of differences observed
# inside those limits, and proportional bias: the OLS slope of the difference on the mean (does the bias change along
# the scale?).

# %%
patient = agreement.patient_level_agreement(cohort, on="total", max_missing=max_missing, alpha=alpha)
shown = run.show(patient, "imrs_patient_level", counts=agreement.COUNT_MEASURES)
display_table(shown[["measure", "estimate", "ci_low", "ci_high", "n", "p", "note"]])

# %% [markdown]
# ## Internal consistency

# %%
consistency = agreement.internal_consistency(cohort, alpha=alpha)
display_table(run.show(consistency, "imrs_internal_consistency"))

# %% [markdown]
# ## By service type
#
# The same patient-level measures within each service. The `caveat` column flags small groups (n < 30, n < 10):
# their intervals are wide and the asymptotic ones approximate; measures that need at least 3 patients are left empty
# with the reason in `note`.

# %%
by_service = agreement.agreement_by_service(cohort, on="total", max_missing=max_missing, alpha=alpha,
                                            services=sel.services)
shown = run.show(by_service, "imrs_by_service", counts=agreement.COUNT_MEASURES)
for service, caveat in shown.groupby("service_type", sort=False)["caveat"].first().items():
    print(f"{service}: {caveat or 'no small-sample caveat'}")
display_table(shown[["service_type", "measure", "estimate", "ci_low", "ci_high", "n", "p"]])

# %% [markdown]
# ## Figure 2: Bland-Altman plot of the IMRS total
#
# Patients sharing the same (mean, difference) are one point whose area shows how many they are; the dotted line is
# the OLS regression of the difference on the mean (proportional bias), and the legend below gives its equation and p
# and the share of differences inside the limits. Under a disclosure profile that forbids microdata, no individual
# point is drawn.

# %%
ba = agreement.bland_altman_data(cohort, on="total", max_missing=max_missing, alpha=alpha)
figure2 = bland_altman.plot_bland_altman(ba, show_points=run.policy["bland_altman_show_points"],
                                         show_n=run.profile.rounding_method is None)
run.save_figure(figure2, "figure2_bland_altman", formats=figure_formats, dpi=dpi)
if run.policy["note"]:
    print(run.policy["note"])

# %%
preview(figure2, dpi=100)

# %% [markdown]
# ## Everything in one table

# %%
summary = agreement.agreement_summary(cohort, max_missing=max_missing, alpha=alpha, services=sel.services)
shown = run.publish(summary, "imrs_agreement", formats=table_formats, kind="statistics",
                    caption=sel.caption("Agreement between user- and provider-rated IMRS"),
                    counts=agreement.COUNT_MEASURES, notes=agreement.agreement_notes(alpha))
display_table(shown.groupby("section", sort=False).size().rename("rows").to_frame())

# %% [markdown]
# ## Disclosure-control report
#
# What disclosure control did to the published tables (cells and actions, never values); the tables shown
# above but not written pass the same profile and stay out of the report.

# %%
display_table(run.write_disclosure_report())
