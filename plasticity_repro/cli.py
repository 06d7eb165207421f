"""The `plasticity-repro` command: meta-learn synaptic plasticity rules with CMA-ES and evaluate them.

    plasticity-repro search --profile laptop --synapses ee --turnover 0.00072 --runs 4 --out PATH.nc [--scheduler ADDRESS | --workers N]
    plasticity-repro sweep --search PATH.nc --networks 100 --shard-size 10 --workers 2 --out PATH.nc
    plasticity-repro profiles
    plasticity-repro data --profile laptop [--only NAME ...] [--dry-run] [--plan] [--scheduler ADDRESS | --workers N]
    plasticity-repro params [fig2 ...]
    plasticity-repro figure fig2 --profile repro n_networks=50
    plasticity-repro rules [--profile repro] [--csv PATH]

Bad options end with a one-line `error: ...` naming the option and what is allowed (exit 2); output
locations (--out, the checkpoint, the shard folder) are checked before any computation starts.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import __version__
from .profiles import SHIPPED

DESCRIPTION = """\
Reproduction of Bell, Duffy & Fairhall (NeurIPS 2024) in JAX: meta-learn the plasticity rules of a
rate network of excitatory and inhibitory neurons with CMA-ES, so that the network organizes and
keeps a neural sequence, and evaluate the learned rules on fresh networks. Results are netCDF
datasets (xarray) with their provenance; searches checkpoint every generation and can resume."""

EPILOG = """\
examples:
  plasticity-repro profiles
      the problem size of each profile (activations, networks, generations, decoder windows)
  plasticity-repro search --profile quick --out runs/quick.nc
      a CI-sized search (about a minute on 2 cores); checkpoint in runs/quick.nc.ckpt
  plasticity-repro search --profile laptop --synapses all --turnover 0.00072 --runs 4 --out runs/all.nc
      four batched searches of E->E, E->I and I->E rules under synaptic turnover
  plasticity-repro search --profile quick --out runs/quick.nc --resume
      continue the interrupted quick search above from its checkpoint (same options)
  plasticity-repro sweep --search runs/all.nc --networks 100 --shard-size 10 --workers 2 --out runs/sweep.nc
      the best rule of every run on 100 fresh networks; rerunning skips finished shards
  plasticity-repro data --profile laptop --plan
      every dataset the figures need at a profile, what each needs and its planned cost in hours
  plasticity-repro data --profile laptop
      make the missing ones in order (searches resume from their checkpoints); `make data` runs it
  plasticity-repro data --profile repro --scheduler tcp://host:8786
      the same, each search's runs scored on a Dask cluster's workers (--workers N: a local one)
  plasticity-repro rules --csv rules.csv
      the shipped learned rules, one line each (test loss, convergence, largest terms); all their
      coefficients and time constants as a CSV table
  plasticity-repro evaluate ee/0 all_turnover/2 --networks 20 --activations 400 --out runs/eval.nc
      two learned rules on 20 fresh networks on the paper's 400-activation protocol
  plasticity-repro params fig2
      the parameters of the Fig 2 notebook: meaning, default, allowed values
  plasticity-repro figure fig2 --profile repro n_networks=50
      Fig 2 with other parameters: the shipped searches evaluated on 50 networks (minutes), drawn
      into runs/fig2-repro-<hash>/ (`make fig2 P="n_networks=50"` runs it)

'plasticity-repro COMMAND --help' describes each command's options."""

# a candidate's loss at or above this per network is the blow-up penalty (loss.candidate_loss:
# LossConfig.blowup_loss = 1e8 per network, plus blowup_coef * sum |c|); real losses are far below
BLOWUP_PER_NETWORK = 1e7


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


SYNAPSE_CHOICES = ("ee", "all")


def _synapses(text):
    """--synapses: 'ee' or 'all'; 'ee,ei,ie' is accepted as a synonym of 'all'."""
    allowed = {"ee": ("ee",), "all": ("ee", "ei", "ie"), "ee,ei,ie": ("ee", "ei", "ie")}
    if text not in allowed:
        raise argparse.ArgumentTypeError(f"--synapses must be one of ['ee', 'all'], got {text!r}")
    return allowed[text]


