"""The progressive refit resumes: a refit stopped inside one k's search continues from that
search's checkpoint and the finished ks, and gives the dataset an uninterrupted refit gives."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import xarray as xr

from plasticity_repro.experiments import refit
from plasticity_repro.rules import Rule
from plasticity_repro.search import profile_config

RANKING = ["x~ y", "x y~", "w y~ y"]
EVAL_SEEDS = np.arange(70_000, 70_002)


def _base():
    return dataclasses.replace(profile_config("quick"), n_train=1, n_test=0, max_generations=3)


def _start():
    c = np.zeros((3, 20))
    c[0, [3, 4, 15]] = [0.01, -0.01, -0.01]
    return Rule.create(c, np.full((3, 12), 0.05))


def _refit(**kw):
    return refit.refit_dataset(_base(), RANKING, _start(), EVAL_SEEDS, ks=(1, 2), profile="quick", **kw)


class Stopped(Exception):
    pass


def test_refit_stopped_inside_a_search_resumes_to_the_same_dataset(tmp_path, monkeypatch):
    whole = _refit()
    work = tmp_path / "refit.parts"
    real = refit.run_search
    calls = []

    def stopping(cfg, **kw):   # the second k's search is stopped after 1 of its 3 generations
        calls.append(cfg.space.n_params)
        if len(calls) == 2:
            assert real(cfg, stop_after=1, **kw) is None
            raise Stopped
        return real(cfg, **kw)

    monkeypatch.setattr(refit, "run_search", stopping)
    with pytest.raises(Stopped):
        _refit(work_dir=work)
    assert sorted(p.name for p in work.iterdir()) == ["k1.nc", "k2.ckpt"]

    resumed_calls = []

    def counting(cfg, **kw):
        resumed_calls.append(kw["resume"])
        return real(cfg, **kw)

    monkeypatch.setattr(refit, "run_search", counting)
    resumed = _refit(work_dir=work)
    assert resumed_calls == [True]          # k = 1 read back, k = 2 continued from its checkpoint
    assert not work.exists()                # the parts are gone once the dataset is made
    xr.testing.assert_identical(resumed.drop_attrs(), whole.drop_attrs())
    assert resumed.attrs["params_hash"] == whole.attrs["params_hash"]
    assert list(resumed.ranked_term.values) == RANKING[:2]
