"""The learned rules as data: the best rule of every run of a profile's three meta-learning arms
(E->E; E->E trained with turnover; E->E + E->I + I->E trained with turnover) and the tuned
hand-made rule, one row each, with what it was trained on and how it scored on its search's
held-out test networks.

    import plasticity_repro as pr
    rules = pr.load_rules("repro")            # an xr.Dataset, one `rule` per row
    rule = pr.rule_of(rules, "ee_turnover/1")  # a Rule the simulator runs
    cfg = pr.rule_config(rules, "ee_turnover/1")  # the protocol it was trained on
    ds = pr.evaluate_rules(rules, ["ee/0", "ee/1"], range(20))   # rows on fresh networks
    from plasticity_repro.rules import Rule
    ds = pr.evaluate_rule(Rule.from_terms({"x~ y": 0.03, "w y~ y": -0.03}), range(20))  # your own

A rule's coefficients multiply the learning rate it was trained at (`learning_rate`): run it at
that rate and on its organising horizon (`n_activations`) to get the dynamics it was selected
for (`rule_config`).
"""
from __future__ import annotations

import dataclasses
import glob
import os

import jax.numpy as jnp
import numpy as np
import xarray as xr

from .. import datasets
from ..config import SYNAPSE_TYPES, ModelConfig
from ..rules import HETERO_NAMES, HETERO_OFF, N_TERMS, TERM_NAMES, TERMS, Rule
from ..search import network_seeds
from .evaluate import converged_runs

ARMS = ("ee", "ee_turnover", "all_turnover", "handmade")
ARM_TITLES = {"ee": "E->E, no turnover (Fig 2, 3)", "ee_turnover": "E->E, trained with turnover (Fig 4)",
              "all_turnover": "E->E, E->I, I->E, trained with turnover (Fig 5, 6)",
              "handmade": "hand-made rule, tuned (Fig 4d)"}