def _rules_source_options(p) -> None:
    """--profile and --data-dir of the commands that read a learned rules dataset (`_load_rules`)."""
    from .experiments.paper import FIGURE_PROFILES
    p.add_argument("--profile", choices=list(FIGURE_PROFILES), default="repro",
                   help="the profile whose rules to read. Default: repro (the shipped campaign)")
    p.add_argument("--data-dir", default="data", help="folder of the datasets. Default: data")


def build_parser() -> argparse.ArgumentParser:
    from .search import PROFILES
    p = argparse.ArgumentParser(prog="plasticity-repro", description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"plasticity-repro {__version__}")
    from .engine import BACKENDS
    p.add_argument("--engine", choices=list(BACKENDS), default=None,
                   help="simulation engine: fused (C++ kernel, CPU), xla (any JAX backend) or auto (fused on "
                        "the CPU when it builds, else xla). Default: PLASTICITY_REPRO_ENGINE or auto")
    p.add_argument("--threads", type=_int_in("--threads", 1, 1024), default=None,
                   help="threads of the fused engine, in [1, 1024]. Default: PLASTICITY_REPRO_THREADS or all cores")
    p.add_argument("--host-devices", default=None, metavar="{auto,N}",
                   help="XLA host devices a batch is split over: auto (one per core) or an integer >= 0. "
                        "Default: PLASTICITY_REPRO_HOST_DEVICES or auto")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", title="commands")

    s = sub.add_parser("search", help="meta-learn plasticity rules with CMA-ES; writes a netCDF dataset",
                       description="Run one or more batched CMA-ES searches (spec §5-6) and write their "
                                   "xarray dataset (history, best rules, covariance, provenance).")
    s.add_argument("--profile", choices=list(PROFILES), default="quick",
                   help="problem size: quick (CI, ~1 min), laptop (<= 1 h on 2 cores), repro (the campaign's: "
                        "8 runs x 150 generations, hours per arm), paper (the spec's numbers; GPU). Default: quick")
    s.add_argument("--synapses", type=_synapses, default=("ee",), metavar="{" + ",".join(SYNAPSE_CHOICES) + "}",
                   help="plastic synapse types: 'ee' (E->E only, 32 parameters) or 'all' (E->E, E->I, I->E, "
                        "96 parameters; 'ee,ei,ie' is a synonym). Default: ee")
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
    s.add_argument("--out", required=True,
                   help="path of the netCDF dataset to write (atomically); its folder must be creatable "
                        "and writable, checked before the search starts")
    s.add_argument("--checkpoint", default=None,
                   help="checkpoint file written atomically every generation. Default: OUT.ckpt")
    s.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    _cluster_options(s, "the runs are scored")

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
    w.add_argument("--out", required=True,
                   help="path of the combined netCDF dataset to write (atomically); checked, with the shard "
                        "folder, before the sweep starts")

    sub.add_parser("profiles", help="print the named profiles as tables",
                   description="Print the search profiles (one row each: activations, learning-rate scale, "
                               "train and test networks, generations, restarts, decoder fit and test "
                               "activations) and the figure settings of each profile.")

    from .experiments.paper import FIGURE_PROFILES
    d = sub.add_parser("data", help="make every dataset the figure notebooks read at a profile, in order",
                       description="The declared pipeline (plasticity_repro.pipeline): every dataset the five "
                                   "figure notebooks read at a profile, what makes it and what it needs. Makes "
                                   "what is missing in dependency order (a search resumes from its checkpoint), "
                                   "a progress line per dataset with the plan's ETA. `make data PROFILE=P` runs "
                                   "it; `make figures` only reads.")
    d.add_argument("--profile", choices=list(FIGURE_PROFILES), default=None,
                   help="the figures' profile (repro: the reproduction campaign's searches in DATA_DIR/campaign). "
                        "Default: each figure's datasets at its shipped profile, what `make figures` reads ("
                        + ", ".join(f"{k} {v}" for k, v in SHIPPED.items()) + ")")
    d.add_argument("--only", nargs="+", default=None, metavar="NAME",
                   help="only these datasets and what they need (names as --plan lists them)")
    d.add_argument("--dry-run", action="store_true", help="say what exists and what would be made; make nothing")
    d.add_argument("--plan", action="store_true",
                   help="print the plan: each dataset, what it needs, its planned network-activations and "
                        "hours at --speed, and the total; reads no data")
    d.add_argument("--speed", type=_float_in("--speed", 1e-3, 1e12), default=3000.0, metavar="NET_ACT_PER_S",
                   help="network-activations per second the plan's hours assume. Default: 3000 (the fused "
                        "engine on 2 cores)")
    d.add_argument("--data-dir", default="data", help="folder of the datasets. Default: data")
    d.add_argument("--force", action="store_true",
                   help="resume a campaign checkpoint even if it was written in the last 15 minutes")
    d.add_argument("--no-progress", action="store_true", help="no progress bars inside searches")
    _cluster_options(d, "the searches (the campaign's arms, the hand-made rule's tuning, the refits) score "
                        "their candidates and the dropout tests, stress test and sweep their chunks of networks")

    r = sub.add_parser("rules", help="print the learned rules of a profile; --csv writes them as a table",
                       description="The learned rules dataset of a profile (plasticity_repro.load_rules): one line "
                                   "per search run and hand-made rule, with its test loss and R² per network on "
                                   "its search's held-out networks, whether it converged, the horizon and learning "
                                   "rate it was trained at, and its largest coefficients. --csv writes every "
                                   "coefficient, time constant and hand-made bound in long form.")
    _rules_source_options(r)
    r.add_argument("--terms", type=_int_in("--terms", 1, 60), default=4, metavar="K",
                   help="how many of each rule's largest coefficients to print, in [1, 60]. Default: 4")
    r.add_argument("--csv", default=None, metavar="PATH",
                   help="also write the rules in long form (rule, synapse, quantity, name, value, units, ...) "
                        "to PATH, atomically")

    e = sub.add_parser("evaluate", help="run learned rules on fresh networks; prints their loss and R², writes a dataset",
                       description="Rows of a profile's learned rules dataset (plasticity_repro.evaluate_rules) run "
                                   "on fresh networks at the learning rate they were trained at: per rule the median "
                                   "loss and decoder R² over the networks and the blow-ups; --out writes the whole "
                                   "evaluation (per-network loss and R², example rates and weights, firing times, "
                                   "the E->E weight-lag kernel) as netCDF with provenance.")
    e.add_argument("rows", nargs="+", metavar="ROW", help="rows of the rules dataset, e.g. ee/0 all_turnover/2 "
                                                          "(`plasticity-repro rules` lists them)")
    _rules_source_options(e)
    e.add_argument("--networks", type=_int_in("--networks", 1, 100_000), default=20,
                   help="fresh networks per rule, in [1, 100000]. Default: 20")
    e.add_argument("--first-network", type=_int_in("--first-network", 0, 2 ** 32 - 100_001), default=0,
                   help="seed of the first network (network.make_networks); the others follow it. Default: 0")
    e.add_argument("--activations", type=_int_in("--activations", 12, 100_000), default=None,
                   help="organising horizon in [12, 100000], decoder windows scaled to it (400: the paper's "
                        "protocol). Default: each row's training horizon")
    e.add_argument("--turnover", type=_float_in("--turnover", 0.0, 1.0), default=0.0,
                   help="E->E turnover per synapse and activation on every network, in [0, 1]. Default: 0")
    e.add_argument("--out", default=None, metavar="PATH", help="also write the evaluation to PATH (netCDF), atomically")

    from .experiments.params import NOTEBOOKS
    figures = list(NOTEBOOKS)
    q = sub.add_parser("params", help="list the figure notebooks' parameters: meaning, default, allowed values",
                       description="Every parameter of the figure notebooks (plasticity_repro.experiments.params): "
                                   "its default (None: the profile's value) and allowed values. `plasticity-repro "
                                   "figure` and `make figN P=\"NAME=VALUE ...\"` take them.")
    q.add_argument("figures", nargs="*", type=_figure_name, metavar="FIGURE",
                   help="the figures to list, of " + ", ".join(figures) + ". Default: all")
    q.add_argument("--markdown", action="store_true", help="as the markdown table of notebooks/README.md")

    f = sub.add_parser("figure", help="draw a figure with other parameters, computing what they need",
                       description="Run a figure notebook (papermill) with other parameters in compute mode: the "
                                   "datasets those parameters need are read from data/ where a shipped one has "
                                   "exactly them, else computed into RUNS_DIR/data/; the figure and the executed "
                                   "notebook go to RUNS_DIR/<fig>-<profile>-<hash of the parameters>/. Nothing in "
                                   "data/ or figures/ is written. Every parameter and folder is checked first. "
                                   "`make figN P=\"NAME=VALUE ...\"` runs it.")
    f.add_argument("figure", type=_figure_name, metavar="FIGURE",
                   help="one of " + ", ".join(figures) + " (or the notebook's name, fig2_self_organization)")
    f.add_argument("assignments", nargs="*", metavar="NAME=VALUE",
                   help="notebook parameters (`plasticity-repro params FIGURE` lists them); a list as 0.5,1.5; "
                        "None: the profile's value")
    f.add_argument("--profile", choices=list(FIGURE_PROFILES), default=None,
                   help="the figure's profile (or profile=NAME). Default: the figure's shipped profile ("
                        + ", ".join(f"{k} {v}" for k, v in SHIPPED.items()) + ")")
    f.add_argument("--runs-dir", default="runs",
                   help="folder of the reruns and their datasets (relative: to the project root). Default: runs")
    f.add_argument("--timeout", type=_float_in("--timeout", 1.0, 1e7), default=None, metavar="SECONDS",
                   help="longest a notebook cell may run. Default: no limit")
    return p


