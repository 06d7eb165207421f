"""The figure notebooks' parameters (plasticity_repro.experiments.params) and their reruns
(plasticity_repro.figure_runs, `plasticity-repro params|figure`, `make figN P=...`): the notebooks'
parameters cells mirror the one table, a bad value is one line naming it and its range before
anything runs, a seed moves all the randomness it names while seed 0 keeps the shipped datasets,
the parameters change what is asked for, and a rerun writes only to its own git-ignored folder.
Nothing here searches or simulates: every compute function is replaced by one that fails."""
import ast
import json
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from plasticity_repro import figure_runs
from plasticity_repro.experiments import paper, params
from plasticity_repro.search import network_seeds

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
NOTEBOOKS = {p.stem.split("_")[0]: p for p in sorted((ROOT / "notebooks").glob("fig*_*.py"))}

from test_pipeline import _run, _tree, no_compute  # noqa: E402,F401  (the fixture)


def _cells(source: str) -> list:
    """(header line, body) of each `# %%` cell of a jupytext percent script."""
    parts = re.split(r"^(# %%.*)$", source, flags=re.M)
    return [(parts[i], parts[i + 1]) for i in range(1, len(parts), 2)]


def _parameters_cell(source: str) -> tuple:
    cells = _cells(source)
    i = next(i for i, (head, _) in enumerate(cells) if 'tags=["parameters"]' in head)
    return cells[i][1], cells[i + 1][1]


# -- the table and the notebooks ------------------------------------------------------------------
def test_every_notebook_has_a_table_and_the_table_names_every_notebook():
    assert set(NOTEBOOKS) == set(params.PARAMETERS) == set(params.NOTEBOOKS)
    for fig, path in NOTEBOOKS.items():
        assert params.NOTEBOOKS[fig] == path.stem


@pytest.mark.parametrize("fig", sorted(params.PARAMETERS))
def test_parameters_cell_mirrors_the_table(fig):
    """Same names, same order, same defaults (None: the profile's value)."""
    cell, _ = _parameters_cell(NOTEBOOKS[fig].read_text())
    tree = ast.parse(cell)
    found = {node.targets[0].id: ast.literal_eval(node.value) for node in tree.body}
    assert list(found) == list(params.defaults(fig))
    assert found == params.defaults(fig)


@pytest.mark.parametrize("fig", sorted(params.PARAMETERS))
def test_the_cell_after_the_parameters_checks_them_before_anything_else(fig):
    _, after = _parameters_cell(NOTEBOOKS[fig].read_text())
    lines = [line for line in after.splitlines() if line.strip() and not line.startswith("#")]
    check = next(i for i, line in enumerate(lines) if "params.check_notebook(globals()" in line)
    assert f'params.check_notebook(globals(), "{fig}")' in lines[check]
    assert all("plots" not in line and "paper." not in line for line in lines[:check])


@pytest.mark.parametrize("fig", sorted(params.PARAMETERS))
def test_every_parameter_is_used_by_its_notebook(fig):
    source = NOTEBOOKS[fig].read_text()
    rest = source.split('tags=["parameters"]', 1)[1].split("\n# %%", 1)[1]
    for name in params.table(fig):
        if name not in ("data_dir", "fig_dir"):   # those are read by check_notebook
            assert re.search(rf"\b{name}\b", rest), (fig, name)


def test_notebooks_readme_holds_the_generated_table():
    readme = (ROOT / "notebooks" / "README.md").read_text()
    assert params.markdown() in readme, "regenerate it: plasticity-repro params --markdown"


