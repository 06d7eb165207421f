"""Dask sweeps: a real LocalCluster of 2 worker processes gives the in-process result, and a rerun
skips the shards already on disk."""
import os

import jax
import numpy as np
import pytest
import xarray as xr

from plasticity_repro import distributed as dd
from plasticity_repro.config import LossConfig, ModelConfig
from plasticity_repro.experiments.evaluate import network_losses, stack_rules
from plasticity_repro.rules import N_TERMS, TERM_NAMES, Rule

# 4 activations, a small decoder: the sweep's cost is the workers' start and one compile each
TINY = ModelConfig(loss=LossConfig(fit_activations=(0, 1), test_activations=(2, 3), n_fit=50, n_test=20),
                   n_activations=4)
SEEDS = np.arange(700, 704)
SHARD = 2


def _rules():
    c = np.zeros(N_TERMS)
    c[TERM_NAMES.index("x y")] = 0.05
    c[TERM_NAMES.index("w")] = -0.02
    return [Rule.create(), Rule.create(coefs=c)], ["none", "hebb"]


def _in_process(rules, names):
    """The same numbers without Dask: each rule on the same chunks (so the same compiled shapes)."""
    per = [network_losses(TINY, stack_rules([r]), SEEDS, chunk=SHARD) for r in rules]
    out = {k: np.concatenate([p[k] for p in per]) for k in per[0]}
    return xr.Dataset({"loss": (("rule", "network"), out["loss"]),
                       "decoder_r2": (("rule", "network"), out["decoder_r2"]),
                       "mean_rate": (("rule", "network"), out["mean_rate"]),
                       "blew_up": (("rule", "network"), out["blew_up"].astype(np.int8))},
                      coords={"rule": np.arange(len(rules)), "rule_name": ("rule", names), "network": SEEDS})


def _probe():
    return dict(pid=os.getpid(), xla=os.environ.get("XLA_FLAGS"), omp=os.environ.get("OMP_NUM_THREADS"),
                platforms=os.environ.get("JAX_PLATFORMS"))


def test_sweep_on_two_worker_processes_equals_in_process_and_rerun_skips(tmp_path):
    rules, names = _rules()
    shard_dir = tmp_path / "shards"
    units = dd.evaluation_shards(TINY, rules, names, SEEDS, shard_size=SHARD)
    assert len(units) == 4
    with dd.dask_client(n_workers=2) as client:
        probes = client.run(_probe)
        assert len(probes) == 2 and len({p["pid"] for p in probes.values()}) == 2
        for p in probes.values():
            assert p["pid"] != os.getpid()
            assert p["xla"] == dd.WORKER_ENV["XLA_FLAGS"] and p["omp"] == "1" and p["platforms"] == "cpu"
        first = dd.run_shards(units, shard_dir, dd.evaluate_shard, client=client)
        assert (first.computed, first.skipped) == (4, 0)
        mtimes = {p.name: p.stat().st_mtime_ns for p in first.paths}
        # a lost shard (e.g. a job killed before writing it) is the only one recomputed
        first.paths[1].unlink()
        again = dd.run_shards(units, shard_dir, dd.evaluate_shard, client=client)
        assert (again.computed, again.skipped) == (1, 3)
        for p in again.paths:
            if p != first.paths[1]:
                assert p.stat().st_mtime_ns == mtimes[p.name]
    # everything on disk: no cluster is started at all, and the shards are untouched
    mtimes = {p.name: p.stat().st_mtime_ns for p in again.paths}
    ds = dd.evaluation_sweep(TINY, rules, names, SEEDS, shard_dir, shard_size=SHARD, n_workers=2)
    assert {p.name: p.stat().st_mtime_ns for p in again.paths} == mtimes
    assert sorted(os.listdir(shard_dir)) == sorted(mtimes)  # no temporary files left behind

    expected = _in_process(rules, names)
    got = ds[list(expected.data_vars)]
    # The worker processes run one XLA host device each; this process splits the batch over one
    # device per core, and XLA compiles the per-device program of a multi-device module slightly
    # differently (float32 weights differ in the last bit after ~10 activations, see parallel.py).
    # With one device here the numbers are identical; otherwise equal to float32 rounding.
    if len(jax.devices()) == 1:
        xr.testing.assert_equal(got, expected)
    else:
        xr.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
    assert ds.attrs["kind"] == "evaluation_sweep"
    assert ds.sizes == {"rule": 2, "network": 4, "synapse": 3, "term": N_TERMS, "tau_slot": 12}
    # a float32 run stores the coefficients it used: the rule's, rounded to float32
    np.testing.assert_array_equal(ds["coefs"].values[1, 0], np.asarray(rules[1].coefs, np.float32)[0])


