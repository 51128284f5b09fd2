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
# # 08 · Pooling departments: random-effects meta-analysis of their aggregate bundles
#
# Each department that runs the compendium on its own exports gets an **aggregate bundle** (`bundle/` beside its
# outputs; `DISCLOSURE.md` says what it holds): the disclosure-controlled tables of notebooks 02, 03 and 05, the
# run's colophon and a manifest with the SHA-256 of every file. A coordinating centre collects the bundles in one
# folder, one subfolder per department, and this notebook pools them without any patient data moving. Every bundle
# is validated first (format version, files against the manifest's hashes); a problem stops the notebook, naming
# the bundle and what is wrong. The paper's published figures (Ferrara et al. 2023) join as one more site where it
# published the measure, and every measure is pooled with and without them.
#
# For each measure a site gives an estimate and its standard error on the pooling scale, read off its published
# tables (nothing is recomputed from patients): percentages on the logit scale, means as they are, the ICC and the
# item-profile r on Fisher's z scale, the Bland-Altman bias as it is. `statsmodels.stats.meta_analysis.
# combine_effects` pools them: random effects with the DerSimonian-Laird tau², beside the fixed effect, with
# Cochran's Q, its p and I²; estimates are back-transformed (percent, r). `imr_analysis.pool` says how each
# standard error is obtained.
#
# **The shipped bundles are synthetic.** `data/bundles/` holds the bundles of three synthetic departments
# (`make bundles` regenerates them: `python -m imr_analysis synth --departments`, then notebooks 01, 02, 03 and 05 on each):
# north (90 patients, fewer units, more individual sessions), central (200, more SerD and EDP patients, stricter
# providers) and coastal (400, more groups and sessions, more lenient providers). Their differences are the
# generator's settings, so heterogeneity is large by construction for the group format, sessions and the
# Bland-Altman bias and about zero for age and sex, which the generator draws alike everywhere. Nothing here is a
# finding about patients.
#
# **On a department's own (private) data** the notebook pools only the folder it is given: run as part of a
# department's run it has no `bundles_dir` and pools nothing (the shipped synthetic bundles are never pooled with
# real data). A coordinating centre runs it alone on its folder of bundles:
# `python -m imr_analysis run --only 08 -p bundles_dir DIR --output-dir OUT` (pooled estimates of private bundles
# are never written to the compendium's own `tables/` and `figures/`). A folder mixing synthetic and private
# bundles is refused.
#
# **Writes** `tables/pooled_estimates.{csv,md}` (one row per measure and set of sites: random- and fixed-effect
# estimates with their intervals, tau², I², Q and its p, the sites' total n and events), `tables/pooled_sites.csv`
# (each site's estimate, interval, n, and its estimate and variance, the squared standard error, on the pooling scale) and a forest plot per
# measure, `figures/forest_<measure>.{png,pdf,svg}`. The CSVs' footnotes are in their `.csv-metadata.json`.
#
# **Parameters**
#
# | name | default | meaning |
# |---|---|---|
# | `bundles_dir` | `""` (= `data/bundles` on synthetic data; nothing on private data) | folder of bundles, one subfolder per department (or one bundle) |
# | `raw_dir` | `""` (= `data/raw`) | raw exports, only read to tell synthetic from private data |
# | `tables_dir`, `figures_dir` | `""` (= `tables`, `figures`) | output folders |
# | `include_published` | `True` | add the paper's published figures as one more site |
# | `alpha` | `0.05` | 1 - confidence level of the pooled intervals |
# | `measures` | nine measures (below) | any keys of `imr_analysis.pool.MEASURES`: `men`, `antipsychotic`, `group_format`, `module_01` ... `module_11`, `age`, `imr_duration`, `sessions`, `imrs_user_total`, `imrs_provider_total`, `icc_total`, `bias_total`, `item_profile_r` |
# | `table_formats` | `["csv", "md"]` | formats of `pooled_estimates` |
# | `figure_formats`, `dpi` | `["png", "pdf", "svg"]`, `300` | formats and resolution of the forest plots |
#
# **Where it writes.** Run by `make reproduce` or `make notebooks`, the notebook writes the committed outputs; run any
# other way (JupyterLab, nbclient, a copy), it writes them under `scratch/` (git-ignored). Its first output line says
# which; folders given as parameters are used as given.
#
# Relative paths are taken from the compendium's root, whatever the working directory.

# %% tags=["parameters"]
bundles_dir = ""
raw_dir = ""
tables_dir = ""
figures_dir = ""
include_published = True
alpha = 0.05
measures = ["men", "group_format", "module_06", "age", "sessions", "imrs_user_total", "icc_total", "bias_total",
            "item_profile_r"]
table_formats = ["csv", "md"]
figure_formats = ["png", "pdf", "svg"]
dpi = 300

# %%
import matplotlib.pyplot as plt
from IPython.display import display

from imr_analysis import paths, pool
from imr_analysis.export import export_table
from imr_analysis.figio import preview, save_figure
from imr_workflow import bundle
from imr_workflow.display import display_table

TABLES = paths.output_folder(tables_dir, paths.tables_dir())
FIGURES = paths.output_folder(figures_dir, paths.figures_dir())
print(paths.output_line([paths.is_given(tables_dir), paths.is_given(figures_dir)]))

# %% [markdown]
# ## The bundles
#
# Every bundle of the folder, validated: department, data mode, the disclosure profile its department applied, the
# confidence level of its intervals and its cohort size as its Table 2 publishes it.

# %%
bundles = bundle.open_bundles(bundles_dir, raw_dir, tables_dir, figures_dir)
display_table(bundle.summary(bundles))

# %% [markdown]
# ## Each site's estimates
#
# `estimate` on the natural scale (percent for proportions); the interval is the one pooled, `y -/+ z se` on the
# pooling scale, back-transformed. A measure a bundle redacted is left out of its pooling, with a note.

# %%
sites = pool.site_table(bundles, measures, include_published=include_published, alpha=alpha)
display_table(sites[["site", "measure", "estimate", "ci_low", "ci_high", "n", "events", "note"]])

# %% [markdown]
# ## Pooled estimates
#
# Per measure, over the departments and, where the paper published the measure, over the departments and the paper.
# The random-effects interval widens with tau²; where I² is 0 (Q below its degrees of freedom) random and fixed
# effects coincide.

# %%
pooled = pool.pool(sites, alpha=alpha)
display_table(pooled[["measure", "sites", "k", "n", "estimate", "ci_low", "ci_high", "tau2", "i2", "q", "q_p"]])

# %% [markdown]
# ## Forest plots
#
# Squares: the departments (open: the paper); diamonds: the pooled random-effects estimates and their intervals
# (dark: departments, light: with the paper); the dotted line marks the departments' pooled estimate.

# %%
for key in pooled["measure"].unique():
    figure = pool.forest_plot(sites, pooled, key, alpha=alpha)
    for path in save_figure(figure, FIGURES, f"forest_{key}", formats=figure_formats, dpi=dpi):
        print("wrote", paths.display_path(path))
    display(preview(figure, dpi=80))
    plt.close(figure)

# %% [markdown]
# ## Save the tables

# %%
if len(pooled):
    written = export_table(pooled, TABLES, "pooled_estimates", formats=table_formats, notes=pool.pooled_notes(alpha),
                           caption="Pooled estimates across departments (random effects, DerSimonian-Laird)")
    written += export_table(sites, TABLES, "pooled_sites", formats=["csv"], notes=pool.pooled_notes(alpha)[1:])
    for path in written:
        print("wrote", paths.display_path(path))
