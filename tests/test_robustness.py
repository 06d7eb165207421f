"""Robustness: bad input at every entry point, killed searches and writes, determinism.

(a) Every bad input below raises a ValueError (library) or exits 2 (CLI) with one line that names
    the parameter; `BAD_INPUTS` is the list of cases.
(b) A search killed at a random generation (in-process via stop_after, and a CLI process killed
    with SIGKILL) and resumed gives the uninterrupted dataset exactly; a dataset write killed with
    SIGKILL leaves the previous file or none at the target path.
(c) A search is reproducible run to run; the float32 and float64 losses of one batch are compared
    and their difference printed.
"""
import dataclasses
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time

import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr

from plasticity_repro import datasets
from plasticity_repro.config import LossConfig, ModelConfig, NetworkConfig, PlasticityConfig
from plasticity_repro.experiments.params import resolve as resolve_params
from plasticity_repro.search import ParamSpace, SearchConfig, profile_config, run_search, score_batch, train_networks

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_ZERO_MASK = tuple((0,) * 20 for _ in range(3))
_BAD_SIGNS = tuple((2,) + (0,) * 19 for _ in range(3))

# The tiny search of (b) and (c): 8 activations, 4 candidates, 1 train and 1 test network, 4 generations.
TINY = SearchConfig(model=ModelConfig(loss=LossConfig(fit_activations=(4, 5), test_activations=(6, 7), n_fit=100,
                                                      n_test=50),
                                      n_activations=8, plasticity=PlasticityConfig(lr=4e-3)),
                    n_train=1, n_test=1, popsize=4, max_generations=4, sigma0=0.01, profile="tiny")
TINY_SEEDS = (5,)


def _write_kind(path, kind):
    datasets.write_dataset(xr.Dataset({"x": ("i", np.arange(3.0))}, attrs={"kind": kind}), path)
    return path


def _truncated_netcdf(path):
    _write_kind(path, "search")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _resume(ckpt):
    cfg = dataclasses.replace(TINY, max_generations=1, n_test=0)
    return run_search(cfg, seeds=(0,), checkpoint=ckpt, resume=True, progress=False)


