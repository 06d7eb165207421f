"""Synaptic turnover (spec §4): flip rate, what a flip does, which block it touches, the diagonal
option and the first activation it acts on."""
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from plasticity_repro.config import InputConfig, LossConfig, ModelConfig, NetworkConfig, TurnoverConfig
from plasticity_repro.network import make_network
from plasticity_repro.rules import Rule
from plasticity_repro.simulate import activation_draws, run, split_blocks
from plasticity_repro.turnover import apply_flips, draw_flips

N_E, N_I = 25, 8


def _cfg(turnover=TurnoverConfig(), n_steps=60, n_activations=4):
    """Short activations (turnover does not depend on their length)."""
    return ModelConfig(network=NetworkConfig(n_steps=n_steps),
                       inputs=InputConfig(stop_step=n_steps, kernel_steps=n_steps),
                       turnover=turnover,
                       loss=LossConfig(fit_activations=(n_activations - 2,),
                                       test_activations=(n_activations - 1,), n_fit=5, n_test=5,
                                       window_start=0, window_stop=n_steps),
                       n_activations=n_activations, float64=True)


_run = jax.jit(run, static_argnums=0)


@functools.lru_cache(maxsize=None)
def _network():
    """One network for the short configs (which differ only in TurnoverConfig)."""
    return make_network(_cfg(n_activations=3), 11)


def _chernoff_tol(mu, p_fail=1e-6):
    """Relative half-width d with P(|X - mu| >= d mu) <= 2 exp(-d^2 mu / 3) = p_fail (X a sum of
    independent Bernoullis with mean mu, d <= 1): a correct sampler fails with probability < p_fail."""
    return math.sqrt(3 * math.log(2 / p_fail) / mu)


@pytest.mark.parametrize("p", [0.00072, 0.05, 0.5])
def test_turnover_flip_rate_matches_p(p):
    # 2e7 Bernoulli draws: mu = 14400 at the training p = 0.00072, so the Chernoff tolerance is
    # 5.5 % of the count; a correct implementation falls outside it with probability < 1e-6.
    shape = (2000, 10000)
    flips = draw_flips(jax.random.PRNGKey(7), shape, p, True)
    mu = p * shape[0] * shape[1]
    count = int(jnp.sum(flips))
    assert abs(count - mu) <= _chernoff_tol(mu) * mu, (count, mu)


def test_turnover_flip_rate_over_activations_matches_p():
    # The draws the run uses: 1000 activations x 625 E->E synapses at p = 0.05, mu = 31250 flips,
    # Chernoff tolerance 3.7 %: a correct implementation fails with probability < 1e-6.
    p, n_act = 0.05, 1000
    cfg = _cfg(n_activations=3)
    network = _network().replace(p_turnover_ee=jnp.asarray(p, jnp.float64))
    flips = jax.jit(jax.vmap(lambda a: activation_draws(cfg, network, a)[1]))(jnp.arange(1, n_act + 1))
    mu = p * n_act * N_E * N_E
    count = int(jnp.sum(flips))
    assert abs(count - mu) <= _chernoff_tol(mu) * mu, (count, mu)
    # and they are fresh each activation, not one mask reused
    assert not np.array_equal(np.asarray(flips[0]), np.asarray(flips[1]))


def _random_block_state(seed, shape, sign):
    rng = np.random.default_rng(seed)
    w = sign * rng.uniform(0.05, 0.4, shape)
    exists = rng.random(shape) < 0.7
    w = np.where(exists, w, 0.0)
    flips = rng.random(shape) < 0.4
    return jnp.asarray(w), jnp.asarray(exists), jnp.asarray(flips)


@pytest.mark.parametrize("reborn, sign, shape", [(0.08, 1.0, (N_E, N_E)), (-0.015, -1.0, (N_E, N_I))],
                         ids=["ee", "ie"])
def test_flipped_existing_synapse_is_removed_to_zero(reborn, sign, shape):
    w, exists, flips = _random_block_state(1, shape, sign)
    w_new, _ = apply_flips(w, exists, flips, reborn)
    removed = np.asarray(flips & exists)
    assert removed.sum() > 0
    assert np.all(np.asarray(w_new)[removed] == 0)


@pytest.mark.parametrize("reborn, sign, shape", [(0.08, 1.0, (N_E, N_E)), (-0.015, -1.0, (N_E, N_I))],
                         ids=["ee", "ie"])
def test_flipped_absent_synapse_is_reborn_at_fixed_weight(reborn, sign, shape):
    w, exists, flips = _random_block_state(2, shape, sign)
    w_new, _ = apply_flips(w, exists, flips, reborn)
    reborn_mask = np.asarray(flips & ~exists)
    assert reborn_mask.sum() > 0
    assert np.all(np.asarray(w_new)[reborn_mask] == reborn)


def test_unflipped_synapses_keep_weight_and_existence():
    w, exists, flips = _random_block_state(3, (N_E, N_E), 1.0)
    w_new, ex_new = apply_flips(w, exists, flips, 0.08)
    keep = ~np.asarray(flips)
    np.testing.assert_array_equal(np.asarray(w_new)[keep], np.asarray(w)[keep])
    np.testing.assert_array_equal(np.asarray(ex_new)[keep], np.asarray(exists)[keep])


