"""The `plasticity-repro` command.

    plasticity-repro search --profile laptop --synapses ee --turnover 0.00072 --runs 4 --out PATH.nc
    plasticity-repro sweep --search PATH.nc --networks 100 --shard-size 10 --workers 2 --out PATH.nc
    plasticity-repro profiles

Bad options end with a one-line `error: ...` naming the option and what is allowed (exit 2).
"""
from __future__ import annotations

import argparse
import os
import sys


def _number_in(name, lo, hi, cast, kind, fmt):
    """argparse type: `cast` the text and check it lies in [lo, hi]; one-line errors naming `name`."""
    def parse(text):
        try:
            v = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be {kind} in [{lo:{fmt}}, {hi:{fmt}}], got {text!r}")
        if not (lo <= v <= hi):
            raise argparse.ArgumentTypeError(f"{name} must be in [{lo:{fmt}}, {hi:{fmt}}], got {text}")
        return v
    return parse


def _float_in(name, lo, hi):
    return _number_in(name, lo, hi, float, "a number", "g")


def _int_in(name, lo, hi):
    return _number_in(name, lo, hi, int, "an integer", "d")


def _synapses(text):
    allowed = {"ee": ("ee",), "all": ("ee", "ei", "ie"), "ee,ei,ie": ("ee", "ei", "ie")}
    if text not in allowed:
        raise argparse.ArgumentTypeError(f"--synapses must be one of ['ee', 'all'], got {text!r}")
    return allowed[text]


