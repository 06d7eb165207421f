"""Throughput of the batched JAX simulation against the plain-NumPy reference.

Measures network-activations per second (one network simulated for one activation of
n_steps Euler steps with the plasticity rule applied every step) of `simulate.run_networks`
(E->E rule with all 20 coefficients nonzero, effects tracked, float32) at several batch sizes,
its compile time (first call minus a steady call), and `numpy_reference.activation` (one
activation, float64) in the same process. Prints a table and writes a small JSON file to
benchmarks/results/<device>-<date>.json.

    python -m benchmarks.bench                   # batches 1, 10, 170, 340, 1000
    python -m benchmarks.bench --quick           # batches 1, 10; fewer repeats
    python -m benchmarks.bench --batches 1 170 --activations 10
    python -m benchmarks.bench --sizes 25 50 100 --generations quick laptop --runs 1 2 4
    python -m benchmarks.bench --batches 170 --no-extras --profile 170   # where the step's time goes

Beyond the batch sweep it measures (unless skipped with --no-extras): throughput against network
size (n_e E cells with n_e / 3 I cells, batch 34, 2 activations), seconds per CMA-ES generation
of the search profiles (the second generation of a fresh search, i.e. without compile; 1 and
several runs batched in one program), and the process's peak resident memory. The network batch is spread
over one XLA host device per core (plasticity_repro.parallel); `PLASTICITY_REPRO_HOST_DEVICES=1`
measures the single-device program for comparison.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import time
from pathlib import Path

# The authors' figure: their NumPy code ran ~7.9 network-activations/s per CPU core. Quoted
# from the paper's setup, not measured here.
AUTHORS_ACTS_PER_S_PER_CORE = 7.9

_COMPILE_CHILD = """
import sys, time
import plasticity_repro, jax, jax.numpy as jnp
plasticity_repro.configure(host_devices="auto", compilation_cache=True)
from plasticity_repro.search import profile_config, score_batch, train_networks
cfg = profile_config(sys.argv[1])
nets = train_networks(cfg, 1)
x = jnp.zeros((1, cfg.base_popsize, cfg.space.n_params), jnp.float32)
t0 = time.perf_counter()
score_batch.lower(cfg, x, nets).compile()
print(time.perf_counter() - t0)
"""


RULES = {"ee": ("ee",), "all": ("ee", "ei", "ie")}


def _rule(rng, synapses=("ee",)):
    """A rule with every one of the 20 coefficients of each plastic type nonzero (small, so runs
    stay finite)."""
    import numpy as np
    from plasticity_repro.config import SYNAPSE_TYPES
    from plasticity_repro.rules import Rule
    coefs = np.zeros((3, 20))
    for t in synapses:
        coefs[SYNAPSE_TYPES.index(t)] = rng.choice([-1.0, 1.0], 20) * rng.uniform(0.002, 0.01, 20)
    taus = np.full((3, 12), 1e-3) + rng.uniform(0, 19e-3, (3, 12))
    return Rule.create(coefs, taus)


def _config(n_act: int, n_e: int = 25, n_i: int = 8, synapses=("ee",)):
    from plasticity_repro.config import LossConfig, ModelConfig, NetworkConfig, PlasticityConfig
    loss = LossConfig(fit_activations=(n_act - 2,), test_activations=(n_act - 1,))
    return ModelConfig(network=NetworkConfig(n_e=n_e, n_i=n_i), loss=loss, n_activations=n_act, float64=False,
                       plasticity=PlasticityConfig(synapses=tuple(synapses)))


def bench_jax(batch: int, n_act: int, repeats: int, p_turnover: float = 0.05, n_e: int = 25, n_i: int = 8,
              effects: bool = True, rule: str = "ee", backend: str = "auto") -> dict:
    """Steady and first-call wall time of run_networks on `batch` networks x `n_act` activations,
    with the E->E ("ee") or all-synapse ("all") rule, on one engine backend."""
    import jax
    import numpy as np
    from plasticity_repro import engine
    from plasticity_repro.network import make_networks
    from plasticity_repro.simulate import run_networks
    engine.configure(backend=backend)
    backend, threads = engine.settings()
    cfg = _config(n_act, n_e, n_i, RULES[rule])
    if not effects:   # the step without the per-term effect sums (for the time breakdown)
        cfg = cfg.replace(plasticity=cfg.plasticity.replace(track_effects=False))
    rule_name, rule = rule, _rule(np.random.default_rng(0), RULES[rule])
    nets = make_networks(cfg, np.arange(batch), p_turnover_ee=p_turnover)
    jax.block_until_ready(nets)
    t0 = time.perf_counter()
    out = jax.block_until_ready(run_networks(cfg, rule, nets))
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(run_networks(cfg, rule, nets))
        times.append(time.perf_counter() - t0)
    steady = min(times)
    return dict(batch=batch, rule=rule_name, backend=backend, threads=threads,
                n_e=n_e, n_i=n_i, effects=effects, n_activations=n_act, first_s=first, steady_s=steady,
                steady_all_s=times, compile_s=max(first - steady, 0.0),
                acts_per_s=batch * n_act / steady,
                us_per_step=steady * 1e6 / (n_act * (cfg.network.n_steps - 1)),
                blew_up=int(np.asarray(out.blew_up).sum()))


def bench_numpy(repeats: int) -> dict:
    """One float64 activation of the NumPy reference with the same kind of rule (E->E only)."""
    import jax
    import numpy as np
    from plasticity_repro import numpy_reference as ref
    from plasticity_repro.network import make_network
    from plasticity_repro.simulate import activation_draws
    cfg = _config(2)
    rule = _rule(np.random.default_rng(0))
    net = make_network(cfg, 0)
    arr, _, _ = activation_draws(cfg, net, 0)
    drive = ref.drive_from_arrivals(np.asarray(arr, np.float64))
    args = (np.asarray(net.w0, np.float64), drive, np.asarray(net.plastic),
            np.asarray(rule.coefs, np.float64), np.asarray(rule.taus, np.float64))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        ref.activation(*args, synapses=("ee",))
        times.append(time.perf_counter() - t0)
    jax.block_until_ready(arr)
    return dict(steady_s=min(times), acts_per_s=1.0 / min(times))


def bench_generation(profile: str, runs: int, backend: str = "auto") -> dict:
    """Seconds of the second CMA-ES generation of a fresh E->E search (`runs` runs batched in one
    program, turnover on half the networks) and of the first (which includes compiling)."""
    import tempfile
    from plasticity_repro import engine
    from plasticity_repro.search import profile_config, run_search
    engine.configure(backend=backend)
    backend = engine.settings()[0]
    cfg = profile_config(profile, p_turnover=0.00072, max_generations=2)
    with tempfile.TemporaryDirectory() as tmp:
        ds = run_search(cfg, seeds=list(range(runs)), progress=False, checkpoint=f"{tmp}/bench.ckpt")
    sec = ds.seconds_per_generation.values
    n_cand = cfg.base_popsize
    acts = runs * cfg.model.n_activations * (n_cand * cfg.n_train)
    return dict(profile=profile, runs=runs, backend=backend, candidates=n_cand, n_train=cfg.n_train, n_test=cfg.n_test,
                n_activations=cfg.model.n_activations, first_generation_s=float(sec[0]),
                generation_s=float(sec[1]), train_acts_per_s=acts / float(sec[1]))


def bench_search_compile(profile: str) -> dict:
    """Trace + compile seconds of a search's scoring step (score_batch, 1 run) in fresh processes:
    cold (empty persistent compilation cache) and warm (the cache the cold process filled)."""
    import subprocess
    import sys
    import tempfile
    out = dict(profile=profile)
    with tempfile.TemporaryDirectory() as tmp:
        # the child inherits JAX_PLATFORMS as it is (unset: JAX picks the GPU where there is one,
        # as in this process; `make bench` sets cpu, or cuda with GPU=)
        env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=tmp)
        for name in ("cold_s", "warm_s"):
            res = subprocess.run([sys.executable, "-c", _COMPILE_CHILD, profile], env=env, capture_output=True,
                                 text=True, check=True)
            out[name] = float(res.stdout.strip().splitlines()[-1])
    return out


STEP_PARTS = ("drive", "traces", "rule_update", "effects", "inputs_turnover", "records")


def bench_step_profile(batch: int, n_act: int = 2) -> dict:
    """Where a simulation's time goes: one run of `batch` networks x `n_act` activations under
    JAX's profiler, with XLA:CPU recording every kernel it runs. Kernels are attributed to the
    named scopes of the step (drive: input recursion and W r; traces: traces and the rule's
    factors; rule_update: the W update; effects: the per-term effect sums) and of the activation
    loop (inputs_turnover: draws and turnover; records: what a run keeps); the rest is loop
    bookkeeping (carry copies, stacking the rates). The profiler's per-kernel overhead inflates the
    total, so shares are of the profiled kernel time. Returns µs per Euler step of a device's whole
    share (all its chunks, parallel.chunk_plan) by part, the kernels run per step of one chunk,
    and the top kernels."""
    import collections
    import glob
    import tempfile
    from functools import partial
    import jax
    import numpy as np
    from jax.profiler import ProfileData
    from plasticity_repro.network import make_networks
    from plasticity_repro.parallel import chunk_plan, compiler_options, padded_size
    from plasticity_repro import engine
    from plasticity_repro.simulate import run_batch
    before = engine.requested()
    engine.configure(backend="xla")   # the named scopes label the XLA engine's kernels
    try:
        return _step_profile(batch, n_act)
    finally:
        engine.configure(backend=before)


def _step_profile(batch: int, n_act: int) -> dict:
    import collections
    import glob
    import tempfile
    from functools import partial
    import jax
    import numpy as np
    from jax.profiler import ProfileData
    from plasticity_repro.network import make_networks
    from plasticity_repro.parallel import chunk_plan, compiler_options, padded_size
    from plasticity_repro.simulate import run_batch
    cfg = _config(n_act)
    rule = _rule(np.random.default_rng(0))
    nets = make_networks(cfg, np.arange(batch), p_turnover_ee=0.05)
    opts = compiler_options()
    if opts is not None:   # CPU: XLA:CPU records its kernels only when asked
        opts = dict(opts, xla_cpu_enable_xprof_traceme=True)
    f = jax.jit(partial(run_batch, cfg), compiler_options=opts)
    compiled = f.lower(rule, nets).compile()
    part_of = {}
    for m in re.finditer(r"%([\w.\-]+) = [^\n]*?op_name=\"([^\"]*)\"", compiled.as_text()):
        path = m.group(2).split("/")
        part_of[m.group(1)] = next((p for p in STEP_PARTS if p in path), "other")
    jax.block_until_ready(compiled(rule, nets))
    t0 = time.perf_counter()
    jax.block_until_ready(compiled(rule, nets))
    plain_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        with jax.profiler.trace(tmp):
            jax.block_until_ready(compiled(rule, nets))
        data = ProfileData.from_file(sorted(glob.glob(f"{tmp}/**/*.xplane.pb", recursive=True))[-1])
    total, count = collections.Counter(), collections.Counter()
    for plane in data.planes:
        for line in plane.lines:
            for ev in line.events:
                op = dict(ev.stats).get("hlo_op")
                if op and not re.match(r"(while|conditional|call)\b", op):   # loops contain kernels
                    total[op] += ev.duration_ns
                    count[op] += 1
    steps = n_act * (cfg.network.n_steps - 1)
    n_chunks = chunk_plan(padded_size(batch) // len(jax.devices()))[0]   # a device's chunks run in turn
    n_dev = len(jax.devices())
    kernel_ns = sum(total.values())
    by_part, runs_by_part = collections.Counter(), collections.Counter()
    for op, ns in total.items():
        by_part[part_of.get(op, "other")] += ns
        runs_by_part[part_of.get(op, "other")] += count[op]
    per_step = {p: by_part[p] / 1e3 / steps / n_dev for p in STEP_PARTS + ("other",)}
    in_loop = sum(c for op, c in count.items() if c >= steps * n_chunks)
    top = [dict(kernel=op, part=part_of.get(op, "other"), us_per_step=ns / 1e3 / steps / n_dev,
                share=ns / kernel_ns) for op, ns in total.most_common(8)]
    return dict(batch=batch, n_activations=n_act, steps=steps, devices=n_dev, plain_s=plain_s,
                plain_us_per_step=plain_s * 1e6 / steps, profiled_us_per_step_by_part=per_step,
                share_by_part={p: by_part[p] / kernel_ns for p in per_step},
                kernels_per_step=in_loop / steps / n_chunks / n_dev, chunks_per_device=n_chunks,
                kernels_per_step_by_part={p: runs_by_part[p] / steps / n_chunks / n_dev for p in per_step},
                top_kernels=top)


def _logged(what: str, fn, *args, **kwargs) -> dict:
    """fn(*args, **kwargs), its scalar results printed on one line as soon as it returns (a run
    stopped at a time limit keeps what it measured)."""
    res = fn(*args, **kwargs)
    brief = {k: round(v, 4) if isinstance(v, float) else v for k, v in res.items()
             if isinstance(v, (int, float, str)) and not isinstance(v, bool)}
    print(f"[{what}] {json.dumps(brief)}", flush=True)
    return res


def _table(head: str, lines: list) -> None:
    """Print a header, a rule under it, and the formatted rows."""
    print(head)
    print("-" * len(head))
    for line in lines:
        print(line)


def _peak_rss_mb() -> float:
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _device_name() -> str:
    import jax
    d = jax.devices()[0]
    kind = getattr(d, "device_kind", d.platform)
    return f"{d.platform}-{kind}" if kind != d.platform else d.platform


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, nargs="+", default=None,
                        help="networks per call (default 1 10 170 340 1000; --quick: 1 10)")
    parser.add_argument("--activations", type=int, default=10,
                        help="activations per network run (default 10)")
    parser.add_argument("--repeats", type=int, default=None, help="steady calls per batch (best is kept)")
    parser.add_argument("--quick", action="store_true", help="small batches, fewer repeats, no extras")
    parser.add_argument("--sizes", type=int, nargs="+", default=[25, 50, 100, 200],
                        help="n_e of the size sweep (n_i = n_e // 3; default 25 50 100 200)")
    parser.add_argument("--generations", nargs="+", default=["quick", "laptop"],
                        help="search profiles timed per generation (default quick laptop; paper ~200 s on 2 cores)")
    parser.add_argument("--runs", type=int, nargs="+", default=[1, 4],
                        help="batched search runs per generation timing (default 1 4)")
    parser.add_argument("--rules", nargs="+", choices=list(RULES), default=list(RULES),
                        help="rules of the batch sweep: ee (E->E) and/or all (all synapse types); default both")
    parser.add_argument("--no-extras", action="store_true", help="only the batch sweep")
    parser.add_argument("--profile", type=int, default=None, metavar="BATCH",
                        help="profile the step at this batch (default: the sweep's largest batch up to 340; "
                             "0 to skip)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results",
                        help="folder for the JSON results")
    args = parser.parse_args(argv)
    if args.activations < 2:
        parser.error(f"--activations must be >= 2, got {args.activations}")
    batches = args.batches or ([1, 10] if args.quick else [1, 10, 170, 340, 1000])
    repeats = args.repeats or (2 if args.quick else 3)

    import plasticity_repro
    plasticity_repro.configure(host_devices=os.environ.get("PLASTICITY_REPRO_HOST_DEVICES", "auto"))
    import jax
    from plasticity_repro.parallel import on_cpu
    # measure real compile time, not a hit in a persistent compilation cache
    jax.config.update("jax_enable_compilation_cache", False)
    devices = [str(d) for d in jax.devices()]
    device = _device_name()
    ncpu = os.cpu_count()
    now = datetime.datetime.now().astimezone()

    from plasticity_repro import engine
    from plasticity_repro.engine import fused
    backends = ["fused", "xla"] if (on_cpu() and fused.available()) else ["xla"]
    numpy_res = _logged("numpy", bench_numpy, repeats=2 if args.quick else 3)
    rows = [_logged("batch", bench_jax, b, args.activations, repeats, rule=rule, backend=be)
            for rule in args.rules for b in batches for be in backends]
    extras = not (args.quick or args.no_extras)
    no_eff = _logged("no effects", bench_jax, batches[-1], args.activations, repeats, effects=False,
                     backend=backends[0]) if extras else None
    sizes = [_logged("size", bench_jax, 34, 2, 1, n_e=n_e, n_i=max(n_e // 3, 1), backend=be)
             for n_e in args.sizes for be in backends] if extras else []
    gens = [_logged("generation", bench_generation, p, r, be) for p in args.generations for r in args.runs
            for be in backends] if extras else []
    engine.configure(backend=backends[0])
    compiles = [_logged("compile", bench_search_compile, p) for p in ("quick", "paper")] if extras else []
    prof_batch = args.profile if args.profile is not None else (
        0 if args.quick else max([b for b in batches if b <= 340] or [batches[0]]))
    profile = None
    if prof_batch > 0:
        try:
            engine.configure(backend="xla")   # the profile attributes XLA's kernels to the step's parts
            profile = bench_step_profile(prof_batch)
        except Exception as err:   # noqa: BLE001  the attribution reads XLA:CPU's kernel events
            if on_cpu():
                raise
            profile = dict(error=f"{type(err).__name__}: {err}"[:300])
    threads = engine.threads()
    peak_flops = fused.fma_peak(threads) if "fused" in backends else None

    np_rate = numpy_res["acts_per_s"]
    authors = AUTHORS_ACTS_PER_S_PER_CORE * ncpu
    print(f"\nplasticity_repro benchmark  {now:%Y-%m-%d %H:%M %Z}")
    print(f"devices: {devices} (the batch is split over them)   CPU count: {ncpu}   "
          f"{platform.processor() or platform.machine()}   fused engine threads: {threads}")
    print(f"jax {jax.__version__}; network-activations of 1100 Euler steps, rule with 20 "
          f"nonzero terms per plastic type, effects tracked, float32, {args.activations} activations per run")
    print(f"NumPy reference (numpy_reference.activation, float64, 1 activation, E->E): "
          f"{numpy_res['steady_s']:.3f} s = {np_rate:.2f} net-act/s")
    print(f"authors' reference: ~{AUTHORS_ACTS_PER_S_PER_CORE} net-act/s per core (quoted, not "
          f"measured here) x {ncpu} cores = {authors:.1f} net-act/s")
    if peak_flops:
        print(f"floating-point peak, measured (float32 FMA chains on {fused.vector_bytes()}-byte vectors, {threads} threads): "
              f"{peak_flops / 1e9:.0f} Gflop/s")
    for rule in args.rules:
        fl = fused.flops_per_step(25, 8, RULES[rule])
        mflop = fl["total"] * 1099 / 1e6
        ceiling = peak_flops / (mflop * 1e6) if peak_flops else None
        print(f"\n{'E->E' if rule == 'ee' else 'all-synapse (E->E, E->I, I->E)'} rule: "
              f"{fl['total']:,} flop per Euler step and network (synapses {fl['synapses']:,}, cells "
              f"{fl['cells']}, per-block vectors and effect sums {fl['blocks']:,}; engine.fused.flops_per_step) "
              f"= {mflop:.1f} Mflop per network-activation" +
              (f"; ceiling at the measured peak {ceiling:,.0f} net-act/s" if ceiling else ""))
        mine = [r for r in rows if r["rule"] == rule]
        xla = {r["batch"]: r for r in mine if r["backend"] == "xla"}
        _table(f"{'backend':>8} {'batch':>6} {'steady s':>9} {'net-act/s':>10} {'us/step':>8} {'compile s':>10} "
               f"{'x NumPy':>8} {'x authors':>10} {'x xla':>6} {'% peak':>7}",
               [f"{r['backend']:>8} {r['batch']:>6} {r['steady_s']:>9.3f} {r['acts_per_s']:>10.1f} "
                f"{r['us_per_step']:>8.1f} {r['compile_s']:>10.2f} {r['acts_per_s'] / np_rate:>8.1f} "
                f"{r['acts_per_s'] / authors:>10.2f} {r['acts_per_s'] / xla[r['batch']]['acts_per_s']:>6.2f} "
                f"{(100 * r['acts_per_s'] / ceiling) if ceiling else float('nan'):>7.0f}"
                for r in mine])
        for r in mine:
            r["flop_per_step"] = fl["total"]
            r["fraction_of_peak"] = r["acts_per_s"] / ceiling if ceiling else None
    print("us/step: wall time of one Euler step of the whole batch (on a GPU, the latency floor); x xla: "
          "against the XLA engine at the same batch in this run")
    best = max(rows, key=lambda r: r["acts_per_s"])
    print(f"\nbest: {best['acts_per_s']:.0f} net-act/s ({best['backend']}, {best['rule']} rule, batch "
          f"{best['batch']}) on {device}")
    if no_eff:
        full = [r for r in rows if r["batch"] == no_eff["batch"]][0]
        share = 1 - no_eff["steady_s"] / full["steady_s"]
        print(f"\nbatch {no_eff['batch']} without the per-term effect sums: {no_eff['acts_per_s']:.1f} net-act/s "
              f"(effects are {100 * share:.0f} % of the step)")
    if sizes:
        print("\nnetwork size (batch 34, 2 activations, one steady call)")
        _table(f"{'backend':>8} {'n_e':>5} {'n_i':>4} {'net-act/s':>10} {'compile s':>10} {'x NumPy(25+8)':>14}",
               [f"{r['backend']:>8} {r['n_e']:>5} {r['n_i']:>4} {r['acts_per_s']:>10.1f} {r['compile_s']:>10.2f} "
                f"{r['acts_per_s'] / np_rate:>14.1f}" for r in sizes])
    if gens:
        print("\nsearch generation (E->E, turnover on half the networks; training networks only in net-act/s)")
        _table(f"{'backend':>8} {'profile':>8} {'runs':>5} {'cands':>6} {'acts':>5} {'gen s':>8} {'1st gen s':>10} {'net-act/s':>10}",
               [f"{g['backend']:>8} {g['profile']:>8} {g['runs']:>5} {g['candidates']:>6} {g['n_activations']:>5} "
                f"{g['generation_s']:>8.2f} {g['first_generation_s']:>10.2f} {g['train_acts_per_s']:>10.1f}"
                for g in gens])
    if compiles:
        print("\nsearch step compile (score_batch, 1 run; fresh process: trace + compile)")
        _table(f"{'profile':>8} {'cold s':>8} {'warm s':>8}",
               [f"{c['profile']:>8} {c['cold_s']:>8.2f} {c['warm_s']:>8.2f}" for c in compiles])
        print("warm: the same step in a new process reading JAX's persistent compilation cache")
    if profile and "error" in profile:
        print(f"\nstep profile skipped on {device}: {profile['error']}")
    elif profile:
        print(f"\nwhere the XLA engine's step time goes (batch {profile['batch']}, {profile['devices']} device(s), "
              f"{profile['chunks_per_device']} chunk(s) per device, "
              f"{profile['kernels_per_step']:.0f} kernels per step and chunk; unprofiled "
              f"{profile['plain_us_per_step']:.0f} us per step)")
        _table(f"{'part':>16} {'share':>6} {'us/step':>8} {'kernels':>8}",
               [f"{p:>16} {100 * profile['share_by_part'][p]:>5.0f}% {us:>8.1f} "
                f"{profile['kernels_per_step_by_part'][p]:>8.1f}"
                for p, us in profile["profiled_us_per_step_by_part"].items()])
        print("kernels: per Euler step of one chunk (per-activation kernels count a fraction); the "
              "profiler adds about a microsecond per kernel, so parts of many small kernels look larger")
        print("largest kernels: " + ", ".join(f"{k['kernel']} ({k['part']}, {100 * k['share']:.0f} %)"
                                                for k in profile["top_kernels"][:5]))
    peak = _peak_rss_mb()
    print(f"\npeak resident memory of this process: {peak:.0f} MB")

    from plasticity_repro.datasets import cpu_chunk_networks, xla_cpu_opt_level
    result = dict(date=now.isoformat(timespec="seconds"), devices=devices, device=device,
                  backend=jax.default_backend(),
                  size_runs=sizes, generation_runs=gens, search_compile=compiles, step_profile=profile,
                  peak_flops=peak_flops, fused_threads=threads, no_effects_run=no_eff, peak_rss_mb=peak,
                  cpu_count=ncpu, jax=jax.__version__, activations_per_run=args.activations,
                  cpu_chunk_networks=cpu_chunk_networks(), xla_cpu_opt_level=xla_cpu_opt_level(),
                  numpy_reference=numpy_res, jax_runs=rows,
                  authors_acts_per_s_per_core=AUTHORS_ACTS_PER_S_PER_CORE,
                  authors_note="quoted from the authors' setup, not measured here")
    args.out.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", device)
    path = args.out / f"{safe}-{now:%Y%m%d-%H%M%S}.json"
    path.write_text(json.dumps(result, indent=1))
    print(f"\nwrote {path}")
    return result


if __name__ == "__main__":
    main()
