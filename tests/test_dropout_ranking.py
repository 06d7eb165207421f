"""The dropout ranking (Fig 3b/c, 4a) is a rank statistic over rules, robust to blow-ups."""
import json

import numpy as np
import xarray as xr

from plasticity_repro.experiments.evaluate import dropout_ranks, ranking_selection, term_ranking
from plasticity_repro.rules import TERM_NAMES

BLOW = 1e8


def _dropout(loss: np.ndarray) -> xr.Dataset:
    n_rules = loss.shape[0]
    return xr.Dataset({"loss": (("rule", "variant", "network"), loss),
                       "coefs": (("rule", "term"), np.ones((n_rules, len(TERM_NAMES))))},
                      coords={"rule": [f"run {i}" for i in range(n_rules)], "variant": ["full"] + list(TERM_NAMES),
                              "term": list(TERM_NAMES)},
                      attrs={"params_json": json.dumps({"model": {"loss": {"blowup_loss": BLOW}}})})


def test_consistent_harm_outranks_one_rules_blow_up():
    rng = np.random.default_rng(0)
    rules, nets = 8, 40
    loss = 100 + rng.normal(0, 1, (rules, 21, nets))
    a, b, c = (1 + TERM_NAMES.index(t) for t in ("x~ y", "x y~", "w y~ y"))
    loss[:, a] += 50            # hurts every rule
    loss[:, b] += 30
    loss[0, c] = BLOW           # blows up one rule on every network, harmless elsewhere
    loss[1, 5, :3] = BLOW       # a few blow-ups among 40 networks: one median place, not the top
    r = dropout_ranks(_dropout(loss))
    assert np.isinf(r.increase.sel(rule="run 0", term="w y~ y")) and r.rank_in_rule.sel(rule="run 0", term="w y~ y") == 1
    assert int(r.blowup_networks.sel(term="w y~ y")) == nets and int(r.blowup_networks.sel(term=TERM_NAMES[4])) == 3
    assert np.isfinite(r.increase.sel(rule="run 1", term=TERM_NAMES[4]))
    assert term_ranking(_dropout(loss))[:2] == ["x~ y", "x y~"]


def test_term_that_blows_up_most_rules_ranks_first():
    loss = 100 + np.random.default_rng(1).normal(0, 1, (8, 21, 10))
    t = 1 + TERM_NAMES.index("w x~")
    loss[:5, t] = BLOW
    loss[:, 1 + TERM_NAMES.index("x~ y")] += 50
    assert term_ranking(_dropout(loss))[0] == "w x~"


def _with_turnover(ds: xr.Dataset, p: float) -> xr.Dataset:
    params = json.loads(ds.attrs["params_json"])
    return ds.assign_attrs(params_json=json.dumps(dict(params, p_turnover_ee=p)))


def test_ranking_uses_rules_below_the_references_loss_threshold():
    # spec §8: rules with mean full-rule loss per network >= 80 (150 with turnover) do not rank;
    # here the excluded rules would put "w x~" first
    loss = 60 + np.random.default_rng(2).normal(0, 1, (5, 21, 10))
    loss[:, 1 + TERM_NAMES.index("x~ y")] += 50          # the kept rules' top term
    loss[2:, 0] += 40                                     # rules 2-4: full loss ~100
    loss[2:, 1 + TERM_NAMES.index("w x~")] = BLOW
    ds = _dropout(loss)
    assert list(ranking_selection(ds)) == [0, 1]
    assert term_ranking(ds.isel(rule=ranking_selection(ds)))[0] == "x~ y"
    assert term_ranking(ds)[0] == "w x~"
    assert list(ranking_selection(_with_turnover(ds, 0.00072))) == [0, 1, 2, 3, 4]   # all below 150
    loss[:, 0] += 200                                     # none passes: all of them
    assert list(ranking_selection(_dropout(loss))) == [0, 1, 2, 3, 4]


def test_rule_whose_full_rule_blew_up_does_not_rank(recwarn):
    # Fig 5 quick data: one rule's full rule blew up on every network, so its increases are
    # undefined; the ranking is the other rule's, with no warning and no nan ranks
    loss = 100 + np.random.default_rng(3).normal(0, 1, (2, 21, 2))
    loss[0, 1 + TERM_NAMES.index("x~ y")] += 50
    loss[1, 0] = BLOW
    loss[1, 1:, 0] = BLOW                       # dropped variants: half blew up, half did not
    r = dropout_ranks(_dropout(loss))
    assert np.isnan(r.rank_in_rule.sel(rule="run 1")).all()
    assert np.isfinite(r.median_rank).all() and term_ranking(_dropout(loss))[0] == "x~ y"
    loss[0, 0] = BLOW
    loss[0, 1:, 0] = BLOW
    assert np.isnan(dropout_ranks(_dropout(loss)).median_rank).all()
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
