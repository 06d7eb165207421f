"""The command line: --version, --help, `profiles`, output locations checked before any compute,
blow-up losses printed as such. Everything runs in-process through `cli.main`; nothing is searched."""
import os
import re

import numpy as np
import pytest

import plasticity_repro
from plasticity_repro import cli
from helpers import run_cli as _run


def test_version(capsys):
    code, out, _ = _run(["--version"], capsys)
    assert code == 0
    assert out.strip() == f"plasticity-repro {plasticity_repro.__version__}"


def test_help_describes_the_command_and_gives_examples(capsys):
    code, out, _ = _run(["--help"], capsys)
    assert code == 0
    assert "CMA-ES" in out and "plasticity rules" in out
    assert "examples:" in out
    for example in ("plasticity-repro profiles", "plasticity-repro search --profile quick --out",
                    "plasticity-repro sweep --search"):
        assert example in out, example
    for command in ("search", "sweep", "profiles", "data", "params", "figure", "rules", "evaluate"):
        assert re.search(rf"^\s+{command}\s+\S", out, re.M), command   # listed with its help


@pytest.mark.parametrize("command", ["search", "sweep", "profiles", "data", "params", "figure", "rules", "evaluate"])
def test_every_subcommand_has_a_description(command, capsys):
    code, out, _ = _run([command, "--help"], capsys)
    assert code == 0
    body = out.split("\n\n")[1]   # the paragraph after the usage
    assert not body.startswith("options:") and len(body) > 40, out


def test_synapses_choices_in_search_usage(capsys):
    code, out, _ = _run(["search", "--help"], capsys)
    assert code == 0
    usage = out.split("\n\n")[0]
    assert "[--synapses {ee,all}]" in " ".join(usage.split())


@pytest.mark.parametrize("text,want", [("ee", ("ee",)), ("all", ("ee", "ei", "ie")), ("ee,ei,ie", ("ee", "ei", "ie"))])
def test_synapses_values_and_synonym(text, want):
    args = cli.build_parser().parse_args(["search", "--out", "x.nc", "--synapses", text])
    assert args.synapses == want


def test_profiles_one_aligned_row_per_profile(capsys):
    from plasticity_repro.experiments.paper import FIGURE_PROFILES
    from plasticity_repro.search import PROFILES
    code, out, _ = _run(["profiles"], capsys)
    assert code == 0
    assert "{" not in out and "dict(" not in out   # no raw dicts
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("profile "))
    assert set(lines[header + 1]) <= {"-", " "}
    rows = [line for line in lines[header + 2:header + 2 + len(PROFILES)]]
    assert [r.split()[0] for r in rows] == list(PROFILES)
    assert lines[header + 2 + len(PROFILES)].strip() == ""   # exactly one row per profile
    assert len({len(r) for r in rows + [lines[header]]}) == 1   # aligned: right-aligned columns end together
    for name, row in zip(PROFILES, rows):
        cells = row.split()
        assert cells[1] == str(PROFILES[name]["n_act"])
        assert f"x{PROFILES[name]['lr_scale']:g}" in cells
        assert str(PROFILES[name]["max_generations"]) in cells
    quick = rows[0].split()
    assert "12..17" in quick and "18..23" in quick   # decoder windows of 24 activations
    # the figure settings: one column per profile, one row per setting
    fig = next(i for i, line in enumerate(lines) if line.startswith("setting "))
    assert lines[fig].split()[1:] == list(FIGURE_PROFILES)
    runs = next(line for line in lines[fig:] if line.startswith("runs "))
    assert runs.split()[1:] == [str(FIGURE_PROFILES[n]["runs"]) for n in FIGURE_PROFILES]


# -- output locations -----------------------------------------------------------------------------
@pytest.fixture
def no_compute(monkeypatch):
    """Any search, sweep, dataset read or write fails the test: the CLI must stop before them."""
    import plasticity_repro.datasets as datasets
    import plasticity_repro.distributed as distributed
    import plasticity_repro.search as search

    def boom(*a, **k):
        raise AssertionError("compute started before the output location was checked")
    for mod, name in ((search, "run_search"), (search, "profile_config"), (datasets, "read_dataset"),
                      (datasets, "write_dataset"), (distributed, "evaluation_sweep")):
        monkeypatch.setattr(mod, name, boom)


def _tree(root):
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, ds, fs in os.walk(root) for f in fs + ds)