# (id, f(tmp_path) that must raise ValueError, text the one-line message must contain)
LIBRARY_CASES = [
    ("ModelConfig.n_activations", lambda t: ModelConfig(n_activations=0), "n_activations must be"),
    ("ModelConfig.float64", lambda t: ModelConfig(float64="yes"), "float64 must be"),
    ("ModelConfig.record_rates", lambda t: ModelConfig(record_rates=(500,)), "record_rates must be"),
    ("ModelConfig.loss_beyond_run", lambda t: ModelConfig(n_activations=100), "loss.fit_activations must lie"),
    ("ModelConfig.n_steps", lambda t: ModelConfig(network=NetworkConfig(n_steps=600)), "stop_step must be"),
    ("NetworkConfig.n_e", lambda t: NetworkConfig(n_e=1), "n_e must be"),
    ("NetworkConfig.n_steps_float", lambda t: NetworkConfig(n_steps=2.5), "n_steps must be an integer"),
    ("NetworkConfig.dt", lambda t: NetworkConfig(dt=0.0), "dt must be"),
    ("NetworkConfig.p_ei", lambda t: NetworkConfig(p_ei=1.5), "p_ei must be"),
    ("NetworkConfig.tau_e_nan", lambda t: NetworkConfig(tau_e=float("nan")), "tau_e must be"),
    ("LossConfig.n_fit", lambda t: LossConfig(n_fit=1), "n_fit must be"),
    ("LossConfig.fit_activations_empty", lambda t: LossConfig(fit_activations=()), "fit_activations must"),
    ("LossConfig.test_activations_order", lambda t: LossConfig(test_activations=(5, 3)), "test_activations must"),
    ("LossConfig.window_stop", lambda t: LossConfig(window_start=50, window_stop=50), "window_stop must be"),
    ("LossConfig.w_rate_inf", lambda t: LossConfig(w_rate=float("inf")), "w_rate must be"),
    ("PlasticityConfig.synapses", lambda t: PlasticityConfig(synapses=("ii",)), "synapses must be"),
    ("PlasticityConfig.synapses_list", lambda t: PlasticityConfig(synapses=["ee"]), "synapses must be"),
    ("PlasticityConfig.tau_convention", lambda t: PlasticityConfig(tau_convention="odd"), "tau_convention must be"),
    ("PlasticityConfig.lr", lambda t: PlasticityConfig(lr=-1e-3), "lr must be"),
    ("PlasticityConfig.dale_eps", lambda t: PlasticityConfig(gate=1e-6, dale_eps=1e-5), "dale_eps must be"),
    ("ParamSpace.c_max", lambda t: ParamSpace(c_max=0.0), "c_max must be"),
    ("ParamSpace.tau_start", lambda t: ParamSpace(tau_start=1.0), "tau_start must be"),
    ("ParamSpace.term_mask", lambda t: ParamSpace(term_mask=_ZERO_MASK), "term_mask"),
    ("ParamSpace.signs", lambda t: ParamSpace(signs=_BAD_SIGNS), "signs entries"),
    ("ParamSpace.synapses", lambda t: ParamSpace(synapses=("ee", "ee")), "synapses must be"),
    ("SearchConfig.n_train", lambda t: SearchConfig(n_train=0), "n_train must be"),
    ("SearchConfig.popsize", lambda t: SearchConfig(popsize=1), "popsize must be"),
    ("SearchConfig.sigma0", lambda t: SearchConfig(sigma0=0.0), "sigma0 must be"),
    ("SearchConfig.turnover_slots", lambda t: SearchConfig(turnover_slots="odd"), "turnover_slots must be"),
    ("SearchConfig.max_generations", lambda t: SearchConfig(max_generations=0), "max_generations must be"),
    ("SearchConfig.p_turnover", lambda t: SearchConfig(p_turnover=-0.1), "p_turnover must be"),
    ("SearchConfig.space_synapses", lambda t: SearchConfig(space=ParamSpace(synapses=("ee", "ei"))),
     "space.synapses"),
    ("profile_config.profile", lambda t: profile_config("huge"), "profile must be"),
    ("run_search.seeds", lambda t: run_search(TINY, seeds=(1, 1), progress=False), "seeds must be"),
    ("run_search.max_seconds", lambda t: run_search(TINY, max_seconds=0, progress=False), "max_seconds must be"),
    ("run_search.resume_without_checkpoint", lambda t: run_search(TINY, resume=True, progress=False),
     "resume=True needs a checkpoint"),
    ("notebook_params.profile", lambda t: resolve_params("fig2", dict(profile="huge")), "profile must be"),
    ("notebook_params.seed", lambda t: resolve_params("fig2", dict(seed=-1)), "seed must be"),
    ("notebook_params.data_dir", lambda t: resolve_params("fig2", dict(data_dir="")), "data_dir must be"),
    ("notebook_params.p_turnover", lambda t: resolve_params("fig4", dict(p_turnover=2.0)), "p_turnover must be"),
    ("notebook_params.n_networks", lambda t: resolve_params("fig2", dict(n_networks=0)), "n_networks must be"),
    ("read_dataset.missing", lambda t: datasets.read_dataset(t / "missing.nc"), "does not exist"),
    ("read_dataset.garbage", lambda t: datasets.read_dataset(_bytes(t / "g.nc", b"not netcdf")),
     "not a readable netCDF"),
    ("read_dataset.truncated", lambda t: datasets.read_dataset(_truncated_netcdf(t / "half.nc")),
     "not a readable netCDF"),
    ("read_dataset.directory", lambda t: datasets.read_dataset(t), "not a readable netCDF"),
    ("read_dataset.wrong_kind", lambda t: datasets.read_dataset(_write_kind(t / "e.nc", "evaluation"), kind="search"),
     "expected 'search'"),
    ("run_search.resume_missing_checkpoint", lambda t: _resume(t / "none.ckpt"), "does not exist"),
    ("run_search.resume_garbage_checkpoint", lambda t: _resume(_bytes(t / "g.ckpt", b"garbage")), "corrupt"),
    ("run_search.resume_truncated_checkpoint",
     lambda t: _resume(_bytes(t / "t.ckpt", pickle.dumps({"format": "plasticity_repro.search/1", "x": 1})[:-5])),
     "corrupt"),
    ("run_search.resume_foreign_pickle", lambda t: _resume(_bytes(t / "f.ckpt", pickle.dumps({"a": 1}))),
     "not a plasticity_repro search checkpoint"),
    ("distributed.scheduler_address", lambda t: _client("localhost:8786"), "scheduler must be an address"),
    ("distributed.scheduler_unreachable", lambda t: _client("tcp://127.0.0.1:9"), "could not be reached"),
    ("distributed.n_workers", lambda t: _client(None, n_workers=0), "n_workers must be"),
]