@pytest.mark.parametrize("profile", list(paper.FIGURE_PROFILES))
def test_defaults_resolve_to_the_profiles_values(profile):
    fp = paper.FIGURE_PROFILES[profile]
    cfg = paper.search_config(profile)
    v = params.resolve("fig3", {"profile": profile})
    assert (v["runs"], v["generations"], v["n_activations"]) == (fp["runs"], cfg.max_generations,
                                                                  cfg.model.n_activations)
    assert (v["n_dropout_networks"], v["n_networks"], v["refit_k_max"]) == (fp["dropout_networks"],
                                                                            fp["eval_networks"], fp["refit_ks"][-1])
    assert params.resolve("fig6", {"profile": profile})["n_networks"] == min(20, fp["eval_networks"])
    from plasticity_repro.experiments.perturb import KINDS, perturbation_kinds
    from plasticity_repro.experiments.sweep import P_VALUES
    v6 = params.resolve("fig6", {"profile": profile})
    assert perturbation_kinds(v6["afferent_factors"], v6["input_factor"]) == KINDS
    assert params.resolve("fig5", {"profile": profile})["p_values"] == list(P_VALUES)


# -- bad values -----------------------------------------------------------------------------------
BAD = [
    ("fig2", dict(n_networks=0), "n_networks must be an integer in [1, 10000], got 0"),
    ("fig2", dict(seed=-1), "seed must be an integer in [0, 9999], got -1"),
    ("fig2", dict(seed=1.0), "seed must be an integer in [0, 9999], got 1.0"),
    ("fig2", dict(seed=True), "seed must be an integer in [0, 9999], got True"),
    ("fig2", dict(generations=0), "generations must be an integer in [1, 1000000], got 0"),
    ("fig2", dict(runs="2"), "runs must be an integer in [1, 1000], got '2'"),
    ("fig2", dict(profile="huge"), "profile must be one of ['quick', 'laptop', 'repro', 'paper'], got 'huge'"),
    ("fig2", dict(data_dir=""), "data_dir must be a non-empty path, got ''"),
    ("fig2", dict(bogus=1), "fig2 has no parameter 'bogus'; its parameters: profile, seed, data_dir, fig_dir, "
                            "runs, generations, n_activations, n_networks, rule_runs"),
    ("fig2", dict(profile="repro", rule_runs="0,8"), "rule_runs must be 'all' or a list of distinct run numbers in "
                                                     "[0, 7] (runs = 8), got 0,8"),
    ("fig2", dict(rule_runs="1,1"), "rule_runs must be 'all' or a list of distinct run numbers in [0, runs - 1], "
                                    "got '1,1'"),
    ("fig5", dict(rule_runs=[0.5]), "rule_runs must be 'all' or a list of distinct run numbers in [0, runs - 1], "
                                    "got [0.5]"),
    ("fig6", dict(rule_run="first"), "rule_run must be 'best' or a run number in [0, runs - 1], got 'first'"),
    ("fig6", dict(all_synapse_runs=3, rule_run=3),
     "rule_run must be 'best' or a run number in [0, 2] (all_synapse_runs = 3), got 3"),
    ("fig6", dict(rule_source="ee", runs=3, rule_run=3),
     "rule_run must be 'best' or a run number in [0, 2] (runs = 3), got 3"),
    ("fig5", dict(runs=3, all_synapse_runs=2), "all_synapse_runs must be an integer in [3, 1000] (at least runs = 3), "
                                               "got 2"),
    ("fig5", dict(runs=3), "all_synapse_runs must be an integer in [3, 1000] (at least runs = 3), got 2 (the profile's "
                           "value: raise it with runs)"),
    ("fig4", dict(p_turnover=1.5), "p_turnover must be a number in [0, 1], got 1.5"),
    ("fig5", dict(p_values=[0.001, 0.0]), "p_values must be a list of 1 to 20 increasing numbers in [0, 1], got "
                                          "[0.001, 0.0]"),
    ("fig5", dict(p_values="0,x"), "p_values must be a list of 1 to 20 increasing numbers in [0, 1], got '0,x'"),
    ("fig5", dict(tau_convention="mine"), "tau_convention must be one of ['independent', 'shifted'], got 'mine'"),
    ("fig6", dict(rule_source="ie"), "rule_source must be one of ['all', 'ee'], got 'ie'"),
    ("fig6", dict(afferent_factors=[]), "afferent_factors must be a list of 1 to 10 distinct numbers in [0.01, 100], "
                                        "got []"),
    ("fig6", dict(input_factor=0), "input_factor must be a number in [0.01, 1000], got 0"),
    ("fig2", dict(profile="repro", seed=6000), "seed must be an integer in [0, 5367] at profile repro with 8 runs "
                                               "(each run's own networks need seeds below 2^32), got 6000"),
    ("fig5", dict(profile="repro", all_synapse_runs=16, seed=3000),
     "seed must be an integer in [0, 2683] at profile repro with 16 runs (each run's own networks need seeds below "
     "2^32), got 3000"),
]


