"""Fig 4 stress test: protocol windows, the hand-made space, and the statistics helpers."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from plasticity_repro.config import InputConfig, LossConfig, ModelConfig, NetworkConfig
from plasticity_repro.experiments.stats import cohens_d, kruskal_bonferroni
from plasticity_repro.experiments.stress import handmade_search_config, handmade_space, stress_protocol
from plasticity_repro.network import make_network
from plasticity_repro.search import profile_config
from plasticity_repro.simulate import activation_draws


def test_stress_protocol_paper_windows():
    # the paper at 400 activations: fit 375..400, turnover 401..549, test 575..600 (1-based)
    proto = stress_protocol(ModelConfig())
    s, u = proto.stressed, proto.unperturbed
    assert s.n_activations == 600 and u.n_activations == 400
    assert s.loss.fit_activations == tuple(range(374, 400, 5))
    assert s.loss.test_activations == tuple(range(574, 600, 5))
    assert proto.turnover_window == (400, 549)
    assert u.loss.fit_activations == tuple(range(344, 370, 5))
    assert u.loss.test_activations == tuple(range(374, 400, 5))
    assert s.plasticity.heterosynaptic and u.plasticity.heterosynaptic


def test_stress_protocol_quick_profile_scaled():
    proto = stress_protocol(profile_config("quick").model)          # 24 organising activations
    first, stop = proto.turnover_window
    assert (first, stop) == (24, 33)
    assert proto.stressed.loss.fit_activations == tuple(range(18, 24))
    assert min(proto.stressed.loss.test_activations) > stop           # a recovery gap, then the test
    assert proto.stressed.loss.test_activations[-1] == proto.stressed.n_activations - 1


def test_stress_protocol_rejects_short_total():
    with pytest.raises(ValueError, match="total"):
        stress_protocol(ModelConfig(), total=560)


def test_turnover_flips_only_inside_window():
    # p = 0.5 on 625 E->E synapses: an activation in the window without a flip has probability
    # 2^-625; outside the window there must be none at all.
    base = ModelConfig(network=NetworkConfig(n_steps=60), inputs=InputConfig(stop_step=60, kernel_steps=60),
                       loss=LossConfig(fit_activations=(2, 3), test_activations=(4, 5), n_fit=5, n_test=5,
                                       window_start=0, window_stop=60), n_activations=6)
    cfg = stress_protocol(base, turnover_stop=9).stressed
    assert (cfg.turnover.first_activation, cfg.turnover.stop_activation) == (6, 9)
    net = make_network(cfg, 3, p_turnover_ee=0.5)
    draws = jax.jit(lambda a: activation_draws(cfg, net, a)[1])
    counts = [int(jnp.sum(draws(a))) for a in range(cfg.n_activations)]
    assert all(c == 0 for a, c in enumerate(counts) if not 6 <= a < 9), counts
    assert all(c > 0 for c in counts[6:9]), counts


def test_handmade_space_size_and_signs():
    space = handmade_space()
    assert space.n_params == 7      # 2 coefficients, 2 time constants, 3 bound parameters
    lo, hi = space.bounds()
    names = space.names
    assert hi[names.index("ee:w x y~")] == 0.0 and lo[names.index("ee:w x~ y")] == 0.0
    cfg = handmade_search_config("quick")
    assert cfg.model.plasticity.heterosynaptic and cfg.max_restarts == 0 and cfg.p_turnover == 0.00072


def test_cohens_d_of_shifted_normals():
    # d of N(0.5, 1) vs N(0, 1) with 20000 samples each: standard error of d is about 0.01, so
    # a tolerance of 0.06 fails for a correct implementation with probability far below 1e-6.
    rng = np.random.default_rng(0)
    a, b = rng.normal(0.5, 1, 20000), rng.normal(0.0, 1, 20000)
    assert abs(cohens_d(a, b) - 0.5) < 0.06
    assert abs(cohens_d(b, a) + 0.5) < 0.06
    assert cohens_d([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]) == 0.0


def test_kruskal_bonferroni_known_answer():
    # H of two fully separated groups of 3: ranks 1..3 and 4..6, H = 12/(6*7) (3*4 + 3*25) - 21 = 3.857
    h, p, pb = kruskal_bonferroni([1, 2, 3], [4, 5, 6], n_comparisons=3)
    assert h == pytest.approx(27 / 7)
    assert pb == pytest.approx(min(1.0, 3 * p))
    assert kruskal_bonferroni([1, 2, 3], [4, 5, 6], n_comparisons=100)[2] == 1.0


def test_heterosynaptic_switch_leaves_learned_rules_unchanged():
    # learned rules carry Rule.hetero = HETERO_OFF, so running them in the stress config (bound
    # compiled in for the hand-made rule) gives exactly the weights of the plain config
    import dataclasses
    from plasticity_repro.config import PlasticityConfig
    from plasticity_repro.rules import Rule
    from plasticity_repro.simulate import run
    base = ModelConfig(network=NetworkConfig(n_steps=80), inputs=InputConfig(stop_step=80, kernel_steps=80),
                       plasticity=PlasticityConfig(lr=5e-2),
                       loss=LossConfig(fit_activations=(0,), test_activations=(1,), n_fit=5, n_test=5,
                                       window_start=0, window_stop=80), n_activations=3)
    hetero = dataclasses.replace(base, plasticity=dataclasses.replace(base.plasticity, heterosynaptic=True))
    coefs = np.zeros((3, 20))
    coefs[0, [7, 5, 18]] = (1.0, -0.5, -0.3)
    rule = Rule.create(coefs)
    net = make_network(base, 5)
    w0 = jax.jit(run, static_argnums=0)(base, rule, net).w_final
    w1 = jax.jit(run, static_argnums=0)(hetero, rule, net).w_final
    assert not np.allclose(w0, net.w0)       # the rule did something
    np.testing.assert_array_equal(np.asarray(w0), np.asarray(w1))
