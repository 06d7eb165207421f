"""Evaluate rules on fresh networks (Fig 2-4): losses, R^2, example rates and weights, firing
order, the weight-versus-lag "kernel", and term dropout.

Everything returns an `xr.Dataset` with provenance; nothing stores full rate traces of all
networks (example networks only, strided in time).
"""
from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from .. import datasets
from ..config import SYNAPSE_TYPES, ModelConfig
from ..engine import jit
from ..loss import evaluate_rules, simulate_and_score
from ..network import make_networks
from ..rules import TERM_NAMES, Rule

LAG_EDGES_MS = np.arange(-40.0, 40.0 + 1e-9, 4.0)


def stack_rules(rules) -> Rule:
    """Batch a list of Rules along a leading axis."""
    return jax.tree.map(lambda *a: jnp.stack(a), *rules)


def mean_firing_time(rates, dt: float):
    """Mean firing time sum_t t r / sum_t r (s) of each cell; NaN for a silent cell. rates (..., T, N)."""
    rates = np.asarray(rates, np.float64)
    t = np.arange(rates.shape[-2]) * dt
    total = rates.sum(axis=-2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, np.einsum("...tn,t->...n", rates, t) / total, np.nan)


def firing_order(t_mean) -> np.ndarray:
    """Cell indices sorted by mean firing time (silent cells last, in index order)."""
    t = np.where(np.isnan(t_mean), np.inf, t_mean)
    return np.argsort(t, kind="stable")


def weight_lag_kernel(w_ee, t_mean_e, edges_ms=LAG_EDGES_MS):
    """Mean E->E weight w[post, pre] binned by lag t_post - t_pre (ms) of mean firing times,
    pooled over networks. w_ee (nets, n_e, n_e), t_mean_e (nets, n_e) in s. Returns (mean, count)."""
    w_ee = np.asarray(w_ee, np.float64)
    lag = (t_mean_e[:, :, None] - t_mean_e[:, None, :]) * 1e3
    n_e = w_ee.shape[-1]
    off = ~np.eye(n_e, dtype=bool)[None].repeat(len(w_ee), 0)
    ok = off & np.isfinite(lag)
    idx = np.digitize(lag[ok], edges_ms) - 1
    inside = (idx >= 0) & (idx < len(edges_ms) - 1)
    sums = np.bincount(idx[inside], weights=w_ee[ok][inside], minlength=len(edges_ms) - 1)
    counts = np.bincount(idx[inside], minlength=len(edges_ms) - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / counts, np.nan), counts


_simulate_and_score = jit(simulate_and_score, static_argnums=0)   # (RunResult, NetworkLoss) of one rule


LOSS_FIELDS = ("loss", "decoder_r2", "mean_rate", "blew_up")
_PARTS = contextvars.ContextVar("plasticity_repro_evaluation_parts", default=None)
_CLIENT = contextvars.ContextVar("plasticity_repro_evaluation_client", default=None)


@contextlib.contextmanager
def kept_in(folder):
    """Within the block every chunk of networks `network_losses` scores is kept in `folder` (one
    small .npz per chunk, written atomically, named by a hash of the protocol, the rules, the
    networks' seeds and turnover) and read back instead of recomputed: an evaluation stopped
    part-way resumes at the chunk it was on, with the same numbers. None: nothing kept."""
    token = _PARTS.set(None if folder is None else Path(folder))
    try:
        yield
    finally:
        _PARTS.reset(token)


@contextlib.contextmanager
def chunks_on(client):
    """Within the block `network_losses` sends its chunks of networks to the Dask `client`'s
    workers (one task per chunk; None: in this process). A worker has one XLA host device, so
    float32 numbers agree with an in-process run to rounding."""
    token = _CLIENT.set(client)
    try:
        yield
    finally:
        _CLIENT.reset(token)


def chunk_losses(cfg: ModelConfig, rules: Rule, seeds, p_turnover_ee, x64: bool | None = None) -> dict:
    """LOSS_FIELDS of each rule on the networks of `seeds` (arrays (R, n)): one chunk of
    `network_losses`, run here or on a Dask worker (x64: the submitter's float width)."""
    if x64 is not None and bool(x64) != bool(jax.config.jax_enable_x64):
        jax.config.update("jax_enable_x64", bool(x64))
    nets = make_networks(cfg, np.asarray(seeds), p_turnover_ee=np.asarray(p_turnover_ee))
    _, nl = evaluate_rules(cfg, rules, nets)
    return {k: np.asarray(getattr(nl, k)) for k in LOSS_FIELDS}


