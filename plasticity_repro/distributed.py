"""Evaluation sweeps on a Dask cluster: many (rule, network chunk) evaluations, one shard each
(`plasticity-repro sweep`).

A work unit is a frozen description (`EvalShard`) and a pure function of it that returns an
`xr.Dataset` (`evaluate_shard`). `run_shards` sends the units that are not on disk yet to the
workers and writes each result atomically (`datasets.write_dataset`) as it arrives, under a name
made of a hash of the unit's parameters; a rerun after a crash, a killed job or a lost worker
skips every shard already written. `combine_evaluation` joins the shards with xarray into one
dataset with provenance. `search_config_of` and `best_rules` read a search dataset's
configuration and best rules (what a sweep evaluates).

A search's runs are spread the same way (`DaskScorer`: `run_search(scorer=...)`, `search.scored_by`,
the CLI's `search`/`data --scheduler` or `--workers`): every generation each worker scores its
share of the candidates (a group of runs, or a slice of one run's population) on those runs'
networks, which it builds once from their seeds; CMA-ES, the incumbents and the checkpoint
stay with the process that runs the search, so it resumes exactly, with or without a cluster.

By default the cluster is an embedded `LocalCluster` of single-threaded worker processes; pass a
scheduler address to use a running cluster. Each JAX worker process is limited to one thread
(`WORKER_ENV`), so n workers use n cores and do not oversubscribe them.

SLURM with dask-jobqueue (not a dependency of this package)::

    from dask.distributed import Client
    from dask_jobqueue import SLURMCluster
    from plasticity_repro import distributed as dd

    cluster = SLURMCluster(
        cores=1, processes=1, memory="4GiB", walltime="04:00:00",   # one 1-thread worker per job
        job_script_prologue=["source /path/to/plasticity_repro/.venv/bin/activate"]
                            + [f"export {k}='{v}'" for k, v in dd.WORKER_ENV.items()])
    cluster.adapt(minimum_jobs=0, maximum_jobs=100)
    with Client(cluster) as client:
        ds = dd.evaluation_sweep(model, rules, names, seeds, shard_dir="/scratch/me/shards",
                                 client=client)

or start the cluster in a long-lived Python session, print `cluster.scheduler_address`, and run
`plasticity-repro sweep ... --scheduler tcp://HOST:PORT`. The shard directory only has to be
visible to the process that submits the sweep (results come back through the scheduler), but put
it on persistent storage so a resubmitted sweep finds the finished shards.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import re
from pathlib import Path
from typing import Callable, Iterator, NamedTuple, Sequence

import numpy as np
import xarray as xr

from . import datasets
from .config import ModelConfig, check_number, to_dict
from .parallel import blas_coretype_env, host_isa_flag

log = logging.getLogger(__name__)

# Environment of each embedded worker process, set by the nanny before the worker starts (so
# before JAX creates its CPU client). The first XLA flag makes XLA's CPU kernels single-threaded;
# the second is the TensorFlow-era spelling that the usual recipes carry (XLA ignores it). Each
# worker is one process on one core, so it keeps a single XLA host device (parallel.py); its XLA:CPU
# is capped at AVX2 (parallel.host_isa_flag) and its OpenBLAS kernels pinned as the client's are.
WORKER_ENV = {
    "JAX_PLATFORMS": "cpu",
    "PLASTICITY_REPRO_HOST_DEVICES": "1",
    "XLA_FLAGS": host_isa_flag("--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"),
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "PLASTICITY_REPRO_THREADS": "1",   # the fused engine: one thread
    **blas_coretype_env({}),
}

_ADDRESS = re.compile(r"^(tcp|tls|ws|wss|ucx|inproc)://\S+$")


# -- work units ---------------------------------------------------------------------------------
def _tree_params(x):
    """JSON-able nested lists of an array (exact: float32 values are exact Python floats)."""
    return np.asarray(x).tolist()


@dataclasses.dataclass(frozen=True, eq=False)
class EvalShard:
    """One rule on one chunk of fresh networks (seeds): per-network loss, R^2, rate, blow-up.

    `rule` holds NumPy leaves (a `rules.Rule`); `rule_index` places it in the combined dataset."""
    model: ModelConfig
    rule_index: int
    rule_name: str
    rule: object
    seeds: tuple
    p_turnover_ee: float = 0.0

    kind = "evaluation_shard"

    def params(self) -> dict:
        r = self.rule
        return dict(model=to_dict(self.model), rule_index=int(self.rule_index), rule_name=str(self.rule_name),
                    coefs=_tree_params(r.coefs), taus=_tree_params(r.taus), term_mask=_tree_params(r.term_mask),
                    hetero=_tree_params(r.hetero), rule_dtype=str(np.asarray(r.coefs).dtype),
                    seeds=[int(s) for s in self.seeds], p_turnover_ee=float(self.p_turnover_ee))

    @property
    def filename(self) -> str:
        return f"eval_r{self.rule_index:04d}_s{self.seeds[0]}_{datasets.params_hash(self.params(), 16)}.nc"


def _ensure_x64(float64: bool) -> None:
    if float64:
        import jax
        jax.config.update("jax_enable_x64", True)


def evaluate_shard(shard: EvalShard) -> xr.Dataset:
    """Pure work function of an `EvalShard`: a (rule: 1, network) dataset."""
    import jax.numpy as jnp

    from .experiments.evaluate import network_losses, stack_rules
    from .rules import Rule
    _ensure_x64(shard.model.float64)
    r = shard.rule
    rule = Rule(coefs=jnp.asarray(r.coefs), taus=jnp.asarray(r.taus), term_mask=jnp.asarray(r.term_mask),
                hetero=jnp.asarray(r.hetero))
    seeds = np.asarray(shard.seeds, np.int64)
    out = network_losses(shard.model, stack_rules([rule]), seeds, shard.p_turnover_ee, chunk=len(seeds))
    return _evaluation_dataset(shard.model, [shard.rule_index], [shard.rule_name], [r], seeds, out,
                               attrs=dict(shard_hash=datasets.params_hash(shard.params(), 16)),
                               params=shard.params(), kind=shard.kind, profile="shard")


def _evaluation_dataset(model, rule_index, rule_names, rules, seeds, out, *, attrs, params, kind, profile):
    from .config import SYNAPSE_TYPES
    from .rules import N_TAUS, TERM_NAMES
    ds = xr.Dataset(
        {"loss": (("rule", "network"), np.asarray(out["loss"])),
         "decoder_r2": (("rule", "network"), np.asarray(out["decoder_r2"])),
         "mean_rate": (("rule", "network"), np.asarray(out["mean_rate"])),
         "blew_up": (("rule", "network"), np.asarray(out["blew_up"]).astype(np.int8)),
         "coefs": (("rule", "synapse", "term"),
                   np.stack([np.asarray(r.coefs) * np.asarray(r.term_mask) for r in rules])),
         "taus": (("rule", "synapse", "tau_slot"), np.stack([np.asarray(r.taus) for r in rules]))},
        coords={"rule": np.asarray(rule_index, np.int64), "rule_name": ("rule", list(rule_names)),
                "network": np.asarray(seeds, np.int64), "synapse": list(SYNAPSE_TYPES),
                "term": list(TERM_NAMES), "tau_slot": np.arange(N_TAUS)})
    ds["loss"].attrs["long_name"] = "per-network loss (NaN where the network blew up)"
    ds["network"].attrs["long_name"] = "network seed"
    ds.attrs.update(datasets.provenance(params, profile, seeds, model.float64, kind=kind))
    ds.attrs.update(attrs)
    return ds


# -- running shards -------------------------------------------------------------------------------
def worker_env(extra: dict | None = None) -> dict:
    """Environment of embedded workers: `WORKER_ENV` plus `extra`."""
    return {**WORKER_ENV, **(extra or {})}


@contextlib.contextmanager
def dask_client(n_workers: int = 2, scheduler: str | None = None, timeout: float = 30.0) -> Iterator:
    """A `distributed.Client`: of a running scheduler at `scheduler` (e.g. 'tcp://host:8786'), or of
    an embedded LocalCluster of `n_workers` single-threaded worker processes (closed on exit)."""
    from dask.distributed import Client, LocalCluster
    if scheduler is not None:
        if not isinstance(scheduler, str) or not _ADDRESS.match(scheduler):
            raise ValueError(f"scheduler must be an address like 'tcp://host:8786', got {scheduler!r}")
        try:
            client = Client(scheduler, timeout=timeout)
        except (OSError, TimeoutError) as e:
            raise ValueError(f"scheduler {scheduler!r} could not be reached ({type(e).__name__})") from None
        try:
            yield client
        finally:
            client.close()
        return
    check_number("n_workers", n_workers, 1, 4096, integer=True)
    from .engine import settings   # the workers run the engine this process would
    with LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                      env=worker_env({"PLASTICITY_REPRO_ENGINE": settings()[0]}),
                      dashboard_address=None) as cluster, Client(cluster) as client:
        yield client


@contextlib.contextmanager
def cluster_scorer(scheduler: str | None = None, n_workers: int | None = None) -> Iterator:
    """The scorer every search in the block uses (with search.scored_by): a DaskScorer on the
    running scheduler at `scheduler`, else on an embedded LocalCluster of `n_workers`
    single-threaded workers; None (in-process, the engine on all cores) when neither is given."""
    if scheduler is None and n_workers is None:
        yield None
        return
    with dask_client(2 if n_workers is None else n_workers, scheduler) as client:
        yield DaskScorer(client)


class ShardReport(NamedTuple):
    paths: list          # shard files, in the order of the units
    computed: int        # shards computed by this call
    skipped: int         # shards found on disk


def _readable(path: Path, kind: str, shard_hash: str) -> bool:
    if not path.exists():
        return False
    try:
        ds = datasets.read_dataset(path, kind=kind)
    except ValueError as e:
        log.warning("recomputing shard %s: %s", path.name, e)
        return False
    return ds.attrs.get("shard_hash") == shard_hash


def run_shards(units: Sequence, shard_dir, work: Callable, client=None, n_workers: int = 2,
               scheduler: str | None = None) -> ShardReport:
    """Compute each unit whose shard is not in `shard_dir` yet with `work(unit) -> xr.Dataset` on
    the cluster, writing each shard atomically as soon as it arrives."""
    shard_dir = Path(shard_dir)
    paths = [shard_dir / u.filename for u in units]
    if len(set(paths)) != len(paths):
        raise ValueError("units must be distinct (two units have the same parameters)")
    todo = [(u, p) for u, p in zip(units, paths)
            if not _readable(p, u.kind, datasets.params_hash(u.params(), 16))]
    if todo:
        shard_dir.mkdir(parents=True, exist_ok=True)
        with contextlib.ExitStack() as stack:
            if client is None:
                client = stack.enter_context(dask_client(n_workers, scheduler))
            _compute(client, todo, work)
    return ShardReport(paths, len(todo), len(units) - len(todo))


def _compute(client, todo, work):
    from dask.distributed import as_completed
    futures = {}
    for unit, path in todo:
        fut = client.submit(work, unit, key=f"{Path(path).stem}", pure=False)
        futures[fut.key] = (fut, path)
    try:
        for fut, ds in as_completed([f for f, _ in futures.values()], with_results=True):
            path = futures[fut.key][1]
            datasets.write_dataset(ds, path)
            log.info("wrote shard %s", path.name)
            fut.release()
    finally:
        for fut, _ in futures.values():
            if fut.status == "pending":
                fut.cancel()


# -- sweeps ---------------------------------------------------------------------------------------
def _numpy_rule(rule):
    import jax
    return jax.tree.map(np.asarray, rule)


def evaluation_shards(model: ModelConfig, rules: Sequence, rule_names: Sequence, seeds, shard_size: int = 10,
                      p_turnover_ee: float = 0.0) -> list:
    """`EvalShard`s of every rule on consecutive chunks of `shard_size` network seeds."""
    seeds = np.asarray(seeds)
    if seeds.ndim != 1 or len(seeds) == 0 or not np.issubdtype(seeds.dtype, np.integer) or np.any(seeds < 0):
        raise ValueError(f"seeds must be a non-empty 1-d sequence of non-negative integers, got {seeds!r}")
    if len(np.unique(seeds)) != len(seeds):
        raise ValueError("seeds must be distinct")
    check_number("shard_size", shard_size, 1, 10 ** 6, integer=True)
    check_number("p_turnover_ee", p_turnover_ee, 0.0, 1.0)
    if len(rules) == 0 or len(rules) != len(rule_names):
        raise ValueError(f"rules and rule_names must be non-empty and of one length, got {len(rules)} "
                         f"and {len(rule_names)}")
    return [EvalShard(model, i, str(name), _numpy_rule(rule), tuple(int(s) for s in seeds[j:j + shard_size]),
                      float(p_turnover_ee))
            for i, (rule, name) in enumerate(zip(rules, rule_names))
            for j in range(0, len(seeds), shard_size)]


def combine_evaluation(units: Sequence, paths: Sequence, profile: str = "custom",
                       extra_params: dict | None = None) -> xr.Dataset:
    """One (rule, network) dataset from evaluation shards: networks joined per rule, then rules."""
    shards = [datasets.read_dataset(p, kind=EvalShard.kind) for p in paths]
    by_rule: dict = {}
    for u, ds in zip(units, shards):
        by_rule.setdefault(u.rule_index, []).append(ds)
    opts = dict(data_vars="minimal", coords="minimal", compat="equals", join="exact",
                combine_attrs="drop")
    per_rule = [xr.concat(by_rule[r], dim="network", **opts) for r in sorted(by_rule)]
    ds = xr.concat(per_rule, dim="rule", **opts)
    ds["blew_up"] = ds["blew_up"].astype(np.int8)
    model = units[0].model
    seeds = ds["network"].values
    params = dict(model=to_dict(model), seeds=seeds.tolist(), p_turnover_ee=units[0].p_turnover_ee,
                  rule_names=[str(v) for v in ds["rule_name"].values],
                  shards=sorted(datasets.params_hash(u.params(), 16) for u in units), **(extra_params or {}))
    ds.attrs = datasets.provenance(params, profile, seeds, model.float64, kind="evaluation_sweep")
    return ds


def evaluation_sweep(model: ModelConfig, rules: Sequence, rule_names: Sequence, seeds, shard_dir,
                     shard_size: int = 10, p_turnover_ee: float = 0.0, client=None, n_workers: int = 2,
                     scheduler: str | None = None, profile: str = "custom",
                     extra_params: dict | None = None) -> xr.Dataset:
    """Rules on fresh networks, sharded over a Dask cluster: per-network loss, R^2, mean rate and
    blow-up flag (rule, network), the rules' coefficients and time constants, provenance."""
    units = evaluation_shards(model, rules, rule_names, seeds, shard_size, p_turnover_ee)
    report = run_shards(units, shard_dir, evaluate_shard, client, n_workers, scheduler)
    log.info("evaluation sweep: %d shards computed, %d found on disk", report.computed, report.skipped)
    return combine_evaluation(units, report.paths, profile, extra_params)


