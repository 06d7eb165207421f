"""The campaign's planned-against-spent table reads checkpoints and datasets, computes nothing."""
import pickle

from plasticity_repro import campaign, pipeline


def test_progress_is_read_from_the_checkpoint(tmp_path):
    (tmp_path / "campaign").mkdir()
    stem = pipeline.CAMPAIGN[0][1]
    with open(tmp_path / "campaign" / f"{stem}.ckpt", "wb") as f:
        pickle.dump(dict(generation=30, elapsed=7200.0), f)
    rows = {r.name: r for r in campaign.rows(tmp_path)}
    ee = rows["campaign_search_ee"]
    assert ee.state == "generation 30 of 150" and ee.spent == round(ee.planned * 30 / 150)
    assert ee.spent_hours == 2.0
    assert rows["campaign_search_ee_turnover"].spent == 0 and rows["fig2_eval"].state == "not started"
    text = campaign.table(list(rows.values()))
    assert "| campaign_search_ee | 36.0 M | 3.3 | 7.2 M | 2.0 | generation 30 of 150 |" in text
    assert f"measured so far: {7.2e6 / 7200:,.0f} network-activations/s" in text


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
import subprocess
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


def test_the_campaigns_evaluations_and_latest_search_segments_are_this_simulation():
    """Every repro evaluation in data/, and the latest segment of every campaign search, was made by
    the simulation sources of this checkout: a change to the model or the engines needs new data."""
    if _head() is None or datasets.simulation_code_hash_at(_head()) is None:
        pytest.skip("no git history here")
    now = datasets.simulation_code_hash()
    made = campaign.simulation_provenance(ROOT / "data")
    assert made, "no repro data"
    evaluations = [m for m in made if not m.part]
    assert evaluations and all(m.code == now for m in evaluations), [m for m in evaluations if m.code != now]
    latest = {}
    for m in made:
        if m.part:
            latest[m.file] = m
    assert latest and all(m.code == now for m in latest.values()), [m for m in latest.values() if m.code != now]


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