def rules_dataset(arms: dict, profile: str) -> xr.Dataset:
    """One row per run of each arm: `arms` maps an arm name of ARMS to (search dataset,
    SearchConfig). Coefficients are zero on synapse types the arm does not make plastic; the
    hand-made rule's fixed additive terms are included (its `term_mask` says which terms are on)."""
    unknown = sorted(set(arms) - set(ARMS))
    if unknown:
        raise ValueError(f"arms must be among {list(ARMS)}, got {unknown}")
    rows = {k: [] for k in ("name", "arm", "run", "coefs", "mask", "taus", "hetero", "test", "train", "r2", "seed",
                            "lr", "n_act", "p", "n_test", "hash", "test_seeds", "converged")}
    for arm in [a for a in ARMS if a in arms]:
        ds, cfg = arms[arm]
        plastic = np.array([t in cfg.space.synapses for t in SYNAPSE_TYPES])
        ok = converged_runs(ds)
        for r in range(ds.sizes["run"]):
            rule = cfg.space.to_rule(jnp.asarray(ds.best_params.values[r], jnp.float32))
            mask = np.asarray(rule.term_mask) * plastic[:, None]
            rows["name"].append(f"{arm}/{r}")
            rows["arm"].append(arm)
            rows["run"].append(r)
            rows["coefs"].append(np.asarray(rule.coefs, np.float64) * mask)
            rows["mask"].append(mask.astype(np.int8))
            rows["taus"].append(np.asarray(rule.taus, np.float64))
            rows["hetero"].append(np.asarray(rule.hetero, np.float64) if cfg.space.heterosynaptic
                                  else np.asarray(HETERO_OFF, np.float64))
            n_test = max(cfg.n_test, 1)
            rows["test"].append(float(ds.best_test_loss.values[r]) / n_test)
            rows["train"].append(float(ds.best_train_loss.values[r]) / cfg.n_train)
            rows["r2"].append(float(ds.best_test_r2.values[r]))
            rows["seed"].append(int(ds.search_seed.values[r]))
            rows["lr"].append(cfg.model.plasticity.lr)
            rows["n_act"].append(cfg.model.n_activations)
            rows["p"].append(float(ds.p_turnover.values[r]))
            rows["n_test"].append(cfg.n_test)
            rows["hash"].append(ds.attrs.get("params_hash", ""))
            rows["converged"].append(np.int8(ok[r]))
            rows["test_seeds"].append(network_seeds(cfg, cfg.test_seed, cfg.n_test, int(ds.search_seed.values[r])))
    tau_names = [TERM_NAMES[k] for k in range(N_TERMS) if TERMS[k].tau_slot >= 0]
    out = xr.Dataset(
        {"coefs": (("rule", "synapse", "term"), np.stack(rows["coefs"])),
         "term_on": (("rule", "synapse", "term"), np.stack(rows["mask"])),
         "taus": (("rule", "synapse", "tau_of"), np.stack(rows["taus"])),
         "hetero": (("rule", "hetero_param"), np.stack(rows["hetero"])),
         "test_loss": (("rule",), np.asarray(rows["test"])),
         "train_loss": (("rule",), np.asarray(rows["train"])),
         "test_r2": (("rule",), np.asarray(rows["r2"])),
         "search_seed": (("rule",), np.asarray(rows["seed"])),
         "learning_rate": (("rule",), np.asarray(rows["lr"])),
         "n_activations": (("rule",), np.asarray(rows["n_act"])),
         "p_turnover_training": (("rule",), np.asarray(rows["p"])),
         "n_test_networks": (("rule",), np.asarray(rows["n_test"])),
         "converged": (("rule",), np.asarray(rows["converged"], np.int8)),
         "test_network_seed": (("rule", "test_slot"), np.stack(rows["test_seeds"]))},
        coords={"rule": rows["name"], "arm": ("rule", rows["arm"]), "run": ("rule", rows["run"]),
                "search_params_hash": ("rule", rows["hash"]), "synapse": list(SYNAPSE_TYPES),
                "term": list(TERM_NAMES), "tau_of": tau_names, "hetero_param": list(HETERO_NAMES)})
    out["coefs"].attrs["long_name"] = "coefficient c_k (the update is learning_rate x sum_k c_k F_k per Euler step)"
    out["taus"].attrs.update(units="s", long_name="time constant of the trace the term reads")
    out["hetero"].attrs["long_name"] = ("hand-made bound: summed-weight limit, rate per step, cap "
                                        "(learned rules: a bound that never binds)")
    out["test_loss"].attrs["long_name"] = "loss per network on the search's held-out test networks"
    out["train_loss"].attrs["long_name"] = "loss per network on the search's training networks"
    out["converged"].attrs["long_name"] = ("1: test_loss below the spec's scale of a learned rule (80 per network, "
                                           "150 when trained with turnover; experiments.evaluate.converged_runs)")
    out["test_r2"].attrs["long_name"] = "decoder R^2 on the test networks (mean over networks)"
    out["test_network_seed"].attrs["long_name"] = ("seeds of the test networks (network.make_networks; turnover "
                                                   "while training on the even slots)")
    out["p_turnover_training"].attrs["long_name"] = "E->E turnover per synapse and activation while training (even slots)"
    out.attrs.update(datasets.provenance(
        dict(arms={a: dict(search_params_hash=arms[a][0].attrs.get("params_hash", ""),
                           title=ARM_TITLES[a]) for a in arms}),
        profile, sorted({int(s) for s in rows["seed"]}), False, kind="rules"))
    out.attrs["arms"] = "; ".join(f"{a}: {ARM_TITLES[a]}" for a in ARMS if a in arms)
    return out


def rule_of(ds: xr.Dataset, name: str) -> Rule:
    """The Rule of row `name` (e.g. "ee/0") of a rules dataset."""
    names = [str(v) for v in ds.rule.values]
    if name not in names:
        raise ValueError(f"rule must be one of {names}, got {name!r}")
    row = ds.sel(rule=name)
    return Rule.create(row.coefs.values, row.taus.values, term_mask=row.term_on.values, hetero=tuple(row.hetero.values))


