"""The declared pipeline (plasticity_repro.pipeline), `plasticity-repro data` and the figures'
read-only mode: the order is a topological one, every dataset a notebook reads is declared and
shipped in data/ at quick and at each figure's shipped profile, a missing dataset under read-only mode is one line naming
`make data` before anything is computed, --plan prints a total, --dry-run computes nothing.
Nothing here searches or simulates: every compute function is replaced by one that fails."""
import os
import re
import shutil
import time
from pathlib import Path

import pytest
import xarray as xr

from helpers import run_cli as _run, tree as _tree
from plasticity_repro import datasets, pipeline
from plasticity_repro.experiments import paper
from plasticity_repro.profiles import SHIPPED   # each figure's shipped profile

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("fig*_*.py"))


@pytest.fixture
def no_compute(monkeypatch):
    """Every search, evaluation, sweep, stress test, perturbation, refit, reduced model and dataset
    write fails the test."""
    import plasticity_repro.experiments.evaluate as evaluate
    import plasticity_repro.experiments.perturb as perturb
    import plasticity_repro.experiments.reduced_model as reduced_model
    import plasticity_repro.experiments.refit as refit
    import plasticity_repro.experiments.stress as stress
    import plasticity_repro.experiments.sweep as sweep
    import plasticity_repro.search as search

    def boom(*a, **k):
        raise AssertionError("a computation started")
    for mod, name in ((search, "run_search"), (paper, "run_search"), (evaluate, "evaluate_dataset"),
                      (evaluate, "dropout_dataset"), (evaluate, "network_losses"), (refit, "refit_dataset"),
                      (stress, "stress_dataset"), (sweep, "turnover_sweep_dataset"),
                      (perturb, "perturbation_dataset"), (reduced_model, "reduced_model_dataset"),
                      (datasets, "write_dataset")):
        monkeypatch.setattr(mod, name, boom)


# -- the declaration ------------------------------------------------------------------------------
@pytest.mark.parametrize("profile", list(paper.FIGURE_PROFILES))
def test_declared_order_is_topological(profile):
    items = pipeline.declare(profile)
    seen = set()
    for d in items:
        assert set(d.needs) <= seen, (d.name, d.needs)
        seen.add(d.name)
    assert len(seen) == len(items)
    seen = set()
    for d in pipeline.topological_order(list(reversed(items))):   # any input order sorts
        assert set(d.needs) <= seen, (d.name, d.needs)
        seen.add(d.name)


def test_topological_order_sorts_and_rejects_cycles_and_unknown_needs():
    mk = lambda name, *needs: pipeline.Dataset(name, produce=None, needs=needs)  # noqa: E731
    order = [d.name for d in pipeline.topological_order([mk("c", "b"), mk("a"), mk("b", "a")])]
    assert order == ["a", "b", "c"]
    with pytest.raises(ValueError, match="cycle"):
        pipeline.topological_order([mk("a", "b"), mk("b", "a")])
    with pytest.raises(ValueError, match="not declared"):
        pipeline.topological_order([mk("a", "x")])


def _notebook_datasets(source: str, profile: str) -> set:
    """Dataset names a notebook source reads through paper.* at `profile` (its default parameters)."""
    names = set(re.findall(r'paper\.data_path\(data, "(\w+)"', source))
    for call in ("term_dropout", "term_refit"):
        names |= {f"{stem}_{call.split('_')[1]}" for stem in re.findall(rf'paper\.{call}\("(\w+)"', source)}
    for args in re.findall(r"paper\.searches\(([^)]*)\)", source):
        names.add("search_ee_turnover" if "p_turnover=" in args else "search_ee")
    all_synapse = "search_eeeiie_turnover" + ("_warm" if paper.FIGURE_PROFILES[profile]["ei_warm_start"] else "")
    if "paper.all_synapse_search(" in source or "paper.fig6_rule(" in source:   # fig6_rule: rule_source "all"
        names.add(all_synapse)
    if "paper.fig5_rules(" in source:   # both of Fig 5's searches
        names |= {all_synapse, "search_ee_turnover"}
    calls = {"fig2_evaluation": "fig2_eval", "fig5_evaluation": "fig5_eval", "fig5_sweep": "fig5_sweep",
             "fig5_dropout_ei": "fig5_dropout_ei", "fig6_perturbation": "fig6_perturb", "fig6_reduced": "fig6_reduced",
             "paper_terms_refit": "fig3_paper_terms_refit"}
    names |= {name for call, name in calls.items() if f"paper.{call}(" in source}
    if "paper.turnover_search(" in source:
        names.add("search_ee_turnover")
    if "paper.handmade_search(" in source:
        names.add("search_handmade")
    if "paper.stress_test(" in source:   # the hand-made search, the Fig 2 searches and the stress test
        names |= {"search_handmade", "search_ee", "fig4_stress"}
    return names