def _bad_out_cases(tmp):
    (tmp / "afile").write_text("x")
    (tmp / "adir").mkdir()
    (tmp / "ckdir.nc.ckpt").mkdir()
    (tmp / "shards.nc.shards").write_text("x")
    return [
        # (argv, words the reason must contain)
        (["search", "--out", f"{tmp}/afile/sub/o.nc"], ["afile", "not a folder"]),
        (["search", "--out", f"{tmp}/afile/o.nc"], ["afile", "not a folder"]),
        (["search", "--out", f"{tmp}/adir"], ["directory"]),
        (["search", "--out", f"{tmp}/adir/"], ["folder"]),
        (["search", "--out", f"{tmp}/ckdir.nc"], ["checkpoint", "directory"]),
        (["search", "--out", f"{tmp}/ok.nc", "--checkpoint", f"{tmp}/afile/c.ckpt"], ["afile", "not a folder"]),
        (["sweep", "--search", f"{tmp}/s.nc", "--out", f"{tmp}/afile/sub/o.nc"], ["afile", "not a folder"]),
        (["sweep", "--search", f"{tmp}/s.nc", "--out", f"{tmp}/adir"], ["directory"]),
        (["sweep", "--search", f"{tmp}/s.nc", "--out", f"{tmp}/shards.nc"], ["shard folder", "not a folder"]),
        (["sweep", "--search", f"{tmp}/s.nc", "--out", f"{tmp}/ok.nc", "--shard-dir", f"{tmp}/afile"],
         ["afile", "not a folder"]),
    ]