def rule_config(ds: xr.Dataset, name: str, base: ModelConfig | None = None) -> ModelConfig:
    """A ModelConfig that runs row `name` as it was trained: its learning rate, its organising
    horizon (decoder windows as the search's), its plastic synapse types and, for the hand-made
    rule, the summed-weight bound."""
    from ..search import scaled_protocol
    rule_of(ds, name)   # checks the name
    row = ds.sel(rule=name)
    synapses = tuple(t for t in SYNAPSE_TYPES if int(row.term_on.sel(synapse=t).sum()) > 0) or ("ee",)
    # stored at float32: the profiles' rates are 5e-4 x a short decimal
    cfg = scaled_protocol(int(row.n_activations), round(float(row.learning_rate) / 5e-4, 4), synapses)
    if base is not None:
        cfg = dataclasses.replace(base, plasticity=cfg.plasticity, loss=cfg.loss, n_activations=cfg.n_activations)
    hetero = str(row.arm.values) == "handmade"
    return dataclasses.replace(cfg, plasticity=dataclasses.replace(cfg.plasticity, heterosynaptic=hetero))


def load_rules(profile: str = "repro", data_dir: str | os.PathLike = "data") -> xr.Dataset:
    """The shipped rules dataset of `profile` (data/learned_rules_<profile>_<hash>.nc; made by
    `make data PROFILE=<profile>`)."""
    from ..profiles import PROFILES
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {list(PROFILES)}, got {profile!r}")
    found = sorted(glob.glob(os.path.join(str(data_dir), f"learned_rules_{profile}_*.nc")))
    if not found:
        raise FileNotFoundError(f"no learned rules of profile {profile!r} in {str(data_dir)!r}: "
                                f"make data PROFILE={profile}")
    if len(found) > 1:
        raise ValueError(f"more than one rules dataset of profile {profile!r} in {str(data_dir)!r}: {found}")
    return datasets.read_dataset(found[0], kind="rules")


def evaluate_rules(rules: xr.Dataset, names, seeds, *, n_activations: int | None = None,
                   p_turnover: float = 0.0, record_rates=None, record_weights=None,
                   n_examples: int = 2) -> xr.Dataset:
    """Run rows `names` of a rules dataset on fresh networks `seeds` (network.make_networks) and
    return what Fig 2's evaluation keeps (experiments.evaluate.evaluate_dataset): per network the
    loss and decoder R², example rates and weights, mean firing times, the E->E weight kernel over
    lag; coordinate `rule` holds the row names.

    Each row runs at the learning rate it was trained at (`rule_config`), for its training horizon
    or `n_activations` (decoder windows scaled as `search.scaled_protocol` does: fit 344..369, test
    374..399 at 400), with E->E turnover `p_turnover` (per synapse and activation) on every network.
    `record_rates` / `record_weights` are 0-based activations (default first, middle and last /
    first and last). Everything is checked before anything runs."""
    names = [names] if isinstance(names, str) else list(names)
    if not names:
        raise ValueError("names must name at least one row of the rules dataset")
    if len(set(names)) != len(names):
        raise ValueError(f"names must be distinct rows of the rules dataset, got {names}")
    entries = {name: (rule_of(rules, name), rule_config(rules, name)) for name in names}
    params = dict(rules_params_hash=rules.attrs.get("params_hash", ""), rules_commit=rules.attrs.get("git_commit", ""),
                  rows=names)
    return _evaluate(entries, seeds, n_activations, p_turnover, record_rates, record_weights, n_examples,
                     str(rules.attrs.get("profile", "")), params)