def _chunk_name(cfg: ModelConfig, rules: Rule, seeds, p) -> str:
    from ..engine import settings
    h = hashlib.sha256(json.dumps(dict(model=cfg.to_dict(), seeds=np.asarray(seeds).tolist(),
                                       p=np.asarray(p, np.float64).tolist(), x64=bool(jax.config.jax_enable_x64),
                                       code=datasets.simulation_code_hash(), backend=settings()[0]),
                                  sort_keys=True, default=str).encode())
    for leaf in jax.tree.leaves(rules):
        a = np.ascontiguousarray(np.asarray(leaf))
        h.update(str((a.dtype, a.shape)).encode())
        h.update(a.tobytes())
    return f"chunk_{h.hexdigest()[:20]}.npz"


def _read_chunk(path: Path) -> dict | None:
    try:
        with np.load(path) as z:
            return {k: z[k] for k in LOSS_FIELDS}
    except Exception:   # unreadable (truncated, not an npz, a field missing): computed again
        return None


def _keep_chunk(path: Path, res: dict) -> None:
    def write(tmp):
        with open(tmp, "wb") as f:
            np.savez(f, **res)
    datasets.atomic_write(path, write)


def network_losses(cfg: ModelConfig, rules: Rule, seeds, p_turnover_ee=0.0, chunk: int = 64) -> dict:
    """Per-network loss, R^2, mean rate and blow-up flag of each rule (R, N): the rules' batch axis
    is vmapped, networks are processed in chunks of `chunk` to bound memory (p_turnover_ee: one
    value or one per network). Chunks are kept and reused under `kept_in` and sent to a cluster
    under `chunks_on`."""
    seeds = np.asarray(seeds)
    p = np.broadcast_to(np.asarray(p_turnover_ee, np.float64), seeds.shape)
    parts = [(seeds[i:i + chunk], p[i:i + chunk]) for i in range(0, len(seeds), chunk)]
    folder, client = _PARTS.get(), _CLIENT.get()
    names = [folder / _chunk_name(cfg, rules, s, q) for s, q in parts] if folder is not None else [None] * len(parts)
    results = [_read_chunk(n) if n is not None and n.exists() else None for n in names]
    todo = [j for j, r in enumerate(results) if r is None]
    if client is not None and todo:
        from dask.distributed import as_completed
        x64, host_rules = bool(jax.config.jax_enable_x64), jax.tree.map(np.asarray, rules)
        futures = {client.submit(chunk_losses, cfg, host_rules, parts[j][0], parts[j][1], x64, pure=False): j
                   for j in todo}
        for fut, res in as_completed(list(futures), with_results=True):
            j = futures[fut]
            results[j] = res
            if names[j] is not None:
                _keep_chunk(names[j], res)
    else:
        for j in todo:
            results[j] = chunk_losses(cfg, rules, *parts[j])
            if names[j] is not None:
                _keep_chunk(names[j], results[j])
    return {k: np.concatenate([r[k] for r in results], axis=1) for k in LOSS_FIELDS}


