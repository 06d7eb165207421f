# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     notebook_metadata_filter: kernelspec,jupytext,-all
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Figure 2 — a learned rule organises a decodable sequence (E→E plasticity, no turnover)
#
# CMA-ES searches the 32 parameters (20 coefficients, 12 time constants) of an E→E rule so that a time decoder reads the activation's time from the 25 E rates after 400 activations. This notebook reads (or computes) the search and an evaluation of the learned rules on fresh networks, then draws the paper's panels. Set `profile` to `quick` (CI), `laptop`, `repro` (the campaign: what `make figures` draws) or `paper`.

# %% tags=["parameters"]
profile = "quick"
seed = 0
data_dir = "data"
fig_dir = "figures"
runs = None   # None: the profile's value; `plasticity-repro params fig2` lists every parameter
generations = None
n_activations = None
n_networks = None
rule_runs = "all"   # or run numbers, e.g. "0,3": which runs' rules are evaluated

# %%
import os
os.environ.setdefault("JAX_PLATFORMS", "cpu")
from plasticity_repro.experiments import params
# every parameter checked before anything runs (one line naming a bad one and its range); a None
# becomes the profile's value; the output folders are checked; relative folders: from the project root
data, figs = params.check_notebook(globals(), "fig2")
import numpy as np
import xarray as xr
xr.set_options(display_style="text")
from plasticity_repro import plots
from plasticity_repro.experiments import paper

# %% tags=["nbval-ignore-output"]
hv = plots.setup()

# %% [markdown]
# ## Search
# Batched CMA-ES runs (seeds `seed`…); read from `data/` when a dataset with exactly these parameters exists. The rule handed on is each run's incumbent with the lowest test loss.

# %%
cfg = paper.search_config(profile, generations=generations, n_activations=n_activations)
search = paper.searches(profile, data, seed=seed, progress=False, cfg=cfg, runs=runs)
n_tr, n_te = cfg.n_train, max(cfg.n_test, 1)
print("runs:", search.sizes["run"], "generations:", search.sizes["generation"],
      "evaluations per run:", int(search.evaluations.values[-1, 0]))
print("best test loss per network:", np.round(search.best_test_loss.values / n_te, 0))

# %% [markdown]
# ## Evaluation on fresh networks
# Each learned rule and no plasticity on the same fresh networks (seeds never used in the search): loss, decoder R², rates at activations 1, mid and last, weights.

# %%
# the training protocol, or the paper's 400 activations (repro): paper.evaluation_model
ev = paper.fig2_evaluation(profile, data, search, cfg, seed=seed, n_networks=n_networks, rule_runs=rule_runs)
med_r2 = ev.decoder_r2.median("network")
print("median R^2:", {str(k): round(float(v), 2) for k, v in zip(ev.rule.values, med_r2.values)})
print("median loss per network:", paper.loss_summary(ev))

# %%
best = str(ev.rule.values[int(np.argmin(paper.median_losses(ev)[:-1]))])

# %% [markdown]
# ## The paper's claims
# Each claim is a function of `plasticity_repro.claims` applied to the datasets of this profile at
# the default parameters (the README's results table is the same computation): the paper's number,
# ours, the criterion and the verdict. A claim that does not hold is reported, not asserted.

# %%
from plasticity_repro import claims
found = []   # drawn under the figure too
if params.at_defaults(globals(), "fig2"):
    found = claims.evaluate(profile, data, figure="fig2")
    claims.report(found)
else:
    print("claims are computed from the default parameters' datasets: python -m plasticity_repro.claims --profile", profile)

# %% [markdown]
# ## Panels
# One sheet, panels in the paper's order (a–g), then the traces of every run (h).
#
# **a — coefficients of the best run (lowest search test loss) versus evaluations.** The best-so-far value of each of the 20
# E→E coefficients as CMA-ES proceeds (one colour per term, w-multiplied terms dashed; the five
# largest at the end are named). Look for which terms settle away from zero and when.
#
# **b — time constants of the best run.** The same for the 12 trace time constants (ms). A time
# constant matters only where its term's coefficient is not near zero (compare with a).
#
# **c — loss.** Best training loss and the test loss of the incumbent, per network, log scale. The
# test curve tracks the training curve when the rule generalises to networks it was not trained on.
#
# **d — decoding on fresh networks.** Decoder R² of each learned rule and of no plasticity on the
# same networks never seen in the search (points: networks; box: quartiles; bar: median). The axis
# is clipped below at −0.5; clipped networks are drawn on the limit as open triangles and counted.
# The one-sided Mann–Whitney test above the panel (learned > none, as the Fig 2 claim tests it)
# compares all learned-rule networks with no plasticity; r is the rank-biserial correlation.
#
# **e — rates at the first, middle and last activation** of one example network under the rule
# with the lowest median evaluation loss (named in the first panel's title; not always a–c's run), E cells sorted by the mean firing time of the last activation, on one colour scale. Look for
# the diagonal band (a sequence) forming from activity that at activation 1 follows only the kick.
#
# **f — E→E weights at the first and last activation,** both axes in that firing order, one colour
# scale (clipped at the 99th percentile of the last matrix). A sequence shows as strong weights just
# above the diagonal: from each cell onto the cells that fire after it (post later than pre).
#
# **g — weight against firing lag.** Mean E→E weight binned by the lag t_post − t_pre between the
# cells' mean firing times, pooled over the evaluation networks, at the end of the run: the learned
# rules' temporal kernel. No plasticity and the initial weights are flat.
#
# **h — coefficient traces of every term for every run** (rows: terms, columns: evaluations; one
# diverging scale clipped at the 98th percentile of |c|). Compare runs: which terms agree in sign.

# %% tags=["nbval-ignore-output"]
run = int(np.argmin(search.best_test_loss.values))
n_runs = search.sizes["run"]
heat = ["h"] + [f"h.{i + 1}" for i in range(1, n_runs)]
n_rec = ev.sizes["rate_activation"]
raster = ["e"] + [f"e.{i + 1}" for i in range(1, n_rec)]
sheet = plots.Sheet([(1.75, ["a", "b", "c"]),
                     (1.75, ["d"] + raster, [1.6] + [1] * n_rec),
                     (1.75, ["f", "f.2", "g"], [1, 1, 1.35]),
                     (2.4, heat)])
plots.coefficient_traces(sheet, "a", search, run)
plots.coefficient_traces(sheet, "b", search, run, kind="tau")
plots.loss_curves(sheet, "c", search, run)
plots.r2_comparison(sheet, "d", ev)
plots.rasters(sheet, raster, ev, best)
plots.weight_matrices(sheet, ["f", "f.2"], ev, best)
plots.kernel_plot(sheet, "g", ev)
plots.coefficient_heatmaps(sheet, heat, search)
sheet.footnote(claims.figure_note(found, panels={"fig2": "d"}))
plots.save(sheet, figs / profile / "fig2")
sheet