def evaluate_rule(rule: Rule, seeds, *, model: ModelConfig | None = None, name: str = "rule",
                  n_activations: int | None = None, p_turnover: float = 0.0, record_rates=None,
                  record_weights=None, n_examples: int = 2) -> xr.Dataset:
    """Run a rule of your own (`Rule.from_terms`, `Rule.create`, or a row's `rule_of` changed) on
    fresh networks `seeds`, returning what `evaluate_rules` returns, under coordinate `rule` = `name`.

    `model` is the protocol; by default the paper's (spec §5: 400 activations, learning rate 5e-4
    per Euler step, decoder fit on 344..369 and tested on 374..399), with plastic exactly the synapse
    types the rule has non-zero coefficients on (E->E when none). `n_activations`, `p_turnover`,
    `record_rates`, `record_weights` and `n_examples` are as in `evaluate_rules`. A rule with
    coefficients on a synapse type `model` does not make plastic is an error (they would be
    ignored), as is a bad argument; everything is checked before anything runs."""
    from ..search import scaled_protocol
    if not isinstance(rule, Rule):
        raise ValueError(f"rule must be a plasticity_repro Rule (Rule.from_terms, Rule.create), got {type(rule).__name__}")
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    rule = Rule.create(rule.coefs, rule.taus, rule.term_mask, rule.hetero)   # (20,) arrays -> (3, 20)
    coefs = np.asarray(rule.coefs) * np.asarray(rule.term_mask)
    on = tuple(t for i, t in enumerate(SYNAPSE_TYPES) if np.any(coefs[i] != 0))
    bound = not np.array_equal(np.asarray(rule.hetero, np.float32), np.asarray(HETERO_OFF, np.float32))
    if model is None:
        model = scaled_protocol(400, 1.0, on or ("ee",))
        model = dataclasses.replace(model, plasticity=dataclasses.replace(model.plasticity, heterosynaptic=bound))
    elif not isinstance(model, ModelConfig):
        raise ValueError(f"model must be a ModelConfig or None, got {type(model).__name__}")
    ignored = [t for t in on if t not in model.plasticity.synapses]
    if ignored:
        raise ValueError(f"rule has coefficients on {ignored} but model.plasticity.synapses is "
                         f"{model.plasticity.synapses}: add them or zero those coefficients")
    if bound and not model.plasticity.heterosynaptic:
        raise ValueError(f"rule has a summed-weight bound (hetero {np.asarray(rule.hetero).tolist()}) but "
                         "model.plasticity.heterosynaptic is False: set it True or drop the bound")
    params = dict(rule=dict(coefs=np.asarray(rule.coefs, float).tolist(), taus=np.asarray(rule.taus, float).tolist(),
                            term_mask=np.asarray(rule.term_mask, int).tolist(),
                            hetero=[float(h) for h in np.asarray(rule.hetero)]))
    return _evaluate({name: (rule, model)}, seeds, n_activations, p_turnover, record_rates, record_weights,
                     n_examples, "", params)