def build_parser() -> argparse.ArgumentParser:
    from .search import PROFILES
    p = argparse.ArgumentParser(prog="plasticity-repro", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("search", help="meta-learn plasticity rules with CMA-ES; writes a netCDF dataset",
                       description="Run one or more batched CMA-ES searches (spec §5-6) and write their "
                                   "xarray dataset (history, best rules, covariance, provenance).")
    s.add_argument("--profile", choices=list(PROFILES), default="quick",
                   help="problem size: quick (CI, ~1 min), laptop (<= 1 h on 2 cores), paper (the spec's "
                        "numbers; GPU). Default: quick")
    s.add_argument("--synapses", type=_synapses, default=("ee",),
                   help="plastic synapse types: 'ee' (E->E only, 32 parameters) or 'all' (E->E, E->I, I->E, "
                        "96 parameters). Default: ee")
    s.add_argument("--tau-convention", choices=["independent", "shifted"], default="independent",
                   help="time constants of E->I and I->E: own 12 each (default) or the paper-era E->E ones "
                        "shifted by one and two places")
    s.add_argument("--turnover", type=_float_in("--turnover", 0.0, 1.0), default=0.0,
                   help="E->E turnover probability per synapse and activation while training, applied to "
                        "the even network slots, in [0, 1] (paper: 0.00072). Default: 0")
    s.add_argument("--runs", type=_int_in("--runs", 1, 4096), default=1,
                   help="independent searches batched in one program, in [1, 4096]. Default: 1")
    s.add_argument("--seed", type=_int_in("--seed", 0, 2 ** 31 - 1), default=0,
                   help="search seed of the first run; run r uses seed + r. In [0, 2^31-1]. Default: 0")
    s.add_argument("--max-generations", type=_int_in("--max-generations", 1, 10 ** 7), default=None,
                   help="generations in all (over restarts), in [1, 1e7]. Default: the profile's")
    s.add_argument("--max-restarts", type=_int_in("--max-restarts", 0, 100), default=None,
                   help="IPOP restarts (population doubled each), in [0, 100]. Default: the profile's")
    s.add_argument("--max-seconds", type=_float_in("--max-seconds", 1e-3, 1e9), default=None,
                   help="wall-time budget in seconds, in [0.001, 1e9]. Default: none")
    s.add_argument("--n-train", type=_int_in("--n-train", 1, 10 ** 5), default=None,
                   help="train networks per candidate, in [1, 1e5]. Default: the profile's")
    s.add_argument("--n-test", type=_int_in("--n-test", 0, 10 ** 5), default=None,
                   help="held-out networks for the test curve, in [0, 1e5]. Default: the profile's")
    s.add_argument("--sigma0", type=_float_in("--sigma0", 1e-9, 100.0), default=None,
                   help="initial CMA-ES step size (coefficients and tau in s share it), in (0, 100]. "
                        "Default: 0.003")
    s.add_argument("--float64", action="store_true", help="simulate in float64 (default float32)")
    s.add_argument("--out", required=True, help="path of the netCDF dataset to write (atomically)")
    s.add_argument("--checkpoint", default=None,
                   help="checkpoint file written atomically every generation. Default: OUT.ckpt")
    s.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")

    sub.add_parser("profiles", help="print the named profiles")

    w = sub.add_parser("sweep", help="evaluate a search's best rules on fresh networks with Dask; writes a "
                                     "netCDF dataset",
                       description="Evaluate the best rule of every run of a search dataset on fresh networks, "
                                   "sharded (rule x chunk of networks) over a Dask cluster; finished shards are "
                                   "kept and skipped on a rerun.")
    w.add_argument("--search", required=True, help="search dataset (netCDF) written by `plasticity-repro search`")
    w.add_argument("--networks", type=_int_in("--networks", 1, 10 ** 6), default=100,
                   help="fresh networks per rule, in [1, 1e6]. Default: 100")
    w.add_argument("--network-seed", type=_int_in("--network-seed", 0, 2 ** 31 - 1 - 10 ** 6), default=50_000,
                   help="seed of the first network; network i uses seed + i. Default: 50000")
    w.add_argument("--shard-size", type=_int_in("--shard-size", 1, 10 ** 5), default=10,
                   help="networks per shard (one rule each), in [1, 1e5]. Default: 10")
    w.add_argument("--workers", type=_int_in("--workers", 1, 1024), default=2,
                   help="worker processes (one thread each) of the embedded cluster, in [1, 1024]. Default: 2")
    w.add_argument("--scheduler", type=_scheduler, default=None,
                   help="address of a running Dask scheduler (e.g. tcp://host:8786) instead of an embedded "
                        "cluster; --workers is then ignored")
    w.add_argument("--turnover", type=_float_in("--turnover", 0.0, 1.0), default=0.0,
                   help="E->E turnover probability per synapse and activation, in [0, 1]. Default: 0")
    w.add_argument("--shard-dir", default=None, help="directory of the shard files. Default: OUT.shards")
    w.add_argument("--out", required=True, help="path of the combined netCDF dataset to write (atomically)")
    return p


def _scheduler(text):
    import re
    if not re.match(r"^(tcp|tls|ws|wss|ucx|inproc)://\S+$", text):
        raise argparse.ArgumentTypeError(f"--scheduler must be an address like tcp://host:8786, got {text!r}")
    return text


def _sweep(args, parser) -> int:
    """The `sweep` command: best rules of a search dataset on fresh networks, via Dask."""
    import numpy as np
    try:
        from . import datasets, distributed
        search = datasets.read_dataset(args.search, kind="search")
        cfg = distributed.search_config_of(search)
        if cfg.model.float64:
            import jax
            jax.config.update("jax_enable_x64", True)
        rules, names = distributed.best_rules(search, cfg)
        seeds = args.network_seed + np.arange(args.networks)
        ds = distributed.evaluation_sweep(
            cfg.model, rules, names, seeds, shard_dir=args.shard_dir or args.out + ".shards",
            shard_size=args.shard_size, p_turnover_ee=args.turnover, n_workers=args.workers,
            scheduler=args.scheduler, profile=cfg.profile,
            extra_params=dict(search_params_hash=search.attrs.get("params_hash")))
        datasets.write_dataset(ds, args.out)
    except ValueError as e:
        parser.exit(2, f"plasticity-repro: error: {e}\n")
    med = np.nanmedian(ds["loss"].values, axis=1)
    print(f"wrote {args.out}: {ds.sizes['rule']} rules x {ds.sizes['network']} networks, median loss per rule "
          f"{[round(float(v), 1) for v in med]}")
    return 0


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    if args.command == "profiles":
        from .search import PROFILES
        for name, p in PROFILES.items():
            print(name, p)
        return 0
    if args.command == "sweep":
        return _sweep(args, parser)
    if args.float64:
        import jax
        jax.config.update("jax_enable_x64", True)
    from .search import profile_config, run_search
    overrides = {k: v for k, v in (("max_generations", args.max_generations),
                                   ("max_restarts", args.max_restarts), ("n_train", args.n_train),
                                   ("n_test", args.n_test), ("sigma0", args.sigma0)) if v is not None}
    try:
        cfg = profile_config(args.profile, synapses=args.synapses, p_turnover=args.turnover,
                             tau_convention=args.tau_convention, **overrides)
        if args.float64:
            import dataclasses
            cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, float64=True))
        from .datasets import write_dataset
        ckpt = args.checkpoint or args.out + ".ckpt"
        ds = run_search(cfg, seeds=range(args.seed, args.seed + args.runs), checkpoint=ckpt,
                        resume=args.resume, max_seconds=args.max_seconds, progress=not args.no_progress)
        write_dataset(ds, args.out)
    except ValueError as e:
        parser.exit(2, f"plasticity-repro: error: {e}\n")
    print(f"wrote {args.out}: {ds.sizes['generation']} generations, best test loss per run "
          f"{[round(float(v), 1) for v in ds.best_test_loss.values]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