def _bytes(path, data):
    path.write_bytes(data)
    return path


def _client(address, n_workers=1):
    from plasticity_repro.distributed import dask_client
    with dask_client(n_workers=n_workers, scheduler=address, timeout=2):
        pass


# (argv with {tmp} for the test's directory, text the last stderr line must contain); exit code 2
CLI_CASES = [
    (["search", "--out", "{tmp}/x.nc", "--turnover", "1.5"], "--turnover must be in [0, 1]"),
    (["search", "--out", "{tmp}/x.nc", "--runs", "0"], "--runs must be in [1, 4096]"),
    (["search", "--out", "{tmp}/x.nc", "--profile", "huge"], "--profile: invalid choice"),
    (["search", "--out", "{tmp}/x.nc", "--synapses", "ii"], "--synapses must be one of"),
    (["search", "--out", "{tmp}/x.nc", "--tau-convention", "odd"], "--tau-convention: invalid choice"),
    (["search", "--out", "{tmp}/x.nc", "--seed", "-1"], "--seed must be in"),
    (["search", "--out", "{tmp}/x.nc", "--max-generations", "abc"], "--max-generations must be an integer"),
    (["search", "--out", "{tmp}/x.nc", "--max-restarts", "101"], "--max-restarts must be in"),
    (["search", "--out", "{tmp}/x.nc", "--max-seconds", "0"], "--max-seconds must be in"),
    (["search", "--out", "{tmp}/x.nc", "--n-train", "0"], "--n-train must be in"),
    (["search", "--out", "{tmp}/x.nc", "--n-test", "x"], "--n-test must be an integer"),
    (["search", "--out", "{tmp}/x.nc", "--sigma0", "nan"], "--sigma0 must be in"),
    (["search", "--turnover", "0.1"], "the following arguments are required: --out"),
    (["search", "--out", "{tmp}/x.nc", "--n-train", "1", "--n-test", "0", "--resume", "--checkpoint",
      "{tmp}/none.ckpt"], "does not exist"),
    (["sweep", "--out", "{tmp}/y.nc"], "the following arguments are required: --search"),
    (["sweep", "--search", "{tmp}/s.nc", "--out", "{tmp}/y.nc", "--networks", "0"], "--networks must be in"),
    (["sweep", "--search", "{tmp}/s.nc", "--out", "{tmp}/y.nc", "--shard-size", "0"], "--shard-size must be in"),
    (["sweep", "--search", "{tmp}/s.nc", "--out", "{tmp}/y.nc", "--workers", "two"], "--workers must be an integer"),
    (["sweep", "--search", "{tmp}/s.nc", "--out", "{tmp}/y.nc", "--network-seed", "-5"], "--network-seed must be"),
    (["sweep", "--search", "{tmp}/s.nc", "--out", "{tmp}/y.nc", "--turnover", "-0.1"], "--turnover must be in"),
    (["sweep", "--search", "{tmp}/s.nc", "--out", "{tmp}/y.nc", "--scheduler", "host:8786"],
     "--scheduler must be an address"),
    (["sweep", "--search", "{tmp}/missing.nc", "--out", "{tmp}/y.nc"], "does not exist"),
    (["sweep", "--search", "{tmp}/garbage.nc", "--out", "{tmp}/y.nc"], "not a readable netCDF"),
    (["sweep", "--search", "{tmp}/evaluation.nc", "--out", "{tmp}/y.nc"], "expected 'search'"),
]

