"""Parity of the JAX simulation with the plain-NumPy float64 reference (spec §1-4).

Tolerances: float64 max abs difference of rates and weights <= 1e-9; float32 against the float64
reference: rates within 2e-4 absolute and weights within 2e-4 absolute after 5 activations
(float32 has ~1e-7 relative precision; 5 x 1099 Euler steps with plasticity accumulate it).
"""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from plasticity_repro import numpy_reference as ref
from plasticity_repro.config import LossConfig, ModelConfig, PlasticityConfig
from plasticity_repro import inputs
from plasticity_repro.network import make_network, make_networks
from plasticity_repro.parallel import jit
from plasticity_repro.rules import Rule
from plasticity_repro.simulate import activation_draws, run, split_blocks

N_ACT = 5


def _cfg(synapses, float64=True, n_act=N_ACT):
    loss = LossConfig(fit_activations=(n_act - 2,), test_activations=(n_act - 1,), n_fit=50, n_test=20)
    return ModelConfig(plasticity=PlasticityConfig(synapses=synapses), loss=loss,
                       n_activations=n_act, record_rates=tuple(range(n_act)),
                       record_weights=tuple(range(n_act)), float64=float64)


def _rule(seed=0, scale=0.5):
    rng = np.random.default_rng(seed)
    coefs = rng.normal(0, scale, (3, 20))
    taus = rng.uniform(1e-3, 20e-3, (3, 12))
    return Rule.create(coefs, taus)


@pytest.fixture(params=["fused", "xla"])
def backend(request):
    """Each parity test runs on both engines (plasticity_repro.engine)."""
    from plasticity_repro import engine
    engine.configure(backend=request.param)
    yield request.param
    engine._chosen.clear()


def _reference_run(cfg, rule, network):
    """Run the NumPy reference on the same draws the JAX run makes."""
    drives, flips_ee, flips_ie = [], [], []
    for a in range(cfg.n_activations):
        arr, fe, fi = activation_draws(cfg, network, a)
        drives.append(ref.drive_from_arrivals(np.asarray(arr, np.float64)))
        flips_ee.append(np.asarray(fe))
        flips_ie.append(np.asarray(fi))
    return ref.run(np.asarray(network.w0, np.float64), np.asarray(network.plastic), drives,
                   np.asarray(rule.coefs, np.float64), np.asarray(rule.taus, np.float64),
                   synapses=cfg.plasticity.synapses, flips_ee=flips_ee, flips_ie=flips_ie,
                   hetero=tuple(np.asarray(rule.hetero, np.float64)) if cfg.plasticity.heterosynaptic else None)


def _handmade():
    """The hand-made comparison rule's form (spec §8): additive and multiplicative STDP with the
    summed-weight bound and the cap, at values that make the bound bind."""
    from plasticity_repro.rules import TERM_NAMES
    c = np.zeros(20)
    for name, v in {"x y~": -0.001, "x~ y": 0.001, "w x y~": -0.05, "w x~ y": 0.05}.items():
        c[TERM_NAMES.index(name)] = v
    taus = np.full(12, 10e-3)
    return Rule.create(c, taus, hetero=(5.0, 0.01, 0.45))


def _case(synapses, seed):
    """(float64 config, rule, plastic types, network with turnover) of a parity case: an E->E rule,
    an all-synapse rule, or the hand-made heterosynaptic rule."""
    if synapses == "handmade":
        cfg = _cfg(("ee",))
        cfg = dataclasses.replace(cfg, plasticity=dataclasses.replace(cfg.plasticity, heterosynaptic=True))
        rule, synapses = _handmade(), ("ee",)
    else:
        cfg = _cfg(synapses)
        rule = _rule(scale=0.5 if synapses == ("ee",) else 0.01)
    network = make_network(cfg, seed, p_turnover_ee=0.05, p_turnover_ie=0.05 if "ie" in synapses else 0.0)
    return cfg, rule, synapses, network