@pytest.mark.parametrize("fig,values,message", BAD)
def test_a_bad_value_is_one_line_naming_it_and_its_range(fig, values, message):
    with pytest.raises(ValueError) as e:
        params.resolve(fig, values)
    assert str(e.value) == message
    assert "e+" not in str(e.value)


def test_values_are_normalised():
    v = params.resolve("fig6", dict(afferent_factors="0.25, 2", input_factor=5, seed=3))
    assert v["afferent_factors"] == [0.25, 2.0] and v["input_factor"] == 5.0 and isinstance(v["input_factor"], float)
    assert v["seed"] == 3 and isinstance(v["seed"], int)


def test_run_numbers_are_normalised_and_every_run_is_all():
    assert params.resolve("fig2", dict(profile="repro", rule_runs="5, 0"))["rule_runs"] == [0, 5]
    assert params.resolve("fig2", dict(profile="repro", rule_runs=list(range(8))))["rule_runs"] is None
    assert params.resolve("fig5", dict(rule_runs="all"))["rule_runs"] is None
    # with more all-synapse runs, listing runs 0..runs-1 is not the selection 'all' stands for
    assert params.resolve("fig5", dict(rule_runs="0,1", all_synapse_runs=3))["rule_runs"] == [0, 1]
    assert params.resolve("fig5", dict(rule_runs="0,1"))["rule_runs"] is None
    assert params.resolve("fig6", dict(profile="repro", rule_source="ee", seed=3000))["seed"] == 3000
    assert params.resolve("fig6", dict(rule_run="2", all_synapse_runs=3))["rule_run"] == 2
    assert params.resolve("fig6", {})["rule_run"] is None


def _namespace(fig, **values):
    ns = {"__name__": "nb", **params.defaults(fig)}
    ns.update(values)
    return ns


def test_check_notebook_fills_in_the_profiles_values_and_returns_the_folders(monkeypatch, tmp_path):
    monkeypatch.setenv(paper.READ_ONLY_ENV, "0")
    monkeypatch.chdir(ROOT / "notebooks")
    ns = _namespace("fig2", profile="laptop", data_dir=str(tmp_path / "d"), fig_dir="figs", n_networks=7)
    data, figs = params.check_notebook(ns, "fig2")
    assert data == tmp_path / "d" and figs == ROOT / "figs"   # relative: from the project root
    assert (ns["runs"], ns["generations"], ns["n_networks"]) == (2, 35, 7)
    assert not params.at_defaults(ns, "fig2")
    ns = _namespace("fig2", profile="laptop", data_dir=str(tmp_path / "d"), fig_dir=str(tmp_path / "f"))
    params.check_notebook(ns, "fig2")
    assert params.at_defaults(ns, "fig2")
    assert _tree(tmp_path) == [] and not (ROOT / "figs").exists()   # checking folders makes none


def test_check_notebook_names_an_injected_unknown_parameter(monkeypatch):
    monkeypatch.setenv(paper.READ_ONLY_ENV, "1")
    with pytest.raises(ValueError, match=r"^fig3 has no parameter 'n_netwroks'; its parameters: profile, seed"):
        params.check_notebook(_namespace("fig3", n_netwroks=5), "fig3")
    # modules, classes and private names are not parameters
    import os as module
    params.check_notebook(_namespace("fig3", os=module, Path=Path, _x=1), "fig3")


@pytest.mark.parametrize("option", ["data_dir", "fig_dir"])
def test_an_output_folder_that_cannot_be_made_is_one_line_naming_the_option(option, tmp_path, monkeypatch):
    monkeypatch.setenv(paper.READ_ONLY_ENV, "0")
    monkeypatch.setenv(params.SAVE_FIGURES_ENV, "1")
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ValueError) as e:
        params.check_notebook(_namespace("fig2", **{option: str(tmp_path / "afile" / "sub")}), "fig2")
    assert str(e.value).startswith(f"{option}: ") and "not a folder" in str(e.value) and "\n" not in str(e.value)


