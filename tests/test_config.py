"""Validation at the boundary: bad values raise a one-line ValueError that names the field and
its allowed range; good values (the edges included) pass; configs round-trip through JSON."""
import json
import re

import numpy as np
import pytest

from plasticity_repro.config import (InputConfig, LossConfig, ModelConfig, NetworkConfig, PlasticityConfig,
                                     TurnoverConfig, from_dict)
from plasticity_repro.network import make_networks
from plasticity_repro.rules import Rule

# (id, constructor, pattern the message must match: the field name, then its allowed range or set)
BAD = [
    ("n_e=0", lambda: NetworkConfig(n_e=0), r"n_e .*\[2, 4096\].*got 0"),
    ("n_e=2.5", lambda: NetworkConfig(n_e=2.5), r"n_e must be an integer .*\[2, 4096\]"),
    ("n_e=True", lambda: NetworkConfig(n_e=True), r"n_e .*\[2, 4096\]"),
    ("dt=0", lambda: NetworkConfig(dt=0.0), r"dt .*\(0, 0\.01\]"),
    ("dt=nan", lambda: NetworkConfig(dt=float("nan")), r"dt .*\(0, 0\.01\].*nan"),
    ("tau_i<dt", lambda: NetworkConfig(tau_i=1e-5), r"tau_i .*\[0\.0001, 10\]"),
    ("p_ei=1.5", lambda: NetworkConfig(p_ei=1.5), r"p_ei .*\[0, 1\].*1\.5"),
    ("w_ie_mean>0", lambda: NetworkConfig(w_ie_mean=0.3), r"w_ie_mean .*\[-100, 0\]"),
    ("stop<start", lambda: InputConfig(stop_step=5), r"stop_step .*\[10, "),
    ("frozen_fraction", lambda: InputConfig(frozen_fraction=1.2), r"frozen_fraction .*\[0, 1\]"),
    ("synapses=xx", lambda: PlasticityConfig(synapses=("xx",)), r"synapses .*\['ee', 'ei', 'ie'\].*'xx'"),
    ("synapses=()", lambda: PlasticityConfig(synapses=()), r"synapses must be a non-empty tuple"),
    ("synapses dup", lambda: PlasticityConfig(synapses=("ee", "ee")), r"synapses .*distinct"),
    ("synapses list", lambda: PlasticityConfig(synapses=["ee"]), r"synapses .*tuple"),
    ("tau_convention", lambda: PlasticityConfig(tau_convention="paper"),
     r"tau_convention .*\['independent', 'shifted'\]"),
    ("lr=2", lambda: PlasticityConfig(lr=2.0), r"lr .*\[0, 1\]"),
    ("first_activation=-1", lambda: TurnoverConfig(first_activation=-1), r"first_activation .*\[0, "),
    ("reborn_ee<0", lambda: TurnoverConfig(reborn_ee=-0.1), r"reborn_ee .*\[0, 100\]"),
    ("reborn_ie>0", lambda: TurnoverConfig(reborn_ie=0.1), r"reborn_ie .*\[-100, 0\]"),
    ("diagonal=1", lambda: TurnoverConfig(diagonal=1), r"diagonal must be True or False"),
    ("n_fit=1", lambda: LossConfig(n_fit=1), r"n_fit .*\[2, "),
    ("window_stop=start", lambda: LossConfig(window_stop=30), r"window_stop .*\[31, "),
    ("fit_activations unsorted", lambda: LossConfig(fit_activations=(5, 3)), r"fit_activations .*increasing"),
    ("fit_activations empty", lambda: LossConfig(fit_activations=()), r"fit_activations .*at least one"),
    ("n_activations=10", lambda: ModelConfig(n_activations=10), r"fit_activations .*\[0, 9\]"),
    ("n_activations=0", lambda: ModelConfig(n_activations=0), r"n_activations .*\[1, "),
    ("n_steps<stop_step", lambda: ModelConfig(network=NetworkConfig(n_steps=500)),
     r"inputs\.stop_step must be <= network\.n_steps = 500"),
    ("record_rates=400", lambda: ModelConfig(record_rates=(400,)), r"record_rates .*\[0, 399\]"),
    ("float64=1", lambda: ModelConfig(float64=1), r"float64 must be True or False"),
    ("p_turnover_ee=1.5", lambda: make_networks(ModelConfig(), [0, 1], p_turnover_ee=1.5),
     r"p_turnover_ee must be in \[0, 1\], got 1\.5"),
    ("p_turnover_ie<0", lambda: make_networks(ModelConfig(), [0], p_turnover_ie=-0.1),
     r"p_turnover_ie must be in \[0, 1\]"),
    ("seeds empty", lambda: make_networks(ModelConfig(), []), r"seeds must be a non-empty"),
    ("seeds<0", lambda: make_networks(ModelConfig(), [3, -1]), r"seeds must be integers in \[0, 2\*\*32\), got -1"),
    ("taus=-1", lambda: Rule.create(taus=-1), r"taus must"),
    ("taus<0", lambda: Rule.create(taus=np.full(12, -1e-3)), r"taus .*\(0, 10\]"),
    ("coefs shape", lambda: Rule.create(coefs=np.zeros(19)), r"coefs .*\(3, 20\) or \(20,\)"),
    ("coefs nan", lambda: Rule.create(coefs=np.full(20, np.nan)), r"coefs must be finite"),
    ("term name", lambda: Rule.from_terms({"xy": 1.0}), r"term must be one of .*'x y'"),
    ("from_dict unknown", lambda: from_dict(ModelConfig, {"n_act": 3}), r"unknown field 'n_act'"),
]


