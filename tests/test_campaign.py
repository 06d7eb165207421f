"""The campaign's planned-against-spent table reads checkpoints and datasets, computes nothing."""
import pickle

from plasticity_repro import campaign, pipeline


def _rows_with_checkpoint(tmp_path, arm: int, **state) -> dict:
    """The campaign's rows where campaign arm `arm` (pipeline.CAMPAIGN order) has a checkpoint of `state`."""
    (tmp_path / "campaign").mkdir()
    with open(tmp_path / "campaign" / f"{pipeline.CAMPAIGN[arm][1]}.ckpt", "wb") as f:
        pickle.dump(state, f)
    return {r.name: r for r in campaign.rows(tmp_path)}


def test_progress_is_read_from_the_checkpoint(tmp_path):
    rows = _rows_with_checkpoint(tmp_path, 0, generation=30, elapsed=7200.0)
    ee = rows["campaign_search_ee"]
    assert ee.state == "generation 30 of 150" and ee.spent == round(ee.planned * 30 / 150)
    assert ee.spent_hours == 2.0
    assert rows["campaign_search_ee_turnover"].spent == 0 and rows["fig2_eval"].state == "not started"
    text = campaign.table(list(rows.values()))
    assert "| campaign_search_ee | 36.0 M | 3.3 | 7.2 M | 2.0 | generation 30 of 150 |" in text
    assert f"measured so far: {7.2e6 / 7200:,.0f} network-activations/s" in text
    left = sum(r.planned_hours * (1 - r.spent / r.planned) for r in rows.values() if r.planned)
    assert f"left: {left:.1f} h planned, about {left * pipeline.SPEED / 1000:.1f} h at the speed measured" in text


def test_the_measured_speed_is_in_the_plans_units_for_an_all_synapse_arm(tmp_path):
    """An all-synapse activation is planned at ALL_SYNAPSE_WORK E→E activations: the measured speed
    weights it the same way, so 'left at the speed measured so far' compares like with like."""
    rows = _rows_with_checkpoint(tmp_path, 2, generation=30, elapsed=7200.0)
    arm = rows["campaign_search_all_turnover"]
    assert arm.state == "generation 30 of 150" and arm.spent_hours == 2.0
    text = campaign.table(list(rows.values()))
    speed = arm.spent * pipeline.ALL_SYNAPSE_WORK / 7200
    assert f"measured so far: {speed:,.0f} network-activations/s of E→E rules" in text
    left = sum(r.planned_hours * (1 - r.spent / r.planned) for r in rows.values() if r.planned)
    assert f"about {left * pipeline.SPEED / speed:.1f} h at the speed measured" in text


def test_a_checkpoint_with_incumbents_counts_the_runs_below_their_limit_so_far(tmp_path):
    """Best test loss per network against 80 (no turnover) or 150 (trained with turnover)."""
    import json
    cfg = dict(search=dict(n_test=10), p_turnover=[0.0, 0.0, 0.00072, 0.00072])
    best = dict(test_loss=[790.0, 810.0, 1490.0, 1510.0])         # per network 79, 81, 149, 151
    ee = _rows_with_checkpoint(tmp_path, 0, generation=40, elapsed=60.0, best=best,
                               config_json=json.dumps(cfg))["campaign_search_ee"]
    assert ee.state == "generation 40 of 150 (2 of 4 runs below the convergence limit so far)"


def test_a_checkpoint_with_its_generations_seconds_gives_the_recent_pace(tmp_path):
    """The mean of the last 10 generations' wall seconds, times the generations left."""
    seconds = [500.0] * 31 + [100.0] * 5 + [300.0] * 5       # generations 0..40; last 10 average 200 s
    ee = _rows_with_checkpoint(tmp_path, 0, generation=40, elapsed=sum(seconds),
                               history=dict(seconds=seconds))["campaign_search_ee"]
    assert ee.state == "generation 40 of 150; 200 s per generation lately, about 6.1 h left at that pace"


