"""Where the reproduction campaign (profile repro) stands: per dataset of the pipeline, the
planned network-activations and hours beside what has been spent so far.

A search in progress is read from its checkpoint (generations done, wall time); a finished one
from its dataset (generations, `elapsed_seconds`); other datasets count as spent when their file
exists (their wall time is not recorded). Nothing is computed or written.

`python -m plasticity_repro.campaign` prints the table (Markdown); `--code` lists which simulation
sources made each dataset.
"""
from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

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
    """(fraction done, wall seconds, state) read from a search checkpoint, or None if none."""
    if not ckpt.exists():
        return None
    with open(ckpt, "rb") as f:
        st = pickle.load(f)
    g = int(st["generation"])
    return g / total, float(st["elapsed"]), f"generation {g} of {total}"


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
        ds = read_dataset(out, kind="search")
        return 1.0, _elapsed(ds), f"done ({ds.sizes['generation']} generations)"
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
        speed = sum(r.spent for r in timed) / (3600 * sum(r.spent_hours for r in timed))
        lines.append(f"\nmeasured so far: {speed:,.0f} network-activations/s (wall time of the searches, "
                     f"planned {pipeline.SPEED:,.0f})")
    return "\n".join(lines)


@dataclasses.dataclass(frozen=True)
class Made:
    """Which simulation code made one dataset, or one segment (generations first..) of a search."""
    file: str
    part: str                  # "" or "generations 62.." of a search
    commit: str | None
    code: str | None           # datasets.simulation_code_hash of the sources at `commit`; None: unknown


def simulation_provenance(data_dir="data") -> list:
    """Per repro dataset in data_dir (and data_dir/campaign), and per segment of a search, the
    commit and the hash of the simulation sources that made it: recorded in the file (datasets
    made since the hash was recorded), else read from git at the recorded commit. Checkpoints of
    searches still running are read too."""
    import json
    import xarray as xr
    from . import datasets
    out = []

    def code(rec: dict):
        return rec.get("simulation_code") or datasets.simulation_code_hash_at(rec.get("git_commit"))
    data_dir = Path(data_dir)
    for f in sorted(data_dir.glob(f"*_{PROFILE}_*.nc")) + sorted((data_dir / "campaign").glob("*.nc")):
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


def main(argv=None) -> int:
    import argparse
    ap = argparse.ArgumentParser(prog="python -m plasticity_repro.campaign",
                                 description="The repro campaign: planned against spent compute.")
    ap.add_argument("--data-dir", default="data")
    ap.add_argument("--code", action="store_true",
                    help="which commit and simulation code made each dataset and search segment")
    a = ap.parse_args(argv)
    if a.code:
        from .datasets import simulation_code_hash
        now = simulation_code_hash()
        print(f"simulation code of this checkout: {now}")
        for m in simulation_provenance(a.data_dir):
            same = "same" if m.code == now else ("unknown" if m.code is None else "other")
            print(f"{m.file:<42} {m.part:<18} {str(m.commit)[:10]:<10} {m.code or '-':<16} {same}")
        return 0
    print(f"planned hours at {pipeline.SPEED:g} network-activations/s of E→E rules (an all-synapse rule's "
          f"activation counts {pipeline.ALL_SYNAPSE_WORK:.2f})")
    print(table(rows(a.data_dir)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