def test_shard_names_follow_their_parameters():
    rules, names = _rules()
    a = dd.evaluation_shards(TINY, rules, names, SEEDS, shard_size=SHARD)
    b = dd.evaluation_shards(TINY, rules, names, SEEDS, shard_size=SHARD)
    assert [u.filename for u in a] == [u.filename for u in b]
    c = dd.evaluation_shards(TINY, rules, names, SEEDS, shard_size=SHARD, p_turnover_ee=0.001)
    assert not {u.filename for u in a} & {u.filename for u in c}
    assert len({u.filename for u in a}) == len(a)


@pytest.mark.parametrize("kw,needle", [
    (dict(shard_size=0), "shard_size must be"),
    (dict(seeds=[]), "seeds must be"),
    (dict(seeds=[1, 1]), "seeds must be distinct"),
    (dict(p_turnover_ee=2.0), "p_turnover_ee must be"),
])
def test_bad_sweep_parameters_are_one_line_errors(kw, needle):
    rules, names = _rules()
    args = dict(seeds=SEEDS, shard_size=SHARD) | kw
    with pytest.raises(ValueError, match=needle) as e:
        dd.evaluation_shards(TINY, rules, names, **args)
    assert "\n" not in str(e.value)


# -- a search's runs on the cluster ----------------------------------------------------------------
def _search_cfg():
    import dataclasses

    from plasticity_repro.search import profile_config
    return dataclasses.replace(profile_config("quick"), n_train=2, n_test=1, max_generations=3,
                               independent_networks=True)


def test_search_scored_on_two_workers_resumes_a_local_search_to_the_same_dataset(tmp_path):
    """3 runs: one generation in process, stopped, then resumed with their candidates scored on 2
    worker processes (runs {0, 1} and {2}); the dataset is the uninterrupted in-process search's
    (to float32 rounding), and the segments say where each part ran."""
    from plasticity_repro import search
    cfg, seeds = _search_cfg(), (0, 1, 2)
    local = search.run_search(cfg, seeds=seeds, progress=False)
    ck = tmp_path / "s.ckpt"
    assert search.run_search(cfg, seeds=seeds, checkpoint=ck, stop_after=1, progress=False) is None
    with dd.dask_client(n_workers=2) as client:
        scorer = dd.DaskScorer(client)
        assert [list(g) for g, _ in scorer._tasks(3, 9)] == [[0, 1], [2]]          # groups of runs
        five = dd.DaskScorer(client, shares=5)._tasks(3, 9)                          # each run's population halved
        assert [(int(g[0]), sl.start, sl.stop) for g, sl in five] == [(0, 0, 5), (0, 5, 9), (1, 0, 5), (1, 5, 9),
                                                                       (2, 0, 5), (2, 5, 9)]
        with search.scored_by(scorer):   # every run_search in the block, as a pipeline step's
            resumed = search.run_search(cfg, seeds=seeds, checkpoint=ck, resume=True, progress=False)
    drop = ["seconds_per_generation"]
    # one XLA host device per worker vs two here: float32 losses agree to rounding (parallel.py),
    # measured up to 1.1e-5 relative; the candidates, incumbents and CMA-ES states follow
    xr.testing.assert_allclose(resumed.drop_vars(drop), local.drop_vars(drop), rtol=1e-4, atol=1e-9)
    import json
    segments = json.loads(resumed.attrs["segments_json"])
    assert [s.get("scorer") for s in segments] == [None, "dask"] and segments[1]["dask_workers"] == 2
    assert segments[1]["first_generation"] == 1


def test_a_single_run_search_uses_every_worker_and_equals_the_local_one():
    """One run (a refit's case) on 2 workers: its population is scored in 2 slices; the search is
    the in-process one to float32 rounding."""
    from plasticity_repro import search
    cfg = _search_cfg()
    local = search.run_search(cfg, seeds=(4,), progress=False)
    with dd.dask_client(n_workers=2) as client:
        scorer = dd.DaskScorer(client)
        assert len(scorer._tasks(1, 9)) == 2
        remote = search.run_search(cfg, seeds=(4,), progress=False, scorer=scorer)
    drop = ["seconds_per_generation"]
    xr.testing.assert_allclose(remote.drop_vars(drop), local.drop_vars(drop), rtol=1e-4, atol=1e-9)