@pytest.mark.parametrize("profile", ["quick", "laptop", "repro"])
def test_every_dataset_a_notebook_reads_is_declared(profile):
    assert len(NOTEBOOKS) == 5
    declared = {d.name: d for d in pipeline.declare(profile)}
    for nb in NOTEBOOKS:
        fig = nb.stem.split("_")[0]
        read = _notebook_datasets(nb.read_text(), profile)
        assert read and read <= set(declared), (nb.name, read - set(declared))
        for d in declared.values():   # a dataset declared for a figure is one its notebook reads
            if fig in d.figures:
                assert d.name in read, (fig, d.name)
    # and every declared dataset is read by some notebook, but the tables made for users
    campaign = {d.name for d in declared.values() if d.name.startswith("campaign_")}   # repro: read via their copies
    assert {d.name for d in declared.values() if d.figures} == set(declared) - set(pipeline.TABLES) - campaign
    assert all(not declared[t].figures for t in pipeline.TABLES)


def _figure_datasets(profile: str, figures) -> list:
    """The datasets `figures` read at `profile` and what they need."""
    items = pipeline.declare(profile)
    return pipeline.select(items, [d.name for d in items if set(d.figures) & set(figures)])


def test_declared_datasets_of_the_quick_profile_exist_in_data(no_compute):
    """Same names and hashes as the notebooks: every declared file is found in data/ (read only)."""
    found = pipeline.status(pipeline.declare("quick"), pipeline.Context("quick", DATA))
    missing = [n for n, st in found.items() if not st.exists]
    assert not missing, missing
    assert {st.path.name for st in found.values()} == {p.name for p in DATA.glob("*_quick_*.nc")}


@pytest.mark.parametrize("profile", sorted(set(SHIPPED.values())))
def test_each_figure_finds_its_datasets_at_its_shipped_profile(profile, no_compute):
    """`make figures` reads each figure at its shipped profile (profiles.SHIPPED): its datasets are all
    in data/; every file of that profile in data/ is read by one of them, is a table for users, or is
    a dataset the profile's pipeline declares for a figure still shipped at another profile (the
    campaign in progress: a finished arm is kept before its figure switches)."""
    figures = [f for f, p in SHIPPED.items() if p == profile]
    items = _figure_datasets(profile, figures)
    found = pipeline.status(items, pipeline.Context(profile, DATA))
    missing = [n for n, st in found.items() if not st.exists]
    assert not missing, (figures, missing)
    shipped = {p.name for p in DATA.glob(f"*_{profile}_*.nc")}
    unused = shipped - {st.path.name for st in found.values()}
    later = [f for f, p in SHIPPED.items() if p != profile]
    pending = pipeline.status(_figure_datasets(profile, later), pipeline.Context(profile, DATA)) if later else {}
    unused -= {st.path.name for st in pending.values() if st.exists}
    assert all(n.startswith(pipeline.TABLES) for n in unused), unused   # no shipped file is left unused