@pytest.mark.parametrize("synapses", [("ee",), ("ee", "ei", "ie"), "handmade"])
def test_float64_parity_with_turnover(synapses, backend):
    cfg, rule, synapses, network = _case(synapses, 3)
    res = jit(run, static_argnums=0)(cfg, rule, network)
    out = _reference_run(cfg, rule, network)
    # the turnover really happened, and the rule really moved weights
    assert np.all(np.isfinite(out["W"][-1]))
    for t, block in split_blocks(out["W"][-1] - np.asarray(network.w0), 25).items():
        assert t not in synapses or np.abs(block).max() > 1e-3, t
    for a in range(N_ACT):
        np.testing.assert_allclose(np.asarray(res.rates[a]), out["r"][a], rtol=0, atol=1e-9)
        np.testing.assert_allclose(np.asarray(res.weights[a]), out["W"][a], rtol=0, atol=1e-9)
    np.testing.assert_allclose(np.asarray(res.effects), out["effects"], rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("synapses", [("ee",), ("ee", "ei", "ie"), "handmade"])
def test_engines_match_the_readable_model(synapses, backend):
    """Each engine against plasticity_repro.model (the spec written plainly) at float64: rates,
    weights and effects within 1e-9 over 5 activations with turnover."""
    from plasticity_repro import model
    cfg, rule, synapses, network = _case(synapses, 7)
    res = jit(run, static_argnums=0)(cfg, rule, network)
    rates, weights, effects = jax.jit(model.run, static_argnums=0)(cfg, rule, network)
    assert rates.dtype == jnp.float64 and rule.coefs.dtype == jnp.float64
    assert np.abs(np.asarray(weights[-1]) - np.asarray(network.w0)).max() > 1e-3   # plasticity acted
    np.testing.assert_allclose(np.asarray(res.rates), np.asarray(rates), rtol=0, atol=1e-9)
    np.testing.assert_allclose(np.asarray(res.weights), np.asarray(weights), rtol=0, atol=1e-9)
    np.testing.assert_allclose(np.asarray(res.effects), np.asarray(effects), rtol=1e-9, atol=1e-9)


def test_float32_close_to_float64_reference(backend):
    cfg64 = _cfg(("ee", "ei", "ie"))
    cfg32 = dataclasses.replace(cfg64, float64=False)
    rule = _rule(1, scale=0.01)
    network64 = make_network(cfg64, 5, p_turnover_ee=0.05)
    network32 = make_network(cfg32, 5, p_turnover_ee=0.05)
    res = jit(run, static_argnums=0)(cfg32, rule, network32)
    assert res.rates.dtype == jnp.float32
    out = _reference_run(cfg64, rule, network64)
    for a in range(N_ACT):
        np.testing.assert_allclose(np.asarray(res.rates[a]), out["r"][a], rtol=0, atol=2e-4)
        np.testing.assert_allclose(np.asarray(res.weights[a]), out["W"][a], rtol=0, atol=2e-4)
    np.testing.assert_allclose(np.asarray(res.effects), out["effects"], rtol=1e-3)


def test_drive_recursion_matches_convolution():
    cfg = _cfg(("ee",))
    network = make_network(cfg, 11)
    arr, _, _ = activation_draws(cfg, network, 0)
    from plasticity_repro import inputs
    direct = inputs.drive_direct(cfg.network, cfg.inputs, arr)
    np.testing.assert_allclose(direct, ref.drive_from_arrivals(np.asarray(arr)), atol=1e-14)
    # the in-loop recursion gives the same drive: run with W = 0 and read s
    consts = inputs.recursion_constants(cfg.network, cfg.inputs)
    amp = inputs.cell_amplitudes(cfg.network, cfg.inputs) * consts[3]
    A = B = jnp.zeros(arr.shape[1])
    old = inputs.delayed(arr, cfg.inputs)
    out = []
    for t in range(arr.shape[0]):
        A, B = inputs.drive_step(A, B, arr[t], old[t], consts)
        out.append(np.asarray(B) * amp)
    np.testing.assert_allclose(np.array(out), direct, rtol=0, atol=1e-12)


def test_network_construction_matches_op_by_op_jax():
    """make_networks draws in one compiled program and computes the weights in NumPy float32: the
    same bits as the plain op-by-op JAX construction (the shipped datasets' networks), where a
    compiled program could fuse a multiply and an add; a batch equals its networks one by one."""
    cfg = ModelConfig()
    net, inp, loss = cfg.network, cfg.inputs, cfg.loss
    n_e, n_i, f32 = net.n_e, net.n_i, jnp.float32
    seeds = [0, 9, 4_000_000_000]
    batch = make_networks(cfg, seeds, p_turnover_ee=0.25)
    for b, seed in enumerate(seeds):
        k_w, k_in, k_dec, k_run = jax.random.split(jax.random.PRNGKey(seed), 4)
        k_ee, k_eim, k_ei, k_iem, k_ie = jax.random.split(k_w, 5)
        w_ee = net.w_ee_max * (net.w_ee_low + (1 - net.w_ee_low) * jax.random.uniform(k_ee, (n_e, n_e), f32))
        w_ee = w_ee * (1 - jnp.eye(n_e, dtype=f32))
        w_ei = net.w_ei_mean + net.w_ei_std * jax.random.normal(k_ei, (n_i, n_e), f32)
        w_ei = jnp.where(jax.random.uniform(k_eim, (n_i, n_e), f32) < net.p_ei, jnp.maximum(w_ei, 0), 0)
        w_ie = net.w_ie_mean + net.w_ie_std * jax.random.normal(k_ie, (n_e, n_i), f32)
        w_ie = jnp.where(jax.random.uniform(k_iem, (n_e, n_i), f32) < net.p_ie, jnp.minimum(w_ie, 0), 0)
        w0 = jnp.block([[w_ee, w_ie], [w_ei, jnp.zeros((n_i, n_i), f32)]])
        arrivals = inputs.poisson_arrivals(net, inp, k_in, inp.rate_hz * inp.frozen_fraction, f32)
        arrivals = arrivals.at[:inp.kick_steps, 0].add(1.0)
        k_fit, k_test = jax.random.split(k_dec)
        fit = jax.random.randint(k_fit, (loss.n_fit,), loss.window_start, loss.window_stop, dtype=jnp.int32)
        one = make_network(cfg, seed, p_turnover_ee=0.25)
        for got in (one, jax.tree.map(lambda x: x[b], batch)):
            np.testing.assert_array_equal(got.w0, w0)
            assert got.w0.dtype == np.float32 and got.arrivals.dtype == np.float32
            np.testing.assert_array_equal(got.plastic, w0 != 0)
            np.testing.assert_array_equal(got.arrivals, arrivals)
            np.testing.assert_array_equal(got.fit_steps, fit)
            np.testing.assert_array_equal(got.key, k_run)
            assert float(got.p_turnover_ee) == 0.25 and float(got.p_turnover_ie) == 0.0
    assert 0.3 < float(jnp.mean(batch.plastic[:, n_e:, :n_e])) < 1.0   # E->I drawn with p_ei = 0.8


def test_per_network_rules_match_a_shared_rule():
    """run_grid (rules x networks flattened, one rule per network) equals running each rule on the
    networks with a shared rule."""
    from plasticity_repro.network import make_networks
    from plasticity_repro.simulate import run_batch, run_grid
    cfg = _cfg(("ee", "ei", "ie"), n_act=3)
    rules = [_rule(7, 0.01), _rule(8, 0.01)]
    stacked = jax.tree.map(lambda *a: jnp.stack(a), *rules)
    nets = make_networks(cfg, [1, 2, 3], p_turnover_ee=0.05)
    grid = jax.jit(run_grid, static_argnums=0)(cfg, stacked, nets)
    for i, rule in enumerate(rules):
        one = jax.jit(run_batch, static_argnums=0)(cfg, rule, nets)
        np.testing.assert_allclose(np.asarray(grid.w_final[i]), np.asarray(one.w_final), rtol=0, atol=1e-12)
        np.testing.assert_allclose(np.asarray(grid.effects[i]), np.asarray(one.effects), rtol=1e-12)


def test_batch_split_over_devices_matches_one_network_at_a_time():
    """A batch of 3 networks (padded to a multiple of the host devices and sharded over them when
    there are several, see parallel.py) gives each network what a batch of one gives it."""
    from plasticity_repro.network import make_networks
    from plasticity_repro.simulate import run_batch
    cfg = _cfg(("ee", "ei", "ie"), n_act=3)
    rule = _rule(9, 0.01)
    nets = make_networks(cfg, [4, 5, 6], p_turnover_ee=0.05)
    f = jax.jit(run_batch, static_argnums=0)
    batch = f(cfg, rule, nets)
    assert batch.w_final.shape[0] == 3 and batch.fit_rates.shape[0] == 3
    for i in range(3):
        one = f(cfg, rule, jax.tree.map(lambda x: x[i:i + 1], nets))
        np.testing.assert_allclose(np.asarray(batch.w_final[i]), np.asarray(one.w_final[0]), rtol=0, atol=1e-12)
        np.testing.assert_allclose(np.asarray(batch.fit_rates[i]), np.asarray(one.fit_rates[0]), rtol=0, atol=1e-12)
        np.testing.assert_allclose(np.asarray(batch.effects[i]), np.asarray(one.effects[0]), rtol=1e-12)


def test_chunk_plan(monkeypatch):
    """How a CPU device splits its networks: chunks of at most 32, padded to a multiple of 16 where
    that adds at most 25 % (PLASTICITY_REPRO_CHUNK overrides the 32, 0 = no chunks)."""
    from plasticity_repro.parallel import CHUNK_NETWORKS, ENV_CHUNK, chunk_networks, chunk_plan
    monkeypatch.delenv(ENV_CHUNK, raising=False)
    assert CHUNK_NETWORKS == 32
    assert [chunk_plan(n) for n in (1, 15, 16, 17, 28, 32, 33, 85, 170)] == [
        (1, 1), (1, 16), (1, 16), (1, 17), (1, 32), (1, 32), (2, 17), (3, 32), (6, 32)]
    monkeypatch.setenv(ENV_CHUNK, "0")
    assert chunk_plan(170) == (1, 170)
    monkeypatch.setenv(ENV_CHUNK, "64")
    assert chunk_plan(170) == (3, 64) and chunk_plan(100) == (2, 50)
    for bad in ("20", "-16", "x", "1e3"):
        with pytest.raises(ValueError, match=ENV_CHUNK):
            chunk_networks({ENV_CHUNK: bad})
    # the package's jitted entry points check it before tracing anything
    from plasticity_repro.parallel import jit as package_jit
    monkeypatch.setenv(ENV_CHUNK, "20")
    with pytest.raises(ValueError, match=ENV_CHUNK):
        package_jit(lambda x: x + 1)(jnp.zeros(3))


def test_chunked_batch_matches_the_whole_batch(monkeypatch):
    """Networks run in padded chunks one after the other (parallel.chunk_plan) get what the whole
    batch at once gives them, with one rule per network (candidates x networks) too."""
    from functools import partial
    from plasticity_repro.network import make_networks
    from plasticity_repro.parallel import ENV_CHUNK, batch_devices
    from plasticity_repro.simulate import run_batch
    cfg = _cfg(("ee", "ei", "ie"), float64=False, n_act=2)
    n_b = 26 * len(batch_devices())        # 26 per device: 2 chunks of 16, the second padded
    rules = [_rule(s, 0.01) for s in range(n_b)]
    stacked = jax.tree.map(lambda *a: jnp.stack(a), *rules)
    nets = make_networks(cfg, np.arange(n_b), p_turnover_ee=0.05)
    out = {}
    for chunk in ("0", "16"):
        monkeypatch.setenv(ENV_CHUNK, chunk)
        out[chunk] = jax.jit(partial(run_batch, cfg))(stacked, nets)
    for field in ("w_final", "fit_rates", "test_rates", "effects", "mean_rate"):
        np.testing.assert_allclose(np.asarray(getattr(out["16"], field)), np.asarray(getattr(out["0"], field)),
                                   rtol=1e-6, atol=1e-7, err_msg=field)
    assert out["16"].w_final.shape[0] == n_b


def test_xla_is_capped_at_avx2_on_x86_only_and_a_named_cap_wins():
    from plasticity_repro.parallel import host_isa_flag
    assert host_isa_flag("", "x86_64") == "--xla_cpu_max_isa=AVX2"
    assert host_isa_flag("--foo", "AMD64") == "--foo --xla_cpu_max_isa=AVX2"
    assert host_isa_flag("--xla_cpu_max_isa=SSE4_2", "x86_64") == "--xla_cpu_max_isa=SSE4_2"
    assert host_isa_flag("--foo", "aarch64") == "--foo"


def test_the_fused_engine_is_built_without_fma_contraction():
    """A contracted build's rounding follows the host's -march tuning (benchmarks/README): the
    built library has fused multiply-adds only in the peak probe, which asks for them."""
    import shutil
    import subprocess
    from plasticity_repro.engine import fused
    assert "-ffp-contract=off" in fused.cxx_flags()
    if shutil.which("objdump") is None or not fused.available():
        pytest.skip("no objdump or no fused engine here")
    asm = subprocess.run(["objdump", "-d", "--no-show-raw-insn", str(fused.build())], capture_output=True,
                         text=True, check=True).stdout
    where, fma = None, {}
    for line in asm.splitlines():
        if line.endswith(">:"):
            where = line.split("<", 1)[1][:-2]
        elif "vfmadd" in line or "vfmsub" in line or "vfnmadd" in line or "vfnmsub" in line:
            fma[where] = fma.get(where, 0) + 1
    assert set(fma) <= {"pr_fma_peak"}, fma
    if "fma" in open("/proc/cpuinfo").read():
        assert fma.get("pr_fma_peak", 0) > 0   # the probe still measures fused multiply-adds


def test_openblas_is_pinned_to_its_haswell_kernels_where_the_cpu_has_them():
    from plasticity_repro.parallel import blas_coretype_env
    assert blas_coretype_env({}, "x86_64", {"avx2", "fma", "sse2"}) == {"OPENBLAS_CORETYPE": "Haswell"}
    assert blas_coretype_env({}, "x86_64", {"avx", "sse2"}) == {}
    assert blas_coretype_env({"OPENBLAS_CORETYPE": "Zen"}, "x86_64", {"avx2", "fma"}) == {}
    assert blas_coretype_env({}, "aarch64", {"avx2", "fma"}) == {}


def test_host_device_flag():
    from plasticity_repro.parallel import ENV_DEVICES, host_device_flag
    assert host_device_flag({}) == host_device_flag({ENV_DEVICES: "auto"})   # on by default
    assert host_device_flag({ENV_DEVICES: "0"}) is None
    assert host_device_flag({ENV_DEVICES: "4", "XLA_FLAGS": "--xla_force_host_platform_device_count=3"}) is None
    assert host_device_flag({ENV_DEVICES: "1"}) is None
    assert "device_count=" in (host_device_flag({ENV_DEVICES: "auto"}) or "device_count=")
    assert host_device_flag({ENV_DEVICES: "4"}) == "--xla_force_host_platform_device_count=4"
    assert host_device_flag({ENV_DEVICES: "4", "XLA_FLAGS": "--foo"}) == "--foo --xla_force_host_platform_device_count=4"
    with pytest.raises(ValueError, match=ENV_DEVICES):
        host_device_flag({ENV_DEVICES: "two"})


def test_cpu_opt_level():
    """The LLVM level of the package's CPU programs (the parity tests above run at the default)."""
    from plasticity_repro.parallel import CPU_OPT_LEVEL, ENV_CPU_OPT, cpu_opt_level
    assert cpu_opt_level({}) == CPU_OPT_LEVEL == 1
    assert cpu_opt_level({ENV_CPU_OPT: " 2 "}) == 2
    for bad in ("4", "-1", "O2", "1.0"):
        with pytest.raises(ValueError, match=ENV_CPU_OPT):
            cpu_opt_level({ENV_CPU_OPT: bad})


def test_sharded_batch_in_a_two_device_process():
    """With PLASTICITY_REPRO_HOST_DEVICES=2 (a fresh process: the flag acts before JAX starts) a
    batch of 3 networks is padded, split over 2 host devices, and equals one network at a time;
    and a quick-profile search scores its candidates (decoder included) without hanging: with
    LAPACK's batched least squares this call deadlocked XLA:CPU's 2-thread pool on 2 cores."""
    import os
    import subprocess
    import sys
    code = """
import plasticity_repro, numpy as np, jax
plasticity_repro.configure()   # reads PLASTICITY_REPRO_HOST_DEVICES, before JAX starts
from plasticity_repro.config import LossConfig, ModelConfig
from plasticity_repro.network import make_networks
from plasticity_repro.rules import Rule
from plasticity_repro.simulate import run_networks
assert len(jax.devices()) == 2, jax.devices()
cfg = ModelConfig(loss=LossConfig(fit_activations=(1,), test_activations=(2,), n_fit=50, n_test=20), n_activations=3)
rng = np.random.default_rng(3)
rule = Rule.create(rng.normal(0, 0.01, 20), rng.uniform(1e-3, 2e-2, 12))
nets = make_networks(cfg, [4, 5, 6], p_turnover_ee=0.05)
batch = run_networks(cfg, rule, nets)
assert batch.w_final.shape[0] == 3
for i in range(3):
    one = run_networks(cfg, rule, jax.tree.map(lambda x: x[i:i + 1], nets))
    np.testing.assert_allclose(np.asarray(batch.w_final[i]), np.asarray(one.w_final[0]), rtol=0, atol=1e-6)
    np.testing.assert_allclose(np.asarray(batch.effects[i]), np.asarray(one.effects[0]), rtol=1e-5)
import jax.numpy as jnp
from plasticity_repro.search import profile_config, score_batch, train_networks
scfg = profile_config("quick", p_turnover=0.00072)
x = jnp.asarray(np.random.default_rng(0).normal(0, 0.2, (2, scfg.base_popsize, scfg.space.n_params)), jnp.float32)
for _ in range(2):
    losses, r2 = score_batch(scfg, x, train_networks(scfg, 2))
    assert np.asarray(losses).shape == (2, scfg.base_popsize)
print("ok")
"""
    env = dict(os.environ, PLASTICITY_REPRO_HOST_DEVICES="2", JAX_PLATFORMS="cpu")
    env.pop("XLA_FLAGS", None)
    try:
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        pytest.fail("a 2-host-device process did not finish in 600 s (deadlock?)")
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-2000:]