# -- rules of a search dataset --------------------------------------------------------------------
def _tuples(x):
    """Nested lists -> nested tuples (configs hold tuples; JSON gives lists)."""
    if isinstance(x, list):
        return tuple(_tuples(v) for v in x)
    if isinstance(x, dict):
        return {k: _tuples(v) for k, v in x.items()}
    return x


def search_config_of(ds: xr.Dataset):
    """The SearchConfig a search dataset was made with (from its provenance)."""
    from .config import from_dict
    from .search import SearchConfig
    try:
        params = datasets.params_of(ds)["search"]
    except (KeyError, json.JSONDecodeError):
        raise ValueError("search dataset has no readable search parameters (params_json)") from None
    return from_dict(SearchConfig, _tuples(params))


def best_rules(ds: xr.Dataset, cfg=None) -> tuple:
    """(rules, names) of the best rule of every run of a search dataset."""
    import jax.numpy as jnp
    cfg = search_config_of(ds) if cfg is None else cfg
    rules = [cfg.space.to_rule(jnp.asarray(x, jnp.float32)) for x in ds["best_params"].values]
    names = [f"seed{int(s)}" for s in ds["search_seed"].values]
    return rules, names


# -- searches ---------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=8)
def _run_networks(cfg, seeds: tuple, p_turnover: tuple, split: str, x64: bool):
    """A worker's networks of some runs of a search (built once per worker, split and x64)."""
    from .search import test_networks, train_networks
    make = train_networks if split == "train" else test_networks
    return make(cfg, len(seeds), np.asarray(p_turnover), seeds)


