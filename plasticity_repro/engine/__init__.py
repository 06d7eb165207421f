"""How the simulation runs on this machine: the one place that chooses the backend and its knobs.

Backends of one activation of a batch of networks:
  - "fused": the C++ kernel of engine/fused.cc behind jax.ffi (CPU only): all Euler steps of an
    activation in one call, networks on SIMD lanes, chunks of networks over `threads` threads;
  - "xla": the XLA program of plasticity_repro.simulate (every backend; the GPU path), on CPU
    spread over the host devices and run in cache-sized chunks (plasticity_repro.parallel);
  - "auto" (default): "fused" on the CPU backend when it builds here, "xla" otherwise.
Set them with `configure(backend=..., threads=...)`, or PLASTICITY_REPRO_ENGINE and
PLASTICITY_REPRO_THREADS before the first run (the CLI's --engine/--threads and the Makefile's
ENGINE=/THREADS= set these). Programs compiled under one setting are never reused under another
(parallel.jit keys its compiled programs on `settings()`), and every dataset records them.

`configure` also sets, before JAX starts its backends, the XLA host devices a batch is spread
over (`host_devices`: an integer or "auto", one per core; PLASTICITY_REPRO_HOST_DEVICES) and
JAX's persistent compilation cache (`compilation_cache`: a folder, True for the per-user
default, False for none). Importing the package sets nothing: the CLI, `make` and the tests call
`configure()`; a plain `import plasticity_repro` keeps JAX's own defaults (one CPU device).
"""
from __future__ import annotations

import os

from ..parallel import jit  # noqa: E402,F401  (the package's jit: one program per engine setting)

BACKENDS = ("auto", "fused", "xla")
ENV_BACKEND = "PLASTICITY_REPRO_ENGINE"
ENV_THREADS = "PLASTICITY_REPRO_THREADS"
MAX_THREADS = 1024

_chosen: dict = {}


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:   # not Linux
        return os.cpu_count() or 1


def _check_backend(name) -> str:
    if name not in BACKENDS:
        raise ValueError(f"engine backend must be one of {list(BACKENDS)}, got {name!r}")
    return name


def _check_threads(n) -> int:
    if isinstance(n, str):
        n = n.strip()
        if not n.isdigit():
            raise ValueError(f"engine threads must be an integer in [1, {MAX_THREADS}], got {n!r}")
        n = int(n)
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_THREADS:
        raise ValueError(f"engine threads must be an integer in [1, {MAX_THREADS}], got {n!r}")
    return n


def configure(backend: str | None = None, threads: int | None = None, host_devices=None,
              compilation_cache=None) -> tuple:
    """Choose the backend ("auto", "fused", "xla") and the fused engine's thread count (default:
    the cores this process may use), and, before JAX starts, the host devices (None: take
    PLASTICITY_REPRO_HOST_DEVICES if set) and the compilation cache (None: leave JAX's setting).
    Checks every choice at once: a backend that cannot run here is a one-line ValueError naming
    the choices that can. Returns `settings()`."""
    _host_devices(host_devices)
    if compilation_cache is not None:
        _compilation_cache(compilation_cache)
    if backend is not None:
        _check_backend(backend)
        if backend == "fused":
            _require_fused()
        _chosen["backend"] = backend
    if threads is not None:
        _chosen["threads"] = _check_threads(threads)
    return settings()