def _figure_name(text):
    """FIGURE: fig2 .. fig6 or a notebook's name; one line naming the figures otherwise."""
    from .experiments.params import figure_key
    try:
        return figure_key(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e).replace("figure must", "FIGURE must")) from None


def _cluster_options(p, what: str):
    """--scheduler and --workers of `search` and `data`: where searches score their candidates."""
    g = p.add_argument_group("cluster", f"where {what}: in this process by default (the engine on all cores)")
    x = g.add_mutually_exclusive_group()
    x.add_argument("--scheduler", type=_scheduler, default=None, metavar="ADDRESS",
                   help="a running Dask scheduler (e.g. tcp://host:8786): each generation's candidates are split "
                        "over its workers (one task per worker: groups of runs, or slices of a run's population)")
    x.add_argument("--workers", type=_int_in("--workers", 1, 1024), default=None,
                   help="an embedded Dask LocalCluster of this many single-threaded worker processes, in [1, 1024]")


def _scheduler(text):
    import re
    if not re.match(r"^(tcp|tls|ws|wss|ucx|inproc)://\S+$", text):
        raise argparse.ArgumentTypeError(f"--scheduler must be an address like tcp://host:8786, got {text!r}")
    return text


def _fail(parser, option, reason):
    """One line `plasticity-repro: error: OPTION: REASON` on stderr, exit 2 (argparse's style, no usage)."""
    parser.exit(2, f"{parser.prog}: error: {option}: {reason}\n")


