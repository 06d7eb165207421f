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
# # Figure 6 — learned rules are homeostatic
#
# After a learned rule has organised a network, one E cell is perturbed: its E→E afferents scaled ×0.5 or ×1.5 once, or its fresh Poisson input multiplied by 10 from then on. The paper tracks the cell's summed excitatory input, its recurrent inhibition Σ_k w(E→I)_kc w(I→E)_ck and its response (peak normalised to the unperturbed one, and duration): the response is pushed away and returns within about 25 activations. A reduced one-neuron model shows why two homeostatic rules acting on two moments of the response (w on the second, b on the first) pin both its amplitude and its duration, while swapping them does not.

# %% tags=["parameters"]
profile = "quick"
seed = 0
data_dir = "data"
fig_dir = "figures"
p_turnover = 0.00072
tau_convention = "independent"
rule_source = "all"   # "all": an all-synapse rule of Fig 5; "ee": an E->E rule
runs = None   # None: the profile's value; `plasticity-repro params fig6` lists every parameter
all_synapse_runs = None
generations = None
ei_generations = None
n_activations = None
n_networks = None
afferent_factors = [0.5, 1.5]
input_factor = 10.0
rule_run = "best"   # or a run number: which run's rule is perturbed

# %%
import os
os.environ.setdefault("JAX_PLATFORMS", "cpu")
from plasticity_repro.experiments import params
# every parameter checked before anything runs (one line naming a bad one and its range); a None
# becomes the profile's value; the output folders are checked; relative folders: from the project root
data, figs = params.check_notebook(globals(), "fig6")
import numpy as np
import xarray as xr
xr.set_options(display_style="text")
from plasticity_repro import plots
from plasticity_repro.experiments import paper

# %% tags=["nbval-ignore-output"]
hv = plots.setup()

# %% [markdown]
# ## The rule
# The Fig 5 search (read from `data/`, or run now); the run with the lowest test loss, or run `rule_run`.

# %%
cfg, search, run, rule = paper.fig6_rule(profile, data, rule_source=rule_source, seed=seed, p_turnover=p_turnover,
                                        tau_convention=tau_convention, runs=runs, generations=generations,
                                        ei_generations=ei_generations, n_activations=n_activations, rule_run=rule_run,
                                        all_synapse_runs=all_synapse_runs)
print("rule:", rule_source, "run", run, "plastic synapses:", cfg.model.plasticity.synapses)

# %% [markdown]
# ## Single-cell perturbations
# The training protocol, then the perturbation at its last activation and as many again as the recovery window (paper: activation 400 of 450, recovery read 25 activations later; scaled to the profile's training length, see `perturb.perturbation_protocol`). Every kind runs on the same networks and noise; the perturbed cell is E12 in every network (its place in the sequence varies).

# %%
from plasticity_repro.experiments.perturb import perturbation_kinds, perturbation_protocol
pdat = paper.fig6_perturbation(profile, data, cfg, search, run, rule, seed=seed, n_networks=n_networks,
                               kinds=perturbation_kinds(afferent_factors, input_factor))
# the training protocol, or the paper's 400 activations (repro), then the perturbation's
proto = perturbation_protocol(paper.evaluation_model(profile, cfg.model).n_activations)
print("perturbed activation:", pdat.attrs["perturbed_activation"], "later:", pdat.attrs["later"],
      "activations:", proto["n_activations"], "cell ranks in the sequence:", pdat.cell_rank.values.tolist())
summary = {}
for var, scale, nd in (("e_input", 1, 2), ("inhibition", 1, 3), ("amplitude", 1, 2), ("duration", 1e3, 1)):
    med = pdat[var + "_summary"].median("network") * scale
    summary[var] = med
    print(f"{var} (median: before, just after, later):",
          {str(k): [round(float(v), nd) for v in med.sel(kind=k).values] for k in pdat.kind.values})

# %% [markdown]
# ## Reduced model
# One neuron r = [w u − b]+ with a 5 ms input filter, 200 activations, on the authors' input grid: alpha pulses a·α(t; τ_a) of 10 amplitudes a in 0.01..1 × 10 widths τ_a in 1..20 ms, from w = 1, b = 0.1; w and b are kept ≥ 1e-8. Two rules: w on the second moment, b on the first ('two rules'); the same rules with the moments swapped; and each rule alone. Convergence is read, as the paper plots it, on the inputs without the 3 smallest amplitudes and the 3 shortest widths: at the last activation (moment errors relative to the targets) and from the eigenvalues of the per-activation map at the shared fixed point, where that lies above the floor (for the shortest pulses it needs b < 0).

# %%
from plasticity_repro.experiments.reduced_model import ReducedModelConfig, converged_fraction, plotted_inputs
rcfg = ReducedModelConfig()
rd = paper.fig6_reduced(profile, data)
shown = plotted_inputs(rd)   # the paper's plotted inputs
feasible = shown.fixed_point_feasible.values
last = shown.isel(init=0, activation=-1)
print(f"input grid: {rd.attrs['input_grid']}; plotted: {shown.sizes['amplitude']} x {shown.sizes['width']},",
      f"fixed point above the floor for {int(feasible.sum())} of them")