def evaluate_dataset(cfg: ModelConfig, rules: list, rule_names: list, seeds, *, profile: str,
                     rates_at=(0, 199, 399), weights_at=(0, 399), n_examples: int = 2,
                     time_stride: int = 10, p_turnover_ee: float = 0.0, chunk: int = 25,
                     extra_params: dict | None = None) -> xr.Dataset:
    """Rules on fresh networks: per-network losses and R^2; example rates (strided) at `rates_at`
    and weights at `weights_at`; mean firing times at the last of `rates_at`; the E->E weight
    kernel over lag, at the first and last of `weights_at`."""
    import dataclasses
    seeds = np.asarray(seeds)
    cfg = dataclasses.replace(cfg, record_rates=tuple(rates_at), record_weights=tuple(weights_at))
    n_e, dt = cfg.network.n_e, cfg.network.dt
    per = {k: [] for k in ("loss", "decoder_r2", "mean_rate", "blew_up", "effects", "t_mean",
                           "ex_rates", "ex_w", "kernel", "kernel0", "count")}
    for rule in rules:
        acc = {k: [] for k in ("loss", "decoder_r2", "mean_rate", "blew_up", "effects", "t_mean", "w_first", "w_last")}
        ex_rates = ex_w = None
        for i in range(0, len(seeds), chunk):
            nets = make_networks(cfg, seeds[i:i + chunk], p_turnover_ee=p_turnover_ee)
            res, nl = _simulate_and_score(cfg, rule, nets)
            for k in ("loss", "decoder_r2", "mean_rate", "blew_up", "effects"):
                acc[k].append(np.asarray(getattr(nl, k)))
            rates = np.asarray(res.rates)                     # (n, len(rates_at), T, N)
            acc["t_mean"].append(mean_firing_time(rates[:, -1], dt))
            w = np.asarray(res.weights)
            acc["w_first"].append(w[:, 0, :n_e, :n_e])
            acc["w_last"].append(w[:, -1, :n_e, :n_e])
            if ex_rates is None:
                ex_rates = rates[:n_examples, :, ::time_stride]
                ex_w = w[:n_examples]
        cat = {k: np.concatenate(v) for k, v in acc.items()}
        for k in ("loss", "decoder_r2", "mean_rate", "blew_up", "t_mean"):
            per[k].append(cat[k])
        per["effects"].append(cat["effects"].mean(axis=0))
        per["ex_rates"].append(ex_rates)
        per["ex_w"].append(ex_w)
        kern, cnt = weight_lag_kernel(cat["w_last"], cat["t_mean"][:, :n_e])
        kern0, _ = weight_lag_kernel(cat["w_first"], cat["t_mean"][:, :n_e])
        per["kernel"].append(kern)
        per["kernel0"].append(kern0)
        per["count"].append(cnt)
    n_cells = cfg.network.n
    lag_centres = 0.5 * (LAG_EDGES_MS[1:] + LAG_EDGES_MS[:-1])
    rules_b = stack_rules(rules)
    ds = xr.Dataset(
        {
            "loss": (("rule", "network"), np.stack(per["loss"])),
            "decoder_r2": (("rule", "network"), np.stack(per["decoder_r2"])),
            "mean_rate": (("rule", "network"), np.stack(per["mean_rate"])),
            "blew_up": (("rule", "network"), np.stack(per["blew_up"]).astype(np.int8)),
            "effects": (("rule", "synapse", "term"), np.stack(per["effects"])),
            "mean_firing_time": (("rule", "network", "cell"), np.stack(per["t_mean"])),
            "example_rates": (("rule", "example", "rate_activation", "time", "cell"), np.stack(per["ex_rates"])),
            "example_weights": (("rule", "example", "weight_activation", "post", "pre"), np.stack(per["ex_w"])),
            "kernel": (("rule", "lag"), np.stack(per["kernel"])),
            "kernel_initial": (("rule", "lag"), np.stack(per["kernel0"])),
            "kernel_count": (("rule", "lag"), np.stack(per["count"])),
            "coefs": (("rule", "synapse", "term"), np.asarray(rules_b.coefs * rules_b.term_mask)),
            "taus": (("rule", "synapse", "tau_slot"), np.asarray(rules_b.taus)),
        },
        coords={"rule": list(rule_names), "network": seeds, "cell": np.arange(n_cells),
                "example": np.arange(min(n_examples, len(seeds))),
                "rate_activation": np.asarray(rates_at) + 1, "weight_activation": np.asarray(weights_at) + 1,
                "time": np.arange(0, cfg.network.n_steps, time_stride) * dt * 1e3,
                "post": np.arange(n_cells), "pre": np.arange(n_cells), "lag": lag_centres,
                "synapse": list(SYNAPSE_TYPES), "term": list(TERM_NAMES), "tau_slot": np.arange(12)},
    )
    ds["time"].attrs["units"] = "ms"
    ds["lag"].attrs["units"] = "ms (t_post - t_pre of mean firing times)"
    ds["mean_firing_time"].attrs["units"] = "s"
    ds["rate_activation"].attrs["long_name"] = "activation (1-based, as in the paper)"
    params = dict(model=cfg.to_dict(), seeds=seeds.tolist(), p_turnover_ee=p_turnover_ee, **(extra_params or {}))
    ds.attrs.update(datasets.provenance(params, profile, seeds, cfg.float64, kind="evaluation"))
    return ds