def test_a_search_outside_the_campaign_folder_is_read_from_its_checkpoint(tmp_path):
    """The hand-made rule's search checkpoints beside its figure-cache file, not in campaign/."""
    c = pipeline.Context(campaign.PROFILE, tmp_path, 0, progress=False)
    known = pipeline.status(pipeline.declare(campaign.PROFILE, tmp_path), c)
    path = known["search_handmade"].path
    with open(path.with_suffix(".ckpt"), "wb") as f:
        pickle.dump(dict(generation=12, elapsed=1800.0), f)
    hm = {r.name: r for r in campaign.rows(tmp_path)}["search_handmade"]
    assert hm.state == "generation 12 of 60" and hm.spent == round(hm.planned * 12 / 60)
    assert hm.spent_hours == 0.5


# -- one simulation: which code made the campaign's data ------------------------------------------
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from plasticity_repro import datasets

ROOT = Path(__file__).resolve().parents[1]


def _head():
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def _sources_clean() -> bool:
    r = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", "plasticity_repro"], cwd=ROOT)
    return r.returncode == 0


def test_simulation_code_hash_of_a_commit_is_that_of_its_files():
    head = _head()
    if head is None or datasets.simulation_code_hash_at(head) is None:
        pytest.skip("no git history here")
    if not _sources_clean():
        pytest.skip("the package's sources differ from HEAD's")
    assert datasets.simulation_code_hash_at(head) == datasets.simulation_code_hash()
    assert datasets.simulation_code_hash_at("0" * 40) is None and datasets.simulation_code_hash_at("HEAD;") is None


def test_the_campaigns_data_are_this_simulation_or_a_recorded_regeneration_replaces_them():
    """Every repro evaluation in data/, and the latest segment of every campaign search, was made by
    the simulation sources of this checkout: a change to the model or the engines needs new data.
    While a regeneration is recorded (data/regen/REGENERATION.json), the shipped data may be of the
    code it names as replaced, but then its commit must have this checkout's simulation sources and
    every file it has made so far must be that commit's."""
    if _head() is None or datasets.simulation_code_hash_at(_head()) is None:
        pytest.skip("no git history here")
    now = datasets.simulation_code_hash()
    allowed = {now}
    record = campaign.regeneration(ROOT / "data")
    if record is not None:
        if datasets.simulation_code_hash_at(record["commit"]) is None:
            pytest.skip("the regeneration's commit is not in this clone's history")
        assert record["simulation_code"] == now == datasets.simulation_code_hash_at(record["commit"])
        allowed |= set(record["replaces"])
        staged = campaign.simulation_provenance(ROOT / "data" / campaign.REGEN)
        assert all(m.commit == record["commit"] and m.code == now for m in staged), staged
    made = campaign.simulation_provenance(ROOT / "data")
    assert made, "no repro data"
    evaluations = [m for m in made if not m.part]
    assert evaluations and all(m.code in allowed for m in evaluations), [m for m in evaluations if m.code not in allowed]
    assert len({m.code for m in evaluations}) == 1, "the shipped evaluations come from one simulation"
    latest = {}
    for m in made:
        if m.part:
            latest[m.file] = m
    assert latest and all(m.code in allowed for m in latest.values()), [m for m in latest.values() if m.code not in allowed]


def _search_file(path, loss, sigma, commit="c" * 40):
    import numpy as np
    import xarray as xr
    g, r, m = loss.shape
    ds = xr.Dataset({"loss": (("generation", "run", "member"), loss), "sigma": (("generation", "run"), sigma),
                     "mean_params": (("generation", "run", "param"), np.zeros((g, r, 2), np.float32)),
                     "best_params_history": (("generation", "run", "param"), np.zeros((g, r, 2), np.float32)),
                     "best_train_loss_history": (("generation", "run"), loss.min(-1)),
                     "best_test_loss_history": (("generation", "run"), loss.min(-1)),
                     "seconds_per_generation": (("generation",), np.random.default_rng().uniform(1, 2, g))},
                    attrs={"git_commit": commit, "created_utc": "now"})
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.to_netcdf(path)


