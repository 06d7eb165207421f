"""The rule family (spec §3): the term table, each basis term against its formula, the low-rank
update and effects against the term-by-term definition, the time-constant conventions, and the
gate and Dale clamp inside one activation.

Formulas are written here from the spec's table, independently of `rules.py`: x and y are rates
divided by 0.02, every trace is divided by 0.01, w is the current weight. Float64 throughout
(conftest enables x64); tolerance 1e-12 relative for pure arithmetic.
"""
import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from plasticity_repro import rules
from plasticity_repro.engine import xla_rule
from plasticity_repro.config import LossConfig, ModelConfig, NetworkConfig, PlasticityConfig, InputConfig
from plasticity_repro.network import make_network
from plasticity_repro.rules import Rule
from plasticity_repro.simulate import activation, split_blocks

SPEC_NAMES = ["1", "y", "x", "x y", "y~", "x y~", "x~", "x~ y", "y~ y", "x~ x",
              "w", "w y", "w x", "w x y", "w y~", "w x y~", "w x~", "w x~ y", "w y~ y", "w x~ x"]
# The 12 tau slots: terms 4..9 -> slots 0..5, terms 14..19 -> slots 6..11.
SPEC_SLOT = {k: k - 4 for k in range(4, 10)} | {k: k - 8 for k in range(14, 20)}
# Slots whose trace is of the post cell (y~: terms 4, 5, 8, 14, 15, 18) or the pre cell (x~).
SPEC_POST_SLOTS = (0, 1, 4, 6, 7, 10)
SPEC_PRE_SLOTS = (2, 3, 5, 8, 9, 11)
RATE_NORM, TRACE_NORM = 0.02, 0.01


def spec_term(k, x, y, ty, tx, w):
    """F_k (n_post, n_pre) from the spec's table. x (n_pre,), y (n_post,) raw rates; ty (12, n_post)
    and tx (12, n_pre) raw traces per slot (only the slot of term k is read); w (n_post, n_pre)."""
    X = (x / RATE_NORM)[None, :]
    Y = (y / RATE_NORM)[:, None]
    s = SPEC_SLOT.get(k)
    TY = (ty[s] / TRACE_NORM)[:, None] if s is not None else None
    TX = (tx[s] / TRACE_NORM)[None, :] if s is not None else None
    one = np.ones_like(w)
    base = {0: lambda: one, 1: lambda: Y * one, 2: lambda: X * one, 3: lambda: X * Y,
            4: lambda: TY * one, 5: lambda: X * TY, 6: lambda: TX * one, 7: lambda: TX * Y,
            8: lambda: TY * Y, 9: lambda: TX * X}[k % 10]() * one
    return w * base if k >= 10 else base