@pytest.mark.parametrize("case", range(10))
def test_bad_output_location_exits_2_before_compute(case, tmp_path, capsys, no_compute):
    argv, words = _bad_out_cases(tmp_path)[case]
    before = _tree(tmp_path)
    code, out, err = _run(argv, capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    option = "--checkpoint" if "--checkpoint" in argv else "--shard-dir" if "--shard-dir" in argv else "--out"
    assert lines[0].startswith(f"plasticity-repro: error: {option}: "), lines[0]
    for w in words:
        assert w in lines[0], (w, lines[0])
    assert "Traceback" not in err and out == ""
    assert _tree(tmp_path) == before   # no output, checkpoint, shard folder or probe file left


def test_bad_output_cases_are_all_run(tmp_path):
    assert len(_bad_out_cases(tmp_path)) == 10


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
@pytest.mark.parametrize("command", ["search", "sweep"])
def test_unwritable_folder_exits_2_before_compute(command, tmp_path, capsys, no_compute):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        for out in (ro / "o.nc", ro / "new" / "o.nc"):
            argv = [command, "--out", str(out)] + (["--search", str(tmp_path / "s.nc")] if command == "sweep" else [])
            code, _, err = _run(argv, capsys)
            assert code == 2
            assert len(err.strip().splitlines()) == 1
            assert err.startswith("plasticity-repro: error: --out: ") and "not writable" in err
        assert os.listdir(ro) == []
    finally:
        ro.chmod(0o755)


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs procfs")
def test_folder_that_cannot_be_created_exits_2(capsys, no_compute):
    # no one, root included, can create files or folders at the top of /proc
    code, _, err = _run(["search", "--out", "/proc/plasticity-repro-test/o.nc"], capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("plasticity-repro: error: --out: cannot create folder ")
    assert not os.path.exists("/proc/plasticity-repro-test")


def test_good_output_location_reaches_the_search(tmp_path, monkeypatch, capsys):
    """The check lets a writable location through (to the search, stubbed here) and creates nothing itself."""
    import plasticity_repro.search as search
    seen = {}

    class Stop(Exception):
        pass

    def fake(cfg, seeds, checkpoint, **kw):
        seen["checkpoint"] = checkpoint
        raise Stop
    monkeypatch.setattr(search, "run_search", fake)
    out = tmp_path / "new" / "deeper" / "o.nc"
    with pytest.raises(Stop):
        cli.main(["search", "--out", str(out), "--no-progress"])
    assert seen["checkpoint"] == str(out) + ".ckpt"
    assert os.listdir(tmp_path) == []


def test_resume_with_missing_checkpoint_keeps_its_own_error(tmp_path, capsys):
    code, _, err = _run(["search", "--out", str(tmp_path / "o.nc"), "--resume", "--checkpoint",
                         str(tmp_path / "none" / "c.ckpt")], capsys)
    assert code == 2
    assert "does not exist" in err.strip().splitlines()[-1]


# -- blow-up losses ---------------------------------------------------------------------------------
def test_blowup_penalty_is_printed_as_blew_up():
    from plasticity_repro.config import LossConfig
    lc = LossConfig()
    assert lc.blowup_loss >= 10 * cli.BLOWUP_PER_NETWORK   # the penalty lies above the threshold
    for n in (1, 2, 10):
        assert cli._loss_text(lc.blowup_loss * n + lc.blowup_coef * 0.3, n) == "blew up"
        assert cli._loss_text(lc.blowup_loss * n, n) == "blew up"
    assert cli._loss_text(12.345, 2) == "12.3"
    assert cli._loss_text(float("inf"), 2) == "inf"
    assert cli._sweep_rule_text([np.nan, np.nan], [1, 1]) == "blew up"
    assert cli._sweep_rule_text([1.0, 3.0, np.nan], [0, 0, 1]) == "2.0 (1 of 3 blew up)"
    assert cli._sweep_rule_text([1.0, 3.0], [0, 0]) == "2.0"


def test_search_summary_prints_blew_up(tmp_path, monkeypatch, capsys):
    """The line after a search: a run whose best test loss is the penalty reads 'blew up'."""
    import xarray as xr

    import plasticity_repro.datasets as datasets
    import plasticity_repro.search as search
    ds = xr.Dataset({"best_test_loss": ("run", [2e8 + 5.0, 3.25]), "best_train_loss": ("run", [1.0, 2.0])},
                    coords={"generation": np.arange(3)})
    monkeypatch.setattr(search, "run_search", lambda *a, **k: ds)
    monkeypatch.setattr(datasets, "write_dataset", lambda ds, path: path)
    code, out, _ = _run(["search", "--out", str(tmp_path / "o.nc"), "--runs", "2", "--no-progress"], capsys)
    assert code == 0
    assert out.strip().endswith("best test loss per run (sum over 2 networks): blew up, 3.2")


def test_output_piped_into_head_ends_without_a_traceback():
    import subprocess
    import sys
    out = subprocess.run(f"'{sys.executable}' -m plasticity_repro.cli profiles | head -1", shell=True,
                         capture_output=True, text=True, timeout=120)
    assert out.stdout.startswith("search profiles") and "Traceback" not in out.stderr, out.stderr


def test_rules_prints_every_row_and_writes_what_the_dataset_holds(tmp_path, capsys):
    import pandas as pd
    rules = plasticity_repro.load_rules("quick")
    path = tmp_path / "rules.csv"
    code, out, _ = _run(["rules", "--profile", "quick", "--terms", "3", "--csv", str(path)], capsys)
    assert code == 0
    for name in rules.rule.values:
        line = next(l for l in out.splitlines() if l.startswith(f"{name} "))
        assert f"{float(rules.test_loss.sel(rule=name)):.1f}" in line and line.count(":") == 3
    table = pd.read_csv(path)
    coefs = table[(table.quantity == "coefficient") & (table.rule == "all_turnover/0")]
    assert len(coefs) == 60 and set(coefs.synapse) == {"ee", "ei", "ie"}
    for _, r in coefs.iterrows():
        assert r.value == pytest.approx(float(rules.coefs.sel(rule=r.rule, synapse=r.synapse, term=r["name"])), rel=1e-6)
    taus = table[(table.quantity == "tau") & (table.rule == "ee/0")]
    assert len(taus) == rules.sizes["tau_of"] and set(taus.units) == {"s"}
    assert len(table[(table.quantity == "hetero")]) == 3 * int((rules.arm == "handmade").sum())


@pytest.mark.parametrize("argv, message", [
    (["rules", "--terms", "0"], "--terms must be in [1, 60]"),
    (["rules", "--profile", "quick", "--data-dir", "nowhere"], "no learned rules of profile 'quick' in 'nowhere'"),
])
def test_rules_bad_input_is_one_line(argv, message, capsys):
    code, _, err = _run(argv, capsys)
    assert code == 2 and message in err and "Traceback" not in err


def test_evaluate_prints_each_rows_medians_and_writes_the_evaluation(tmp_path, capsys):
    """`plasticity-repro evaluate` is evaluate_rules on networks first..first+n-1: the printed medians
    are the written dataset's, which holds the rows asked for."""
    import xarray as xr
    out_path = tmp_path / "ev.nc"
    code, out, _ = _run(["evaluate", "ee/0", "ee_turnover/1", "--profile", "quick", "--networks", "2",
                         "--first-network", "7", "--turnover", "0.001", "--out", str(out_path)], capsys)
    assert code == 0 and "networks 7..8" in out
    with xr.open_dataset(out_path) as ds:
        assert list(ds.rule.values) == ["ee/0", "ee_turnover/1"] and ds.sizes["network"] == 2
        for name in ds.rule.values:
            line = next(l for l in out.splitlines() if l.startswith(f"{name} "))
            r = ds.sel(rule=name)
            assert f"{float(np.median(r.loss.values)):.1f}" in line
            assert f"{float(np.median(r.decoder_r2.values)):.3f}" in line
        assert '"p_turnover_ee": 0.001' in ds.attrs["params_json"] and "7, 8" in ds.attrs["params_json"]


@pytest.mark.parametrize("argv, message", [
    (["evaluate", "ee/9", "--profile", "quick"], "rule must be one of"),
    (["evaluate", "ee/0", "--networks", "0"], "--networks must be in [1, 100000]"),
    (["evaluate", "ee/0", "--activations", "5"], "--activations must be in [12, 100000]"),
    (["evaluate", "ee/0", "--turnover", "2"], "--turnover must be in [0, 1]"),
    (["evaluate", "ee/0", "handmade/0", "--profile", "quick"], "pass --activations"),
    (["evaluate", "ee/0", "--profile", "quick", "--data-dir", "nowhere"], "no learned rules of profile 'quick'"),
])
def test_evaluate_bad_input_is_one_line_before_compute(argv, message, capsys, monkeypatch):
    import plasticity_repro.experiments.evaluate as evaluate

    def boom(*a, **k):
        raise AssertionError("networks simulated before the arguments were checked")
    monkeypatch.setattr(evaluate, "evaluate_dataset", boom)
    code, _, err = _run(argv, capsys)
    assert code == 2 and message in err.strip().splitlines()[-1] and "Traceback" not in err   # argparse: usage first
