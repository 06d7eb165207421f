"""The figure notebooks' search cache (experiments/paper.py): the all-synapse search's warm start."""
import shutil
from pathlib import Path

import numpy as np

from plasticity_repro.experiments import paper

DATA = Path(__file__).resolve().parent.parent / "data"


def test_warm_started_all_synapse_search(tmp_path, monkeypatch):
    """With ei_warm_start the Fig 5 search starts every run at the best E->E-only rule (E->I and
    I->E coefficients zero), is written under its own "_warm" name and says so in its attrs."""
    cfg_ee = paper.search_config("quick", p_turnover=0.00072)
    seeds = [0, 1]
    ee_path = paper.search_path(DATA, cfg_ee, "quick", dict(search=cfg_ee.to_dict(), seeds=seeds))
    shutil.copy(ee_path, tmp_path / ee_path.name)     # the shipped quick E->E search: not recomputed
    monkeypatch.setitem(paper.FIGURE_PROFILES["quick"], "ei_warm_start", True)
    monkeypatch.setitem(paper.FIGURE_PROFILES["quick"], "runs", 2)
    cfg, ds = paper.all_synapse_search("quick", str(tmp_path), seed=0, p_turnover=0.00072, progress=False)
    ee = paper.searches("quick", str(tmp_path), seed=0, p_turnover=0.00072, progress=False)
    best = paper.learned_rules(ee, cfg_ee)[int(np.argmin(ee.best_test_loss.values))]
    start = np.asarray(cfg.space.start)
    np.testing.assert_allclose(start, cfg.space.from_rule(best), rtol=1e-6)
    names = list(ds.param.values)
    ee_idx = [i for i, n in enumerate(names) if n.startswith("ee:") and "tau" not in n]
    other = [i for i, n in enumerate(names) if n.startswith(("ei:", "ie:")) and "tau" not in n]
    assert np.abs(start[ee_idx]).max() > 0 and np.all(start[other] == 0)
    # generation 0's mean is the start moved by one CMA step of sigma0 = 0.003 scale
    assert np.abs(ds.mean_params.values[0] - start).max() < 0.05
    assert ds.attrs["start_from"] == ee.attrs["request_hash"] and "warm start" in ds.attrs["deviation"]
    assert cfg.sigma0 == float(ee.sigma.values[-1, int(np.argmin(ee.best_test_loss.values))])
    assert sorted(p.name for p in tmp_path.glob("search_eeeiie_turnover_warm_quick_*.nc"))
    # a second call reads the file back instead of searching again
    _, again = paper.all_synapse_search("quick", str(tmp_path), seed=0, p_turnover=0.00072, progress=False)
    np.testing.assert_allclose(again.best_params.values, ds.best_params.values, rtol=1e-6)  # float32 on disk
