"""A figure rerun with other parameters (`make figN P="seed=1 n_networks=50"`, `plasticity-repro
figure`): the figure's notebook runs through papermill with those parameters in compute mode, and
everything it writes goes to a git-ignored folder keyed by the parameters, never to the shipped
data/ and figures/:

    RUNS/data/                          the datasets the reruns computed, named as in data/ (by
                                        their parameters' hash), shared: made once for every rerun
                                        that needs exactly them
    RUNS/<fig>-<profile>-<hash>/        one rerun: params.json (every parameter's value), the
                                        executed notebook, figures/<profile>/<fig>.png and .svg

A dataset the shipped data/ holds with exactly the parameters asked for is read from there
(paper.REUSE_ENV), so only what the new parameters change is computed. <hash> is that of the
figure and its checked parameters (folders aside): the same parameters, in any order or written as
their defaults, give the same folder.
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path

from . import datasets
from .experiments import paper, params

RUN_FOLDERS = ("data_dir", "fig_dir")   # set by the rerun, not by its parameters


@dataclasses.dataclass(frozen=True)
class Rerun:
    """One rerun: the figure, its notebook, the given and the checked parameters, and its folders."""
    figure: str
    notebook: Path
    given: dict             # name -> checked value of each parameter given (profile included)
    values: dict            # every parameter's checked value
    folder: Path
    data_dir: Path

    @property
    def output(self) -> Path:
        return self.folder / self.notebook.name

    @property
    def figure_files(self) -> list:
        base = self.folder / "figures" / self.values["profile"] / self.figure
        return [base.with_suffix(".png"), base.with_suffix(".svg")]


def parse(figure: str, assignments) -> dict:
    """name -> value of NAME=VALUE texts, each VALUE read as its parameter's kind says ('None': the
    profile's value; a list: '0.5,1.5'); text that is not of the kind is left for the check to
    name. One-line ValueErrors for a malformed assignment, a name given twice or a folder."""
    table = params.table(figure)
    out = {}
    for text in assignments:
        name, sep, value = str(text).partition("=")
        name = name.strip()
        if not sep or not name:
            raise ValueError(f"parameters are NAME=VALUE, got {text!r}")
        if name in out:
            raise ValueError(f"parameter {name} given twice")
        if name in RUN_FOLDERS:
            raise ValueError(f"{name} is the rerun's own folder; choose where reruns go with --runs-dir "
                             f"(make: RUNS_DIR)")
        p = table.get(name)
        out[name] = _read(value.strip(), p.kind if p is not None else "")
    return out


def _read(text: str, kind: str):
    if text == "None":
        return None
    for k, cast in (("int", int), ("float", float)):
        if kind == k:
            try:
                return cast(text)
            except ValueError:
                return text
    return text


def prepare(figure: str, given: dict, runs_dir="runs", root=None) -> Rerun:
    """The rerun of `figure` with the `given` parameters: checked (one-line ValueError naming a bad
    one), its folder named; nothing is written."""
    fig = params.figure_key(figure)
    values = params.resolve(fig, given)
    root = params.project_root() if root is None else Path(root)
    runs = Path(runs_dir) if Path(runs_dir).is_absolute() else root / runs_dir
    kinds = params.table(fig)
    key = datasets.params_hash(dict(figure=fig, **{k: v for k, v in values.items() if kinds[k].kind != "path"}))
    return Rerun(fig, root / "notebooks" / f"{params.NOTEBOOKS[fig]}.ipynb",
                 {k: values[k] for k in given}, values, runs / f"{fig}-{values['profile']}-{key}", runs / "data")


def location_problems(run: Rerun) -> list:
    """Why the rerun's folders cannot be written (empty when they can), checked before anything runs."""
    out = []
    for folder in (run.data_dir, run.folder / "figures" / run.values["profile"]):
        why = datasets.location_problem(folder, "folder", directory=True)
        if why is not None:
            out.append(why)
    return out


PLANNED = ("profile", "seed")   # the parameters the pipeline's plan covers (it knows the profile's sizes)


