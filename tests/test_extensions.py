"""Protocol extensions used by the figures: turnover window (stress test), single-cell
perturbations (Fig 6), and the hand-made rule's heterosynaptic bound (Fig 4)."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from plasticity_repro.config import (LossConfig, ModelConfig, PerturbationConfig, PlasticityConfig,
                                     TurnoverConfig)
from plasticity_repro.network import make_network, make_networks
from plasticity_repro.rules import Rule
from plasticity_repro.search import ParamSpace
from plasticity_repro.simulate import activation_draws, run_networks

LOSS = LossConfig(fit_activations=(0,), test_activations=(1,), n_fit=20, n_test=20)


def test_turnover_only_inside_its_window():
    cfg = ModelConfig(loss=LOSS, n_activations=10, turnover=TurnoverConfig(first_activation=3, stop_activation=6))
    net = make_network(cfg, 0, p_turnover_ee=0.5)
    flips = [bool(np.asarray(activation_draws(cfg, net, a)[1]).any()) for a in range(10)]
    assert flips == [False] * 3 + [True] * 3 + [False] * 4


def test_afferent_scaling_happens_once_on_one_cell():
    pert = PerturbationConfig(activation=2, cell=4, afferent_scale=1.5)
    cfg = ModelConfig(loss=LOSS, n_activations=4, perturbation=pert, record_weights=(1, 2, 3))
    nets = make_networks(cfg, [0])
    res = run_networks(cfg, Rule.create(), nets)   # no plasticity: only the perturbation moves W
    w = np.asarray(res.weights[0])   # end of activations 1, 2, 3 (0-based)
    np.testing.assert_allclose(w[0, 4, :25], np.asarray(nets.w0[0])[4, :25], rtol=1e-6)
    np.testing.assert_allclose(w[0, 4, :25] * 1.5, w[1, 4, :25], rtol=1e-6)
    np.testing.assert_allclose(w[1], w[2], rtol=1e-6)          # once, not every activation
    others = np.delete(np.arange(33), 4)
    np.testing.assert_allclose(w[1][others], w[0][others], rtol=1e-6)


def test_input_gain_boosts_one_cells_fresh_arrivals():
    pert = PerturbationConfig(activation=1, cell=7, input_gain=10.0)
    cfg = ModelConfig(loss=LOSS, n_activations=400, perturbation=pert)
    base = dataclasses.replace(cfg, perturbation=PerturbationConfig())
    net = make_network(cfg, 0)
    frozen = np.asarray(net.arrivals)
    fresh = lambda c, a: np.asarray(activation_draws(c, net, a)[0]) - frozen
    before = sum(fresh(cfg, 0)[:, 7].sum() for _ in range(1))
    after = np.mean([fresh(cfg, a)[:, 7].sum() for a in range(1, 41)])
    other = np.mean([fresh(cfg, a)[:, 8].sum() for a in range(1, 41)])
    # fresh rate 20 Hz over 64 ms: 1.28 expected arrivals; x10 -> 12.8 (40 draws: sd of mean ~0.57)
    assert 9.0 < after < 17.0
    assert other < 3.0
    np.testing.assert_array_equal(fresh(cfg, 0), fresh(base, 0))   # nothing changes before


def test_heterosynaptic_bound_caps_and_limits_sums():
    pl = PlasticityConfig(heterosynaptic=True)
    cfg = ModelConfig(plasticity=pl, loss=LOSS, n_activations=3)
    nets = make_networks(cfg, [0, 1])
    hebb = Rule.create(coefs=np.r_[np.zeros(17), [0.2], np.zeros(2)])   # w x~ y only: runaway growth
    free = run_networks(cfg, hebb, nets)
    bounded = run_networks(cfg, hebb.replace(hetero=jnp.asarray([4.0, 0.0025, 0.3])), nets)
    w_free = np.asarray(free.w_final)[:, :25, :25]
    w_b = np.asarray(bounded.w_final)[:, :25, :25]
    assert w_free.max() > 0.45
    assert w_b.max() <= 0.3 + 1e-6
    assert w_b.sum(axis=2).mean() < w_free.sum(axis=2).mean()
    # with the flag off, hetero is ignored
    off = run_networks(dataclasses.replace(cfg, plasticity=PlasticityConfig()),
                       hebb.replace(hetero=jnp.asarray([4.0, 0.0025, 0.3])), nets)
    np.testing.assert_allclose(np.asarray(off.w_final), np.asarray(free.w_final), rtol=1e-6)


def test_hetero_params_in_the_search_space():
    space = ParamSpace.for_terms(["w x~ y", "w x y~"], signs=[1, -1], heterosynaptic=True)
    assert space.n_params == 2 + 2 + 3
    assert space.names[-3:] == ["hetero:sum_max", "hetero:rate", "hetero:w_cap"]
    rule = space.to_rule(jnp.asarray(space.x0(), jnp.float32))
    np.testing.assert_allclose(np.asarray(rule.hetero), space.hetero_start, rtol=1e-6)


@pytest.mark.parametrize("kw,needle", [
    (dict(activation=-2), "activation must be"), (dict(afferent_scale=-1.0), "afferent_scale must be"),
    (dict(input_gain=1e4), "input_gain must be")])
def test_bad_perturbations_are_rejected(kw, needle):
    with pytest.raises(ValueError, match=needle):
        PerturbationConfig(**kw)
    with pytest.raises(ValueError, match="perturbation.cell must be an E cell"):
        ModelConfig(perturbation=PerturbationConfig(cell=30))