def test_repro_declares_the_campaign_searches(tmp_path, no_compute):
    items = {d.name: d for d in pipeline.declare("repro", tmp_path)}
    for name, stem, synapses, p in pipeline.CAMPAIGN:
        camp = items["campaign_" + stem.removesuffix("_repro")]
        cmd = camp.params["command"]
        runs = paper.search_runs("repro", synapses)   # 8; all synapses: 16 (profiles.INTERIM aside)
        assert cmd.startswith(f"plasticity-repro search --profile repro --runs {runs} --seed 0") and "[--resume]" in cmd
        assert f"--out {tmp_path}/campaign/{stem}.nc --checkpoint {tmp_path}/campaign/{stem}.ckpt" in cmd
        assert ("--turnover 0.00072" in cmd) == bool(p) and ("--synapses all" in cmd) == (len(synapses) == 3)
        assert items[name].needs == (camp.name,) and camp.cost > 0 and items[name].cost == 0
        assert not camp.needs
    assert "search_eeeiie_turnover_warm" not in items   # repro searches the 96 numbers from zero
    # the adopted copy lies where the notebooks' paper.searches looks for it
    ctx = pipeline.Context("repro", tmp_path)
    with paper.read_only_mode():
        with pytest.raises(paper.MissingDataset) as want:
            paper.searches("repro", tmp_path, p_turnover=0.00072, progress=False)
        with pytest.raises(paper.MissingDataset) as got:
            items["search_ee_turnover"].produce(ctx)
        with pytest.raises(paper.MissingDataset) as camp:
            items["campaign_search_ee"].produce(ctx)
    assert got.value.path == want.value.path
    assert camp.value.path == tmp_path / "campaign" / "search_ee_repro.nc"
    assert "campaign_search_ee" in str(camp.value) and "make data PROFILE=repro" in str(camp.value)
    assert _tree(tmp_path) == []


def test_adopting_a_campaign_search_checks_it_and_keeps_its_hashes(tmp_path):
    cfg = paper.search_config("quick")
    src = paper.search_path(DATA, cfg, "quick", dict(search=cfg.to_dict(), seeds=[0, 1]))
    ds = pipeline._adopt(src, cfg, [0, 1])
    assert ds.attrs["copied_from"] == f"{src.parent.name}/{src.name}" and ds.attrs["params_hash"]
    datasets.write_dataset(ds, tmp_path / "copy.nc")   # the cache writes it back under its own name
    assert datasets.read_dataset(tmp_path / "copy.nc", kind="search").attrs["params_hash"] == ds.attrs["params_hash"]
    with pytest.raises(ValueError, match="not the search profile quick asks for"):
        pipeline._adopt(src, cfg, [0, 1, 2])
    with pytest.raises(ValueError, match="not the search"):
        pipeline._adopt(src, paper.search_config("quick", p_turnover=0.00072), [0, 1])


def test_a_campaign_checkpoint_written_just_now_is_not_resumed(tmp_path, no_compute):
    (tmp_path / "campaign").mkdir()
    (tmp_path / "campaign" / "search_ee_repro.ckpt").write_bytes(b"x")
    ctx = pipeline.Context("repro", tmp_path)
    with pytest.raises(ValueError, match="may still be running"):
        pipeline._run_campaign(ctx, tmp_path / "campaign" / "search_ee_repro.nc", ("ee",), 0.0)
    old = time.time() - 2 * pipeline.BUSY_CHECKPOINT_S
    os.utime(tmp_path / "campaign" / "search_ee_repro.ckpt", (old, old))
    with pytest.raises(AssertionError, match="a computation started"):   # reaches the search
        pipeline._run_campaign(ctx, tmp_path / "campaign" / "search_ee_repro.nc", ("ee",), 0.0)


# -- read-only mode -------------------------------------------------------------------------------
def test_read_only_missing_dataset_is_one_line_naming_make_data(tmp_path, monkeypatch, no_compute):
    monkeypatch.setenv(paper.READ_ONLY_ENV, "1")
    with pytest.raises(ValueError) as e:
        paper.searches("laptop", tmp_path, progress=False)
    msg = str(e.value)
    assert "\n" not in msg
    assert re.fullmatch(r"dataset search_ee \(\S+search_ee_laptop_[0-9a-f]{10}\.nc\) is missing; "
                        r"make it with: make data PROFILE=laptop", msg), msg
    # downstream: the search is there, the evaluation is not
    cfg = paper.search_config("quick")
    src = paper.search_path(DATA, cfg, "quick", dict(search=cfg.to_dict(), seeds=[0, 1]))
    shutil.copy(src, tmp_path / src.name)
    fig2 = next(d for d in pipeline.declare("quick") if d.name == "fig2_eval")
    with pytest.raises(paper.MissingDataset, match=r"^dataset fig2_eval \(.*\) is missing; make it with: "
                                                    r"make data PROFILE=quick$"):
        fig2.produce(pipeline.Context("quick", tmp_path))
    assert _tree(tmp_path) == [src.name]


