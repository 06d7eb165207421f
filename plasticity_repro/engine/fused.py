"""The fused CPU backend: fused.cc compiled from source with the machine's C++ compiler and
called through `jax.ffi` as an XLA custom call, one call per activation of a batch of networks.

`activation` has the signature and result of `model.activation_batch`, so the run around it (draws,
turnover, records, decoder, loss) stays the same jitted program; only the 1,099 Euler steps of an
activation leave XLA. The library is built on first use (or by `make env`) into
`$XDG_CACHE_HOME/plasticity_repro/engine` (or PLASTICITY_REPRO_ENGINE_DIR), named by a hash of the
source, the compiler flags, the compiler and the CPU, so an edit or another machine rebuilds it.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

SOURCE = Path(__file__).with_name("fused.cc")
# -ffp-contract=off: GCC would otherwise fuse a * b + c into one FMA where the target's tuning
# likes it (-march=native differs between hosts), so float32 results would depend on the machine;
# without contraction they do not depend on -march (benchmarks/README; no measurable speed cost).
CXX_FLAGS = ("-O3", "-march=native", "-ffp-contract=off", "-std=c++17", "-shared", "-fPIC", "-fno-math-errno")
TARGETS = {"float32": "PrActivationF32", "float64": "PrActivationF64"}
# order of the kernel's scalar parameters (enum Param in fused.cc)
PARAMS = ("n_e", "n_i", "n_steps", "kernel_steps", "plastic_ee", "plastic_ei", "plastic_ie",
          "heterosynaptic", "track_effects", "threads", "step_e", "step_i", "v_th", "lr",
          "rate_norm", "trace_norm", "gate", "dale_eps", "q", "qk", "kqk", "amp_e", "amp_i",
          "window_start", "window_stop", "write_rates")
# the term structure fused.cc hard-codes, checked against rules.TERMS before every use
POST_SLOTS = (0, 1, 4, 6, 7, 10)
PRE_SLOTS = (2, 3, 5, 8, 9, 11)
TERM_TABLE = (("1", "1"), ("y", "1"), ("1", "x"), ("y", "x"), ("y~", "1"), ("y~", "x"),
              ("1", "x~"), ("y", "x~"), ("y~ y", "1"), ("1", "x~ x"))

_registered = False


class BuildError(RuntimeError):
    """The fused engine could not be compiled or loaded on this machine."""


def _cxx() -> str:
    return os.environ.get("CXX") or "g++"


def _cpu_id() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return line
    except OSError:
        pass
    return platform.processor() or platform.machine()


def build_dir() -> Path:
    env = os.environ.get("PLASTICITY_REPRO_ENGINE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "plasticity_repro" / "engine"


def cxx_flags() -> tuple:
    """CXX_FLAGS, plus -DPR_VECTOR_BYTES=N when PLASTICITY_REPRO_VECTOR_BYTES=N (16, 32 or 64)
    overrides the lane vector's width (fused.cc picks the CPU's native width; a wider one runs but
    slowly). The results do not depend on it: one lane is one network."""
    width = os.environ.get("PLASTICITY_REPRO_VECTOR_BYTES", "")
    if not width:
        return CXX_FLAGS
    if width not in ("16", "32", "64"):
        raise BuildError(f"PLASTICITY_REPRO_VECTOR_BYTES must be 16, 32 or 64, got {width!r}")
    return CXX_FLAGS + (f"-DPR_VECTOR_BYTES={width}",)


def library_path() -> Path:
    import jax
    key = "\n".join([SOURCE.read_text(), " ".join(cxx_flags()), _cxx(), jax.__version__, _cpu_id(),
                     platform.machine()])
    return build_dir() / f"fused_{hashlib.sha256(key.encode()).hexdigest()[:16]}.so"


def build(verbose: bool = False) -> Path:
    """Compile fused.cc (if this source, compiler and CPU have no library yet); returns its path.
    Raises BuildError with the compiler's message when it fails."""
    import jax.ffi
    out = library_path()
    if out.exists():
        return out
    if shutil.which(_cxx()) is None:
        raise BuildError(f"the fused engine needs a C++ compiler ({_cxx()!r} not found; set CXX)")
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".fused_", suffix=".so", dir=out.parent)
    os.close(fd)
    cmd = [_cxx(), *cxx_flags(), "-isystem", jax.ffi.include_dir(), str(SOURCE), "-o", tmp]
    if verbose:
        print(" ".join(cmd), file=sys.stderr)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        os.unlink(tmp)
        raise BuildError(f"compiling the fused engine failed: {' '.join(cmd)}\n{proc.stderr[-4000:]}")
    os.replace(tmp, out)   # atomic: a concurrent build never loads a half-written library
    return out