def score_runs(cfg, seeds: tuple, p_turnover: tuple, split: str, x, x64: bool = False) -> tuple:
    """Pure work function of a search generation's share: losses (r, P) and R^2 (r, P, N) of the
    candidates x (r, P, n_params) of the runs `seeds` on their `split` networks. x64: the
    submitting process's jax_enable_x64 (it sets the dtype of the networks' arrays, so a float32
    search's numbers depend on it), applied here for the task."""
    import jax
    import jax.numpy as jnp

    from .search import score_batch
    jax.config.update("jax_enable_x64", bool(x64 or cfg.model.float64))
    losses, r2 = score_batch(cfg, jnp.asarray(x), _run_networks(cfg, tuple(seeds), tuple(p_turnover), split, bool(x64)))
    return np.asarray(losses), np.asarray(r2)


class DaskScorer:
    """A scorer factory for `search.run_search(scorer=...)` that scores the runs on a Dask cluster:
    each generation's candidates are cut into `shares` tasks (default: one per worker the
    scheduler has when the search starts): contiguous groups of runs when there are at least as
    many runs, else each run's population in equal slices (a single-run search, a refit, still
    uses every worker). Each simulation is the in-process one on the same networks; a worker has
    one XLA host device, so float32 losses agree with a multi-device process to rounding
    (parallel.py)."""

    def __init__(self, client, shares: int | None = None):
        if shares is not None:
            check_number("shares", shares, 1, 4096, integer=True)
        self.client, self.shares = client, shares

    def _workers(self) -> int:
        return len(self.client.scheduler_info().get("workers", {}))

    def _tasks(self, n_runs: int, population: int) -> list:
        """(runs, population slice) of each task of one scoring call."""
        shares = max(1, self.shares or self._workers() or 1)
        if n_runs >= shares:
            return [(g, slice(None)) for g in np.array_split(np.arange(n_runs), shares)]
        per_run = -(-shares // n_runs)
        return [(np.array([r]), slice(int(c[0]), int(c[-1]) + 1)) for r in range(n_runs)
                for c in np.array_split(np.arange(population), min(per_run, population)) if len(c)]

    @property
    def segment(self) -> dict:
        """What a search's segment records about where it was scored."""
        return dict(scorer="dask", dask_workers=self._workers())

    def __call__(self, cfg, state):
        seeds = np.asarray(state.seeds)
        p = np.asarray(state.p_turnover, float)
        client = self.client
        import jax
        x64 = bool(jax.config.jax_enable_x64)

        def score(x, split: str):
            x = np.asarray(x)
            tasks = self._tasks(len(seeds), x.shape[1])
            futures = [client.submit(score_runs, cfg, tuple(int(s) for s in seeds[g]), tuple(float(q) for q in p[g]),
                                     split, x[g][:, sl], x64, pure=False) for g, sl in tasks]
            parts = client.gather(futures)
            losses, r2 = [], []
            for r in range(len(seeds)):   # run r's row: from its group of runs, or its population slices
                mine = [(g, a, b) for (g, _), (a, b) in zip(tasks, parts) if r in g]
                i = [int(np.flatnonzero(g == r)[0]) for g, _, _ in mine]
                losses.append(np.concatenate([a[j:j + 1] for (_, a, _), j in zip(mine, i)], axis=1))
                r2.append(np.concatenate([b[j:j + 1] for (_, _, b), j in zip(mine, i)], axis=1))
            return np.concatenate(losses), np.concatenate(r2)
        return score
