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
# # Figure 3 — which terms matter: dropout and progressive refitting (E→E, no turnover)
#
# The learned rules of the Figure 2 searches differ in detail. Dropping one term at a time (its coefficient set to 0) on the same fresh networks shows which terms carry the loss; refitting with only the top-k terms (signs fixed, started from the mean rule, CMA-ES without restarts) shows how many are needed. The paper finds an elbow at 3 terms: x̃y (+), xỹ (−), w ỹy (−), a temporally asymmetric Oja rule.

# %% tags=["parameters"]
profile = "quick"
seed = 0
data_dir = "data"
fig_dir = "figures"
runs = None   # None: the profile's value; `plasticity-repro params fig3` lists every parameter
generations = None
n_activations = None
n_dropout_networks = None
n_networks = None
refit_k_max = None
refit_generations = None

# %%
import os
os.environ.setdefault("JAX_PLATFORMS", "cpu")
from plasticity_repro.experiments import params
# every parameter checked before anything runs (one line naming a bad one and its range); a None
# becomes the profile's value; the output folders are checked; relative folders: from the project root
data, figs = params.check_notebook(globals(), "fig3")
import numpy as np
import xarray as xr
xr.set_options(display_style="text")
from plasticity_repro import plots
from plasticity_repro.experiments import paper
from plasticity_repro.experiments.evaluate import full_rule_losses, ranking_selection

# %% tags=["nbval-ignore-output"]
hv = plots.setup()

# %% [markdown]
# ## Learned rules
# The Figure 2 searches (read from `data/`, or run now).

# %%
cfg = paper.search_config(profile, generations=generations, n_activations=n_activations)
search = paper.searches(profile, data, seed=seed, progress=False, cfg=cfg, runs=runs)
rules = paper.learned_rules(search, cfg)
names = [f"run {i}" for i in range(len(rules))]
coefs = search.coefs.sel(synapse="ee")
print("rules:", len(rules))

# %% [markdown]
# ## Dropout
# Each term set to 0 in turn, on the same fresh networks; per rule, the median over networks of the loss increase when the term is dropped (a network that blows up counts as +inf), ranked within the rule; terms ordered by their median rank over rules, blow-ups counted apart (`experiments.evaluate.dropout_ranks`). As in the reference, the ranking (and the refits' mean rule) uses only rules whose mean full-rule loss per network is below 80 (150 for rules trained with turnover), all of them when none is.

# %%
dd, ranking, req = paper.term_dropout("fig3", profile, data, cfg, search, rules, names,
                                     n_networks=n_dropout_networks, seed=seed)
print(paper.dropout_summary(dd, ranking))

# %% [markdown]
# ## Progressive refitting
# Top-k terms of the ranking, signs of the mean rule, CMA-ES from the mean rule (no restarts), each refit tested on fresh networks.

# %%
rf = paper.term_refit("fig3", profile, data, cfg, paper.ranking_rules(dd, rules), ranking, req, seed=seed, n_networks=n_networks,
                      k_max=refit_k_max, generations=refit_generations)
full = float(np.median(full_rule_losses(dd)))   # the rules the refit starts from, same protocol
print(paper.refit_summary(rf, full))
# the paper's own three terms at k = 3, from the same mean rule on the same networks
rf_paper = paper.paper_terms_refit(profile, data, cfg, paper.ranking_rules(dd, rules), ranking, req, seed=seed,
                                   n_networks=n_networks, generations=refit_generations)
print("refit with the paper's 3 terms", [str(t) for t in rf_paper.ranked_term.values[:3]], "median loss per network:",
      round(float(rf_paper.median_loss.values[-1])))

# %% [markdown]
# ## The paper's claims
# Each claim is a function of `plasticity_repro.claims` applied to the datasets of this profile at
# the default parameters (the README's results table is the same computation): the paper's number,
# ours, the criterion and the verdict. A claim that does not hold is reported, not asserted.

# %%
from plasticity_repro import claims
found = []   # drawn under the figure too
if params.at_defaults(globals(), "fig3"):
    found = claims.evaluate(profile, data, figure="fig3")
    claims.report(found)
else:
    print("claims are computed from the default parameters' datasets: python -m plasticity_repro.claims --profile", profile)

# %% [markdown]
# ## Panels
# One sheet, panels in the paper's order.
#
# **a — coefficients and time constants across the learned rules** (one point per rule, bar: median;
# coefficients on a symmetric-log axis, linear within ±10⁻³; time constants in ms on a log axis,
# dotted: the search bounds). Look for terms whose sign agrees across rules; with few rules the
# spread is only indicative.
#
# **b — loss with each term set to 0.** Per-network loss of every rule with one term dropped (and
# the full rule, left; dashed: its median), rules pooled, log axis. Networks that blow up score the
# 1e8 penalty; they are drawn as crosses on the top edge and counted above the panel.
#
# **c — per-rule dropout shift.** For each rule, max(median(dropped) − median(full), 0) of each term
# (points) and its median over rules (bar); terms in the order of the ranking above (median
# within-rule rank over the rules below the loss threshold: filled points; open points are rules
# above it, drawn but not ranked); symmetric-log axis (linear below 1), blow-ups drawn on the top
# edge. The leftmost terms are the ones the rules cannot lose; d refits them in this order.
#
# **d — progressive refitting.** Median test loss per network (band: quartiles) of rules refitted
# with only the top-k terms of the ranking in c (signs fixed, started from the mean rule, CMA-ES
# without restarts); the term added at each k is named under it; dashed: the full rules' median.
# The paper finds an elbow at 3 terms; the panel states from which k the refit lies within 20 % of the full rules.
# The open diamond beside k = 3 is the refit with the paper's own three terms (x̃y, xỹ, wỹy) instead of our
# ranking's: if it lies near the dashed line, the difference is in which terms the ranking picks.

# %% tags=["nbval-ignore-output"]
sheet = plots.Sheet([(2.0, ["a", "a.2"], [20, 12]),
                     (2.1, ["b"]),
                     (2.2, ["c", "d"], [1.6, 1])])
plots.coefficient_distributions(sheet, "a", coefs.rename(run="rule"))
plots.tau_distributions(sheet, "a.2", search.taus.sel(synapse="ee").rename(run="rule"))
plots.dropout_losses(sheet, "b", dd)
plots.dropout_shifts(sheet, "c", dd, ranked=ranking_selection(dd))
plots.refit_plot(sheet, "d", rf, reference=full, other=rf_paper, other_label="the paper's terms")
sheet.footnote(claims.figure_note(found, panels={"eq4": "a", "fig3": "d"}))
plots.save(sheet, figs / profile / "fig3")
sheet
