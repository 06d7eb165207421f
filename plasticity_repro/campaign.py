"""Where the reproduction campaign (profile repro) stands: per dataset of the pipeline, the
planned network-activations and hours beside what has been spent so far.

A search in progress is read from its checkpoint (generations done, wall time, how many runs'
best rule so far is below the convergence limit, the recent pace per generation); a finished one
from its dataset (generations, `elapsed_seconds`, and how many of its runs converged: rule below
the spec's loss scale, `experiments.evaluate.converged_runs`); other datasets count as spent when
their file exists (their wall time is not recorded). Nothing is computed or written.

`python -m plasticity_repro.campaign` prints the table (Markdown); `--code` lists which simulation
sources made each dataset. The regeneration of every dataset by one commit (below) is driven from
here too: `--start-regeneration`, `--regenerate` (`make regenerate`), `--compare`, and
`--adopt-regeneration`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import pickle
from pathlib import Path

import numpy as np

from . import pipeline

PROFILE = "repro"


@dataclasses.dataclass(frozen=True)
class Row:
    name: str
    planned: int               # network-activations
    planned_hours: float       # at pipeline.SPEED, weighted by the dataset's work
    spent: int                 # network-activations done
    spent_hours: float | None  # wall hours, where recorded
    state: str                 # "done", "generation g of G", "not started"


def _checkpoint_progress(ckpt: Path, total: int):
    """(fraction done, wall seconds, state) read from a search checkpoint, or None if none. Where
    the checkpoint holds its runs' incumbents, the state also counts the runs whose best rule so
    far is below its convergence limit (`evaluate.convergence_limit`): a search's convergence is
    decided by its final rules, so this is progress, not a result."""
    if not ckpt.exists():
        return None
    with open(ckpt, "rb") as f:
        st = pickle.load(f)
    g = int(st["generation"])
    state = f"generation {g} of {total}"
    below = _below_limit_so_far(st)
    if below is not None:
        state += f" ({int(below.sum())} of {below.size} runs below the convergence limit so far)"
    pace = _recent_pace(st)
    if pace is not None and g < total:
        state += f"; {pace:.0f} s per generation lately, about {pace * (total - g) / 3600:.1f} h left at that pace"
    return g / total, float(st["elapsed"]), state


def _recent_pace(st: dict, last: int = 10):
    """Mean wall seconds of a checkpoint's last `last` generations (its history's `seconds`), or
    None where it records none."""
    seconds = st.get("history", {}).get("seconds") if isinstance(st.get("history"), dict) else None
    if seconds is None or len(seconds) == 0:
        return None
    recent = np.asarray(seconds, dtype=float)[-last:]
    recent = recent[np.isfinite(recent) & (recent > 0)]
    return float(recent.mean()) if recent.size else None


def _below_limit_so_far(st: dict):
    """(run,) bool from a checkpoint's best test loss per network and its runs' training turnover,
    or None where it does not record them."""
    from .experiments.evaluate import below_convergence_limit
    if not isinstance(st.get("best"), dict) or "test_loss" not in st["best"] or "config_json" not in st:
        return None
    cfg = json.loads(st["config_json"])
    return below_convergence_limit(st["best"]["test_loss"], cfg["search"]["n_test"],
                                   cfg.get("p_turnover", cfg["search"].get("p_turnover", 0.0)))


def _elapsed(search) -> float | None:
    """Wall seconds a finished search recorded (`elapsed_seconds`), None where it did not."""
    seconds = float(search.attrs.get("elapsed_seconds", "nan"))
    return seconds if seconds == seconds else None


# the campaign's files under the figures' names: counted as their campaign arms
COPIES = frozenset(name for name, _, _, _ in pipeline.CAMPAIGN)


def _search_progress(c: pipeline.Context, stem: str, planned: int):
    """(fraction done, wall seconds or None, state) of one campaign search."""
    from .datasets import read_dataset
    out = pipeline.campaign_path(c, stem)
    total = pipeline.paper.search_config(c.profile).max_generations
    if out.exists():
        from .experiments.evaluate import converged_runs
        ds = read_dataset(out, kind="search")
        ok = converged_runs(ds)
        state = f"done ({ds.sizes['generation']} generations; {int(ok.sum())} of {ok.size} runs converged)"
        return 1.0, _elapsed(ds), state
    return _checkpoint_progress(out.with_suffix(".ckpt"), total) or (0.0, None, "not started")


def rows(data_dir="data", seed: int = 0) -> list:
    """One Row per dataset of the repro pipeline, in dependency order. A search that is not a
    campaign arm (the hand-made rule's) is read from the checkpoint beside its file."""
    c = pipeline.Context(PROFILE, Path(data_dir), seed, progress=False)
    items = pipeline.declare(PROFILE, data_dir, seed)
    stems = {"campaign_" + stem.removesuffix("_repro"): stem for _, stem, _, _ in pipeline.CAMPAIGN}
    known = pipeline.status(items, c)
    out = []
    for d in items:
        st = known[d.name]
        if d.name in stems:
            frac, seconds, state = _search_progress(c, stems[d.name], d.cost)
        elif st.exists:
            seconds = None
            if "generations" in d.params and st.path is not None and d.name not in COPIES:   # a search
                from .datasets import read_dataset
                seconds = _elapsed(read_dataset(st.path))
            frac, state = 1.0, "done"
        else:
            ckpt = None if st.path is None or "generations" not in d.params else Path(st.path).with_suffix(".ckpt")
            frac, seconds, state = ((ckpt and _checkpoint_progress(ckpt, int(d.params["generations"])))
                                    or (0.0, None, "not started"))
        out.append(Row(d.name, d.cost, d.seconds() / 3600, int(round(frac * d.cost)),
                       None if seconds is None else seconds / 3600.0, state))
    return out


def table(rs: list) -> str:
    """Markdown: dataset, planned, spent, state, and a total row."""
    lines = ["| dataset | planned net-act | planned h | spent net-act | spent h (wall) | state |",
             "|---|---|---|---|---|---|"]
    for r in rs:
        if r.name in COPIES:
            continue
        h = "-" if r.spent_hours is None else f"{r.spent_hours:.1f}"
        lines.append(f"| {r.name} | {r.planned / 1e6:.1f} M | {r.planned_hours:.1f} | {r.spent / 1e6:.1f} M | {h} | {r.state} |")
    p, s = sum(r.planned for r in rs), sum(r.spent for r in rs)
    hs = sum(r.spent_hours or 0.0 for r in rs)
    lines.append(f"| **total** | {p / 1e6:.1f} M | {sum(r.planned_hours for r in rs):.1f} | {s / 1e6:.1f} M | {hs:.1f} | "
                 f"{100 * s / max(p, 1):.0f} % |")
    timed = [r for r in rs if r.spent_hours]
    if timed:
        # in the plan's units, so that the two speeds compare: an activation weighted by its row's
        # planned seconds per network-activation over the plan's (ALL_SYNAPSE_WORK for an all-synapse rule)
        work = sum(r.spent * r.planned_hours * 3600 * pipeline.SPEED / r.planned if r.planned else r.spent
                   for r in timed)
        speed = work / (3600 * sum(r.spent_hours for r in timed))
        lines.append(f"\nmeasured so far: {speed:,.0f} network-activations/s of E→E rules, the plan's units "
                     f"(wall time of the searches, planned {pipeline.SPEED:,.0f})")
    if s < p:   # still running: what is left, at the plan's speed and at the speed measured so far
        left = sum(r.planned_hours * (1 - r.spent / r.planned) for r in rs if r.planned)
        at = f", about {left * pipeline.SPEED / speed:.1f} h at the speed measured so far" if timed else ""
        lines.append(f"left: {left:.1f} h planned{at}")
    return "\n".join(lines)


@dataclasses.dataclass(frozen=True)
class Made:
    """Which simulation code made one dataset, or one segment (generations first..) of a search."""
    file: str
    part: str                  # "" or "generations 62.." of a search
    commit: str | None
    code: str | None           # datasets.simulation_code_hash of the sources at `commit`; None: unknown


def _shipped_files(folder: Path) -> list:
    """The repro datasets in `folder` and its campaign searches in `folder`/campaign."""
    return sorted(folder.glob(f"*_{PROFILE}_*.nc")) + sorted((folder / "campaign").glob("*.nc"))


def simulation_provenance(data_dir="data") -> list:
    """Per repro dataset in data_dir (and data_dir/campaign), and per segment of a search, the
    commit and the hash of the simulation sources that made it: recorded in the file (datasets
    made since the hash was recorded), else read from git at the recorded commit. Checkpoints of
    searches still running are read too."""
    import xarray as xr
    from . import datasets
    out = []

    def code(rec: dict):
        return rec.get("simulation_code") or datasets.simulation_code_hash_at(rec.get("git_commit"))
    data_dir = Path(data_dir)
    for f in _shipped_files(data_dir):
        with xr.open_dataset(f) as ds:
            attrs = dict(ds.attrs)
        segments = json.loads(attrs.get("segments_json", "[]"))
        if not segments:
            out.append(Made(f.name, "", attrs.get("git_commit"), code(attrs)))
        for seg in segments:
            out.append(Made(f.name, f"generations {seg.get('first_generation', 0)}..", seg.get("git_commit"), code(seg)))
    for f in sorted((data_dir / "campaign").glob("*.ckpt")) + sorted(data_dir.glob(f"*_{PROFILE}_*.ckpt")):
        with open(f, "rb") as fh:
            state = pickle.load(fh)
        for seg in state.get("segments") or []:
            out.append(Made(f.name, f"generations {seg.get('first_generation', 0)}..", seg.get("git_commit"), code(seg)))
    return out


# -- a regeneration at one commit, compared with the shipped data --------------------------------
# Wall times and provenance are not results: a regeneration is compared on everything else
# (every variable, coordinates included, and every other attribute).
TIMING_VARIABLES = frozenset({"seconds_per_generation"})
PROVENANCE_ATTRS = frozenset({"git_commit", "simulation_code", "versions_json", "device", "host_cpu",
                              "xla_cpu_opt_level", "cpu_chunk_networks", "engine", "engine_threads",
                              "matmul_precision", "created_utc", "elapsed_seconds", "segments_json",
                              "copied_from"})
# the history a search checkpoint holds, by the name of the variable a finished search writes it to
HISTORY_VARIABLES = {"loss": "loss", "mean": "mean_params", "best_x": "best_params_history",
                     "best_loss": "best_train_loss_history", "test_loss": "best_test_loss_history",
                     "sigma": "sigma", "restart": "restart", "evals": "evaluations"}


@dataclasses.dataclass(frozen=True)
class Comparison:
    """One regenerated file against the shipped file of the same name."""
    file: str
    compared: str              # "all variables" or "generations 0..g-1"
    differing: tuple           # names of the variables whose values differ
    max_abs: float             # largest |regenerated - shipped| over the differing values (0 if none)
    max_rel: float = 0.0       # largest |regenerated - shipped| / |shipped| there (where shipped != 0)
    missing: bool = False      # no shipped file of that name

    @property
    def identical(self) -> bool:
        return not self.missing and not self.differing


INF = (float("inf"), float("inf"))


def _difference(a, b) -> tuple | None:
    """None where a and b are equal (NaN where both are NaN), else the largest |a - b| and the
    largest |a - b| / |b| over the finite entries (inf where shapes, non-float values or the
    non-finite entries differ)."""
    import numpy as np
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return INF
    if a.dtype.kind not in "fc" or b.dtype.kind not in "fc":
        return None if np.array_equal(a, b) else INF
    if np.array_equal(a, b, equal_nan=True):
        return None
    finite = np.isfinite(a)
    if not np.array_equal(finite, np.isfinite(b)) or not np.array_equal(a[~finite], b[~finite], equal_nan=True):
        return INF
    both = finite
    x, y = a[both].astype(float), b[both].astype(float)
    d = np.abs(x - y)
    rel = d[y != 0] / np.abs(y[y != 0])
    return float(d.max()), float(rel.max()) if rel.size else float("inf")


def _compared(name: str, compared: str, diffs: dict) -> Comparison:
    bad = {k: v for k, v in diffs.items() if v is not None}
    return Comparison(name, compared, tuple(sorted(bad)), max((v[0] for v in bad.values()), default=0.0),
                      max((v[1] for v in bad.values()), default=0.0))


def compare(staged, shipped="data") -> list:
    """Each repro dataset and campaign search in `staged` (a regeneration's data folder) against
    the file of the same name in `shipped`: its values, bit for bit (wall times aside), or for a
    search still running (a checkpoint) its history so far against the shipped search's first
    generations. Names carry the request hash, so equal names mean equal parameters."""
    import numpy as np
    import xarray as xr
    staged, shipped = Path(staged), Path(shipped)
    out = []
    files = _shipped_files(staged)
    for f in files:
        twin = shipped / f.relative_to(staged)
        if not twin.exists():
            out.append(Comparison(f.name, "all variables", (), 0.0, missing=True))
            continue
        with xr.open_dataset(f) as a, xr.open_dataset(twin) as b:
            names = sorted((set(a.variables) | set(b.variables)) - TIMING_VARIABLES)
            diffs = {k: (_difference(a[k].values, b[k].values) if k in a.variables and k in b.variables else INF)
                     for k in names}
            for k in sorted((set(a.attrs) | set(b.attrs)) - PROVENANCE_ATTRS):
                if str(a.attrs.get(k)) != str(b.attrs.get(k)):
                    diffs[f"attribute {k}"] = INF
        out.append(_compared(f.name, "all variables", diffs))
    done = {f.with_suffix(".ckpt") for f in files}
    for ck in sorted((staged / "campaign").glob("*.ckpt")) + sorted(staged.glob(f"*_{PROFILE}_*.ckpt")):
        if ck in done:
            continue
        twin = shipped / ck.relative_to(staged).with_suffix(".nc")
        if not twin.exists():
            out.append(Comparison(ck.name, "checkpoint", (), 0.0, missing=True))
            continue
        with open(ck, "rb") as fh:
            state = pickle.load(fh)
        g = int(state["generation"])
        hist = state["history"]
        with xr.open_dataset(twin) as b:
            diffs = {}
            for key, var in HISTORY_VARIABLES.items():
                if key not in hist or var not in b:
                    continue
                diffs[var] = _difference(np.stack([np.asarray(h) for h in hist[key]])[:g], b[var].values[:g])
        out.append(_compared(ck.name, f"generations 0..{g - 1}", diffs))
    return out


def comparison_lines(cs: list) -> list:
    """One line per Comparison: identical, or which variables differ and by how much."""
    lines = []
    for c in cs:
        if c.missing:
            verdict = "no shipped file of this name"
        elif c.identical:
            verdict = "identical"
        else:
            verdict = (f"differs in {', '.join(c.differing)} (max |difference| {c.max_abs:.3g}, "
                       f"relative {c.max_rel:.3g})")
        lines.append(f"{c.file:<44} {c.compared:<20} {verdict}")
    return lines


# -- a regeneration: every repro dataset remade by one commit --------------------------------------
# It runs for many hours over several sessions: `make regenerate` makes what is missing in
# data/regen (searches resume from their checkpoints there, which are committed), always from a
# clean worktree of the one commit the record names and with the record's host-device count, so
# every file it writes carries that commit. The shipped data stay in data/ until every dataset is
# remade; then `--adopt-regeneration` puts the remade ones in their place.
REGEN = "regen"                   # the regeneration's data folder, under the shipped one
RECORD = "REGENERATION.json"


def regeneration(data_dir="data") -> dict | None:
    """The record of the regeneration in progress (data_dir/regen/REGENERATION.json: commit,
    simulation_code, replaces: the simulation codes of the shipped data, host_devices, profile,
    started_utc, why), or None."""
    path = Path(data_dir) / REGEN / RECORD
    return json.loads(path.read_text()) if path.exists() else None


def _git(*args, cwd=None) -> str:
    """git's output; a failure is a one-line ValueError with git's last line of error."""
    import subprocess
    try:
        return subprocess.run(["git", *args], cwd=cwd or Path(__file__).resolve().parent.parent, capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as e:
        why = (getattr(e, "stderr", "") or str(e)).strip().splitlines()
        raise ValueError(f"git {' '.join(args)} failed: {why[-1] if why else type(e).__name__}") from None


def start_regeneration(commit: str, why: str, data_dir="data", host_devices: int | None = None) -> dict:
    """Write the record of a regeneration by `commit`: a commit of this checkout's history whose
    simulation sources are this checkout's (one-line ValueErrors otherwise). host_devices: the XLA
    host-device count every part of it runs with (default: this machine's cores), since float32
    results depend on it (parallel.py)."""
    import datetime
    from . import datasets
    from .engine import _cores
    if regeneration(data_dir) is not None:
        raise ValueError(f"a regeneration is already recorded in {Path(data_dir) / REGEN / RECORD}")
    try:
        full = _git("rev-parse", "--verify", f"{commit}^{{commit}}")
    except ValueError:
        raise ValueError(f"commit must be a commit of this checkout's history, got {commit!r}") from None
    code = datasets.simulation_code_hash_at(full)
    if code is None or code != datasets.simulation_code_hash():
        raise ValueError(f"commit {full[:12]}'s simulation sources ({code}) are not this checkout's "
                         f"({datasets.simulation_code_hash()})")
    shipped = {m.code for m in simulation_provenance(data_dir)}
    record = dict(commit=full, simulation_code=code, replaces=sorted(c for c in shipped if c), profile=PROFILE,
                  host_devices=int(host_devices or _cores()),
                  started_utc=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), why=why)
    datasets.atomic_write(Path(data_dir) / REGEN / RECORD,
                          lambda tmp: Path(tmp).write_text(json.dumps(record, indent=1) + "\n"), mode=0o644)
    return record


def worktree(commit: str) -> Path:
    """A clean detached worktree of `commit` in the temporary folder (made if absent)."""
    import tempfile
    path = Path(tempfile.gettempdir()) / f"plasticity-repro-regen-{commit[:12]}"
    if not path.exists():
        _git("worktree", "prune")
        _git("worktree", "add", "--detach", str(path), commit)
    if _git("rev-parse", "HEAD", cwd=path) != commit or _git("status", "--porcelain", cwd=path):
        raise ValueError(f"the worktree {path} is not a clean checkout of {commit[:12]}: remove it and rerun")
    return path


def regenerate(data_dir="data", only=None, extra=()) -> int:
    """Make (or resume) every missing dataset of the regeneration in data_dir/regen, in dependency
    order, by the recorded commit's own `plasticity-repro data` with the recorded host devices;
    returns its exit status."""
    import os
    import subprocess
    import sys
    record = regeneration(data_dir)
    if record is None:
        raise ValueError(f"no regeneration is recorded in {Path(data_dir) / REGEN}: "
                         f"start one with --start-regeneration COMMIT --why TEXT")
    tree = worktree(record["commit"])
    out = (Path(data_dir) / REGEN).resolve()
    cmd = [sys.executable, "-m", "plasticity_repro.cli", "data", "--profile", record["profile"], "--data-dir", str(out),
           *(["--only", *only] if only else []), *extra]
    env = {**os.environ, "PLASTICITY_REPRO_HOST_DEVICES": str(record["host_devices"])}
    print(f"regeneration by {record['commit'][:12]} (simulation {record['simulation_code']}, "
          f"{record['host_devices']} host devices) in {out}:\n  " + " ".join(cmd), flush=True)
    return subprocess.run(cmd, cwd=tree, env=env).returncode


def regeneration_missing(data_dir="data") -> list:
    """Names of the repro pipeline's datasets not yet in the regeneration's folder."""
    from .profiles import design
    regen = Path(data_dir) / REGEN
    c = pipeline.Context(PROFILE, regen, 0, progress=False)
    with design():   # the regeneration's commit makes the profiles' own values
        known = pipeline.status(pipeline.declare(PROFILE, regen), c)
    return [name for name, st in known.items() if not st.exists]


def _commit_of(path: Path) -> str | None:
    import xarray as xr
    with xr.open_dataset(path) as ds:
        return ds.attrs.get("git_commit")


def adopt_regeneration(data_dir="data") -> list:
    """Once the regeneration is complete (every dataset made, every file and search segment by
    the recorded commit): move its datasets into data_dir (and data_dir/campaign) in place of the
    shipped ones, remove every other shipped repro dataset, checkpoint and part folder (all from
    the code it replaces), and last its folder and record. Checks everything before it moves
    anything; rerun after an interruption, it finishes the job. Returns the files moved."""
    import os
    import shutil
    from .profiles import INTERIM
    record = regeneration(data_dir)
    if record is None:
        raise ValueError(f"no regeneration is recorded in {Path(data_dir) / REGEN}")
    if INTERIM:
        raise ValueError(f"profiles.INTERIM still holds the shipped data's values {INTERIM}: empty it first "
                         f"(the regeneration made the profiles' own)")
    data_dir, regen = Path(data_dir), Path(data_dir) / REGEN
    staged = _shipped_files(regen)
    moved_before = {f.relative_to(data_dir) for f in _shipped_files(data_dir) if _commit_of(f) == record["commit"]}
    missing = regeneration_missing(data_dir)
    if missing and moved_before:   # an adoption interrupted: what it moved already counts
        ctx = pipeline.Context(PROFILE, data_dir, 0, progress=False)
        shipped = pipeline.status(pipeline.declare(PROFILE, data_dir), ctx)
        missing = [n for n in missing if not (shipped[n].exists and _commit_of(shipped[n].path) == record["commit"])]
    if missing:
        raise ValueError(f"the regeneration is not complete: {len(missing)} datasets missing "
                         f"({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}); run make regenerate")
    other = [m for m in simulation_provenance(regen) if m.commit != record["commit"]]
    if other:
        raise ValueError(f"{other[0].file} {other[0].part or ''} was made by {other[0].commit}, "
                         f"not the regeneration's commit {record['commit'][:12]}")
    moved = []
    for f in staged:
        dest = data_dir / f.relative_to(regen)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(f, dest)
        moved.append(dest)
    keep = {d.relative_to(data_dir) for d in moved} | moved_before
    for f in _shipped_files(data_dir):
        if f.relative_to(data_dir) not in keep:
            f.unlink()
    for f in sorted(data_dir.glob(f"*_{PROFILE}_*.ckpt")) + sorted((data_dir / "campaign").glob("*.ckpt")):
        f.unlink()
    for d in sorted(data_dir.glob(f"*_{PROFILE}_*.parts")):
        shutil.rmtree(d)
    shutil.rmtree(regen)
    return moved


def main(argv=None) -> int:
    import argparse
    ap = argparse.ArgumentParser(prog="python -m plasticity_repro.campaign",
                                 description="The repro campaign: planned against spent compute.")
    ap.add_argument("--data-dir", default="data")
    ap.add_argument("--code", action="store_true",
                    help="which commit and simulation code made each dataset and search segment")
    ap.add_argument("--compare", metavar="STAGED",
                    help="compare the regenerated datasets and checkpoints in STAGED with those in --data-dir")
    ap.add_argument("--start-regeneration", metavar="COMMIT",
                    help="record a regeneration of every repro dataset by COMMIT (with --why)")
    ap.add_argument("--why", default="", help="why the data are remade (with --start-regeneration)")
    ap.add_argument("--regenerate", action="store_true",
                    help="make or resume the recorded regeneration's missing datasets in DATA_DIR/regen")
    ap.add_argument("--only", nargs="+", metavar="NAME", help="with --regenerate: only these datasets")
    ap.add_argument("--force", action="store_true",
                    help="with --regenerate: resume a checkpoint even if it looks recently written "
                         "(a fresh clone's do)")
    ap.add_argument("--adopt-regeneration", action="store_true",
                    help="once the regeneration is complete, move its datasets over the shipped ones")
    a = ap.parse_args(argv)
    try:
        if a.start_regeneration:
            if not a.why.strip():
                raise ValueError("--why: say why the data are remade")
            print(start_regeneration(a.start_regeneration, a.why, a.data_dir))
            return 0
        if a.regenerate:
            return regenerate(a.data_dir, a.only, ("--force",) if a.force else ())
        if a.adopt_regeneration:
            moved = adopt_regeneration(a.data_dir)
            print(f"{len(moved)} regenerated datasets now shipped in {a.data_dir}")
            return 0
    except ValueError as e:
        ap.exit(2, f"{ap.prog}: {e}\n")
    if a.compare:
        for line in comparison_lines(compare(a.compare, a.data_dir)):
            print(line)
        return 0
    if a.code:
        from .datasets import simulation_code_hash
        now = simulation_code_hash()
        print(f"simulation code of this checkout: {now}")
        for m in simulation_provenance(a.data_dir):
            same = "same" if m.code == now else ("unknown" if m.code is None else "other")
            print(f"{m.file:<42} {m.part:<18} {str(m.commit)[:10]:<10} {m.code or '-':<16} {same}")
        return 0
    print(summary(a.data_dir))
    return 0


def summary(data_dir="data") -> str:
    """The planned-against-spent table with its heading line (README, `make regenerate-status`);
    for a regeneration's folder, the plan of what its commit makes (without profiles.INTERIM)."""
    from .profiles import design
    head = (f"planned hours at {pipeline.SPEED:g} network-activations/s of E→E rules (an all-synapse rule's "
            f"activation counts {pipeline.ALL_SYNAPSE_WORK:.2f})")
    with design() if (Path(data_dir) / RECORD).exists() else contextlib.nullcontext():
        return head + "\n" + table(rows(data_dir))


if __name__ == "__main__":
    raise SystemExit(main())