def plan(run: Rerun, out=print) -> bool:
    """Print what the rerun will compute before it starts. When it changes only the profile and
    the seed, each of the figure's datasets (and what they need) is found in the shipped data/, in
    RUNS/data/, or is to be made, with its planned network-activations and hours (the pipeline's
    plan); otherwise one line says that the sizes differ from the profile's and what the profile's
    own datasets of the figure cost. Returns whether the exact plan was printed. Computes nothing."""
    from . import pipeline
    profile, seed = run.values["profile"], int(run.values["seed"])
    shipped = run.notebook.parent.parent / "data"
    items = pipeline.declare(profile, run.data_dir, seed=seed)
    chosen = pipeline.select(pipeline.topological_order(items), [d.name for d in items if run.figure in d.figures])
    if not set(run.given) <= set(PLANNED):
        other = ", ".join(k for k in run.given if k not in PLANNED)
        out(f"  no plan for other parameters ({other}): at the profile's values {run.figure}'s datasets are "
            f"{sum(d.cost for d in chosen):,} network-activations "
            f"({sum(d.seconds() for d in chosen) / 3600:.2f} h at {pipeline.SPEED:g}/s); what data/ holds with "
            f"exactly the rerun's parameters is reused")
        return False
    with paper.read_only_mode(True):
        found = {where: pipeline.status(chosen, pipeline.Context(profile, folder, seed=seed))
                 for where, folder in (("data/", shipped), ("runs/data/", run.data_dir))}
    todo = [d for d in chosen if not any(found[w][d.name].exists for w in found)]
    out(f"  {run.figure} at profile {profile}, seed {seed}: {len(chosen) - len(todo)} of {len(chosen)} datasets "
        f"exist; to compute {sum(d.cost for d in todo):,} network-activations, "
        f"{sum(d.seconds() for d in todo) / 3600:.2f} h planned at {pipeline.SPEED:g}/s of E→E rules")
    for d in chosen:
        where = next((w for w in found if found[w][d.name].exists), None)
        out(f"    {d.name}: " + (f"in {where}" if where else
                                 f"to be made, {d.cost:,} net-act ({d.seconds() / 3600:.2f} h)"))
    return True


def execute(run: Rerun, timeout: float | None = None) -> float:
    """Run the notebook into the rerun's folder (compute mode, data/ reused); seconds it took.
    A failing notebook raises papermill's PapermillExecutionError (the partial notebook is kept)."""
    import papermill
    run.folder.mkdir(parents=True, exist_ok=True)
    run.data_dir.mkdir(parents=True, exist_ok=True)
    shipped = run.notebook.parent.parent / "data"
    parameters = dict(run.given, data_dir=str(run.data_dir), fig_dir=str(run.folder / "figures"))
    record = dict(figure=run.figure, notebook=run.notebook.name, given=run.given,
                  parameters=dict(run.values, **parameters), reused_from=str(shipped))
    (run.folder / "params.json").write_text(json.dumps(record, indent=1) + "\n")
    env = {paper.READ_ONLY_ENV: "0", paper.REUSE_ENV: str(shipped)}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)   # the kernel inherits the environment
    t0 = time.time()
    try:
        papermill.execute_notebook(str(run.notebook), str(run.output), parameters=parameters, kernel_name="python3",
                                   progress_bar=True, execution_timeout=timeout,
                                   cwd=str(run.notebook.parent.parent))
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return time.time() - t0


def draw(notebook, output, profile: str, timeout: float | None = None, data_dir: str | None = None) -> None:
    """One figure notebook at `profile` through papermill, as `make figures` runs it (read-only
    where PLASTICITY_REPRO_READ_ONLY=1): the executed notebook to `output`, each cell's output
    printed as it runs. A failing cell raises papermill's PapermillExecutionError."""
    import papermill
    parameters = dict(profile=profile, **({} if data_dir is None else dict(data_dir=str(data_dir))))
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    papermill.execute_notebook(str(notebook), str(output), parameters=parameters, kernel_name="python3",
                               log_output=True, progress_bar=False, execution_timeout=timeout)


def main(argv=None) -> int:
    """`python -m plasticity_repro.figure_runs NOTEBOOK OUTPUT --profile P`: what `make figN` runs.
    A missing dataset is one line naming the `make data` command that makes it (exit 2); another
    failing cell, one line naming the error and the executed notebook that shows its traceback."""
    import argparse
    import logging
    import sys
    from .experiments.paper import FIGURE_PROFILES
    ap = argparse.ArgumentParser(prog="python -m plasticity_repro.figure_runs",
                                 description="Run one figure notebook as `make figures` does.")
    ap.add_argument("notebook")
    ap.add_argument("output", help="the executed notebook")
    ap.add_argument("--profile", choices=list(FIGURE_PROFILES), required=True)
    ap.add_argument("--timeout", type=float, default=None, help="seconds a cell may run")
    ap.add_argument("--data-dir", default=None, help="the datasets' folder (the notebook's data_dir). Default: data")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)   # the cell-by-cell log
    from papermill.exceptions import PapermillExecutionError
    try:
        draw(a.notebook, a.output, a.profile, a.timeout, a.data_dir)
    except PapermillExecutionError as e:
        name = Path(a.notebook).stem
        if e.ename == "MissingDataset":
            print(f"{name}: {e.evalue}", file=sys.stderr)
        else:
            print(f"{name}: {e.ename}: {e.evalue} (cell {e.exec_count}; traceback in {a.output})", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