def _evaluate(entries: dict, seeds, n_activations, p_turnover, record_rates, record_weights, n_examples,
              profile: str, params: dict) -> xr.Dataset:
    """`entries` {name: (Rule, ModelConfig)} on networks `seeds`: the checks and the run shared by
    `evaluate_rules` and `evaluate_rule` (their docstrings say what the arguments mean)."""
    from .evaluate import evaluate_dataset
    seeds = np.asarray(list(seeds) if not isinstance(seeds, np.ndarray) else seeds)
    if seeds.ndim != 1 or len(seeds) == 0 or not np.issubdtype(seeds.dtype, np.integer) \
            or seeds.min() < 0 or seeds.max() >= 2 ** 32:
        raise ValueError("seeds must be a non-empty sequence of integers in [0, 2**32)")
    if n_activations is not None and (isinstance(n_activations, bool) or not isinstance(n_activations, (int, np.integer))
                                      or not 12 <= n_activations <= 100_000):
        raise ValueError(f"n_activations must be an integer in [12, 100000] or None, got {n_activations!r}")
    if isinstance(p_turnover, bool) or not isinstance(p_turnover, (int, float, np.integer, np.floating)) \
            or not 0.0 <= p_turnover <= 1.0:
        raise ValueError(f"p_turnover must be a number in [0, 1], got {p_turnover!r}")
    if isinstance(n_examples, bool) or not isinstance(n_examples, (int, np.integer)) or n_examples < 1:
        raise ValueError(f"n_examples must be an integer >= 1, got {n_examples!r}")
    models = {}
    for name, (_, cfg) in entries.items():
        if n_activations is not None and n_activations != cfg.n_activations:
            from ..search import with_horizon
            cfg = with_horizon(cfg, n_activations)
        n = cfg.n_activations
        rates_at = tuple(int(a) for a in (record_rates if record_rates is not None else (0, n // 2 - 1, n - 1)))
        weights_at = tuple(int(a) for a in (record_weights if record_weights is not None else (0, n - 1)))
        for label, at in (("record_rates", rates_at), ("record_weights", weights_at)):
            if not at or min(at) < 0 or max(at) >= n:
                raise ValueError(f"{label} must be activations in [0, {n - 1}] (row {name!r} runs {n}), got {at}")
        models[name] = dataclasses.replace(cfg, record_rates=rates_at, record_weights=weights_at)
    if len({(m.n_activations, m.record_rates, m.record_weights) for m in models.values()}) > 1:
        raise ValueError("rows that run different horizons or record different activations cannot share one "
                         "dataset: pass n_activations, or evaluate them in separate calls")
    parts = []
    for name, (rule, _) in entries.items():
        cfg = models[name]
        parts.append(evaluate_dataset(cfg, [rule], [name], seeds, profile=profile,
                                      rates_at=cfg.record_rates, weights_at=cfg.record_weights, n_examples=n_examples,
                                      p_turnover_ee=float(p_turnover)))
    out = xr.concat(parts, dim="rule", data_vars="minimal", coords="minimal", compat="override",
                    combine_attrs="override") if len(parts) > 1 else parts[0]
    names = list(entries)
    params = dict(params, models={n: models[n].to_dict() for n in names}, seeds=seeds.tolist(),
                  p_turnover_ee=float(p_turnover))
    out.attrs = datasets.provenance(params, profile, seeds, any(models[n].float64 for n in names),
                                    kind="evaluation")
    return out


HETERO_UNITS = {"hetero:sum_max": "weight (summed over a cell's synapses)", "hetero:rate": "1/step",
                "hetero:w_cap": "weight"}


def converged_of(rules: xr.Dataset) -> np.ndarray:
    """Per row: whether its test loss per network is below the spec's scale of a learned rule (80,
    150 when trained with turnover; the `converged` variable where the dataset has it)."""
    if "converged" in rules:
        return rules.converged.values.astype(bool)
    from .evaluate import convergence_limit
    return rules.test_loss.values < convergence_limit(rules.p_turnover_training.values)


def leading_terms(rules: xr.Dataset, name: str, k: int = 4) -> list:
    """The k terms of row `name` with the largest |coefficient| over its plastic synapse types, as
    (synapse, term, coefficient), largest first (coefficients multiply the row's learning rate)."""
    row = rules.sel(rule=name)
    c = np.where(row.term_on.values > 0, row.coefs.values, 0.0)
    order = np.argsort(-np.abs(c), axis=None, kind="stable")[:k]
    return [(SYNAPSE_TYPES[i // N_TERMS], TERM_NAMES[i % N_TERMS], float(c.flat[i])) for i in order if c.flat[i] != 0]


def rules_table(rules: xr.Dataset) -> "pandas.DataFrame":
    """The rules dataset in long form, one row per (rule, synapse, coefficient or time constant),
    with each rule's arm, test loss and R² per network, convergence, learning rate, horizon and
    training turnover: a table for tools that do not read netCDF (`plasticity-repro rules --csv`)."""
    import pandas as pd
    conv = dict(zip([str(r) for r in rules.rule.values], converged_of(rules)))
    out = []
    for name in [str(r) for r in rules.rule.values]:
        row = rules.sel(rule=name)
        common = dict(rule=name, arm=str(row.arm.values), run=int(row.run.values),
                      test_loss_per_network=float(row.test_loss), test_r2=float(row.test_r2),
                      converged=bool(conv[name]), learning_rate=float(row.learning_rate),
                      n_activations=int(row.n_activations), p_turnover_training=float(row.p_turnover_training))
        for s in SYNAPSE_TYPES:
            on = row.term_on.sel(synapse=s).values
            if not on.any():
                continue
            for t, term in enumerate(TERM_NAMES):
                if on[t]:
                    out.append(dict(common, synapse=s, quantity="coefficient", name=term,
                                    value=float(row.coefs.sel(synapse=s, term=term)), units="1 (times learning_rate)"))
            for tau in [str(v) for v in rules.tau_of.values]:
                out.append(dict(common, synapse=s, quantity="tau", name=tau,
                                value=float(row.taus.sel(synapse=s, tau_of=tau)), units="s"))
        for hp in [str(v) for v in rules.hetero_param.values] if common["arm"] == "handmade" else []:
            out.append(dict(common, synapse="ee", quantity="hetero", name=hp, value=float(row.hetero.sel(hetero_param=hp)),
                            units=HETERO_UNITS[hp]))
    return pd.DataFrame(out)