def _check_location(parser, option, path, what="file", directory=False):
    """Exit 2 with one line naming `option` unless `path` can be written (datasets.location_problem:
    a file's folder, or the folder, exists writable or can be created); called before any JAX work."""
    from .datasets import location_problem
    why = location_problem(path, what, directory)
    if why is not None:
        _fail(parser, option, why)


def _check_search_outputs(parser, args):
    """--out and the checkpoint (--checkpoint, else OUT.ckpt) of `search`; on --resume a checkpoint
    that does not exist is left to the search's own 'does not exist' error."""
    _check_location(parser, "--out", args.out, "output")
    ckpt = args.checkpoint or args.out + ".ckpt"
    if args.resume and not Path(ckpt).exists():
        return
    _check_location(parser, "--checkpoint" if args.checkpoint else "--out", ckpt, "checkpoint")


def _check_sweep_outputs(parser, args):
    """--out and the shard folder (--shard-dir, else OUT.shards) of `sweep`."""
    _check_location(parser, "--out", args.out, "output")
    _check_location(parser, "--shard-dir" if args.shard_dir else "--out", args.shard_dir or args.out + ".shards",
                    "shard folder", directory=True)


def _data(args, parser) -> int:
    """The `data` command: plan, dry-run or make the profile's datasets (plasticity_repro.pipeline);
    without --profile, each figure's datasets at its shipped profile (profiles.SHIPPED)."""
    from . import pipeline
    if args.profile is None and args.only:
        _fail(parser, "--only", "names the datasets of one profile: give --profile too")
    try:
        if args.profile is None:
            runs = [(p, pipeline.shipped(p, args.data_dir)) for p in dict.fromkeys(SHIPPED.values())]
        else:
            runs = [(args.profile, pipeline.select(pipeline.declare(args.profile, args.data_dir), args.only))]
    except ValueError as e:
        _fail(parser, "--only", str(e).removeprefix("--only: "))
    if args.plan:
        for i, (profile, items) in enumerate(runs):
            header, rows, total = pipeline.plan_rows(items, args.speed)
            print(("\n" if i else "") + f"plan for profile {profile}: {len(items)} datasets, in dependency order\n")
            print(_table(header, rows + [total], align="lllrrl"))
        print("\n  network-activations: one network simulated through one activation; a search counts runs x"
              "\n  generations x (population x train networks + test networks) x activations, an evaluation"
              "\n  rules x variants x networks x activations")
        return 0
    if not args.dry_run:
        for profile, _ in runs:
            for folder in [Path(args.data_dir)] + ([Path(args.data_dir) / "campaign"] if profile == "repro" else []):
                _check_location(parser, "--data-dir", folder, "data folder", directory=True)
    from .distributed import cluster_scorer
    from .experiments.evaluate import chunks_on
    from .search import scored_by
    try:   # every output is checked before the first computation (and again before its own)
        with cluster_scorer(*((None, None) if args.dry_run else (args.scheduler, args.workers))) as scorer, \
                scored_by(scorer), chunks_on(None if scorer is None else scorer.client):
            for profile, items in runs:
                ctx = pipeline.Context(profile, Path(args.data_dir), progress=not args.no_progress, force=args.force)
                pipeline.make(items, ctx, speed=args.speed, dry_run=args.dry_run,
                              out=lambda line: print(line, flush=True),
                              check_path=lambda name, path: _check_location(parser, "--data-dir", path,
                                                                            f"dataset {name}"))
    except ValueError as e:
        parser.exit(2, f"plasticity-repro: error: {e}\n")
    return 0


