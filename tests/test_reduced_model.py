"""The reduced one-neuron model of Fig 6: two moment rules converge, swapped ones do not."""
import jax
import numpy as np
import pytest

from plasticity_repro.experiments.reduced_model import (
    MODES, ReducedModelConfig, fixed_point, map_jacobian, reduced_model_dataset, response, simulate_reduced)

# Two input conditions where 200 activations suffice (10 ms alpha pulses, two amplitudes) and
# the default initial condition; float64 so the tolerances below measure the model, not rounding.
AMPS = np.array([1.0, 2.5])
WIDTH = 0.01
W0, B0 = 1.0, 0.05


def _runs(mode):
    cfg = ReducedModelConfig(mode=mode, float64=True)
    f = jax.jit(jax.vmap(lambda a: simulate_reduced(cfg, W0, B0, a, WIDTH)))
    return cfg, jax.device_get(f(AMPS))


def _eig_moduli(mode, w_star, b_star, amplitude):
    cfg = ReducedModelConfig(mode=mode, float64=True)
    jac = np.asarray(map_jacobian(cfg, w_star, b_star, amplitude, WIDTH))
    return np.sort(np.abs(np.linalg.eigvals(jac)))


def test_two_rules_converge_to_the_moment_targets():
    cfg, run = _runs("two_rules")
    last = slice(-20, None)
    # w and b settle: over the last 20 activations w moves by < 0.2 % of itself and b by < 1e-3
    # (measured: 0.09 % and 0.01 %; b* = 0.054; the slow mode has |eig| = 0.98 here)
    dw = np.ptp(run.w[:, last], axis=1) / np.abs(run.w[:, -1])
    db = np.ptp(run.b[:, last], axis=1)
    assert np.all(dw < 2e-3), dw
    assert np.all(db < 1e-3), db
    # both moments sit on their targets to 0.5 % (measured: < 0.1 %)
    np.testing.assert_allclose(run.m1[:, -1], cfg.target1, rtol=5e-3)
    np.testing.assert_allclose(run.m2[:, -1], cfg.target2, rtol=5e-3)
    # and the response reaches the same (peak, duration) attractor for both amplitudes
    np.testing.assert_allclose(run.peak[0, -1], run.peak[1, -1], rtol=1e-2)
    np.testing.assert_allclose(run.duration[0, -1], run.duration[1, -1], atol=2 * cfg.dt)


def test_two_rule_fixed_point_is_stable_and_swapped_is_a_saddle():
    cfg, run = _runs("two_rules")
    for i, a in enumerate(AMPS):
        w_s, b_s, r1, r2 = fixed_point(cfg, run.w_final[i], run.b_final[i], a, WIDTH)
        assert float(r1) < 1e-8 and float(r2) < 1e-8
        two = _eig_moduli("two_rules", w_s, b_s, a)
        swapped = _eig_moduli("swapped", w_s, b_s, a)
        assert np.all(two < 1.0), two
        assert swapped[-1] > 1.0 and swapped[0] < 1.0, swapped   # one unstable direction


def test_swapped_rules_do_not_converge():
    cfg, run = _runs("swapped")
    # Measured: after 200 activations the larger moment error is still 24-34 % and w, b keep
    # moving (by more than 0.01 over the last 20 activations): the shared fixed point is a saddle.
    err1 = np.abs(run.m1[:, -1] / cfg.target1 - 1)
    err2 = np.abs(run.m2[:, -1] / cfg.target2 - 1)
    assert np.all(np.maximum(err1, err2) > 0.1), (err1, err2)
    moved = np.ptp(run.w[:, -20:], axis=1) + np.ptp(run.b[:, -20:], axis=1)
    assert np.all(moved > 1e-2), moved


def test_single_rule_modes_hold_the_other_parameter():
    _, w_only = _runs("w_only")
    _, b_only = _runs("b_only")
    assert np.all(w_only.b == B0) and np.all(b_only.w == W0)