def test_read_only_switch_values(monkeypatch):
    for value, on in (("1", True), ("yes", True), ("0", False), ("", False), ("false", False), ("off", False)):
        monkeypatch.setenv(paper.READ_ONLY_ENV, value)
        assert paper.read_only() is on, value
    monkeypatch.delenv(paper.READ_ONLY_ENV)
    assert not paper.read_only()
    with paper.read_only_mode():
        assert paper.read_only()
    assert paper.READ_ONLY_ENV not in os.environ


def test_a_figure_notebook_in_read_only_mode_stops_at_its_first_missing_dataset(tmp_path, monkeypatch, no_compute):
    """The Fig 2 notebook's own code, with data_dir an empty folder: the search is missing."""
    monkeypatch.setenv(paper.READ_ONLY_ENV, "1")
    monkeypatch.setenv("PLASTICITY_REPRO_SAVE_FIGURES", "0")
    source = (ROOT / "notebooks" / "fig2_self_organization.py").read_text()
    source = source.replace('data_dir = "data"', f"data_dir = {str(tmp_path)!r}", 1)
    monkeypatch.chdir(ROOT)
    with pytest.raises(paper.MissingDataset) as e:
        exec(compile(source, "fig2_self_organization.py", "exec"), {"__name__": "fig2"})
    assert e.value.name == "search_ee" and "make data PROFILE=quick" in str(e.value)
    assert _tree(tmp_path) == []


def test_figure_targets_are_read_only():
    make = (ROOT / "Makefile").read_text()
    assert re.search(r"PLASTICITY_REPRO_READ_ONLY=\$\(READ_ONLY\) \$\(PY\) -m plasticity_repro.figure_runs", make)
    assert re.search(r"^data: env\n\t.*plasticity-repro data \$\(if \$\(PROFILE\),--profile \$\(PROFILE\)\)", make, re.M)