def _params(args) -> int:
    """The `params` command: the notebooks' parameters as tables (or markdown)."""
    from .experiments import params
    figures = args.figures or list(params.PARAMETERS)
    if args.markdown:
        print(params.markdown(figures), end="")
        return 0
    for i, fig in enumerate(figures):
        print(("\n" if i else "") + f"{fig} (notebooks/{params.NOTEBOOKS[fig]}.ipynb)\n")
        print(_table(["parameter", "default", "allowed", "meaning"], params.rows(fig), align="llll"))
    print("\n  None: the profile's value. `make figN P=\"NAME=VALUE ...\"` (plasticity-repro figure) draws a figure"
          "\n  with other values into runs/; papermill -p NAME VALUE takes them too, with a data_dir and fig_dir"
          "\n  of your own (never the shipped data/ and figures/)")
    return 0


def _load_rules(args, parser):
    """The rules dataset of --profile in --data-dir, or a one-line error (exit 2)."""
    from .experiments import learned
    try:
        return learned.load_rules(args.profile, args.data_dir)
    except (ValueError, FileNotFoundError) as e:
        parser.exit(2, f"plasticity-repro: error: {e}\n")


def _rules(args, parser) -> int:
    """The `rules` command: the learned rules of a profile, one line each; --csv in long form."""
    from .datasets import atomic_write
    from .experiments import learned
    if args.csv is not None:
        _check_location(parser, "--csv", args.csv, "output")
    rules = _load_rules(args, parser)
    conv = learned.converged_of(rules)
    rows = []
    for i, name in enumerate(str(r) for r in rules.rule.values):
        row = rules.sel(rule=name)
        terms = ", ".join(f"{s}:{t} {c:+.2g}" for s, t, c in learned.leading_terms(rules, name, args.terms))
        rows.append([name, f"{float(row.test_loss):.1f}", f"{float(row.test_r2):.3f}", "yes" if conv[i] else "no",
                     str(int(row.n_activations)), f"{float(row.learning_rate):g}",
                     f"{float(row.p_turnover_training):g}", terms])
    print(f"learned rules of profile {args.profile} ({rules.attrs.get('git_commit', '?')[:12]}; "
          f"plasticity_repro.load_rules({args.profile!r}))\n")
    print(_table(["rule", "test loss/net", "test R²", "converged", "activations", "lr", "turnover", "largest terms"],
                 rows, align="lrrrrrrl"))
    print("\n  test loss/net, R²: on the run's held-out test networks; converged: test loss per network below the"
          "\n  spec's scale (80, 150 when trained with turnover); terms: synapse:term coefficient, which multiplies lr")
    if args.csv is not None:
        table = learned.rules_table(rules)
        atomic_write(args.csv, lambda tmp: table.to_csv(tmp, index=False, float_format="%.8g"), mode=0o644)
        print(f"\nwrote {args.csv}: {len(table)} rows")
    return 0