def test_flip_toggles_existence():
    w, exists, flips = _random_block_state(4, (N_E, N_E), 1.0)
    _, ex_new = apply_flips(w, exists, flips, 0.08)
    np.testing.assert_array_equal(np.asarray(ex_new), np.asarray(exists) ^ np.asarray(flips))


def test_reborn_weights_come_from_turnover_config():
    cfg = _cfg()
    assert cfg.turnover.reborn_ee == 0.08 and cfg.turnover.reborn_ie == -0.015


def _run_zero_rule(p_ee, p_ie, turnover=TurnoverConfig()):
    """Three activations (two flip opportunities with first_activation = 1), no plasticity."""
    cfg = _cfg(turnover, n_activations=3)
    network = _network().replace(p_turnover_ee=jnp.asarray(p_ee, jnp.float64),
                                 p_turnover_ie=jnp.asarray(p_ie, jnp.float64))
    res = _run(cfg, Rule.create(), network)
    return split_blocks(np.asarray(network.w0), N_E), split_blocks(np.asarray(res.w_final), N_E)


def test_ee_turnover_touches_only_ee_block():
    w0, w_end = _run_zero_rule(0.5, 0.0)
    for t in ("ei", "ie"):
        np.testing.assert_array_equal(w_end[t], w0[t])
    ee_changed = w_end["ee"] != w0["ee"]
    assert ee_changed.sum() > 50
    assert np.all(np.isin(w_end["ee"][ee_changed], [0.0, 0.08]))


def test_ie_turnover_touches_only_ie_block():
    w0, w_end = _run_zero_rule(0.0, 0.5)
    for t in ("ee", "ei"):
        np.testing.assert_array_equal(w_end[t], w0[t])
    ie_changed = w_end["ie"] != w0["ie"]
    assert ie_changed.sum() > 20
    assert np.all(np.isin(w_end["ie"][ie_changed], [0.0, -0.015]))


def test_run_flips_twice_means_removed_then_reborn():
    # p = 1, flips before activations 1 and 2: every E->E synapse (diagonal included, as in the
    # reference) is removed and then reborn at 0.08; every I->E one ends at -0.015.
    _, w_end = _run_zero_rule(1.0, 1.0)
    assert np.all(w_end["ee"] == 0.08)
    assert np.all(w_end["ie"] == -0.015)


def test_diagonal_stays_empty_in_run_when_not_allowed():
    _, w_end = _run_zero_rule(1.0, 0.0, TurnoverConfig(diagonal=False))
    off = ~np.eye(N_E, dtype=bool)
    assert np.all(np.diag(w_end["ee"]) == 0)
    assert np.all(w_end["ee"][off] == 0.08)


def test_run_has_no_turnover_before_first_activation():
    # first_activation = 3 with activations 0..2: p = 1 never acts, so W ends as it started.
    w0, w_end = _run_zero_rule(1.0, 1.0, TurnoverConfig(first_activation=3))
    for t in ("ee", "ei", "ie"):
        np.testing.assert_array_equal(w_end[t], w0[t])


def test_draw_flips_spares_diagonal_when_asked():
    flips = np.asarray(draw_flips(jax.random.PRNGKey(0), (N_E, N_E), 1.0, False))
    assert not np.any(np.diag(flips))
    assert np.all(flips[~np.eye(N_E, dtype=bool)])


@pytest.mark.parametrize("diagonal", [True, False])
def test_activation_draws_follow_diagonal_option(diagonal):
    cfg = _cfg(TurnoverConfig(diagonal=diagonal))
    network = _network().replace(p_turnover_ee=jnp.asarray(1.0), p_turnover_ie=jnp.asarray(1.0))
    _, flips_ee, flips_ie = activation_draws(cfg, network, 1)
    assert np.all(np.diag(np.asarray(flips_ee)) == diagonal)
    assert np.all(np.asarray(flips_ee)[~np.eye(N_E, dtype=bool)])
    assert np.all(np.asarray(flips_ie))  # I->E has no diagonal


def test_diagonal_stays_empty_in_run_when_not_allowed():
    # p = 0.5 over 3 flip opportunities: without the option ~ 22 autapses would appear.
    _, w_end = _run_zero_rule(0.5, 0.0, TurnoverConfig(diagonal=False))
    assert np.all(np.diag(w_end["ee"]) == 0)


@pytest.mark.parametrize("first", [0, 1, 3])
def test_turnover_respects_first_activation(first):
    cfg = _cfg(TurnoverConfig(first_activation=first), n_activations=6)
    network = _network().replace(p_turnover_ee=jnp.asarray(1.0), p_turnover_ie=jnp.asarray(1.0))
    for a in range(5):
        _, flips_ee, flips_ie = activation_draws(cfg, network, a)
        on = a >= first
        assert np.all(np.asarray(flips_ee)[~np.eye(N_E, dtype=bool)] == on), a
        assert np.all(np.asarray(flips_ie) == on), a