def test_read_only_figures_do_not_check_the_data_folder(tmp_path, monkeypatch):
    monkeypatch.setenv(paper.READ_ONLY_ENV, "1")
    monkeypatch.setenv(params.SAVE_FIGURES_ENV, "0")
    (tmp_path / "afile").write_text("x")
    params.check_notebook(_namespace("fig2", data_dir=str(tmp_path / "afile"), fig_dir=str(tmp_path / "afile")), "fig2")


# -- seeds ----------------------------------------------------------------------------------------
def test_seed_zero_keeps_the_shipped_seeds():
    for profile, fp in paper.FIGURE_PROFILES.items():
        assert paper.search_seeds(profile) == list(range(fp["runs"]))
        assert paper.eval_seeds(profile).tolist() == (fp["eval_seed"] + np.arange(fp["eval_networks"])).tolist()


def test_a_seed_moves_the_search_and_the_evaluation_networks_without_overlap():
    runs = paper.FIGURE_PROFILES["quick"]["runs"]
    blocks = [paper.search_seeds("quick", s) for s in range(5)]
    assert blocks[1] == [runs, runs + 1]
    assert len({x for b in blocks for x in b}) == 5 * runs   # seed 1's run 0 is not seed 0's run 1
    nets = [set(paper.eval_seeds("quick", 100, s).tolist()) for s in range(5)]
    assert all(not (a & b) for i, a in enumerate(nets) for b in nets[i + 1:])


@pytest.mark.parametrize("profile", list(paper.FIGURE_PROFILES))
def test_evaluation_networks_are_never_search_networks(profile):
    cfg = paper.search_config(profile)
    for seed in (0, 1, 7):
        search = set()
        for s in paper.search_seeds(profile, seed):
            search |= set(network_seeds(cfg, cfg.train_seed, cfg.n_train, s).tolist())
            search |= set(network_seeds(cfg, cfg.test_seed, cfg.n_test, s).tolist())
        for other in (0, 1, 7):
            assert not search & set(paper.eval_seeds(profile, params.MAX_NETWORKS, other).tolist())


def test_the_largest_seed_keeps_network_seeds_below_2_32():
    v = params.resolve("fig2", dict(profile="repro", seed=5367))
    cfg = paper.search_config("repro")
    top = paper.search_seeds("repro", v["seed"], v["runs"])[-1]
    assert network_seeds(cfg, cfg.test_seed, cfg.n_test, top).max() < 2 ** 32
    assert paper.eval_seeds("paper", params.MAX_NETWORKS, paper.SEED_MAX).max() < 2 ** 31


# -- the parameters change what is computed ------------------------------------------------------
def _notebook_stops_at(fig, tmp_path, monkeypatch, **values):
    """The notebook's code in read-only mode on the shipped data/ with `values` injected after its
    parameters cell (as papermill does): the MissingDataset it stops at."""
    monkeypatch.setenv(paper.READ_ONLY_ENV, "1")
    monkeypatch.setenv(params.SAVE_FIGURES_ENV, "0")
    monkeypatch.chdir(ROOT)
    source = NOTEBOOKS[fig].read_text()
    cell, _ = _parameters_cell(source)
    injected = cell + "".join(f"{k} = {v!r}\n" for k, v in values.items())
    with pytest.raises(paper.MissingDataset) as e:
        exec(compile(source.replace(cell, injected, 1), NOTEBOOKS[fig].name, "exec"), {"__name__": fig})
    return e.value


@pytest.mark.parametrize("values,stops_at", [(dict(n_networks=2), "fig2_eval"), (dict(runs=1), "search_ee"),
                                             (dict(generations=2), "search_ee"), (dict(seed=1), "search_ee")])