def test_a_regeneration_is_compared_with_the_shipped_files_bit_for_bit_wall_times_aside(tmp_path):
    import numpy as np
    rng = np.random.default_rng(0)
    loss, sigma = rng.uniform(1, 9, (4, 2, 3)).astype(np.float32), np.full((4, 2), 0.003, np.float32)
    shipped, staged = tmp_path / "data", tmp_path / "data" / "regen"
    _search_file(shipped / "campaign" / "search_ee_repro.nc", loss, sigma)
    _search_file(staged / "campaign" / "search_ee_repro.nc", loss, sigma, commit="d" * 40)   # other commit, times
    moved = loss.copy()
    moved[2, 1, 0] *= 1 + 1e-6
    _search_file(shipped / "x_repro_1.nc", loss, sigma)
    _search_file(staged / "x_repro_1.nc", moved, sigma)
    _search_file(staged / "y_repro_2.nc", loss, sigma)
    # a search still running: its checkpoint's history against the shipped search's first generations
    hist = dict(loss=[loss[i] for i in range(2)], mean=[np.zeros((2, 2))] * 2, best_x=[np.zeros((2, 2))] * 2,
                best_loss=[loss[i].min(-1) for i in range(2)], test_loss=[loss[i].min(-1) for i in range(2)],
                sigma=[sigma[i] for i in range(2)])
    _search_file(shipped / "campaign" / "search_all_turnover_repro.nc", loss, sigma)
    with open(staged / "campaign" / "search_all_turnover_repro.ckpt", "wb") as f:
        pickle.dump(dict(generation=2, history=hist), f)
    got = {c.file: c for c in campaign.compare(staged, shipped)}
    assert got["search_ee_repro.nc"].identical
    x = got["x_repro_1.nc"]
    assert x.differing == ("best_test_loss_history", "best_train_loss_history", "loss") or x.differing == ("loss",)
    assert np.isclose(x.max_rel, 1e-6, rtol=0.2) and not x.identical
    assert got["y_repro_2.nc"].missing
    ck = got["search_all_turnover_repro.ckpt"]
    assert ck.compared == "generations 0..1" and ck.identical
    hist["sigma"][1] = sigma[1] * 2
    with open(staged / "campaign" / "search_all_turnover_repro.ckpt", "wb") as f:
        pickle.dump(dict(generation=2, history=hist), f)
    ck = {c.file: c for c in campaign.compare(staged, shipped)}["search_all_turnover_repro.ckpt"]
    assert ck.differing == ("sigma",) and ck.max_rel == 1.0
    lines = campaign.comparison_lines(campaign.compare(staged, shipped))
    assert any("identical" in line for line in lines) and any("no shipped file" in line for line in lines)


def test_a_comparison_covers_coordinates_result_attributes_and_non_finite_values(tmp_path):
    import numpy as np
    import xarray as xr
    base = xr.Dataset({"loss": ("network", np.array([1.0, np.inf, np.nan]))},
                      coords={"cell_rank": ("network", np.array([3, 4, 5]))},
                      attrs={"perturbed_cell": "7", "git_commit": "a" * 40, "created_utc": "then"})
    (tmp_path / "regen").mkdir()
    base.to_netcdf(tmp_path / "f_repro_1.nc")
    variants = {"coordinate": base.assign_coords(cell_rank=("network", np.array([3, 4, 6]))),
                "attribute": base.assign_attrs(perturbed_cell="8"),
                "sign of inf": base.assign(loss=("network", np.array([1.0, -np.inf, np.nan]))),
                "provenance only": base.assign_attrs(git_commit="b" * 40, created_utc="now")}
    got = {}
    for name, ds in variants.items():
        ds.to_netcdf(tmp_path / "regen" / "f_repro_1.nc")
        got[name] = campaign.compare(tmp_path / "regen", tmp_path)[0]
    assert got["coordinate"].differing == ("cell_rank",)
    assert got["attribute"].differing == ("attribute perturbed_cell",)
    assert got["sign of inf"].differing == ("loss",) and got["sign of inf"].max_abs == float("inf")
    assert got["provenance only"].identical