def _random_block(seed, n_post=7, n_pre=5):
    """Nonnegative rates and traces (12 slots per cell), weights of both signs."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 0.1, n_pre)
    y = rng.uniform(0, 0.1, n_post)
    tx = rng.uniform(0, 0.05, (12, n_pre))
    ty = rng.uniform(0, 0.05, (12, n_post))
    w = rng.uniform(-0.5, 0.5, (n_post, n_pre))
    return x, y, tx, ty, w


def _factors(x, y, tx, ty):
    """xla_rule.block_factors fed with the traces of the post and pre slots."""
    return xla_rule.block_factors(jnp.asarray(y), jnp.asarray(x), jnp.asarray(ty[list(SPEC_POST_SLOTS)]),
                               jnp.asarray(tx[list(SPEC_PRE_SLOTS)]), RATE_NORM, TRACE_NORM)


# ---- the term table ----------------------------------------------------------------------------

def test_term_names_match_spec_table():
    assert list(rules.TERM_NAMES) == SPEC_NAMES
    assert rules.N_TERMS == 20 and len(rules.TERMS) == 20


def test_terms_10_to_19_are_w_times_terms_0_to_9():
    for k, term in enumerate(rules.TERMS):
        assert term.times_w == (k >= 10), term


def test_twelve_tau_slots_in_term_order():
    assert rules.N_TAUS == 12
    slots = {k: t.tau_slot for k, t in enumerate(rules.TERMS) if t.tau_slot >= 0}
    assert slots == SPEC_SLOT
    assert rules.TRACE_TERMS == tuple(range(4, 10)) + tuple(range(14, 20))
    assert len(rules.TAU_NAMES) == 12


def test_terms_without_trace_have_no_tau_slot():
    for k, term in enumerate(rules.TERMS):
        assert (term.tau_slot == -1) == ("~" not in term.name), term


def test_post_and_pre_trace_slot_assignment():
    assert rules.POST_TRACE_SLOTS == SPEC_POST_SLOTS
    assert rules.PRE_TRACE_SLOTS == SPEC_PRE_SLOTS
    for k, term in enumerate(rules.TERMS):
        assert ("y~" in term.post) == ("y~" in term.name)
        assert ("x~" in term.pre) == ("x~" in term.name)


def test_tau_index_independent_reads_own_row():
    idx = rules.tau_index("independent")
    assert idx.shape == (3, 12)
    for t in range(3):
        for j in range(12):
            assert idx[t, j] == 12 * t + j


def test_tau_index_shifted_reads_flat_t_plus_j():
    idx = rules.tau_index("shifted")
    assert idx.shape == (3, 12)
    for t in range(3):
        for j in range(12):
            assert idx[t, j] == t + j


@pytest.mark.parametrize("convention", ["independent", "shifted"])
def test_effective_taus_follow_convention(convention):
    taus = np.random.default_rng(0).uniform(1e-3, 20e-3, (3, 12))
    rule = Rule.create(np.zeros((3, 20)), taus)
    flat = np.asarray(rule.taus).reshape(-1)
    eff = np.asarray(rule.effective_taus(convention))
    for t in range(3):
        for j in range(12):
            expected = flat[12 * t + j] if convention == "independent" else flat[t + j]
            assert eff[t, j] == expected


def test_from_terms_sets_named_coefficient_of_its_type():
    rule = Rule.from_terms({"x~ y": 1.5, "w y~ y": -0.5}, synapse="ie")
    c = np.asarray(rule.coefs)
    expected = np.zeros((3, 20))
    expected[2, 7], expected[2, 18] = 1.5, -0.5
    np.testing.assert_array_equal(c, expected)


# ---- each basis term against its formula --------------------------------------------------------

@pytest.mark.parametrize("k", range(20), ids=SPEC_NAMES)
def test_single_term_update_matches_formula(k):
    x, y, tx, ty, w = _random_block(k)
    rule = Rule.from_terms({SPEC_NAMES[k]: 1.0})
    c = jnp.asarray(rule.coefs[0], jnp.float64)
    assert np.count_nonzero(np.asarray(c)) == 1 and float(c[k]) == 1.0
    P, Q = _factors(x, y, tx, ty)
    got = np.asarray(xla_rule.block_update(c, P, Q, jnp.asarray(w)))
    np.testing.assert_allclose(got, spec_term(k, x, y, ty, tx, w), rtol=1e-12, atol=1e-12)


def test_block_update_equals_sum_of_term_by_term():
    x, y, tx, ty, w = _random_block(100)
    c = jnp.asarray(np.random.default_rng(1).normal(0, 1, 20))
    P, Q = _factors(x, y, tx, ty)
    upd = np.asarray(xla_rule.block_update(c, P, Q, jnp.asarray(w)))
    terms = np.asarray(xla_rule.term_by_term(c, P, Q, jnp.asarray(w)))
    assert terms.shape == (20,) + w.shape
    np.testing.assert_allclose(upd, terms.sum(axis=0), rtol=1e-12, atol=1e-12)


def test_term_by_term_matches_formula_times_coefficient():
    x, y, tx, ty, w = _random_block(101)
    c = np.random.default_rng(2).normal(0, 1, 20)
    P, Q = _factors(x, y, tx, ty)
    terms = np.asarray(xla_rule.term_by_term(jnp.asarray(c), P, Q, jnp.asarray(w)))
    for k in range(20):
        np.testing.assert_allclose(terms[k], c[k] * spec_term(k, x, y, ty, tx, w), rtol=1e-12, atol=1e-12)


def test_block_effects_equal_gated_sum_of_abs_terms():
    x, y, tx, ty, w = _random_block(102)
    rng = np.random.default_rng(3)
    c = rng.normal(0, 1, 20)  # both signs: effects must take |c_k F_k|
    gate = (rng.random(w.shape) < 0.6).astype(np.float64)
    P, Q = _factors(x, y, tx, ty)
    eff = np.asarray(xla_rule.block_effects(jnp.asarray(c), P, Q, jnp.asarray(gate), jnp.asarray(w)))
    expected = [np.sum(np.abs(c[k] * spec_term(k, x, y, ty, tx, w))[gate > 0]) for k in range(20)]
    np.testing.assert_allclose(eff, expected, rtol=1e-12, atol=1e-12)


# ---- gate and Dale clamp inside one activation --------------------------------------------------
# All three types plastic in one float64 config, so that the tests share one compiled activation;
# a rule with zero coefficients on a type leaves that type alone.

N_STEPS_SHORT = 40  # 39 updates
_activation = jax.jit(activation, static_argnums=0)


def _short_cfg(n_steps=N_STEPS_SHORT):
    """A float64 activation of n_steps points (the input window shrunk to fit)."""
    return ModelConfig(network=NetworkConfig(n_steps=n_steps),
                       inputs=InputConfig(stop_step=n_steps, kernel_steps=min(300, n_steps)),
                       plasticity=PlasticityConfig(synapses=("ee", "ei", "ie")),
                       loss=LossConfig(fit_activations=(0,), test_activations=(1,), n_fit=5, n_test=5,
                                       window_start=0, window_stop=n_steps),
                       n_activations=2, float64=True)


@functools.lru_cache(maxsize=None)
def _network():
    """One default float64 network; its frozen arrivals (kick and Poisson from step 10) drive the
    short activations, cut to their length."""
    return make_network(ModelConfig(float64=True), 0)


def _one_activation(rule, n_steps=N_STEPS_SHORT, w_edit=None):
    network = _network()
    w = split_blocks(network.w0, 25)
    if w_edit is not None:
        w = w_edit(w)
    plastic = split_blocks(network.plastic, 25)
    act = _activation(_short_cfg(n_steps), rule, w, plastic, network.arrivals[:n_steps])
    return w, plastic, act


def test_dale_clamp_keeps_ee_sign():
    # c_0 = -10: every gated E->E weight moves by lr * c_0 = -0.005 per step whatever the rates.
    w0, plastic, act = _one_activation(Rule.from_terms({"1": -10.0}))
    w0, plastic, w_end = np.asarray(w0["ee"]), np.asarray(plastic["ee"]), np.asarray(act.w["ee"])
    free = w0 - 0.005 * (N_STEPS_SHORT - 1)
    crossed, kept = plastic & (free < 0), plastic & (free > 0)
    assert crossed.sum() > 10 and kept.sum() > 10  # both cases occur
    # weights crossed at different steps (the earliest near step 16) and were pushed down again on
    # every step after: all still sit at exactly +1e-6, none below 0
    assert np.all(w_end >= 0)
    assert np.all(w_end[crossed] == 1e-6)
    np.testing.assert_allclose(w_end[kept], free[kept], rtol=0, atol=1e-12)


def test_dale_clamp_keeps_ie_sign():
    # c_0 = +15 on I->E pushes the (negative) inhibitory weights up by 0.0075 per step.
    w0, plastic, act = _one_activation(Rule.from_terms({"1": 15.0}, synapse="ie"))
    w0, plastic, w_end = np.asarray(w0["ie"]), np.asarray(plastic["ie"]), np.asarray(act.w["ie"])
    free = w0 + 0.0075 * (N_STEPS_SHORT - 1)
    crossed, kept = plastic & (free > 0), plastic & (free < 0)
    assert crossed.sum() > 10 and kept.sum() > 10
    assert np.all(w_end <= 0)
    assert np.all(w_end[crossed] == -1e-6)
    np.testing.assert_allclose(w_end[kept], free[kept], rtol=0, atol=1e-12)


def _tiny_ee(w):
    ee = np.array(w["ee"])
    ee[0, 1], ee[0, 2], ee[0, 3], ee[0, 4] = 2e-6, 1e-6, -1e-6, 3e-6
    return dict(w, ee=jnp.asarray(ee))


def _strong_rule(types=(0, 1, 2)):
    c = np.zeros((3, 20))
    for t in types:
        c[t, 0], c[t, 3], c[t, 11] = 0.5, 1.0, 0.2  # constant, x y and w y
    return Rule.create(c)


def test_gate_freezes_weights_at_or_below_2e6():
    _, _, act = _one_activation(_strong_rule(), w_edit=_tiny_ee)
    w_end = np.asarray(act.w["ee"])
    assert w_end[0, 1] == 2e-6 and w_end[0, 2] == 1e-6 and w_end[0, 3] == -1e-6
    assert w_end[0, 4] != 3e-6  # just above the gate: plastic


def test_diagonal_never_changes():
    _, _, act = _one_activation(_strong_rule())
    assert np.all(np.diag(np.asarray(act.w["ee"])) == 0)


def test_absent_ei_and_ie_synapses_never_change():
    w0, plastic, act = _one_activation(_strong_rule())
    for t in ("ei", "ie"):
        absent = ~np.asarray(plastic[t])
        assert absent.sum() > 0, t
        assert np.all(np.asarray(act.w[t])[absent] == 0), t
        assert np.any(np.asarray(act.w[t])[~absent] != np.asarray(w0[t])[~absent]), t  # others moved


def test_types_without_coefficients_never_change():
    w0, _, act = _one_activation(_strong_rule(types=(0,)))
    assert np.any(np.asarray(act.w["ee"]) != np.asarray(w0["ee"]))
    for t in ("ei", "ie"):
        np.testing.assert_array_equal(np.asarray(act.w[t]), np.asarray(w0[t]))


def test_non_plastic_types_never_change():
    # synapses = ("ee",): E->I and I->E coefficients are ignored.
    cfg = dataclasses.replace(_short_cfg(), plasticity=PlasticityConfig(synapses=("ee",)))
    network = _network()
    w = split_blocks(network.w0, 25)
    act = _activation(cfg, _strong_rule(), w, split_blocks(network.plastic, 25),
                      network.arrivals[:N_STEPS_SHORT])
    for t in ("ei", "ie"):
        np.testing.assert_array_equal(np.asarray(act.w[t]), np.asarray(w[t]))