conv = {}
for m in rd.mode.values:
    e1 = np.abs(last.m1.sel(mode=m).values / rcfg.target1 - 1)
    e2 = np.abs(last.m2.sel(mode=m).values / rcfg.target2 - 1)
    lead = shown.eig_modulus.sel(mode=m).isel(eig=0).values[feasible]
    conv[str(m)] = dict(e1=float(np.median(e1)), e2=float(np.median(e2)),
                        err=float(np.median(np.maximum(e1, e2))),
                        within5=converged_fraction(rd, str(m)),   # both within 5 %: the claim's test
                        eig_max=float(lead.max()), eig_min=float(lead.min()))
    print(f"{m}: median |m1/target - 1| = {conv[m]['e1']:.2f}, |m2/target - 1| = {conv[m]['e2']:.2f}, "
          f"both within 5 %: {conv[m]['within5']:.2f} of conditions, "
          f"leading |eig| at the fixed point in [{conv[m]['eig_min']:.3f}, {conv[m]['eig_max']:.3f}]")

# %% [markdown]
# ## The paper's claims
# Each claim is a function of `plasticity_repro.claims` applied to the datasets of this profile at
# the default parameters (the README's results table is the same computation): the paper's number,
# ours, the criterion and the verdict. A claim that does not hold is reported, not asserted.

# %%
from plasticity_repro import claims
found = []   # drawn under the figure too
if params.at_defaults(globals(), "fig6"):
    found = claims.evaluate(profile, data, figure="fig6")
    claims.report(found)
else:
    print("claims are computed from the default parameters' datasets: python -m plasticity_repro.claims --profile", profile)

# %% [markdown]
# ## Panels
# One sheet. Activations are 1-based; dashed: the perturbed activation, dotted: the "later" one.
#
# **a — summed excitatory input** (summed E→E weight onto the perturbed cell) per activation,
# median over networks (band: quartiles) for each perturbation kind. Look at how the afferent
# scalings step the input and how the rule moves it afterwards.
#
# **b — recurrent inhibition** |Σ_k w(E→I)_kc w(I→E)_ck| of the perturbed cell c, same layout. An
# increase after the perturbation means inhibition is recruited against the added excitation.
#
# **c — response amplitude,** the cell's peak rate divided by its mean peak before the perturbation
# (1 = unperturbed), same layout. Recovery shows as the curves returning towards 1.
#
# **d–f — peak rate against duration of the response** before the perturbation (mean of the
# preceding activations; identical for every kind, drawn once in black), just after it and later,
# one point per network on shared axes. Above f: per kind, a paired Wilcoxon test of the distance
# from the unperturbed amplitude, |amplitude − 1|, later against just after (r < 0: closer later).
#
# **g–i — reduced model** (one neuron, the authors' alpha-pulse inputs, 7 × 7 amplitudes and
# widths after leaving out the 3 smallest of each as in the paper): duration M0/r_peak (the
# response's area M0 = Σ r dt over its peak, as the paper defines it) and peak of each input's
# response at the first activation (black) and after the last (teal), grey lines joining each
# input. With the two rules (g) every input ends in one small cluster; with the moments swapped (h)
# or one rule alone (i) they do not. Above each panel: the spread (coefficient of variation, CV)
# over the N inputs, first → last.
#
# **j — delay against amplitude** with the two rules: the delay is the response's first moment in
# time, Σ t r dt / Σ r dt, same inputs and colours. The rules pull the amplitudes together but
# leave the delays spread: they follow the input's width, which no rule acts on.

# %% tags=["nbval-ignore-output"]
sheet = plots.Sheet([(1.9, ["a", "b", "c", "c.2"], [1, 1, 1, 0.45]),
                     (1.9, ["d", "e", "f"]),
                     (2.0, ["g", "h", "i", "i.2", "j", "j.2"], [1, 1, 1, 1, 1, 0.42])])
plots.perturbation_traces(sheet, "a", pdat, "e_input", f"summed E→E input ({plots.WEIGHT_UNIT})",
                          title="excitatory input")
plots.perturbation_traces(sheet, "b", pdat, "inhibition", f"recurrent inhibition ({plots.WEIGHT_UNIT})",
                          title="recurrent inhibition")
plots.perturbation_traces(sheet, "c", pdat, "amplitude", "peak / peak before",
                          title="response amplitude")
plots.perturbation_legend(sheet, "c.2", pdat)
plots.amplitude_duration_phases(sheet, ["d", "e", "f"], pdat)
for key, mode in zip(["g", "h", "i", "i.2"], ["two_rules", "swapped", "w_only", "b_only"]):
    plots.reduced_before_after(sheet, key, rd, mode, first=(key == "g"))
plots.reduced_delay_amplitude(sheet, "j", rd, "two_rules")
plots.reduced_legend(sheet, "j.2", rd)
sheet.footnote(claims.figure_note(found, panels={"fig6": "a-f", "fig6_reduced": "g-j"}))
plots.save(sheet, figs / profile / "fig6")
sheet
