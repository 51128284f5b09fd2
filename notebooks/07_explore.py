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
# # 07 · Explore the cohort
#
# Slice the cohort by service type, service unit, diagnosis group, IMR start period, sex and IMR format with the
# controls below, and Table 1, Table 2, Figure 1 and the agreement between user- and provider-rated IMRS totals
# follow each change. They are computed by the calls notebooks 02-05 make (`imr_workflow.explore`), on the selected
# patients only: groups left without patients are dropped, with a note; a selection without patients says so
# instead of showing a table.
#
# To keep a redraw near a second, the Monte-Carlo chi-square and the bootstrap CIs use `n_resamples` resamples
# (1000; notebooks 02-03 use 10000), so a p or a CI can differ slightly from theirs; the agreement tab shows the
# main patient-level measures of notebook 05 (ICC(A,1), Lin's CCC, Bland-Altman bias and limits of agreement, the
# paired t-test and the Wilcoxon signed-rank test of the totals).
#
# Everything shown passes the disclosure profile (`none` on the synthetic data, `opensafely` on private data): the
# tables through `run.show`, Figure 1 by the figure policy (its aggregate form when microdata are not allowed, or
# above 5000 patients), the size of the selection rounded or redacted as the profile says. Slicing makes small
# cells likelier, so on private data expect `[REDACTED]`.
#
# **Writes nothing** to `data/`, `tables/` or `figures/`. The button *Save this selection* writes the current
# selection's tables (CSV, Markdown, HTML, with their footnotes), Figure 1 (PNG, SVG) and a colophon naming the
# selection (`colophon.json`, `README.md`) to `scratch/explore/<selection>/`, which git ignores.
#
# The controls need a running kernel: open the notebook in JupyterLab (`make lab`, or on Binder: see the README) and
# run all cells. Without one (on GitHub, in the HTML report), the last cell shows the selection the explorer starts
# from.
#
# **Parameters**
#
# | name | default | meaning |
# |---|---|---|
# | `raw_dir` | `""` (= `data/raw`) | raw exports, read only to tell synthetic from private data |
# | `processed_dir` | `""` (= `data/processed`) | folder of `cohort.parquet` |
# | `services` | `["CMHC", "SerD", "EDP"]` | service types ticked at start |
# | `service_units`, `diagnosis_groups`, `sex`, `imr_formats` | `[]` (= all) | values ticked at start |
# | `imr_start_from`, `imr_start_to` | `""` (= the whole period) | IMR start period at start, `yyyy-mm-dd` |
# | `alpha` | `0.05` | significance level of the tests, 1 - confidence level of the intervals |
# | `max_missing` | `0` | IMRS items that may be missing per version (0: complete scales only) |
# | `seed`, `n_resamples` | `0`, `1000` | Monte-Carlo chi-square and bootstrap CIs: seed and number of resamples |
# | `disclosure_profile` | `"auto"` | `auto` (by data mode), `none`, `opensafely`, `opensafely_midpoint6`, `sistan_min3` |
# | `allow_weaker_profile` | `False` | on private data, allow a profile weaker than `opensafely` |
#
# Relative paths are taken from the compendium's root, whatever the working directory.

# %% tags=["parameters"]
raw_dir = ""
processed_dir = ""
services = ["CMHC", "SerD", "EDP"]
service_units = []
diagnosis_groups = []
sex = []
imr_formats = []
imr_start_from = ""
imr_start_to = ""
alpha = 0.05
max_missing = 0
seed = 0
n_resamples = 1000
disclosure_profile = "auto"
allow_weaker_profile = False

# %%
from imr_analysis import publish
from imr_analysis.cohort import load_cohort
from imr_workflow import explore

run = publish.setup("07_explore", raw_dir=raw_dir, processed_dir=processed_dir,
                    disclosure_profile=disclosure_profile, allow_weaker_profile=allow_weaker_profile)
cohort = load_cohort(run.processed)

# %% [markdown]
# ## The explorer
#
# Tick or untick the values of each filter (a filter with nothing ticked selects no one) and move the ends of the IMR
# start period; the tabs hold Table 1, Table 2, Figure 1 and the agreement summary of the selection.

# %%
explorer = explore.Explorer(cohort, run, alpha=alpha, seed=seed, n_resamples=n_resamples, max_missing=max_missing,
                            services=services, service_units=service_units, diagnosis_groups=diagnosis_groups,
                            sex=sex, imr_formats=imr_formats, imr_start_from=imr_start_from,
                            imr_start_to=imr_start_to)
explorer

# %% [markdown]
# ## The selection at start
#
# What the explorer shows first, as text: the selection, its size, and its agreement summary.

# %%
print(explorer.view.heading)
explore.show(explorer.view, "agreement")
