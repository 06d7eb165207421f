"""The engine's backends: choice and errors, and the fused engine against the XLA one on what the
search needs (parity of the simulation itself with the NumPy reference: test_parity.py)."""
import os
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest

from plasticity_repro import engine
from plasticity_repro.engine import fused


@pytest.fixture(autouse=True)
def _reset():
    yield
    engine._chosen.clear()


def test_population_losses_agree_between_backends():
    """One CMA-ES population of candidates scored by either backend: losses within 1e-4 relative."""
    from plasticity_repro.search import profile_config, score_batch, train_networks
    cfg = profile_config("quick", p_turnover=0.00072)
    x = jnp.asarray(np.random.default_rng(4).normal(0, 0.01, (1, cfg.base_popsize, cfg.space.n_params)),
                    jnp.float32)
    out = {}
    for b in ("xla", "fused"):
        engine.configure(backend=b)
        out[b] = [np.asarray(a) for a in score_batch(cfg, x, train_networks(cfg, 1))]
    (l_x, r_x), (l_f, r_f) = out["xla"], out["fused"]
    ok = l_x < 1e7   # candidates that did not blow up (a blow-up's penalty is exact on both)
    assert ok.sum() >= 3
    np.testing.assert_allclose(l_f[ok], l_x[ok], rtol=1e-4)
    np.testing.assert_array_equal(l_f[~ok], l_x[~ok])


def test_fused_engine_is_what_runs_by_default_on_cpu():
    assert engine.requested() == "auto"
    assert engine.settings()[0] == ("fused" if fused.available() else "xla")


def test_unknown_backend_is_a_one_line_error():
    with pytest.raises(ValueError, match=r"^engine backend must be one of \['auto', 'fused', 'xla'\], got 'gpu'$"):
        engine.configure(backend="gpu")
    for bad in (0, -1, "two", True, 2000):
        with pytest.raises(ValueError, match=r"^engine threads must be an integer in \[1, 1024\]"):
            engine.configure(threads=bad)


def test_environment_backend_checked_before_compute(monkeypatch):
    monkeypatch.setenv(engine.ENV_BACKEND, "cuda")
    with pytest.raises(ValueError, match="engine backend must be one of"):
        engine.settings()


def test_unavailable_fused_engine_is_a_one_line_error(tmp_path):
    """No compiler (and no library built yet): asking for 'fused' says so in one line and names the
    choices that work; 'auto' falls back to the XLA engine."""
    code = """
from plasticity_repro import engine
print(engine.settings()[0])
try:
    engine.configure(backend="fused")
except ValueError as e:
    print("ERR", e)
"""
    env = dict(os.environ, CXX="no-such-compiler", PLASTICITY_REPRO_ENGINE_DIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    lines = out.stdout.strip().splitlines()
    assert lines[0] == "xla", out.stderr[-2000:]
    assert lines[1].startswith("ERR engine backend 'fused' is not available on this machine")
    assert lines[1].endswith("choose one of ['auto', 'xla']") and len(lines) == 2


def test_term_structure_check_guards_the_kernel():
    fused.check_terms()   # today's table is the kernel's
    from plasticity_repro import rules
    terms = rules.TERMS
    try:
        rules.TERMS = terms[:3] + (terms[4], terms[3]) + terms[5:]
        with pytest.raises(RuntimeError, match="no longer matches"):
            fused.check_terms()
    finally:
        rules.TERMS = terms


def test_datasets_record_the_engine():
    from plasticity_repro import datasets
    engine.configure(backend="xla")
    attrs = datasets.provenance({}, "quick", [0], False, "test")
    assert (attrs["engine"], attrs["engine_threads"]) == ("xla", 0)
    if fused.available():
        engine.configure(backend="fused", threads=3)
        attrs = datasets.provenance({}, "quick", [0], False, "test")
        assert (attrs["engine"], attrs["engine_threads"]) == ("fused", 3)


_WIDTH_RUN = """
import hashlib
import numpy as np, jax.numpy as jnp
from plasticity_repro import engine
from plasticity_repro.engine import fused
from plasticity_repro.search import profile_config, score_batch, train_networks
engine.configure(backend="fused")
cfg = profile_config("quick", synapses=("ee", "ei", "ie"), p_turnover=0.00072)
x = jnp.asarray(np.random.default_rng(4).normal(0, 0.004, (1, cfg.base_popsize, cfg.space.n_params)), jnp.float32)
l, r = [np.asarray(a) for a in score_batch(cfg, x, train_networks(cfg, 1))]
print(fused.vector_bytes(), int((l < 1e7).sum()), l.size, hashlib.sha256(l.tobytes() + r.tobytes()).hexdigest())
"""


@pytest.mark.skipif(not fused.available(), reason="the fused engine does not build here")
def test_lane_width_changes_no_result(tmp_path):
    """One lane is one network and no operation mixes lanes, so the engine built with a narrower
    lane vector than this CPU's native one gives the same bits (a search resumed on a machine with
    other vector units computes what the first machine would have)."""
    out = {}
    for width in ("", "16"):
        env = dict(os.environ, PLASTICITY_REPRO_ENGINE_DIR=str(tmp_path / f"w{width}"),
                   PLASTICITY_REPRO_VECTOR_BYTES=width)
        run = subprocess.run([sys.executable, "-c", _WIDTH_RUN], env=env, capture_output=True, text=True,
                             timeout=600)
        assert run.returncode == 0, run.stderr[-2000:]
        out[width] = run.stdout.split()
    native, narrow = out[""], out["16"]
    assert narrow[0] == "16" and int(native[0]) >= 16
    assert int(native[1]) >= 3, "too few candidates stayed finite to compare"   # finite candidates
    assert native[1:] == narrow[1:]