@pytest.mark.parametrize("kwargs", [
    {"dt": -1e-4}, {"T": 0.0}, {"tau_s": 0.0}, {"n_activations": 0}, {"n_activations": 2.5},
    {"eta_w": -1.0}, {"target1": float("nan")}, {"amplitudes": (1.0, -2.0)}, {"widths": ()},
    {"widths": (1.0,)}, {"mode": "both"}, {"float64": 1},
])
def test_bad_config_raises_value_error(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        ReducedModelConfig(**kwargs)


def test_dataset_has_provenance_and_stability_variables():
    cfg = ReducedModelConfig(amplitudes=(1.0, 2.0), widths=(0.01, 0.015), n_activations=20)
    ds = reduced_model_dataset(cfg, w0=(1.0, 0.8), b0=(0.05, 0.1), profile="test")
    for attr in ("kind", "params_json", "params_hash", "git_commit", "versions_json", "device", "xla_cpu_opt_level",
                 "cpu_chunk_networks", "matmul_precision"):
        assert attr in ds.attrs
    assert ds.attrs["matmul_precision"] == "highest"   # set by the package before JAX starts (conftest)
    assert ds.attrs["kind"] == "reduced_model" and ds.attrs["float_width"] == 32
    assert ds["w"].dims == ("mode", "init", "amplitude", "width", "activation")
    assert ds["w"].shape == (len(MODES), 2, 2, 2, 20)
    assert list(ds["mode"].values) == list(MODES)
    mod = ds["eig_modulus"]
    assert bool((mod.sel(mode="two_rules") < 1).all())
    assert bool((mod.sel(mode="swapped").max("eig") > 1).all())
    np.testing.assert_allclose(mod.sel(mode="w_only").max("eig"), 1.0, atol=1e-6)


def test_default_input_grid_is_the_authors():
    # spec §8: a in linspace(0.01, 1, 10), tau_a in linspace(1, 20 ms, 10), w0 = 1, b0 = 0.1
    cfg = ReducedModelConfig()
    np.testing.assert_allclose(cfg.amplitudes, np.linspace(0.01, 1.0, 10), atol=1e-6)
    np.testing.assert_allclose(cfg.widths, np.linspace(1e-3, 20e-3, 10), atol=1e-6)
    assert cfg.w0 == (1.0,) and cfg.b0 == (0.1,) and cfg.floor == 1e-8 and cfg.dt == 1e-4


def test_delay_is_the_first_moment_of_the_response_in_time():
    # the plain loop of the module docstring at float64: delay = sum t r dt / sum r dt
    cfg = ReducedModelConfig(float64=True)
    w, b, a, tau = 1.3, 0.1, 0.8, 0.012
    u, r = 0.0, np.zeros(cfg.n_steps)
    for k in range(cfg.n_steps):
        r[k] = max(w * u - b, 0.0)
        t = k * cfg.dt
        u += (a * (t / tau) * np.exp(1 - t / tau) - u) * cfg.dt / cfg.tau_s
    t = np.arange(cfg.n_steps) * cfg.dt
    m1, _, peak, _, delay = (float(v) for v in response(cfg, w, b, a, tau))
    np.testing.assert_allclose(m1, np.sum(r) * cfg.dt, rtol=1e-10)
    np.testing.assert_allclose(delay, np.sum(t * r) / np.sum(r), rtol=1e-10)
    assert tau < delay < 0.1                       # after the input's peak, within the activation
    assert np.isnan(float(response(cfg, w, 10.0, a, tau)[4]))   # no response: no delay


def test_updates_keep_w_and_b_above_the_floor():
    # without the floor (floor=-1e6) the swapped rule drives w and b below 0 for these two inputs
    # (measured: w to -8.7 and -2.5, b to -0.16); with it both stay >= 1e-8
    cfg = ReducedModelConfig(mode="swapped")
    run = jax.device_get(jax.jit(jax.vmap(lambda a: simulate_reduced(cfg, 1.0, 0.1, a, 0.02)))(
        np.array([0.45, 1.0])))
    assert np.all(run.w >= cfg.floor) and np.all(run.b >= cfg.floor)
    assert np.any(run.b == np.float32(cfg.floor))  # the floor is reached
