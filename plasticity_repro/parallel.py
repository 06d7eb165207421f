"""Spreading a batch of networks over the machine's cores as XLA host devices.

XLA:CPU runs one program mostly on one core: the per-step loops of a 25+8 network are too short
for its intra-op threads. When the package is imported before JAX, every available core becomes
its own XLA host device (`--xla_force_host_platform_device_count`, see `host_device_flag`) and the
network axis of a batch is sharded over them, so the networks of a batch run on all cores at once
(batch 340 on 2 cores: 480 -> 678 network-activations/s). PLASTICITY_REPRO_HOST_DEVICES=n sets
the count (1: one device, the plain program); the default is "auto", one per available core.
Importing JAX before the package leaves JAX's own default (one CPU device).

Every device runs the single-device program on its share of the networks (shard_map), so the
arithmetic per network is the same; but XLA compiles the per-device program of a multi-device
module slightly differently, so float32 results agree bitwise over the first activations and
then differ at rounding level (weights by ~1.5e-8 after 10 activations on 2 cores). For a fixed
device count runs are bitwise repeatable, and PLASTICITY_REPRO_HOST_DEVICES=1 gives the
single-device numbers (the `device` attribute of every dataset records the count).

One trap is avoided in decoder.py: JAX 0.10's batched LAPACK kernels split their batch over
XLA:CPU's intra-op thread pool and block a pool thread while they wait, and with one device per
core every pool thread can block that way at once (a search deadlocked on 2 cores before the
decoder's least squares ran one matrix at a time).
"""
from __future__ import annotations

import functools
import os

import numpy as np

# jax is imported inside the functions: plasticity_repro/__init__.py imports this module to set
# XLA_FLAGS before anything imports jax.

ENV_DEVICES = "PLASTICITY_REPRO_HOST_DEVICES"


def host_device_flag(environ=os.environ) -> str | None:
    """XLA_FLAGS asking for PLASTICITY_REPRO_HOST_DEVICES host devices ("auto", the default when
    unset: one per available core), or None to leave XLA_FLAGS as it is (0 or 1, a single core,
    or the count already set)."""
    flags = environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" in flags:
        return None
    want = environ.get(ENV_DEVICES, "").strip() or "auto"
    if want == "auto":
        try:
            n = len(os.sched_getaffinity(0))
        except AttributeError:   # not on Linux
            n = os.cpu_count() or 1
    else:
        try:
            n = int(want)
        except ValueError:
            raise ValueError(f"{ENV_DEVICES} must be an integer >= 0 or 'auto' (0 or 1: one host "
                             f"device; unset: auto), got {want!r}") from None
    if n <= 1:
        return None
    return (flags + " " if flags else "") + f"--xla_force_host_platform_device_count={n}"


# XLA:CPU compiles for the host's instruction set, and its code's float32 rounding can follow it
# (capped at SSE4.2, a Fig 2 evaluation rounds differently; capped at AVX2 it matched an AVX-512
# host's uncapped code bit for bit). Capped at AVX2, which the campaign's hosts all have (FMA
# included), hosts with and without AVX-512 run the same XLA code.
MAX_ISA = "AVX2"


def host_isa_flag(flags: str = "", machine: str | None = None) -> str:
    """`flags` (an XLA_FLAGS string) with XLA:CPU's instruction set capped at MAX_ISA on x86-64,
    unless it already names a cap; unchanged on other machines."""
    import platform
    machine = (machine or platform.machine()).lower()
    if machine not in ("x86_64", "amd64") or "xla_cpu_max_isa" in flags:
        return flags
    return (flags + " " if flags else "") + f"--xla_cpu_max_isa={MAX_ISA}"


# OpenBLAS (scipy's, which JAX's CPU LAPACK calls: the decoder's least squares) picks its kernels
# for the CPU when it loads, and they round differently (with its Haswell or Prescott kernels
# instead of those it picks on an AVX-512 Intel Xeon, 4 networks of Fig 2's evaluation moved by up to
# 5e-6 or 1e-5 relative in their loss).
# Pinned to the Haswell kernels (AVX2 + FMA) wherever the CPU has those instructions.
BLAS_CORETYPE = "Haswell"


def _cpu_flags() -> set:
    try:
        with open("/proc/cpuinfo") as f:
            return set(next((line for line in f if line.startswith("flags")), "").split(":", 1)[-1].split())
    except OSError:
        return set()