def _evaluate(args, parser) -> int:
    """The `evaluate` command: rows of a rules dataset on fresh networks (learned.evaluate_rules)."""
    import numpy as np
    from .datasets import write_dataset
    from .experiments import learned
    if args.out is not None:
        _check_location(parser, "--out", args.out, "output")
    seeds = range(args.first_network, args.first_network + args.networks)
    rules = _load_rules(args, parser)
    try:
        ds = learned.evaluate_rules(rules, args.rows, seeds, n_activations=args.activations, p_turnover=args.turnover)
    except (ValueError, FileNotFoundError) as e:
        parser.exit(2, f"plasticity-repro: error: {str(e).replace('pass n_activations', 'pass --activations')}\n")
    rows = []
    for name in args.rows:
        r = ds.sel(rule=name)
        rows.append([name, f"{float(np.median(r.loss.values)):.1f}", f"{float(np.median(r.decoder_r2.values)):.3f}",
                     f"{int(np.sum(r.blew_up.values))} of {r.sizes['network']}"])
    n_act = args.activations or "each row's training"
    print(f"rules of profile {args.profile} on networks {seeds.start}..{seeds.stop - 1}, {n_act} activations, "
          f"E->E turnover {args.turnover:g}\n")
    print(_table(["rule", "median loss/net", "median R²", "blew up"], rows, align="lrrr"))
    if args.out is not None:
        write_dataset(ds, args.out)
        print(f"\nwrote {args.out}")
    return 0


def _figure(args, parser) -> int:
    """The `figure` command: a figure notebook rerun with other parameters (figure_runs)."""
    from . import figure_runs
    try:
        given = figure_runs.parse(args.figure, args.assignments)
        if args.profile is not None:
            if given.get("profile", args.profile) != args.profile:
                raise ValueError(f"profile given twice: --profile {args.profile} and profile={given['profile']}")
            given["profile"] = args.profile
        from .experiments import params
        given = dict(profile=given.pop("profile", SHIPPED[params.figure_key(args.figure)]), **given)
        run = figure_runs.prepare(args.figure, given, args.runs_dir)
    except ValueError as e:
        parser.exit(2, f"plasticity-repro: error: {e}\n")
    for why in figure_runs.location_problems(run):
        _fail(parser, "--runs-dir", why)
    for env, value in (("PLASTICITY_REPRO_ENGINE", args.engine), ("PLASTICITY_REPRO_THREADS", args.threads),
                       ("PLASTICITY_REPRO_HOST_DEVICES", args.host_devices)):
        if value is not None:   # the notebook's kernel reads them
            os.environ[env] = str(value)
    from .pipeline import shown_path
    shown = " ".join(f"{k}={v}" for k, v in run.given.items())
    print(f"{run.figure} at {shown}: notebook {shown_path(run.output)}\n  datasets: {shown_path(run.data_dir)}/ (read from "
          f"data/ where it holds one with exactly these parameters, else computed)", flush=True)
    figure_runs.plan(run)
    import papermill
    try:
        seconds = figure_runs.execute(run, args.timeout)
    except papermill.PapermillExecutionError as e:
        parser.exit(1, f"plasticity-repro: error: {run.figure} stopped in cell {e.exec_count}: {e.ename}: "
                       f"{e.evalue}; the notebook so far: {shown_path(run.output)}\n")
    print(f"done in {seconds:.0f} s: " + ", ".join(shown_path(f) for f in run.figure_files if f.exists()))
    return 0