@pytest.mark.parametrize("make, pattern", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_value_raises_one_line_value_error_naming_field(make, pattern):
    with pytest.raises(ValueError) as info:
        make()
    msg = str(info.value)
    assert "\n" not in msg
    assert re.search(pattern, msg), msg


GOOD = [
    ("edges of probabilities", lambda: NetworkConfig(p_ei=0.0, p_ie=1.0)),
    ("no inhibitory cells", lambda: NetworkConfig(n_i=0)),
    ("all synapse types", lambda: PlasticityConfig(synapses=("ie", "ee", "ei"))),
    ("shifted taus", lambda: PlasticityConfig(tau_convention="shifted")),
    ("turnover from activation 0", lambda: TurnoverConfig(first_activation=0, diagonal=False)),
    ("last activation recorded", lambda: ModelConfig(record_rates=(0, 399), record_weights=(399,))),
    ("taus of one type", lambda: Rule.create(taus=np.full(12, 40e-3))),
]


@pytest.mark.parametrize("make", [g[1] for g in GOOD], ids=[g[0] for g in GOOD])
def test_valid_values_are_accepted(make):
    make()


def test_rule_taus_above_range_rejected():
    with pytest.raises(ValueError, match=r"taus .*\(0, 10\]"):
        Rule.create(taus=np.full(12, 20.0))


def test_model_config_round_trips_through_json():
    cfg = ModelConfig(network=NetworkConfig(n_steps=900), inputs=InputConfig(stop_step=600),
                      plasticity=PlasticityConfig(synapses=("ee", "ie"), tau_convention="shifted"),
                      turnover=TurnoverConfig(diagonal=False, first_activation=0),
                      loss=LossConfig(fit_activations=(10, 12), test_activations=(14,), window_stop=600),
                      n_activations=15, record_rates=(0, 14), float64=True)
    back = from_dict(ModelConfig, json.loads(cfg.to_json()))
    assert back == cfg
    assert hash(back) == hash(cfg)  # static jit argument


def test_default_config_matches_spec_protocol():
    cfg = ModelConfig()
    assert cfg.n_activations == 400
    assert cfg.loss.fit_activations == tuple(range(344, 370, 5))
    assert cfg.loss.test_activations == tuple(range(374, 400, 5))
    assert (cfg.loss.n_fit, cfg.loss.n_test) == (500, 200)
    assert (cfg.network.n_e, cfg.network.n_i, cfg.network.n_steps) == (25, 8, 1100)
    assert cfg.plasticity.synapses == ("ee",) and cfg.plasticity.tau_convention == "independent"