def test_dask_scorer_rejects_a_bad_share_count():
    with pytest.raises(ValueError, match="shares must be"):
        dd.DaskScorer(client=None, shares=0)


def test_search_command_scores_on_a_local_cluster_with_workers(tmp_path, capsys):
    """`plasticity-repro search --workers 1`: the candidates are scored on an embedded LocalCluster
    and the dataset's segment says so."""
    import json
    from plasticity_repro import cli
    out = tmp_path / "s.nc"
    code = cli.main(["search", "--profile", "quick", "--max-generations", "1", "--n-train", "1", "--n-test", "1",
                     "--workers", "1", "--no-progress", "--out", str(out)])
    assert code == 0 and out.exists()
    segments = json.loads(xr.open_dataset(out).attrs["segments_json"])
    assert segments[-1]["scorer"] == "dask" and segments[-1]["dask_workers"] == 1


@pytest.mark.parametrize("command", [["search", "--out", "x.nc"], ["data", "--profile", "quick", "--dry-run"]])
def test_bad_scheduler_address_is_a_one_line_error(command, capsys):
    from plasticity_repro import cli
    with pytest.raises(SystemExit) as e:
        cli.main(command + ["--scheduler", "host:8786"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "--scheduler must be an address like tcp://host:8786" in err.splitlines()[-1]


# -- network_losses: chunks kept on disk (a stopped evaluation resumes) and sent to a cluster -------
def test_kept_chunks_are_reused_and_a_lost_one_is_recomputed(tmp_path, monkeypatch):
    from plasticity_repro.experiments import evaluate
    rules = stack_rules(_rules()[0])
    plain = network_losses(TINY, rules, SEEDS, chunk=SHARD)
    with evaluate.kept_in(tmp_path):
        first = network_losses(TINY, rules, SEEDS, chunk=SHARD)
    kept = sorted(tmp_path.glob("chunk_*.npz"))
    assert len(kept) == len(SEEDS) // SHARD
    (tmp_path / evaluate._chunk_name(TINY, rules, SEEDS[:SHARD], np.zeros(SHARD))).unlink()   # as if lost
    calls = []
    real = evaluate.chunk_losses
    monkeypatch.setattr(evaluate, "chunk_losses", lambda *a, **k: calls.append(a[2]) or real(*a, **k))
    with evaluate.kept_in(tmp_path):
        resumed = network_losses(TINY, rules, SEEDS, chunk=SHARD)
    assert len(calls) == 1 and list(calls[0]) == list(SEEDS[:SHARD])   # only the lost chunk
    for k in evaluate.LOSS_FIELDS:
        np.testing.assert_array_equal(resumed[k], first[k])
        np.testing.assert_array_equal(first[k], plain[k])
    # other turnover: other chunk names, nothing reused
    with evaluate.kept_in(tmp_path):
        network_losses(TINY, rules, SEEDS, p_turnover_ee=0.01, chunk=SHARD)
    assert len(list(tmp_path.glob("chunk_*.npz"))) == 2 * len(SEEDS) // SHARD


def test_chunks_on_a_worker_process_equal_in_process():
    from plasticity_repro.experiments import evaluate
    rules = stack_rules(_rules()[0])
    here = network_losses(TINY, rules, SEEDS, chunk=SHARD)
    with dd.dask_client(n_workers=1) as client, evaluate.chunks_on(client):
        there = network_losses(TINY, rules, SEEDS, chunk=SHARD)
    for k in evaluate.LOSS_FIELDS:
        np.testing.assert_allclose(there[k], here[k], rtol=1e-5, atol=1e-7)


def test_cached_dataset_removes_its_kept_chunks(tmp_path):
    from plasticity_repro.experiments import paper
    path = tmp_path / "x_quick_0123456789.nc"

    def compute():
        out = network_losses(TINY, stack_rules(_rules()[0]), SEEDS, chunk=SHARD)
        assert len(list(path.with_suffix(".parts").glob("chunk_*.npz"))) == len(SEEDS) // SHARD
        return xr.Dataset({"loss": (("rule", "network"), out["loss"])}, attrs=dict(kind="evaluation"))
    paper.cached(path, "evaluation", compute)
    assert path.exists() and not path.with_suffix(".parts").exists()