def available() -> bool:
    """Whether the fused engine can run here (compiles it if needed)."""
    try:
        ensure_registered()
        return True
    except BuildError:
        return False


def ensure_registered() -> None:
    """Build and load the library and register its two targets with XLA:CPU (once per process)."""
    global _registered
    if _registered:
        return
    import jax
    lib = ctypes.cdll.LoadLibrary(str(build()))
    for dtype, symbol in TARGETS.items():
        jax.ffi.register_ffi_target(f"plasticity_repro_{symbol}", jax.ffi.pycapsule(getattr(lib, symbol)),
                                    platform="cpu")
    _registered = True


def vector_bytes() -> int:
    """The width in bytes of the engine's lane vector on this machine (16 float32 networks per
    vector at 64 bytes, 8 at 32)."""
    lib = ctypes.cdll.LoadLibrary(str(build()))
    lib.pr_vector_bytes.restype = ctypes.c_int64
    return int(lib.pr_vector_bytes())


def fma_peak(threads: int = 1, seconds: float = 0.5) -> float:
    """Measured float32 FMA throughput of this machine's cores (flop/s, `threads` at once) with the
    engine's compiler flags: 12 independent chains of lane-vector FMAs per thread."""
    import threading
    import time
    lib = ctypes.cdll.LoadLibrary(str(build()))
    lib.pr_fma_peak.restype = ctypes.c_double
    lib.pr_fma_peak.argtypes = [ctypes.c_int64]
    flops_per_iter = 12 * (vector_bytes() // 4) * 2
    iters = 1_000_000
    while True:   # size the loop to about `seconds`
        t0 = time.perf_counter()
        lib.pr_fma_peak(iters)
        dt = time.perf_counter() - t0
        if dt > seconds / 4:
            break
        iters *= 4
    iters = int(iters * seconds / dt)
    ts = []
    def work():
        lib.pr_fma_peak(iters)
    pool = [threading.Thread(target=work) for _ in range(threads)]
    t0 = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return threads * iters * flops_per_iter / (time.perf_counter() - t0)


def flops_per_step(n_e: int, n_i: int, synapses) -> dict:
    """Floating-point operations of one Euler step of one network in fused.cc (an FMA counts 2;
    compares, selects and absolute values 0), by part:
      plastic synapse: drive w r (2), h = g |w| (1), G x, G x~, H x, H x~ (4 x 2), row and column
        sums of H (2), the two halves' sums (2 x 6), w (half 1) + half 0 (2), lr g (1), the update
        (2), Dale's sign product (1): 31;
      other synapse: the drive's w r (2);
      cell: input recursion (7), the state update (3), the per-step mean (1);
      per plastic block: 12 traces per (post + pre) cell (4: two multiplies, an add, the division
        by the trace norm), the rates' normalisation (1 per cell), the post vectors (2 x 8 per post
        cell), the pre vectors (2 x 5 + 4 x 2 + 2 x 3 per pre cell, roughly), the effect sums (2 per
        term and cell) and their 20 accumulations (3)."""
    blocks = {"ee": (n_e, n_e), "ei": (n_i, n_e), "ie": (n_e, n_i)}
    syn = sum((31 if t in synapses else 2) * p * q for t, (p, q) in blocks.items())
    cells = 11 * (n_e + n_i)
    per_block = sum(6 * 4 * (p + q) + (p + q) + 16 * p + 24 * q + 2 * 20 * max(p, q) + 60
                    for t, (p, q) in blocks.items() if t in synapses)
    return dict(synapses=syn, cells=cells, blocks=per_block, total=syn + cells + per_block)


def check_terms() -> None:
    """fused.cc hard-codes the 20-term family; fail loudly if rules.TERMS ever changes."""
    from ..rules import POST_TRACE_SLOTS, PRE_TRACE_SLOTS, TERMS
    got = tuple((t.post, t.pre) for t in TERMS[:10])
    if (tuple(POST_TRACE_SLOTS), tuple(PRE_TRACE_SLOTS), got, tuple((t.post, t.pre) for t in TERMS[10:])) != (
            POST_SLOTS, PRE_SLOTS, TERM_TABLE, TERM_TABLE) or not all(t.times_w for t in TERMS[10:]):
        raise RuntimeError("rules.TERMS no longer matches the term structure fused.cc implements")


def params(cfg, threads: int, write_rates: bool) -> np.ndarray:
    """The kernel's scalar parameters (PARAMS order) from a ModelConfig, as float64."""
    from .. import inputs as inputs_mod
    net, inp, pl = cfg.network, cfg.inputs, cfg.plasticity
    q, qk, kqk, scale = inputs_mod.recursion_constants(net, inp)
    vals = dict(n_e=net.n_e, n_i=net.n_i, n_steps=net.n_steps, kernel_steps=inp.kernel_steps,
                plastic_ee="ee" in pl.synapses, plastic_ei="ei" in pl.synapses, plastic_ie="ie" in pl.synapses,
                heterosynaptic=pl.heterosynaptic, track_effects=pl.track_effects, threads=threads,
                step_e=net.dt / net.tau_e, step_i=net.dt / net.tau_i, v_th=net.v_th, lr=pl.lr,
                rate_norm=pl.rate_norm, trace_norm=pl.trace_norm, gate=pl.gate, dale_eps=pl.dale_eps,
                q=q, qk=qk, kqk=kqk, amp_e=inp.amp_e * scale, amp_i=inp.amp_i * scale,
                window_start=inp.start_step, window_stop=inp.stop_step, write_rates=write_rates)
    return np.asarray([float(vals[k]) for k in PARAMS], np.float64)


def activation(cfg, coefs, decay, hetero, w: dict, plastic: dict, frozen, events, threads: int,
               write_rates: bool):
    """One activation of B networks (network axis last) in one custom call.

    coefs (3, 20, B) with the term mask applied, decay = dt / tau (3, 12, B), hetero (3, B);
    w and plastic: blocks {"ee", "ei", "ie"} of shape (n_post, n_pre, B); frozen arrivals
    (B, steps, N) (network.Network.arrivals as they are) and the fresh ones as event steps (B, N, K) (inputs.fresh_events).
    Returns (rates (steps, N, B) if write_rates else None, mean rate over steps and cells (B,),
    w blocks, effects (3, 20, B)): the rates of model.activation_batch and their mean."""
    import jax
    ensure_registered()
    check_terms()
    dtype = cfg.dtype
    name = f"plasticity_repro_{TARGETS[np.dtype(dtype).name]}"
    blocks = ("ee", "ei", "ie")
    n_b, n_steps, n = frozen.shape
    out_types = [jax.ShapeDtypeStruct((n_steps, n, n_b) if write_rates else (1, 1, 1), dtype),
                 jax.ShapeDtypeStruct((n_b,), dtype)] + [
        jax.ShapeDtypeStruct(w[t].shape, dtype) for t in blocks] + [
        jax.ShapeDtypeStruct((3, 20, n_b), dtype)]
    call = jax.ffi.ffi_call(name, out_types, vmap_method="sequential")
    rates, mean, w_ee, w_ei, w_ie, effects = call(
        frozen.astype(dtype), events.astype(np.int32), *[w[t].astype(dtype) for t in blocks],
        *[plastic[t].astype(dtype) for t in blocks], coefs.astype(dtype), decay.astype(dtype),
        hetero.astype(dtype), params=params(cfg, threads, write_rates))
    return (rates if write_rates else None), mean, {"ee": w_ee, "ei": w_ei, "ie": w_ie}, effects