def dropout_dataset(cfg: ModelConfig, rules: list, rule_names: list, seeds, *, profile: str,
                    synapse: str = "ee", p_turnover_ee: float = 0.0, chunk: int = 32,
                    extra_params: dict | None = None) -> xr.Dataset:
    """Each term of `synapse` set to zero in turn (its time constant then unused): per-network
    losses of every variant on the same networks, and per rule the shift
    max(median(dropped) - median(full), 0) (Fig 3c, 4b)."""
    t = SYNAPSE_TYPES.index(synapse)
    variants = ["full"] + list(TERM_NAMES)
    losses = []
    for rule in rules:
        batch = []
        for v in range(len(variants)):
            mask = np.asarray(rule.term_mask).copy()
            if v > 0:
                mask[t, v - 1] = 0.0
            batch.append(rule.replace(term_mask=jnp.asarray(mask)))
        out = network_losses(cfg, stack_rules(batch), seeds, p_turnover_ee, chunk)
        # a blown-up network scores the per-network blow-up value
        losses.append(np.where(out["blew_up"], cfg.loss.blowup_loss, out["loss"]))
    losses = np.stack(losses)                                  # (rule, variant, network)
    med = np.median(losses, axis=-1)
    shift = np.maximum(med[:, 1:] - med[:, :1], 0.0)
    ds = xr.Dataset(
        {"loss": (("rule", "variant", "network"), losses),
         "median_loss": (("rule", "variant"), med),
         "shift": (("rule", "term"), shift),
         "median_shift": (("term",), np.median(shift, axis=0)),
         "coefs": (("rule", "term"), np.stack([np.asarray(r.coefs[t] * r.term_mask[t]) for r in rules]))},
        coords={"rule": list(rule_names), "variant": variants, "term": list(TERM_NAMES),
                "network": np.asarray(seeds)})
    params = dict(model=cfg.to_dict(), seeds=np.asarray(seeds).tolist(), synapse=synapse,
                  p_turnover_ee=p_turnover_ee, **(extra_params or {}))
    ds.attrs.update(datasets.provenance(params, profile, seeds, cfg.float64, kind="dropout"))
    ds.attrs["synapse"] = synapse
    return ds


def dropout_ranks(ds_dropout: xr.Dataset) -> xr.Dataset:
    """Rank statistics of a dropout dataset, robust to blow-ups (Fig 3b/c, 4a).

    Per rule and term: `increase`, the median over networks of loss(dropped) - loss(full) on the
    same network, a network that blew up with the term dropped counting as +inf (so a term whose
    removal blows up most networks has an infinite increase, and one blow-up among many networks
    moves the median by one place only); `rank_in_rule`, the term's rank within its rule (1 = the
    largest increase; ties share their mean rank); `blowups`, the networks that blew up. Per
    term: `median_rank` and `mean_rank` over the rules whose ranks are defined, and
    `blowup_networks` summed over rules."""
    loss = ds_dropout["loss"].values.astype(float)                     # (rule, variant, network)
    floor = blowup_floor(ds_dropout)
    blown = loss >= floor
    diff = np.where(blown[:, 1:], np.inf, loss[:, 1:] - loss[:, :1])   # (rule, term, network)
    diff = np.where(blown[:, :1] & ~blown[:, 1:], np.nan, diff)        # the full rule blew up: no reference
    with np.errstate(invalid="ignore"):   # inf and -inf as the two middle values: undefined (nan)
        increase = np.nanmedian(np.where(np.isnan(diff), -np.inf, diff), axis=-1) if diff.size else diff
    from scipy.stats import rankdata
    rank = np.stack([rankdata(-row, method="average") for row in increase]) if increase.size else increase
    # a rule with an undefined increase (its full rule blew up on too many networks) has no ranks;
    # the per-term statistics are over the rules that have them (nan when none has)
    ranked = rank[~np.isnan(rank).any(axis=1)]
    median_rank = np.median(ranked, axis=0) if len(ranked) else np.full(diff.shape[1], np.nan)
    mean_rank = ranked.mean(axis=0) if len(ranked) else np.full(diff.shape[1], np.nan)
    dims = ("rule", "term")
    return xr.Dataset(
        {"increase": (dims, increase), "rank_in_rule": (dims, rank),
         "blowups": (dims, blown[:, 1:].sum(axis=-1)),
         "median_rank": (("term",), median_rank),
         "mean_rank": (("term",), mean_rank),
         "blowup_networks": (("term",), blown[:, 1:].sum(axis=(0, 2)))},
        coords={"rule": ds_dropout["rule"].values, "term": ds_dropout["term"].values})


def blowup_floor(ds_dropout: xr.Dataset) -> float:
    """The loss from which a network counts as blown up: the dataset's per-network blow-up loss."""
    try:
        return float(datasets.params_of(ds_dropout)["model"]["loss"]["blowup_loss"])
    except (KeyError, ValueError, TypeError):
        return 1e8


