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
"""
from __future__ import annotations

import os

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


def configure(backend: str | None = None, threads: int | None = None) -> dict:
    """Choose the backend ("auto", "fused", "xla") and the fused engine's thread count (default:
    the cores this process may use). Checks the choice at once: a backend that cannot run here is a
    one-line ValueError naming the choices that can. Returns `settings()`."""
    if backend is not None:
        _check_backend(backend)
        if backend == "fused":
            _require_fused()
        _chosen["backend"] = backend
    if threads is not None:
        _chosen["threads"] = _check_threads(threads)
    return settings()


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