def test_a_regeneration_needs_a_record_a_known_commit_and_a_reason(tmp_path):
    with pytest.raises(ValueError, match="no regeneration is recorded"):
        campaign.regenerate(tmp_path)
    with pytest.raises(ValueError, match="commit must be a commit"):
        campaign.start_regeneration("not-a-commit", "why", tmp_path)
    with pytest.raises(SystemExit) as e:
        campaign.main(["--data-dir", str(tmp_path), "--start-regeneration", "HEAD"])
    assert e.value.code == 2


def test_a_copy_outside_git_reports_the_declared_commit(tmp_path):
    """A tree copied to another machine (a lent GPU machine: no .git, or a stale one) names the commit
    the sender declares, marked as declared; outside git with nothing declared it is 'unknown'."""
    import os
    import shutil
    import subprocess
    import sys
    shutil.copy(ROOT / "plasticity_repro" / "__init__.py", tmp_path / "__init__.py")
    (tmp_path / "pkg").mkdir()
    shutil.move(tmp_path / "__init__.py", tmp_path / "pkg" / "__init__.py")
    env = {**os.environ, "GIT_CEILING_DIRECTORIES": str(tmp_path)}
    code = "import pkg; print(pkg.COMMIT)"

    def commit(**extra):
        return subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env={**env, **extra}, check=True,
                              capture_output=True, text=True).stdout.strip()
    env.pop("PLASTICITY_REPRO_COMMIT", None)
    assert commit() == "unknown"
    assert commit(PLASTICITY_REPRO_COMMIT="a" * 40) == "a" * 40 + "-declared"
    assert commit(PLASTICITY_REPRO_COMMIT="HEAD") == "unknown"


def _record(data_dir, commit):
    import json
    (data_dir / campaign.REGEN).mkdir(parents=True, exist_ok=True)
    (data_dir / campaign.REGEN / campaign.RECORD).write_text(json.dumps(dict(commit=commit, profile="repro")))


def test_an_incomplete_regeneration_is_not_adopted(tmp_path, monkeypatch):
    from plasticity_repro import profiles
    monkeypatch.setattr(profiles, "INTERIM", {})   # as at adoption
    with pytest.raises(ValueError, match="no regeneration is recorded"):
        campaign.adopt_regeneration(tmp_path)
    _record(tmp_path, "a" * 40)
    with pytest.raises(ValueError, match=r"not complete: 20 datasets missing \(campaign_search_ee, "):
        campaign.adopt_regeneration(tmp_path)


def test_a_complete_regeneration_replaces_the_shipped_files_only_if_all_are_its_commit(tmp_path, monkeypatch):
    import numpy as np
    from plasticity_repro import profiles
    monkeypatch.setattr(profiles, "INTERIM", {})   # as at adoption
    monkeypatch.setattr(campaign, "regeneration_missing", lambda data_dir="data": [])
    loss, sigma = np.ones((2, 1, 2), np.float32), np.ones((2, 1), np.float32)
    _record(tmp_path, "a" * 40)
    regen = tmp_path / campaign.REGEN
    _search_file(tmp_path / "fig2_eval_repro_1.nc", loss, sigma, commit="b" * 40)
    _search_file(tmp_path / "fig3_refit_repro_9.nc", loss, sigma, commit="b" * 40)   # a name the remake lacks
    (tmp_path / "search_handmade_repro_3.ckpt").write_bytes(b"old")
    _search_file(regen / "fig2_eval_repro_1.nc", loss * 2, sigma, commit="a" * 40)
    _search_file(regen / "campaign" / "search_ee_repro.nc", loss * 3, sigma, commit="c" * 40)
    with pytest.raises(ValueError, match="made by c+, not the regeneration's commit a{12}"):
        campaign.adopt_regeneration(tmp_path)
    _search_file(regen / "campaign" / "search_ee_repro.nc", loss * 3, sigma, commit="a" * 40)
    moved = campaign.adopt_regeneration(tmp_path)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in moved) == ["campaign/search_ee_repro.nc",
                                                                         "fig2_eval_repro_1.nc"]
    import xarray as xr
    with xr.open_dataset(tmp_path / "fig2_eval_repro_1.nc") as ds:
        assert ds.attrs["git_commit"] == "a" * 40 and float(ds.loss.max()) == 2
    assert not regen.exists()
    assert not (tmp_path / "fig3_refit_repro_9.nc").exists() and not (tmp_path / "search_handmade_repro_3.ckpt").exists()