def test_a_parameter_changes_the_datasets_fig2_asks_for(values, stops_at, tmp_path, monkeypatch, no_compute):
    e = _notebook_stops_at("fig2", tmp_path, monkeypatch, **values)
    assert e.name == stops_at and e.path.parent == DATA and not e.path.exists()
    assert re.fullmatch(rf"{stops_at}_quick_[0-9a-f]{{10}}\.nc", e.path.name)


@pytest.mark.parametrize("values,stops_at", [(dict(n_activations=30), "search_ee_turnover"),
                                             (dict(handmade_generations=2), "search_handmade"),
                                             (dict(handmade_runs=3), "search_handmade")])
def test_a_parameter_changes_the_datasets_fig4_asks_for(values, stops_at, tmp_path, monkeypatch, no_compute):
    e = _notebook_stops_at("fig4", tmp_path, monkeypatch, **values)
    assert e.name == stops_at and e.path.parent == DATA and not e.path.exists()


def test_a_perturbation_factor_changes_the_dataset_fig6_asks_for(tmp_path, monkeypatch, no_compute):
    e = _notebook_stops_at("fig6", tmp_path, monkeypatch, afferent_factors=[0.7])
    assert e.name == "fig6_perturb" and not e.path.exists()


def test_which_rules_are_evaluated_names_the_dataset(monkeypatch, no_compute):
    """Every run listed reads the shipped evaluation (the same name); a subset asks for its own."""
    monkeypatch.setenv(paper.READ_ONLY_ENV, "1")
    cfg = paper.search_config("quick")
    search = paper.searches("quick", DATA, progress=False, cfg=cfg)
    every = paper.fig2_evaluation("quick", DATA, search, cfg, rule_runs=range(search.sizes["run"]))
    assert list(every.rule.values) == [f"run {i}" for i in range(search.sizes["run"])] + ["no plasticity"]
    with pytest.raises(paper.MissingDataset) as e:
        paper.fig2_evaluation("quick", DATA, search, cfg, rule_runs=[1])
    assert e.value.name == "fig2_eval" and not e.value.path.exists()
    with pytest.raises(ValueError, match=r"rule_runs must be run numbers in \[0, 1\]"):
        paper.fig2_evaluation("quick", DATA, search, cfg, rule_runs=[2])
    r = paper.fig5_rules("quick", DATA, rule_runs=[1])
    assert r.names_all == ["all run 1"] and r.names_ee == ["E->E run 1"] and r.key
    assert paper.fig5_rules("quick", DATA).key == ()
    with pytest.raises(paper.MissingDataset):
        paper.fig5_evaluation("quick", DATA, r)
    best = paper.fig6_rule("quick", DATA)[2]
    assert paper.fig6_rule("quick", DATA, rule_run=1 - best)[2] == 1 - best


def test_a_subset_of_rules_is_evaluated_alone(tmp_path):
    cfg = paper.search_config("quick")
    search = paper.searches("quick", DATA, progress=False, cfg=cfg)
    ev = paper.fig2_evaluation("quick", tmp_path, search, cfg, rule_runs=[1], n_networks=2)
    full = paper.fig2_evaluation("quick", DATA, search, cfg)
    assert list(ev.rule.values) == ["run 1", "no plasticity"] and ev.sizes["network"] == 2
    # the same rule on the same first two networks as in the shipped evaluation of every run
    np.testing.assert_allclose(ev.loss.sel(rule="run 1").values, full.loss.sel(rule="run 1").values[:2], rtol=1e-5)


def test_cached_reads_a_dataset_of_the_same_name_from_a_reuse_folder(tmp_path, monkeypatch, no_compute):
    cfg = paper.search_config("quick")
    shipped = paper.search_path(DATA, cfg, "quick", dict(search=cfg.to_dict(), seeds=[0, 1]))
    monkeypatch.setenv(paper.REUSE_ENV, os.pathsep.join([str(tmp_path / "none"), str(DATA)]))
    monkeypatch.setenv(paper.READ_ONLY_ENV, "1")
    ds = paper.searches("quick", tmp_path / "mine", progress=False)
    assert ds.encoding["source"] == str(shipped)
    with pytest.raises(paper.MissingDataset) as e:   # another seed: not shipped, so looked for in its own folder
        paper.searches("quick", tmp_path / "mine", seed=1, progress=False)
    assert e.value.path.parent == tmp_path / "mine"
    assert _tree(tmp_path) == []