def blas_coretype_env(environ=os.environ, machine: str | None = None, cpu_flags=None) -> dict:
    """{"OPENBLAS_CORETYPE": BLAS_CORETYPE} on an x86-64 CPU with AVX2 and FMA where the variable
    is not set already; {} otherwise (the variable must be set before OpenBLAS loads)."""
    import platform
    machine = (machine or platform.machine()).lower()
    if "OPENBLAS_CORETYPE" in environ or machine not in ("x86_64", "amd64"):
        return {}
    flags = _cpu_flags() if cpu_flags is None else set(cpu_flags)
    return {"OPENBLAS_CORETYPE": BLAS_CORETYPE} if {"avx2", "fma"} <= flags else {}


def batch_devices() -> list:
    """The devices a batch of networks is spread over (all devices of the default backend)."""
    import jax
    return jax.devices()


def padded_size(n_b: int) -> int:
    """Batch size after padding to a multiple of the device count (unchanged for one device or
    a batch of one)."""
    n_dev = len(batch_devices())
    if n_dev <= 1 or n_b <= 1:
        return n_b
    return -(-n_b // n_dev) * n_dev


def pad_networks(x, n: int):
    """x (networks, ...) padded to n networks by repeating its last one (cut off again after the run)."""
    import jax.numpy as jnp
    if n == x.shape[0]:
        return x
    return jnp.concatenate([x, jnp.broadcast_to(x[-1:], (n - x.shape[0],) + x.shape[1:])])


def on_cpu() -> bool:
    """Whether the package's programs run on XLA:CPU (the default backend): the one place that
    decides the CPU-only compile options and chunking."""
    import jax
    return jax.default_backend() == "cpu"


def map_networks(f, shared, batched, n_b: int):
    """f(shared, batched) with every leaf of `batched` (and of f's result) carrying the network axis
    first, run as one program per device on its slice of the networks (shard_map: each device runs
    the same local program as a single device would; float32 results match one device up to
    rounding, see the module docstring). The batch is padded to a multiple of the device count by repeating its last
    network and the result sliced back. `shared` leaves (e.g. one rule for all networks) are
    replicated. With one device, or one network, this is just f(shared, batched)."""
    import jax
    from jax.sharding import Mesh, PartitionSpec
    devices = batch_devices()
    if len(devices) <= 1 or n_b <= 1:
        return f(shared, batched)
    n_pad = padded_size(n_b)
    if n_pad != n_b:
        batched = jax.tree.map(lambda x: pad_networks(x, n_pad), batched)
    mesh = Mesh(np.asarray(devices), ("networks",))
    spec = PartitionSpec("networks")
    out = jax.shard_map(f, mesh=mesh, in_specs=(PartitionSpec(), spec), out_specs=spec,
                        check_vma=False)(shared, batched)
    return out if n_pad == n_b else jax.tree.map(lambda x: x[:n_b], out)


# -- chunks of networks on one CPU device ----------------------------------------------------------
ENV_CHUNK = "PLASTICITY_REPRO_CHUNK"
CHUNK_NETWORKS = 32   # most networks a CPU device simulates at once
LANE = 16             # float32 values per 64-byte cache line
PAD_MAX = 1.25        # most work (padded / given networks) spent to align the network axis


def chunk_networks(environ=os.environ) -> int:
    """Most networks one CPU device simulates at once: PLASTICITY_REPRO_CHUNK (a multiple of 16, or
    0 for the whole share at once), default CHUNK_NETWORKS."""
    raw = environ.get(ENV_CHUNK, "").strip()
    if not raw:
        return CHUNK_NETWORKS
    if not raw.isdigit() or int(raw) % LANE or int(raw) > 65536:
        raise ValueError(f"{ENV_CHUNK} must be 0 or a multiple of {LANE} up to 65536 (networks simulated "
                         f"at once per CPU device), got {raw!r}")
    return int(raw)


def chunk_plan(n_b: int) -> tuple:
    """(chunks, networks per chunk) in which one device runs its n_b networks, one chunk after
    the other. On CPU every per-step kernel streams arrays of (cells, cells, networks): with the
    network axis padded to a multiple of 16 its rows start on cache lines (a broadcasting
    elementwise kernel ran 2.6x faster at 176 than at 170 networks), and with at most 32 networks
    at a time the E->E block's W-sized arrays of a 25+8 network (W, gate, signs, G.|w|; 80 kB
    each) about fit the core's 512 kB L2 cache. Chunks are padded to a multiple of 16 only where
    that adds at most PAD_MAX of work (85 networks: 3 x 32; 17: as they are); the padding repeats
    the last network and is cut off. On other backends the whole share runs at once (a GPU wants
    all networks in one step)."""
    size = chunk_networks()
    if size == 0 or not on_cpu():
        return 1, n_b
    n_chunks = -(-n_b // size)
    per = -(-n_b // n_chunks)
    aligned = -(-per // LANE) * LANE
    return n_chunks, aligned if n_chunks * aligned <= PAD_MAX * n_b else per


# -- compiling ---------------------------------------------------------------------------------
ENV_CPU_OPT = "PLASTICITY_REPRO_CPU_OPT_LEVEL"
CPU_OPT_LEVEL = 1


def cpu_opt_level(environ=os.environ) -> int:
    """LLVM optimisation level of the package's programs on XLA:CPU: PLASTICITY_REPRO_CPU_OPT_LEVEL,
    default 1 (XLA's own default is 2). The simulation's kernels are simple elementwise loops that
    -O2 does not make faster (in-process A/B, batch 170: 473 vs 462 network-activations/s,
    simulation bitwise equal) while the paper search step compiles in ~35 % less CPU time (16.3 ->
    10.4 s). Reductions in the decoder and loss may round differently (losses ~2e-7 relative),
    so =2 reproduces data made before this default bitwise."""
    raw = environ.get(ENV_CPU_OPT, "").strip()
    if not raw:
        return CPU_OPT_LEVEL
    if raw not in ("0", "1", "2", "3"):
        raise ValueError(f"{ENV_CPU_OPT} must be 0, 1, 2 or 3 (LLVM optimisation level on CPU), got {raw!r}")
    return int(raw)


def compiler_options() -> dict | None:
    """XLA compiler options of the package's programs on the current backend: the LLVM level on
    CPU (cpu_opt_level), None (XLA's defaults) elsewhere."""
    if not on_cpu():
        return None
    return {"xla_backend_optimization_level": cpu_opt_level()}


MATMUL_PRECISION = "highest"


def precise(fun):
    """`fun` traced with float32 matrix products at full precision (MATMUL_PRECISION) on every
    backend: by default a GPU computes them in TensorFloat-32 (10-bit mantissa), in the decoder's
    least squares and in CMA-ES's sampling and covariance updates; XLA:CPU is unaffected. A set
    JAX_DEFAULT_MATMUL_PRECISION wins. Local to the package's programs: nothing global changes."""
    def traced(*args, **kwargs):
        import jax
        if os.environ.get("JAX_DEFAULT_MATMUL_PRECISION"):
            return fun(*args, **kwargs)
        with jax.default_matmul_precision(MATMUL_PRECISION):
            return fun(*args, **kwargs)
    # a name for JAX's messages; no __wrapped__, so jit binds arguments by this (*args) signature
    traced.__name__ = getattr(fun, "__name__", "traced")
    traced.__qualname__ = getattr(fun, "__qualname__", traced.__name__)
    return traced


def matmul_precision() -> str:
    """The precision of float32 matrix products in the package's programs (datasets record it)."""
    return os.environ.get("JAX_DEFAULT_MATMUL_PRECISION") or MATMUL_PRECISION


class jit:
    """jax.jit that, on the CPU backend, compiles with the package's LLVM level (cpu_opt_level);
    other backends get XLA's defaults; one compiled program per engine setting (engine.settings);
    traced with full-precision float32 matrix products (`precise`). The backend is looked up at the first call (JAX is not
    initialised at import). Supports calling, .lower and .trace, like a jitted function."""

    def __init__(self, fun, **jit_kwargs):
        self._fun, self._kwargs, self._jitted = fun, jit_kwargs, {}
        functools.update_wrapper(self, fun, updated=())   # not fun's __dict__: jax.vmap's has a _fun

    def _get(self):
        chunk_networks()   # a bad PLASTICITY_REPRO_CHUNK fails here, in one line, before any tracing
        from .engine import settings
        key = settings()   # a program traced for one engine setting is never run under another
        if key not in self._jitted:
            import jax
            # a new function object per setting: JAX caches traces by function, and the engine
            # setting is read while tracing
            fun = precise(self._fun)
            self._jitted[key] = jax.jit(fun, compiler_options=compiler_options(), **self._kwargs)
        return self._jitted[key]

    def __call__(self, *args, **kwargs):
        return self._get()(*args, **kwargs)

    def lower(self, *args, **kwargs):
        return self._get().lower(*args, **kwargs)

    def trace(self, *args, **kwargs):
        return self._get().trace(*args, **kwargs)