def _draw_read_only(notebook: str, data_dir, missing: str):
    """Run what `make figN` runs (figure_runs main), read-only, at quick on `data_dir`: it must exit
    2 with one line on stderr naming dataset `missing` and the `make data` command, no traceback."""
    import subprocess
    import sys
    env = dict(os.environ, PLASTICITY_REPRO_READ_ONLY="1", PLASTICITY_REPRO_SAVE_FIGURES="0", JAX_PLATFORMS="cpu")
    r = subprocess.run([sys.executable, "-m", "plasticity_repro.figure_runs", "--profile", "quick", "--data-dir",
                        str(data_dir), f"notebooks/{notebook}.ipynb", str(data_dir / "out.ipynb")],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 2, r.stderr[-2000:]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stdout + r.stderr, r.stderr[-2000:]
    assert re.fullmatch(rf"{notebook}: dataset {missing} \(.*\) is missing; make it with: make data PROFILE=quick",
                        lines[0]), lines[0]
    return r


def test_a_figure_with_a_missing_dataset_fails_in_one_line_naming_make_data(tmp_path):
    """With the notebook's data folder empty."""
    _draw_read_only("fig6_homeostasis", tmp_path, r"\w+")
    assert [p.name for p in tmp_path.iterdir()] == ["out.ipynb"]   # nothing computed or written


# -- the command ----------------------------------------------------------------------------------
def test_plan_prints_every_dataset_and_a_total(capsys, monkeypatch):
    def no_read(*a, **k):
        raise AssertionError("--plan read a dataset")
    monkeypatch.setattr(datasets, "read_dataset", no_read)
    code, out, _ = _run(["data", "--profile", "repro", "--plan", "--speed", "1000"], capsys)
    assert code == 0
    items = pipeline.declare("repro")
    rows = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    for d in items:
        assert f"{d.cost:,}" in rows[d.name].split(), d.name
    total = sum(d.cost for d in items)
    work = sum(d.cost * d.work for d in items)     # all-synapse rules weigh ALL_SYNAPSE_WORK
    assert total < work < total * pipeline.ALL_SYNAPSE_WORK
    assert {d.name for d in items if d.work == pipeline.ALL_SYNAPSE_WORK} >= {"campaign_search_all_turnover",
                                                                             "fig5_dropout_ei", "fig6_perturb"}
    cells = rows["total"].split()
    assert cells[1] == f"{total:,}" and float(cells[2]) == pytest.approx(work / 1000 / 3600, abs=0.006)
    assert "at 1000 net-act/s" in rows["total"]
    # hours scale with --speed
    _, out2, _ = _run(["data", "--profile", "repro", "--plan"], capsys)
    hours = float(next(line for line in out2.splitlines() if line.startswith("total")).split()[2])
    assert hours == pytest.approx(work / pipeline.SPEED / 3600, abs=0.006)


def test_plan_with_only_keeps_what_it_needs(capsys):
    code, out, _ = _run(["data", "--profile", "laptop", "--plan", "--only", "fig6_perturb"], capsys)
    assert code == 0
    names = [line.split()[0] for line in out.splitlines()[4:] if line.strip() and not line.startswith(" ")]
    assert names[:3] == ["search_ee_turnover", "search_eeeiie_turnover_warm", "fig6_perturb"]
    code, _, err = _run(["data", "--profile", "laptop", "--plan", "--only", "nope"], capsys)
    assert code == 2 and err.count("\n") == 1 and "--only" in err and "nope" in err


def test_dry_run_lists_and_computes_nothing(tmp_path, capsys, no_compute):
    cfg = paper.search_config("quick")
    src = paper.search_path(DATA, cfg, "quick", dict(search=cfg.to_dict(), seeds=[0, 1]))
    shutil.copy(src, tmp_path / src.name)
    before = _tree(tmp_path)
    code, out, err = _run(["data", "--profile", "quick", "--dry-run", "--data-dir", str(tmp_path)], capsys)
    assert code == 0, err
    lines = out.splitlines()
    n = len(pipeline.declare("quick", tmp_path))
    assert f"{n} datasets, 1 exist, {n - 1} would be made" in lines[0]
    search = next(line for line in lines if " search_ee " in line)
    assert "exists" in search and src.name in search
    fig2 = next(line for line in lines if " fig2_eval " in line)
    assert "would be made" in fig2 and re.search(r"fig2_eval_quick_[0-9a-f]{10}\.nc", fig2)
    refit = next(line for line in lines if " fig3_refit " in line)
    assert "once fig3_dropout exists" in refit
    assert _tree(tmp_path) == before


def test_dry_run_at_the_quick_profile_finds_everything(capsys, no_compute):
    code, out, _ = _run(["data", "--profile", "quick", "--dry-run", "--data-dir", str(DATA)], capsys)
    n = len(pipeline.declare("quick", DATA))
    assert code == 0 and f"{n} datasets, {n} exist, 0 would be made" in out.splitlines()[0]


def test_data_without_a_profile_finds_every_figures_shipped_datasets(capsys, no_compute, monkeypatch):
    # what `make figures` reads, each figure at its shipped profile: all in data/, nothing to make,
    # and no cluster started for a dry run even with --workers
    from plasticity_repro import distributed
    monkeypatch.setattr(distributed, "dask_client", lambda *a, **k: (_ for _ in ()).throw(AssertionError("cluster")))
    code, out, _ = _run(["data", "--dry-run", "--workers", "2", "--data-dir", str(DATA)], capsys)
    heads = [line for line in out.splitlines() if line.startswith("profile ")]
    assert code == 0 and [h.split(":")[0] for h in heads] == [f"profile {p}" for p in dict.fromkeys(SHIPPED.values())]
    assert all(", 0 would be made" in h for h in heads), heads
    code, out, _ = _run(["data", "--plan", "--workers", "2"], capsys)
    assert code == 0 and out.count("plan for profile") == len(set(SHIPPED.values()))


def test_only_without_a_profile_is_a_one_line_error(capsys, no_compute):
    code, _, err = _run(["data", "--only", "fig2_eval"], capsys)
    assert code == 2 and err.count("\n") == 1 and "--only" in err and "--profile" in err


def test_bad_data_dir_exits_2_before_compute(tmp_path, capsys, no_compute):
    (tmp_path / "afile").write_text("x")
    code, _, err = _run(["data", "--profile", "quick", "--data-dir", str(tmp_path / "afile")], capsys)
    assert code == 2 and err.count("\n") == 1 and "--data-dir" in err and "not a folder" in err


def _toy(name, needs=(), calls=None):
    def produce(c):
        def compute():
            calls.append(name)
            return xr.Dataset(attrs={"kind": "toy"})
        return paper.cached(c.data_dir / f"{name}_quick_{'0' * 10}.nc", "toy", compute)
    return pipeline.Dataset(name, produce, tuple(needs), ("fig2",), cost=3000 * len(name))


def test_make_makes_what_is_missing_in_order_and_checks_each_output(tmp_path):
    calls, checked, lines = [], [], []
    items = [_toy("c", ["b"], calls), _toy("a", [], calls), _toy("b", ["a"], calls), _toy("d", [], calls)]
    datasets.write_dataset(xr.Dataset(attrs={"kind": "toy"}), tmp_path / f"a_quick_{'0' * 10}.nc")
    ctx = pipeline.Context("quick", tmp_path)
    made = pipeline.make(items, ctx, only=["c"], out=lines.append,
                         check_path=lambda name, path: checked.append((name, path.name)))
    assert made == calls == ["b", "c"]   # "a" exists, "d" is not asked for
    # b's name is known before anything is made (checked then and just before b), c's once b exists
    assert checked == [("b", f"b_quick_{'0' * 10}.nc")] * 2 + [("c", f"c_quick_{'0' * 10}.nc")]
    assert "1 exist, 2 to be made" in lines[0] and "planned 6,000 network-activations" in lines[0]
    assert [line.split()[1] for line in lines[1:] if line.startswith("[")] == ["a", "b", "c"]
    assert any("done in" in line for line in lines) and any("all left" in line for line in lines)
    assert pipeline.make(items, ctx, out=lines.append) == ["d"]   # a rerun makes only what is missing
    assert pipeline.make(items, ctx, out=lines.append) == []


def test_a_resumed_search_counts_only_the_generations_it_still_runs(tmp_path, monkeypatch):
    """A search resuming from its checkpoint at generation 4 of 10 has 60 % of its planned cost
    left: the plan's total, the speed it reports when done and the measured ETA of what follows
    count only that part."""
    import numpy as np
    import pickle

    class Clock:   # the wall time the pipeline reads; each toy's compute advances it
        t = 1000.0

        def time(self):
            return self.t
    clock = Clock()
    monkeypatch.setattr(pipeline, "time", clock)
    name = f"s_quick_{'0' * 10}"
    with open(tmp_path / f"{name}.ckpt", "wb") as f:
        pickle.dump({"generation": 4}, f)

    def search(c):
        def compute():
            clock.t += 12.0   # generations 4..9: 18,000 net-act in 12 s
            return xr.Dataset(coords={"generation": np.arange(10)}, attrs={"kind": "toy"})
        return paper.cached(c.data_dir / f"{name}.nc", "toy", compute)

    def after(c):
        return paper.cached(c.data_dir / f"e_quick_{'0' * 10}.nc", "toy", lambda: xr.Dataset(attrs={"kind": "toy"}))
    items = [pipeline.Dataset("s", search, (), ("fig2",), cost=30_000, generations=10),
             pipeline.Dataset("e", after, ("s",), ("fig2",), cost=3_000)]
    assert pipeline.spent_fraction(items[0], tmp_path / f"{name}.nc") == pytest.approx(0.4)
    assert pipeline.spent_fraction(items[1], tmp_path / f"{name}.nc") == 0.0   # not a search
    lines = []
    assert pipeline.make(items, pipeline.Context("quick", tmp_path), out=lines.append) == ["s", "e"]
    assert "planned 21,000 network-activations" in lines[0] and "1 search resumed" in lines[0], lines[0]
    making_s = next(line for line in lines if line.startswith("[1/2] s"))
    assert "from its checkpoint at generation 4 of 10" in making_s and "all left 7 s planned" in making_s, making_s
    assert any("done in 12 s (1,500 net-act/s)" in line for line in lines), lines
    making_e = next(line for line in lines if line.startswith("[2/2] e"))
    assert "all left 1 s planned, 2 s at the speed measured so far" in making_e, making_e
    (tmp_path / f"{name}.ckpt").write_bytes(b"x")   # unreadable: nothing counted as spent
    assert pipeline.spent_fraction(items[0], tmp_path / f"{name}.nc") == 0.0


def test_a_figure_with_one_shipped_dataset_missing_fails_in_one_line_naming_make_data(tmp_path):
    """As `make figures` runs a figure, with the shipped data/ but for one dataset: the notebook
    reads the others, then stops in one line naming the missing one and `make data`."""
    import shutil
    for f in (ROOT / "data").glob("*_quick_*.nc"):
        if not f.name.startswith("fig2_eval_"):
            shutil.copy(f, tmp_path / f.name)
    r = _draw_read_only("fig2_self_organization", tmp_path, "fig2_eval")
    assert "runs: 2" in r.stdout     # the search before it was read