# -- reruns: plasticity-repro figure, make figN P=... ----------------------------------------------
def test_rerun_folder_is_keyed_by_the_checked_parameters(tmp_path):
    a = figure_runs.prepare("fig2", dict(profile="quick", seed=1, n_networks=3), tmp_path)
    b = figure_runs.prepare("fig2_self_organization", dict(n_networks=3, seed=1, runs=2, profile="quick"), tmp_path)
    c = figure_runs.prepare("fig2", dict(profile="quick", seed=2), tmp_path)
    assert a.folder == b.folder != c.folder   # runs=2 is the quick default: the same rerun
    assert re.fullmatch(r"fig2-quick-[0-9a-f]{10}", a.folder.name) and a.data_dir == tmp_path / "data"
    assert figure_runs.prepare("fig2", dict(profile="quick"), "runs").folder.parent == ROOT / "runs"


@pytest.fixture
def fake_papermill(monkeypatch):
    """papermill.execute_notebook replaced by one that records its call and the environment."""
    import papermill
    calls = []

    def execute(inp, out, parameters, **kw):
        calls.append(dict(inp=inp, out=out, parameters=parameters, kw=kw,
                          env={k: os.environ.get(k) for k in (paper.READ_ONLY_ENV, paper.REUSE_ENV)}))
        Path(out).write_text("{}")
    monkeypatch.setattr(papermill, "execute_notebook", execute)
    return calls


def test_figure_runs_the_notebook_in_compute_mode_into_its_own_folder(tmp_path, capsys, fake_papermill, monkeypatch):
    monkeypatch.setenv(paper.READ_ONLY_ENV, "1")
    code, out, err = _run(["figure", "fig6", "--profile", "quick", "seed=1", "afferent_factors=0.7,1.2",
                           "--runs-dir", str(tmp_path)], capsys)
    assert code == 0, err
    (call,) = fake_papermill
    run = figure_runs.prepare("fig6", dict(profile="quick", seed=1, afferent_factors=[0.7, 1.2]), tmp_path)
    assert call["inp"] == str(ROOT / "notebooks" / "fig6_homeostasis.ipynb") and call["out"] == str(run.output)
    assert call["parameters"] == dict(profile="quick", seed=1, afferent_factors=[0.7, 1.2],
                                      data_dir=str(tmp_path / "data"), fig_dir=str(run.folder / "figures"))
    assert call["env"] == {paper.READ_ONLY_ENV: "0", paper.REUSE_ENV: str(DATA)}
    assert os.environ[paper.READ_ONLY_ENV] == "1"   # restored
    record = json.loads((run.folder / "params.json").read_text())
    assert record["parameters"]["n_networks"] == 3 and record["given"]["seed"] == 1
    assert sorted(_tree(tmp_path)) == sorted(["data", run.folder.name, f"{run.folder.name}/params.json",
                                              f"{run.folder.name}/fig6_homeostasis.ipynb"])


@pytest.mark.parametrize("argv,message", [
    (["fig2", "n_networks=0"], "n_networks must be an integer in [1, 10000], got 0"),
    (["fig2", "seed=2147483648"], "seed must be an integer in [0, 9999], got 2147483648"),
    (["fig2", "runs=two"], "runs must be an integer in [1, 1000], got 'two'"),
    (["fig2", "nnetworks=5"], "fig2 has no parameter 'nnetworks'; its parameters: profile, seed"),
    (["fig2", "seed"], "parameters are NAME=VALUE, got 'seed'"),
    (["fig2", "fig_dir=x"], "fig_dir is the rerun's own folder"),
    (["fig2", "--profile", "quick", "profile=laptop"], "profile given twice"),
    (["fig5", "p_values=0,0.001,0.0005"], "p_values must be a list of 1 to 20 increasing numbers in [0, 1]"),
])
def test_figure_bad_parameter_exits_2_with_one_line_before_anything_runs(argv, message, tmp_path, capsys,
                                                                           fake_papermill):
    code, out, err = _run(["figure"] + argv + ["--runs-dir", str(tmp_path)], capsys)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("plasticity-repro: error: " + message), err
    assert fake_papermill == [] and _tree(tmp_path) == []