def decoder_r2_unless_blown_up(ev: xr.Dataset) -> xr.DataArray:
    """The evaluation's decoder R² per (rule, network), NaN where the network blew up: its rates
    are then the blow-up penalty's, not the network's, so it has no R² of its own. Datasets
    without a blew_up field are returned as they are."""
    return ev.decoder_r2.where(ev.blew_up == 0) if "blew_up" in ev else ev.decoder_r2


# spec §8: the dropout ranking and the refits' mean rule use only rules whose mean full-rule loss
# per network on the dropout networks is below this (turnover-trained rules: 150; others: 80)
FULL_LOSS_MAX = {"turnover": 150.0, "none": 80.0}


def search_test_loss_per_network(search: xr.Dataset) -> np.ndarray:
    """(run,) each run's handed-on rule's loss per held-out test network of its search."""
    n_test = int(json.loads(search.attrs["params_json"])["search"]["n_test"])
    return search.best_test_loss.values.astype(float) / max(n_test, 1)


def convergence_limit(p_turnover) -> np.ndarray:
    """The spec's scale of a learned rule's loss per network (§5), per rule: FULL_LOSS_MAX for its
    training, the turnover one where it trained with turnover (p_turnover > 0)."""
    return np.where(np.asarray(p_turnover) > 0, FULL_LOSS_MAX["turnover"], FULL_LOSS_MAX["none"])


def below_convergence_limit(test_loss, n_test: int, p_turnover) -> np.ndarray:
    """(run,) bool: each run's summed loss over its `n_test` held-out test networks, per network,
    below convergence_limit of the run's training turnover `p_turnover` (a scalar or one per run).
    Shared by converged_runs (a finished search) and the campaign's progress (a checkpoint)."""
    per_net = np.asarray(test_loss, dtype=float) / max(int(n_test), 1)
    return per_net < convergence_limit(np.broadcast_to(np.asarray(p_turnover, dtype=float), per_net.shape))


def converged_runs(search: xr.Dataset, threshold: float | None = None) -> np.ndarray:
    """(run,) bool: the run's rule is below `threshold` in search_test_loss_per_network (default:
    FULL_LOSS_MAX for its training, turnover where the run trained with turnover): the scale of
    a learned rule (spec §5) that §8 selects rules by, used to count a search's converged runs."""
    if threshold is None:
        n_test = int(json.loads(search.attrs["params_json"])["search"]["n_test"])
        p = search["p_turnover"].values if "p_turnover" in search else 0.0
        return below_convergence_limit(search.best_test_loss.values, n_test, p)
    return search_test_loss_per_network(search) < float(threshold)


def ranking_selection(ds_dropout: xr.Dataset) -> np.ndarray:
    """Indices of the rules that enter the ranking (spec §8): mean full-rule loss per network
    (a blown-up network at the blow-up loss) below FULL_LOSS_MAX, the turnover threshold when the
    dropout networks had turnover. When no rule passes, all of them (the dataset of the refit
    says so in its `ranking_rules`)."""
    full = ds_dropout["loss"].values[:, 0, :].astype(float).mean(axis=-1)
    turnover = float(datasets.params_of(ds_dropout).get("p_turnover_ee", 0.0)) > 0
    keep = np.flatnonzero(full < FULL_LOSS_MAX["turnover" if turnover else "none"])
    return keep if keep.size else np.arange(len(full))


def full_rule_losses(ds_dropout: xr.Dataset) -> np.ndarray:
    """Per-network losses of the unmodified rules of a dropout test (blow-ups at the blow-up loss),
    of the rules that enter the ranking (`ranking_selection`), pooled: what the progressive refit,
    started from those rules' mean and run on the same protocol, is compared with (Fig 3d, 4b)."""
    return ds_dropout["loss"].sel(variant="full").values[ranking_selection(ds_dropout)].ravel()


def term_ranking(ds_dropout: xr.Dataset) -> list:
    """Terms ordered by how much dropping them hurts: the median over rules of their within-rule
    rank (dropout_ranks), then the mean rank, then mean |c| to break ties."""
    r = dropout_ranks(ds_dropout)
    mag = np.abs(ds_dropout["coefs"].values).mean(axis=0)
    order = np.lexsort((-mag, r["mean_rank"].values, r["median_rank"].values))
    return [str(ds_dropout["term"].values[i]) for i in order]