BAD_INPUTS = [c[0] for c in LIBRARY_CASES] + [" ".join(c[0][:1] + c[0][-2:]) for c in CLI_CASES]


def test_bad_input_cases_are_counted():
    print(f"\n{len(BAD_INPUTS)} bad-input cases: {len(LIBRARY_CASES)} library, {len(CLI_CASES)} CLI")
    assert len(BAD_INPUTS) == len(LIBRARY_CASES) + len(CLI_CASES) >= 70


@pytest.mark.parametrize("make,needle", [c[1:] for c in LIBRARY_CASES], ids=[c[0] for c in LIBRARY_CASES])
def test_bad_library_input_is_a_one_line_value_error(make, needle, tmp_path):
    with pytest.raises(ValueError) as e:
        make(tmp_path)
    msg = str(e.value)
    assert needle in msg, msg
    assert "\n" not in msg.strip(), msg


@pytest.mark.parametrize("argv,needle", CLI_CASES, ids=[" ".join(c[0][:1] + c[0][-2:]) for c in CLI_CASES])
def test_bad_cli_option_exits_2_with_one_line(argv, needle, tmp_path, capsys):
    from plasticity_repro.cli import main
    _bytes(tmp_path / "garbage.nc", b"garbage")
    _write_kind(tmp_path / "evaluation.nc", "evaluation")
    _write_kind(tmp_path / "s.nc", "search")
    with pytest.raises(SystemExit) as e:
        main([a.format(tmp=tmp_path) for a in argv])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert needle in err[-1], err
    assert err[-1].startswith("plasticity-repro") and not any("Traceback" in line for line in err)
    assert not (tmp_path / "x.nc").exists() and not (tmp_path / "y.nc").exists()


# -- (b) kills ------------------------------------------------------------------------------------
def _without_timing(ds):
    return ds.drop_vars("seconds_per_generation")


@pytest.fixture(scope="module")
def tiny_search():
    return run_search(TINY, seeds=TINY_SEEDS, progress=False)


def test_search_stopped_at_a_random_generation_resumes_to_the_same_dataset(tiny_search, tmp_path):
    k = int(np.random.default_rng().integers(1, TINY.max_generations))
    print(f"\nstopped after generation {k} of {TINY.max_generations}")
    ck = tmp_path / "s.ckpt"
    assert run_search(TINY, seeds=TINY_SEEDS, checkpoint=ck, progress=False, stop_after=k) is None
    resumed = run_search(TINY, seeds=TINY_SEEDS, checkpoint=ck, resume=True, progress=False)
    xr.testing.assert_equal(_without_timing(resumed), _without_timing(tiny_search))  # tolerance 0


def _cli(args, env):
    return [sys.executable, "-m", "plasticity_repro.cli", "search", "--profile", "quick", "--max-generations", "3",
            "--n-train", "1", "--n-test", "1", "--seed", "5", "--no-progress"] + args


def _generation(ckpt):
    try:
        with open(ckpt, "rb") as f:
            return pickle.load(f)["generation"]
    except (OSError, EOFError, pickle.UnpicklingError, KeyError):
        return 0