def test_figure_unwritable_runs_dir_exits_2_naming_the_option(tmp_path, capsys, fake_papermill):
    (tmp_path / "afile").write_text("x")
    code, _, err = _run(["figure", "fig2", "seed=1", "--runs-dir", str(tmp_path / "afile" / "runs")], capsys)
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("plasticity-repro: error: --runs-dir: ") and "not a folder" in err
    assert fake_papermill == []


def test_params_command_lists_every_parameter_with_its_range(capsys):
    code, out, _ = _run(["params"], capsys)
    assert code == 0
    for fig, table in params.PARAMETERS.items():
        assert f"{fig} (notebooks/{params.NOTEBOOKS[fig]}.ipynb)" in out
        for p in table:
            assert re.search(rf"^{p.name}\s", out, re.M), p.name
    assert "an integer in [0, 9999]" in out and "e+" not in out
    code, out, _ = _run(["params", "fig3", "--markdown"], capsys)
    assert code == 0 and out == params.markdown(["fig3"])


def test_make_figure_with_p_runs_the_rerun_and_without_p_the_read_only_notebook():
    def dry(*args):
        return subprocess.run(["make", "-n", "--no-print-directory", *args], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout
    with_p = dry("fig2", 'P=seed=1 n_networks=50')
    assert re.search(r"plasticity-repro figure fig2_self_organization --runs-dir runs .*\n?.*--profile repro "
                     r"seed=1 n_networks=50", with_p)   # fig2's shipped profile (profiles.SHIPPED)
    assert "papermill" not in with_p
    assert "--profile quick seed=1" in dry("fig2", "PROFILE=quick", "P=seed=1")
    assert "--profile" not in dry("fig2", "P=profile=quick seed=1")
    assert "PLASTICITY_REPRO_READ_ONLY=1" in dry("fig2") and "--profile repro notebooks/fig2_self_organization.ipynb" in dry("fig2")
    # make fig2 SEED=1 used to run seed 0 without a word: now one line naming P
    bare = subprocess.run(["make", "-n", "--no-print-directory", "fig2", "SEED=1"], cwd=ROOT, capture_output=True,
                          text=True)
    assert bare.returncode != 0 and 'P="seed=1' in bare.stderr and len(bare.stderr.strip().splitlines()) == 1


def test_runs_are_git_ignored():
    assert "/runs/" in (ROOT / ".gitignore").read_text().split()


def test_a_bad_parameter_in_ipython_is_shown_without_a_traceback(monkeypatch):
    """The check switches IPython's traceback to 'Minimal' (the error line) for its cell only."""
    class TB:
        mode = "Context"

        def set_mode(self, mode):
            self.mode = mode

    class Events:
        def __init__(self):
            self.callbacks = []

        def register(self, event, f):
            self.callbacks.append(f)

        def unregister(self, event, f):
            self.callbacks.remove(f)

    class Shell:
        InteractiveTB, events, user_ns_hidden = TB(), Events(), {"In": [], "Out": {}}
    shell = Shell()
    monkeypatch.setenv(paper.READ_ONLY_ENV, "1")
    ns = _namespace("fig2", n_networks=0, get_ipython=lambda: shell, In=[], Out={})
    with pytest.raises(ValueError, match=r"^n_networks must be"):
        params.check_notebook(ns, "fig2")
    assert shell.InteractiveTB.mode == "Minimal" and len(shell.events.callbacks) == 1
    shell.events.callbacks[0]()   # post_run_cell
    assert shell.InteractiveTB.mode == "Context" and shell.events.callbacks == []
    params.check_notebook(_namespace("fig2", get_ipython=lambda: shell, In=[], Out={}), "fig2")   # In, Out hidden


def test_other_parameters_never_write_into_the_shipped_folders(monkeypatch, tmp_path):
    """papermill -p seed 1 on a figure notebook would have overwritten data/ and figures/: other
    parameters with the shipped folders are a one-line error naming `make figN P=...`."""
    monkeypatch.setenv(paper.READ_ONLY_ENV, "0")
    monkeypatch.setenv("PLASTICITY_REPRO_SAVE_FIGURES", "1")
    with pytest.raises(ValueError, match=r'^fig2 with seed=1 would write into the shipped data_dir=\'data\' and '
                                         r'fig_dir=\'figures\': run `make fig2 P="seed=1"`'):
        params.check_notebook(_namespace("fig2", seed=1), "fig2")
    with pytest.raises(ValueError, match=r"P=\"p_values=0.0,0.0012\""):
        params.check_notebook(_namespace("fig5", p_values="0,0.0012", fig_dir=str(tmp_path)), "fig5")
    # the defaults may (make figures); other parameters may elsewhere, or where nothing is written
    params.check_notebook(_namespace("fig2"), "fig2")
    params.check_notebook(_namespace("fig2", seed=1, data_dir=str(tmp_path / "d"), fig_dir=str(tmp_path / "f")), "fig2")
    monkeypatch.setenv(paper.READ_ONLY_ENV, "1")
    monkeypatch.setenv("PLASTICITY_REPRO_SAVE_FIGURES", "0")
    params.check_notebook(_namespace("fig2", seed=1), "fig2")


def test_a_rerun_prints_its_plan_before_it_computes(tmp_path):
    """A rerun that changes only profile and seed lists each dataset it needs as found in data/ or
    to be made, with its planned cost; other sizes get one line saying there is no plan."""
    from plasticity_repro import figure_runs
    lines = []
    shipped = figure_runs.prepare("fig2", dict(profile="quick"), tmp_path)
    assert figure_runs.plan(shipped, out=lines.append)
    assert lines[0].startswith("  fig2 at profile quick, seed 0: 2 of 2 datasets exist; to compute 0 ")
    assert lines[1:] == ["    search_ee: in data/", "    fig2_eval: in data/"]
    lines.clear()
    assert figure_runs.plan(figure_runs.prepare("fig2", dict(profile="quick", seed=3), tmp_path), out=lines.append)
    assert "0 of 2 datasets exist" in lines[0]
    assert all(re.match(r"    \w+: to be made, [\d,]+ net-act \(\d+\.\d\d h\)$", line) for line in lines[1:])
    lines.clear()
    assert not figure_runs.plan(figure_runs.prepare("fig2", dict(profile="quick", n_networks=7), tmp_path),
                                out=lines.append)
    assert len(lines) == 1 and lines[0].startswith("  no plan for other parameters (n_networks)")
    assert _tree(tmp_path) == []    # nothing written


def test_another_seeds_campaign_is_another_file():
    from plasticity_repro import pipeline
    assert pipeline.campaign_path(pipeline.Context("repro"), "search_ee_repro").name == "search_ee_repro.nc"
    assert pipeline.campaign_path(pipeline.Context("repro", seed=2), "search_ee_repro").name == "search_ee_repro_seed2.nc"


def test_fig5_compares_runs_all_synapse_rules_chosen_from_all_synapse_runs(tmp_path, monkeypatch):
    """At repro the all-synapse search has 16 runs and Fig 5 compares 8 of them: here 2 of 3
    (paper.selected_runs), against every E->E run; Fig 6's best rule is the best of all 3."""
    monkeypatch.setenv(paper.REUSE_ENV, str(DATA))   # the shipped quick E->E search with turnover
    r = paper.fig5_rules("quick", tmp_path, all_synapse_runs=3)
    assert r.search_all.sizes["run"] == 3 and r.search_all.search_seed.values.tolist() == [0, 1, 2]
    chosen = paper.selected_runs(r.search_all, 2)
    assert r.names_all == [f"all run {i}" for i in chosen] and len(r.rules_all) == 2
    assert r.names_ee == ["E->E run 0", "E->E run 1"]
    assert r.key == (("rule_runs", chosen),)
    best = int(np.argmin(r.search_all.best_test_loss.values))
    assert paper.fig6_rule("quick", tmp_path, all_synapse_runs=3)[2] == best