def test_a_regeneration_is_recorded_only_for_a_commit_with_this_checkouts_simulation(tmp_path):
    """A commit of this session's history whose engine differs (075193e: the engine before it
    was built without FMA contraction) cannot make this checkout's data."""
    if _head() is None or datasets.simulation_code_hash_at("075193e") is None:
        pytest.skip("no git history here")
    if not _sources_clean():
        pytest.skip("the package's sources differ from HEAD's")
    with pytest.raises(ValueError, match="simulation sources .* are not this checkout's"):
        campaign.start_regeneration("075193e", "why", tmp_path)
    record = campaign.start_regeneration("HEAD", "why", tmp_path, host_devices=2)
    assert record["commit"] == _head() and record["host_devices"] == 2 and campaign.regeneration(tmp_path) == record
    with pytest.raises(ValueError, match="already recorded"):
        campaign.start_regeneration("HEAD", "why", tmp_path)


DECLARED = """
import json, sys
from pathlib import Path
from plasticity_repro import pipeline, profiles
d = Path(sys.argv[1])
with profiles.design():   # the profiles' own values (a no-op where INTERIM is empty)
    st = pipeline.status(pipeline.declare("repro", d), pipeline.Context("repro", d, 0, progress=False))
print(json.dumps({n: dict(path=None if s.path is None else str(s.path.relative_to(d)), waiting=list(s.waiting),
                          needs=list(s.dataset.needs), figures=list(s.dataset.figures), params=s.dataset.params,
                          cost=s.dataset.cost, counted=s.dataset.counted, work=s.dataset.work)
                  for n, s in st.items()}, sort_keys=True, default=str))
"""