def _host_devices(n) -> None:
    """XLA_FLAGS set before JAX starts its backends: `n` host devices ("auto": one per core; None:
    PLASTICITY_REPRO_HOST_DEVICES if set, else JAX's one), and XLA:CPU's instruction set capped
    (parallel.host_isa_flag) so that hosts with and without AVX-512 run the same XLA code; and
    OpenBLAS's kernels pinned (parallel.blas_coretype_env) before JAX's LAPACK loads it."""
    from ..parallel import ENV_DEVICES, blas_coretype_env, host_device_flag, host_isa_flag
    os.environ.update(blas_coretype_env())
    env = dict(os.environ)
    if n is not None:
        env[ENV_DEVICES] = str(n)
    devices = host_device_flag(env) if ENV_DEVICES in env else None   # checks the value (one-line ValueError)
    import sys
    if "jax" in sys.modules:
        from jax._src import xla_bridge
        if xla_bridge.backends_are_initialized():
            import jax
            if devices is not None and len(jax.devices("cpu")) != int(devices.rsplit("=", 1)[1]):
                raise ValueError("host_devices must be set before JAX starts its backends "
                                 "(call plasticity_repro.configure first)")
            return
    os.environ["XLA_FLAGS"] = host_isa_flag(devices if devices is not None else env.get("XLA_FLAGS", ""))


def _compilation_cache(where) -> None:
    """JAX's persistent compilation cache in `where` (True: $XDG_CACHE_HOME or ~/.cache, then
    plasticity_repro/jax; False: off), every program cached (JAX's default skips those under 1 s:
    the many small ones cost a fresh process seconds); JAX_COMPILATION_CACHE_DIR and
    JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS, if set, win."""
    import jax
    if where is False:
        jax.config.update("jax_enable_compilation_cache", False)
        return
    if where is True:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        where = os.path.join(base, "plasticity_repro", "jax")
    jax.config.update("jax_compilation_cache_dir", os.environ.get("JAX_COMPILATION_CACHE_DIR", str(where)))
    jax.config.update("jax_persistent_cache_min_compile_time_secs",
                      float(os.environ.get("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")))


def requested() -> str:
    """The backend asked for (configure, else PLASTICITY_REPRO_ENGINE, else "auto")."""
    if "backend" in _chosen:
        return _chosen["backend"]
    return _check_backend(os.environ.get(ENV_BACKEND, "").strip() or "auto")


def threads() -> int:
    """Threads of the fused engine (configure, else PLASTICITY_REPRO_THREADS, else all cores)."""
    if "threads" in _chosen:
        return _chosen["threads"]
    raw = os.environ.get(ENV_THREADS, "").strip()
    return _check_threads(raw) if raw else _cores()


def _on_cpu() -> bool:
    import jax
    return jax.default_backend() == "cpu"


def _require_fused() -> None:
    from . import fused
    if not _on_cpu():
        import jax
        raise ValueError(f"engine backend 'fused' runs on the CPU only (JAX backend here: "
                         f"{jax.default_backend()}); choose one of ['auto', 'xla']")
    try:
        fused.ensure_registered()
    except fused.BuildError as e:
        first = str(e).splitlines()[0]
        raise ValueError(f"engine backend 'fused' is not available on this machine ({first}); "
                         f"choose one of ['auto', 'xla']") from None


def backend() -> str:
    """The backend that runs: "fused" or "xla" (resolves "auto")."""
    want = requested()
    if want == "xla":
        return "xla"
    if want == "fused":
        _require_fused()
        return "fused"
    from . import fused
    return "fused" if _on_cpu() and fused.available() else "xla"


def settings() -> tuple:
    """(backend, threads) as they apply now: the key of compiled programs and what datasets record."""
    b = backend()
    return (b, threads() if b == "fused" else 0)


def run_batch(cfg, rule, networks):
    """All activations of a batch of networks (leading axis) under one rule or one rule per network,
    on the chosen backend (plasticity_repro.simulate.run_batch): the one entry point of the
    experiments and the search."""
    from ..simulate import run_batch as _run_batch
    return _run_batch(cfg, rule, networks)


def run_networks(cfg, rule, networks):
    """run_batch of one rule on a batch of networks, compiled (plasticity_repro.simulate.run_networks)."""
    from ..simulate import run_networks as _run_networks
    return _run_networks(cfg, rule, networks)


def run_grid(cfg, rules, networks):
    """Every rule (leading axis R) on every network (leading axis N) as one batch; axes (rule, network)."""
    from ..simulate import run_grid as _run_grid
    return _run_grid(cfg, rules, networks)
