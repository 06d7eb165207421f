"""plasticity_repro: a JAX reproduction of Bell, Duffy & Fairhall (NeurIPS 2024),
"Discovering plasticity rules that organize and maintain neural circuits"."""
import os as _os
import subprocess as _sp
import sys as _sys
from pathlib import Path as _Path

__version__ = "0.1.0"


def _commit_at_import() -> str:
    """The checkout's commit when the package was imported (the code that actually runs), with
    '-dirty' if tracked files differed from it; 'unknown' outside a git checkout."""
    root = _Path(__file__).resolve().parent.parent
    try:
        commit = _sp.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                         check=True).stdout.strip()
        dirty = _sp.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                        capture_output=True, text=True, check=True).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, _sp.CalledProcessError):
        return "unknown"


COMMIT = _commit_at_import()


def _host_devices() -> None:
    """One XLA host device per core (see plasticity_repro.parallel)."""
    from .parallel import host_device_flag
    flags = host_device_flag()
    if flags is not None:
        _os.environ["XLA_FLAGS"] = flags


def _compilation_cache() -> None:
    """JAX's persistent compilation cache in a per-user folder (XDG_CACHE_HOME or ~/.cache, then
    plasticity_repro/jax), so repeated notebook and CLI runs skip recompiling; a
    JAX_COMPILATION_CACHE_DIR already set (the Makefile sets .jax_cache) wins. Every program is
    cached, not only those that took JAX's default of >= 1 s to compile: the many small ones (CMA-ES
    set-up, the rule transforms, dataset assembly) cost a quick-profile search ~7 s of its start in
    every fresh process (two-generation search, warm cache: 18.3 -> 10.9 s; 1.3 MB of cache);
    JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS, if set, wins."""
    _os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    if "JAX_COMPILATION_CACHE_DIR" in _os.environ:
        return
    base = _os.environ.get("XDG_CACHE_HOME") or _os.path.join(_os.path.expanduser("~"), ".cache")
    _os.environ["JAX_COMPILATION_CACHE_DIR"] = _os.path.join(base, "plasticity_repro", "jax")


def _float32_matmuls() -> None:
    """Float32 matrix products at full float32 precision on every backend: JAX's default lets a
    GPU compute them in TensorFloat-32 (10-bit mantissa) in the decoder's least squares and in
    CMA-ES's sampling and covariance updates; XLA:CPU ignores the setting (CPU results unchanged).
    JAX_DEFAULT_MATMUL_PRECISION, if set, wins; datasets record it in `matmul_precision`."""
    _os.environ.setdefault("JAX_DEFAULT_MATMUL_PRECISION", "highest")


# JAX reads these settings when it is imported; imported after JAX, the package leaves them as they are
if "jax" not in _sys.modules:
    _host_devices()
    _compilation_cache()
    _float32_matmuls()