def _loss_text(value, n_networks: int) -> str:
    """A loss for people: 'blew up' for the blow-up penalty (>= BLOWUP_PER_NETWORK per network)."""
    import math
    v = float(value)
    if math.isfinite(v) and v >= BLOWUP_PER_NETWORK * max(n_networks, 1):
        return "blew up"
    return f"{v:.1f}" if math.isfinite(v) else str(v)


def _sweep(args, parser) -> int:
    """The `sweep` command: best rules of a search dataset on fresh networks, via Dask."""
    _check_sweep_outputs(parser, args)
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
    print(f"wrote {args.out}: {ds.sizes['rule']} rules x {ds.sizes['network']} networks, median loss per rule: "
          + ", ".join(_sweep_rule_text(loss, blew) for loss, blew in zip(ds["loss"].values, ds["blew_up"].values)))
    return 0


def _sweep_rule_text(loss, blew_up) -> str:
    """Median per-network loss of one rule over the networks that did not blow up (a blown-up
    network's loss is NaN, or the penalty), 'blew up' when all did, with the count when some did."""
    import numpy as np
    loss = np.asarray(loss, float)
    bad = np.asarray(blew_up, bool) | ~np.isfinite(loss) | (loss >= BLOWUP_PER_NETWORK)
    if bad.all():
        return "blew up"
    text = _loss_text(np.median(loss[~bad]), 1)
    return text + (f" ({int(bad.sum())} of {bad.size} blew up)" if bad.any() else "")


# -- profiles -------------------------------------------------------------------------------------
def _table(header, rows, align=None) -> str:
    """Columns aligned: the first left-aligned, the rest right-aligned (or as `align` says, one
    'l' or 'r' per column), a rule under the header."""
    cells = [list(map(str, header))] + [list(map(str, r)) for r in rows]
    widths = [max(len(r[j]) for r in cells) for j in range(len(header))]
    align = align or "l" + "r" * (len(header) - 1)

    def line(r):
        return "  ".join(c.ljust(w) if align[j] == "l" else c.rjust(w)
                         for j, (c, w) in enumerate(zip(r, widths))).rstrip()
    return "\n".join([line(cells[0]), "  ".join("-" * w for w in widths)] + [line(r) for r in cells[1:]])


def _span(values) -> str:
    """A window of activations: '344..369/5' (every 5th), '12..17' (consecutive), or the list."""
    v = [int(x) for x in values]
    if len(v) < 3:
        return ",".join(map(str, v)) or "-"
    step = v[1] - v[0]
    if step > 0 and all(b - a == step for a, b in zip(v, v[1:])):
        return f"{v[0]}..{v[-1]}" + (f"/{step}" if step > 1 else "")
    return ",".join(map(str, v))


def _value(v) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (tuple, list)):
        return _span(v)
    return str(v)