def test_the_regenerations_commit_declares_the_datasets_this_checkout_will_adopt(tmp_path):
    """Adoption and the figures find the regenerated files by this checkout's names and request
    hashes: the recorded commit's own pipeline (its package, from git) must declare the same repro
    datasets as this one under profiles.design(): names, files, dependencies, parameters, costs."""
    record = campaign.regeneration(ROOT / "data")
    if record is None:
        pytest.skip("no regeneration in progress")
    if _head() is None:
        pytest.skip("no git history here")
    src = tmp_path / "commit"
    src.mkdir()
    archive = subprocess.run(["git", "archive", record["commit"], "plasticity_repro"], cwd=ROOT, capture_output=True)
    if archive.returncode:
        pytest.skip(f"commit {record['commit'][:12]} is not in this clone's history")
    subprocess.run(["tar", "-x", "-C", str(src)], input=archive.stdout, check=True)
    out = {}
    for name, path in (("commit", src), ("here", ROOT)):
        env = dict(os.environ, PYTHONPATH=str(path), JAX_PLATFORMS="cpu")
        r = subprocess.run([sys.executable, "-c", DECLARED, str(tmp_path / "data")], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
        out[name] = json.loads(r.stdout)
    assert sorted(out["commit"]) == sorted(out["here"])
    for n in out["here"]:
        assert out["commit"][n] == out["here"][n], n


def test_a_run_has_converged_when_its_rule_is_below_the_specs_scale_for_its_training():
    """Spec §5: learned rules reach a test loss per network under about 80 (no turnover) or 150
    (turnover); the campaign table counts each arm's runs below it."""
    import json
    import numpy as np
    import xarray as xr
    from plasticity_repro.experiments.evaluate import converged_runs, search_test_loss_per_network
    ds = xr.Dataset({"best_test_loss": ("run", np.array([790.0, 810.0, 1490.0, 1510.0])),
                     "p_turnover": ("run", np.array([0.0, 0.0, 0.00072, 0.00072]))},
                    attrs={"params_json": json.dumps({"search": {"n_test": 10}})})
    assert np.allclose(search_test_loss_per_network(ds), [79, 81, 149, 151])
    assert converged_runs(ds).tolist() == [True, False, True, False]
    assert converged_runs(ds, 150).tolist() == [True, True, True, False]


def test_fig5_compares_the_first_converged_all_synapse_runs_in_seed_order_filled_up_in_seed_order():
    """paper.selected_runs, the rule stated before the campaign's 16 all-synapse runs: the first
    n converged runs in seed order; where fewer converged, the unconverged ones follow in seed order."""
    import json
    import numpy as np
    import xarray as xr
    from plasticity_repro.experiments import paper
    per_net = np.array([200.0, 100.0, 90.0, 300.0, 140.0, 149.0, 120.0])   # converged: runs 1, 2, 4, 5, 6
    ds = xr.Dataset({"best_test_loss": ("run", per_net * 10), "p_turnover": ("run", np.full(7, 0.00072))},
                    attrs={"params_json": json.dumps({"search": {"n_test": 10}})})
    assert paper.selected_runs(ds, 3) == [1, 2, 4]
    assert paper.selected_runs(ds, 5) == [1, 2, 4, 5, 6]
    assert paper.selected_runs(ds, 6) == [0, 1, 2, 4, 5, 6]        # 5 converged: run 0 fills up
    assert paper.selected_runs(ds, 7) == list(range(7))
    from plasticity_repro.profiles import design
    with design():   # the campaign's design, whatever the shipped data still have (profiles.INTERIM)
        assert paper.search_runs("repro", paper.ALL_SYNAPSES) == 16 and paper.search_runs("repro") == 8


def test_the_shipped_datas_interim_values_hold_until_adoption_and_design_shows_the_profiles_own(tmp_path,
                                                                                                 monkeypatch):
    """profiles.INTERIM: the figures read the shipped data at its values while a regeneration
    makes the design; design() gives the profiles' own values and restores them; adoption refuses
    until INTERIM is empty."""
    import json
    from plasticity_repro import campaign, profiles
    fp = profiles.FIGURE_PROFILES["repro"]
    monkeypatch.setattr(profiles, "INTERIM", {"repro": {"all_synapse_runs": 8}})
    monkeypatch.setitem(fp, "all_synapse_runs", 8)
    with profiles.design():
        assert fp["all_synapse_runs"] == profiles.PROFILES["repro"]["figures"]["all_synapse_runs"] == 16
    assert fp["all_synapse_runs"] == 8
    (tmp_path / "regen").mkdir()
    (tmp_path / "regen" / "REGENERATION.json").write_text(json.dumps({"commit": "0" * 40}))
    with pytest.raises(ValueError, match=r"profiles.INTERIM still holds .*empty it first"):
        campaign.adopt_regeneration(tmp_path)


def test_readme_campaign_table_is_what_the_campaign_computes_from_the_shipped_data():
    from plasticity_repro import readme
    text = (ROOT / "README.md").read_text()
    assert readme.replace_block(text, readme.CAMPAIGN_BEGIN, readme.CAMPAIGN_END, campaign.summary(ROOT / "data"),
                                "campaign table") == text, "README's campaign table is stale: make readme"


def test_a_readme_block_is_replaced_between_its_lines_or_named_when_missing():
    from plasticity_repro.readme import replace_block
    text = "intro\nplanned hours at 1\n| a |\nmeasured so far: 2\noutro"
    assert replace_block(text, "planned hours at ", "measured so far:", "planned hours at 3\nmeasured so far: 4\n",
                         "campaign table") == "intro\nplanned hours at 3\nmeasured so far: 4\noutro"
    with pytest.raises(ValueError, match="README has no claims table"):
        replace_block("no table", "<!-- b -->", "<!-- e -->", "x", "claims table")
