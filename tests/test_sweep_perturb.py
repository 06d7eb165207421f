"""Fig 5 turnover sweep and Fig 6 perturbation datasets: shapes, protocols, and that summaries
read the activations they claim to."""
import dataclasses

import numpy as np

from plasticity_repro.config import LossConfig, ModelConfig, NetworkConfig
from plasticity_repro.experiments.evaluate import network_losses, stack_rules
from plasticity_repro.experiments.perturb import perturbation_dataset, perturbation_protocol, response_measures, summarise
from plasticity_repro.experiments.sweep import sweep_protocol, turnover_sweep_dataset
from plasticity_repro.rules import Rule
from plasticity_repro.search import profile_config

# short activations (70 ms) and few decoder points keep the compiled programs small
NET = NetworkConfig(n_steps=700)
LOSS = LossConfig(fit_activations=(1,), test_activations=(3,), n_fit=40, n_test=40)


def test_sweep_protocol_is_the_papers_at_400_activations():
    paper = sweep_protocol(profile_config("paper").model)
    assert paper.n_activations == 600
    assert paper.loss.fit_activations == tuple(range(374, 400, 5))
    assert paper.loss.test_activations == tuple(range(574, 600, 5))
    quick = sweep_protocol(profile_config("quick").model)
    assert (quick.n_activations, quick.loss.fit_activations[0], quick.loss.test_activations[-1]) == (36, 18, 35)


def test_sweep_dims_and_p0_equals_the_plain_protocol():
    cfg = ModelConfig(network=NET, loss=LOSS, n_activations=4)
    rules = [Rule.create(), Rule.create()]
    seeds = [3, 4]
    ds = turnover_sweep_dataset(cfg, rules, ["a", "b"], ["g1", "g2"], seeds, profile="test", p_values=(0.0, 0.2))
    assert dict(ds.loss.sizes) == {"p_turnover": 2, "rule": 2, "network": 2}
    assert dict(ds.median_loss.sizes) == {"p_turnover": 2, "group": 2}
    assert list(ds.rule_group.values) == ["g1", "g2"]
    plain = network_losses(cfg, stack_rules(rules[:1]), seeds, p_turnover_ee=0.0)
    np.testing.assert_allclose(ds.loss.sel(p_turnover=0.0, rule="a").values, plain["loss"][0], rtol=1e-6)
    # turnover at p = 0.2 moves the weights, so the loss changes
    assert not np.allclose(ds.loss.sel(p_turnover=0.2).values, ds.loss.sel(p_turnover=0.0).values)


def test_perturbation_protocol_is_the_papers_at_400_activations():
    p = perturbation_protocol(400)
    assert (p["activation"], p["later"], p["n_activations"], p["n_before"]) == (399, 25, 450, 10)


def test_summarise_reads_before_just_after_and_later():
    acts = np.arange(2, 9)
    got = summarise(acts.astype(float), acts, activation=5, later=2, n_before=3)
    np.testing.assert_allclose(got, [3.0, 5.0, 7.0])   # mean(2, 3, 4), activation 5, activation 7


def test_response_measures_of_a_rectangular_pulse():
    r = np.zeros(100)
    r[10:30] = 2.0
    r[30:35] = 0.5
    peak, dur = response_measures(r, 1e-3)
    assert peak == 2.0 and np.isclose(dur, 20e-3)


def test_perturbation_summaries_come_from_the_right_activations():
    base = ModelConfig(network=NET, loss=LOSS, n_activations=5)
    ds = perturbation_dataset(base, Rule.create(), [0, 1], profile="test", kinds=("afferent x1.5",), cell=0,
                              activation=4, later=2, n_activations=8, n_before=2)
    np.testing.assert_array_equal(ds.activation.values, np.arange(2, 8))
    cell = ds.attrs["perturbed_cell"]
    from plasticity_repro.network import make_networks
    w0 = np.asarray(make_networks(base, [0, 1]).w0, np.float64)
    e0 = w0[:, cell, :25].sum(axis=1)
    # no plasticity: the cell's E->E input is w0's until activation 4, then 1.5 x (once, kept)
    s = ds.e_input_summary.sel(kind="afferent x1.5").values
    np.testing.assert_allclose(s, np.stack([e0, 1.5 * e0, 1.5 * e0], axis=1), rtol=1e-5)
    peak = ds.peak.sel(kind="afferent x1.5").values
    np.testing.assert_allclose(ds.peak_summary.sel(kind="afferent x1.5").values,
                               np.stack([peak[:, :2].mean(1), peak[:, 2], peak[:, 4]], axis=1), rtol=1e-6)
    np.testing.assert_allclose(ds.amplitude_summary.sel(kind="afferent x1.5", phase="before").values, 1.0, rtol=1e-6)