def test_cli_search_killed_with_sigkill_resumes_to_the_same_dataset(tmp_path):
    # the three processes share a compilation cache, so only the first one compiles
    env = dict(os.environ, JAX_PLATFORMS="cpu", JAX_COMPILATION_CACHE_DIR=str(tmp_path / "jax_cache"))
    env.pop("JAX_ENABLE_X64", None)
    full, part = tmp_path / "full.nc", tmp_path / "killed.nc"
    subprocess.run(_cli(["--out", str(full)], env), env=env, check=True, cwd=ROOT, capture_output=True,
                   timeout=300)
    k = int(np.random.default_rng().integers(1, 3))
    proc = subprocess.Popen(_cli(["--out", str(part)], env), env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    ckpt = tmp_path / "killed.nc.ckpt"
    t0 = time.time()
    while _generation(ckpt) < k and proc.poll() is None and time.time() - t0 < 200:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = _generation(ckpt)
    print(f"\nCLI search killed with SIGKILL after generation {killed_at} (aimed at {k}) of 3")
    assert proc.returncode == -signal.SIGKILL and not part.exists() and 1 <= killed_at < 3
    subprocess.run(_cli(["--out", str(part), "--resume"], env), env=env, check=True, cwd=ROOT,
                   capture_output=True, timeout=300)
    a, b = datasets.read_dataset(full, kind="search"), datasets.read_dataset(part, kind="search")
    xr.testing.assert_equal(_without_timing(b), _without_timing(a))  # tolerance 0
    assert a.attrs["params_hash"] == b.attrs["params_hash"]


_WRITER = textwrap.dedent("""
    import sys
    import numpy as np, xarray as xr
    from plasticity_repro.datasets import write_dataset
    x = np.random.default_rng(0).random((40, 1000, 500), np.float32)   # 80 MB of incompressible data
    print("start", flush=True)
    write_dataset(xr.Dataset({"x": (("a", "b", "c"), x)}, attrs={"kind": "big"}), sys.argv[1])
    print("done", flush=True)
""")


def _kill_mid_write(target):
    """Start a process writing a large dataset to `target`, SIGKILL it while its temporary file
    grows; return the temporary files it left."""
    d = target.parent
    before = set(os.listdir(d))
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(target)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout.readline().strip() == "start"
    t0 = time.time()
    tmp = []
    while time.time() - t0 < 60 and proc.poll() is None:
        tmp = [d / n for n in set(os.listdir(d)) - before if n.endswith(".tmp")]
        if tmp and tmp[0].exists() and tmp[0].stat().st_size > 2 ** 20:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the write finished before it could be killed"
    assert tmp, "no temporary file was seen"
    return tmp


def test_killed_dataset_write_leaves_the_previous_file_or_none(tmp_path):
    target = tmp_path / "big.nc"
    _kill_mid_write(target)
    assert not target.exists()                        # none: nothing was there before

    previous = xr.Dataset({"x": ("i", np.arange(5.0))}, attrs={"kind": "small"})
    datasets.write_dataset(previous, target)
    _kill_mid_write(target)
    xr.testing.assert_identical(datasets.read_dataset(target), datasets.read_dataset(target))
    got = datasets.read_dataset(target, kind="small")  # the previous file, complete and readable
    xr.testing.assert_equal(got, previous)


# -- (c) determinism and precision ---------------------------------------------------------------
def test_same_seed_and_profile_give_identical_datasets(tiny_search):
    again = run_search(TINY, seeds=TINY_SEEDS, progress=False)
    xr.testing.assert_equal(_without_timing(again), _without_timing(tiny_search))  # tolerance 0


def test_float32_losses_match_float64(tiny_search):
    """Train losses of 4 rules near the search's best (a generation's shape, so the float32 program
    is the search's own) at float32 and float64, on the same networks and inputs (float64 networks
    are exact upcasts of the float32 ones). Rules that blow up at either width are counted apart:
    near the blow-up threshold the flag itself can flip with the rounding."""
    lo, hi = TINY.space.bounds()
    best = tiny_search["best_params"].values[0]
    x = np.clip(best + 3e-4 * np.random.default_rng(1).standard_normal((1, TINY.base_popsize, len(best))), lo, hi)
    x[0, 0] = TINY.space.x0()  # c = 0: no plasticity, so only the simulation and decoder round
    cfg64 = dataclasses.replace(TINY, model=dataclasses.replace(TINY.model, float64=True))
    l32, r32 = (np.asarray(a, np.float64) for a in score_batch(TINY, jnp.asarray(x, jnp.float32),
                                                             train_networks(TINY, 1)))
    l64, r64 = (np.asarray(a) for a in score_batch(cfg64, jnp.asarray(x, jnp.float64), train_networks(cfg64, 1)))
    assert l64.dtype == np.float64
    tame = (l32 < TINY.model.loss.blowup_loss) & (l64 < TINY.model.loss.blowup_loss)
    rel = np.max(np.abs(l32 - l64)[tame] / np.abs(l64)[tame])
    dr2 = np.nanmax(np.abs(r32 - r64)[tame])
    print(f"\nfloat32 vs float64 ({tame.sum()} of {tame.size} rules without blow-up): max relative loss "
          f"difference {rel:.3g}, max |delta R^2| {dr2:.3g}; losses f64 {np.round(l64.ravel(), 4).tolist()}, "
          f"f32 {np.round(l32.ravel(), 4).tolist()}")
    print(f"  no plasticity: relative loss difference {abs(l32[0, 0] - l64[0, 0]) / l64[0, 0]:.3g}, "
          f"|delta R^2| {abs(r32[0, 0] - r64[0, 0]).max():.3g}")
    assert tame.sum() >= 2
    # measured: 2e-2 relative loss, 0.13 in R^2, largest for the rule without plasticity. The decoder's
    # minimum-norm lstsq drops singular values below eps(dtype) x 200, so on an ill-conditioned fit
    # (8 activations, 100 points) the two widths keep different ranks. Bound: ~2x the measurement.
    assert rel < 0.05 and dr2 < 0.25


_CACHE_CHILD = textwrap.dedent("""
    import plasticity_repro, jax, jax.numpy as jnp
    import_precision = jax.config.jax_default_matmul_precision
    plasticity_repro.configure(compilation_cache=True)
    jax.jit(lambda x: x * 2 + 1)(jnp.arange(3.0)).block_until_ready()   # compiles in milliseconds
    from plasticity_repro.parallel import jit
    hlo = jit(lambda a: a @ a).lower(jnp.ones((3, 3))).as_text()
    print(import_precision, "HIGHEST" in hlo, jax.config.jax_persistent_cache_min_compile_time_secs)
""")


@pytest.mark.parametrize("min_time", [None, "5"])
def test_small_programs_go_to_the_persistent_cache(min_time, tmp_path):
    """configure(compilation_cache=True) caches every compiled program (JAX's default skips those
    under 1 s), unless JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS says otherwise; importing the
    package changes no JAX setting; the package's programs ask for full-precision float32 matrix
    products (a GPU would otherwise use TF32)."""
    cache = tmp_path / "jax_cache"
    env = dict(os.environ, JAX_PLATFORMS="cpu", JAX_COMPILATION_CACHE_DIR=str(cache))
    env.pop("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", None)
    env.pop("JAX_DEFAULT_MATMUL_PRECISION", None)
    if min_time is not None:
        env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = min_time
    out = subprocess.run([sys.executable, "-c", _CACHE_CHILD], env=env, cwd=ROOT, capture_output=True,
                         text=True, check=True, timeout=120)
    entries = [p for p in cache.glob("*") if not p.name.startswith(".")] if cache.exists() else []
    words = out.stdout.split()
    assert words[0] == "None" and words[1] == "True", out.stdout   # import: JAX's default; programs: highest
    if min_time is None:
        assert float(words[-1]) == 0.0 and entries, (out.stdout, entries)
    else:
        assert float(words[-1]) == 5.0 and not entries, (out.stdout, entries)
    assert out.stderr == "", out.stderr