def _profiles() -> int:
    """The `profiles` command: the search profiles and the figure settings, as aligned tables."""
    from .experiments.paper import FIGURE_PROFILES
    from .search import PROFILES, profile_config
    rows = []
    for name, raw in PROFILES.items():
        cfg = profile_config(name)
        lc = cfg.model.loss
        rows.append([name, _value(cfg.model.n_activations), f"x{raw['lr_scale']:g}",
                     f"{cfg.model.plasticity.lr:g}", _value(cfg.n_train), _value(cfg.n_test),
                     _value(cfg.max_generations), _value(cfg.max_restarts),
                     _value(cfg.stall_generations) if cfg.stall_generations else "off",
                     _value(cfg.base_popsize), _span(lc.fit_activations), _span(lc.test_activations)])
    print("search profiles (plasticity-repro search --profile NAME; E->E rules, 32 parameters)\n")
    print(_table(["profile", "activations", "lr scale", "lr", "train nets", "test nets", "generations",
                  "restarts", "stall", "popsize", "decoder fit", "decoder test"], rows))
    print("\n  lr: learning rate, the paper's 5e-4 times the scale; generations: over all restarts (IPOP);"
          "\n  stall: generations without improvement that stop a run; decoder fit/test: activations the"
          "\n  decoder is fitted / scored on, FIRST..LAST/STEP")
    names = list(FIGURE_PROFILES)
    keys = list(dict.fromkeys(k for p in FIGURE_PROFILES.values() for k in p))
    print("\nfigure settings per profile (plasticity_repro.experiments.paper.FIGURE_PROFILES)\n")
    print(_table(["setting"] + names,
                 [[k.replace("_", " ")] + [_value(FIGURE_PROFILES[n].get(k, "-")) for n in names] for k in keys]))
    return 0


def _host_devices_first(argv) -> None:
    """--host-devices (or PLASTICITY_REPRO_HOST_DEVICES, default auto) set before anything starts
    JAX's backends (building the parser imports modules that do)."""
    want = os.environ.get("PLASTICITY_REPRO_HOST_DEVICES") or "auto"
    for i, a in enumerate(argv):
        if a == "--host-devices" and i + 1 < len(argv):
            want = argv[i + 1]
        elif a.startswith("--host-devices="):
            want = a.split("=", 1)[1]
    if {"profiles", "params", "figure", "-h", "--help", "--version"} & set(argv):
        return
    from .engine import configure
    try:
        configure(host_devices=want)
    except ValueError as e:
        print(f"plasticity-repro: error: {str(e).replace('PLASTICITY_REPRO_HOST_DEVICES', '--host-devices')}",
              file=sys.stderr)
        raise SystemExit(2) from None


def main(argv=None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:   # output piped into `head` and the like: stop quietly, as other tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())      # Python's final flush of stdout would fail again
        return 141                                 # 128 + SIGPIPE, the shell's code for it


def _main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    _host_devices_first(argv)
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command == "figure" and not any(e.startswith("-") for e in extra):
        args.assignments += extra   # NAME=VALUE after an option: argparse leaves them over
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    if args.command not in ("profiles", "params", "figure", "rules"):   # the engine's knobs, checked before any compute
        from .engine import configure
        try:
            configure(backend=args.engine, threads=args.threads, compilation_cache=True)
        except ValueError as e:
            parser.error(str(e).replace("engine backend", "--engine"))
    if args.command == "profiles":
        return _profiles()
    if args.command == "sweep":
        return _sweep(args, parser)
    if args.command == "data":
        return _data(args, parser)
    if args.command == "params":
        return _params(args)
    if args.command == "rules":
        return _rules(args, parser)
    if args.command == "evaluate":
        return _evaluate(args, parser)
    if args.command == "figure":
        return _figure(args, parser)
    _check_search_outputs(parser, args)
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
        from .distributed import cluster_scorer
        with cluster_scorer(args.scheduler, args.workers) as scorer:
            ds = run_search(cfg, seeds=range(args.seed, args.seed + args.runs), checkpoint=ckpt, resume=args.resume,
                            max_seconds=args.max_seconds, progress=not args.no_progress, scorer=scorer)
        write_dataset(ds, args.out)
    except ValueError as e:
        parser.exit(2, f"plasticity-repro: error: {e}\n")
    if cfg.n_test:
        which, losses, n = "test", ds.best_test_loss.values, cfg.n_test
    else:  # no held-out networks: the incumbent's train loss
        which, losses, n = "train", ds.best_train_loss.values, cfg.n_train
    print(f"wrote {args.out}: {ds.sizes['generation']} generations, best {which} loss per run (sum over {n} "
          f"networks): " + ", ".join(_loss_text(v, n) for v in losses))
    return 0


if __name__ == "__main__":
    sys.exit(main())
