"""xarray datasets: provenance attributes and atomic netCDF writes.

Every dataset this package writes carries: the parameters as JSON, the profile, the seeds, the
git commit, package versions, float width and device. Writes go to a temporary file in the same
directory and are renamed into place, so a killed write leaves the previous file or none.
"""
from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import json
import os
import re
import tempfile
from importlib import metadata
from pathlib import Path

import numpy as np
import xarray as xr

PACKAGES = ("plasticity-repro", "jax", "jaxlib", "flax", "evosax", "numpy", "xarray", "netCDF4")


def git_commit() -> str:
    """The commit of the code that runs: taken when the package was imported, not at write time."""
    from . import COMMIT
    return COMMIT


# The package's sources a simulated number depends on (model, inputs, rule, turnover, decoder,
# loss, both engines), as patterns under plasticity_repro/. Two datasets whose simulation code
# hashes agree were made by the same simulation, whatever else changed between their commits.
SIMULATION_SOURCES = ("config.py", "network.py", "inputs.py", "rules.py", "turnover.py", "decoder.py", "loss.py",
                      "simulate.py", "parallel.py", "engine/*.py", "engine/*.cc")


def _sources_hash(files) -> str:
    """sha256 over (path, bytes) of the (relative path, content) pairs, in SIMULATION_SOURCES order."""
    import fnmatch
    files = dict(files)
    h = hashlib.sha256()
    for pattern in SIMULATION_SOURCES:
        for name in sorted(n for n in files if fnmatch.fnmatch(n, pattern) and "/" not in n[len(pattern.split("*")[0]):]):
            h.update(name.encode())
            h.update(files[name])
    return h.hexdigest()[:16]


@functools.lru_cache(maxsize=1)
def simulation_code_hash() -> str:
    """The hash of the simulation sources this package runs (SIMULATION_SOURCES)."""
    root = Path(__file__).resolve().parent
    files = {f.relative_to(root).as_posix(): f.read_bytes() for pattern in SIMULATION_SOURCES for f in root.glob(pattern)}
    return _sources_hash(files)


@functools.lru_cache(maxsize=None)
def simulation_code_hash_at(commit: str) -> str | None:
    """The same hash for the sources at `commit` of this checkout's git history; None where git,
    the history or that commit is not at hand."""
    import subprocess
    root = Path(__file__).resolve().parent
    if not commit or not re.fullmatch(r"[0-9a-f]{7,40}", str(commit)):
        return None
    try:
        names = subprocess.run(["git", "ls-tree", "-r", "--name-only", commit, "--", "."], cwd=root,
                               capture_output=True, text=True, check=True, timeout=60).stdout.split()
        files = {n: subprocess.run(["git", "show", f"{commit}:{root.name}/{n}"], cwd=root, capture_output=True,
                                   check=True, timeout=60).stdout for n in names}
    except (OSError, subprocess.SubprocessError):
        return None
    return _sources_hash(files)


def versions() -> dict:
    out = {}
    for p in PACKAGES:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            out[p] = "not installed"
    return out


def device_name() -> str:
    import jax
    d = jax.devices()[0]
    return f"{d.platform}:{getattr(d, 'device_kind', d.platform)} x{len(jax.devices())}"


def cpu_name() -> str:
    """The host CPU: model name, core count and its widest vector extension (float32 results of
    the XLA programs can differ in the last bits between, say, an AVX2 and an AVX-512 CPU)."""
    import platform
    model, flags = platform.processor() or platform.machine(), ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and model in ("", platform.machine(), platform.processor()):
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and not flags:
                    flags = line
    except OSError:
        pass
    isa = next((name for name, flag in (("AVX-512", " avx512f"), ("AVX2", " avx2"), ("AVX", " avx "))
                if flag in flags + " "), "")
    return f"{model}, {os.cpu_count()} cores" + (f", {isa}" if isa else "")


def xla_cpu_opt_level() -> int:
    """LLVM level the package compiles with on CPU (-1 on other backends), see parallel.cpu_opt_level."""
    from .parallel import compiler_options
    opts = compiler_options()
    return opts["xla_backend_optimization_level"] if opts else -1


def cpu_chunk_networks() -> int:
    """Most networks a CPU device simulates at once (parallel.chunk_plan; 0: all at once, -1 off CPU)."""
    from .parallel import chunk_networks, on_cpu
    return chunk_networks() if on_cpu() else -1


def _engine() -> tuple:
    """(backend, threads) of the simulation engine (plasticity_repro.engine.settings; threads 0
    for the XLA engine)."""
    from .engine import settings
    return settings()


def _matmul_precision() -> str:
    """Precision of float32 matrix products in the package's programs (parallel.precise)."""
    from .parallel import matmul_precision
    return matmul_precision()


def params_hash(params: dict, n: int = 10) -> str:
    """Short stable hash of a JSON-able parameter dict: names data files by what produced them."""
    return hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:n]


def provenance(params: dict, profile: str, seeds, float64: bool, kind: str) -> dict:
    """Attributes every dataset carries (netCDF attrs must be str/number: nested values are JSON)."""
    return {
        "kind": kind,
        "params_json": json.dumps(params, sort_keys=True, default=str),
        "params_hash": params_hash(params),
        "profile": profile,
        "seeds_json": json.dumps(np.asarray(seeds).tolist() if seeds is not None else None),
        "git_commit": git_commit(),
        "simulation_code": simulation_code_hash(),
        "versions_json": json.dumps(versions(), sort_keys=True),
        "float_width": 64 if float64 else 32,
        "device": device_name(),
        "host_cpu": cpu_name(),
        "xla_cpu_opt_level": xla_cpu_opt_level(),
        "cpu_chunk_networks": cpu_chunk_networks(),
        "engine": _engine()[0],
        "engine_threads": _engine()[1],
        "matmul_precision": _matmul_precision(),
        "created_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "paper": "Bell, Duffy & Fairhall, NeurIPS 2024 (OpenReview nw4TWuEPGx)",
    }


def _encoding(ds: xr.Dataset) -> dict:
    enc = {}
    for name, var in ds.data_vars.items():
        e = {"zlib": True, "complevel": 4}
        if var.dtype.kind == "f":
            e["dtype"] = "float32" if var.dtype.itemsize <= 4 or ds.attrs.get("float_width", 32) == 32 else "float64"
        if var.dtype.kind in "OUS":
            e = {}
        enc[name] = e
    return enc


def _writable(folder: Path):
    """None if a file can be created in the existing `folder`, else why not (tries one, removes it)."""
    if not os.access(folder, os.W_OK | os.X_OK):
        return "permission denied"
    try:
        fd, probe = tempfile.mkstemp(prefix=".plasticity-repro-probe-", dir=folder)
    except OSError as e:
        return f"creating a file there failed: {e.strerror or type(e).__name__}"
    os.close(fd)
    os.unlink(probe)
    return None


def location_problem(path, what: str = "file", directory: bool = False) -> str | None:
    """None if `path` can be written, else one line saying why not: an existing directory (for a
    file) or file (for a folder), or a folder that neither exists writable nor can be created
    (the nearest existing ancestor is not a writable folder). Leaves nothing behind (a probe file
    is created and removed at once); what every output location is checked with before compute."""
    text = os.fspath(path)
    if not text.strip():
        return "empty path"
    p = Path(text)
    if directory:
        if p.exists() and not p.is_dir():
            return f"{what} {text!r} is an existing file, not a folder"
        folder = p
    else:
        if text.endswith(("/", os.sep)):
            return f"{what} {text!r} names a folder, not a file"
        if p.is_dir():
            return f"{what} {text!r} is an existing directory"
        folder = p.parent
    q = folder
    while not q.exists() and q != q.parent:   # nearest existing ancestor (exists() is False under a file)
        q = q.parent
    if not q.is_dir():
        return f"{what} {text!r}: {str(q)!r} is an existing file, not a folder"
    why = _writable(q)
    if why is None:
        return None
    if q == folder:
        return (f"{what} {text!r} is not writable: {why}" if directory else
                f"folder {str(q)!r} of {what} {text!r} is not writable: {why}")
    return f"cannot create folder {str(folder)!r} for {what} {text!r}: {str(q)!r} is not writable: {why}"


def atomic_write(path: str | os.PathLike, write, mode: int | None = None) -> Path:
    """Create `path` atomically: `write(tmp)` writes a temporary file in its folder, which is then
    renamed into place, so a killed write leaves the previous file or none. `mode`: the file's
    permissions (default: the temporary file's, 0600)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_dataset(ds: xr.Dataset, path: str | os.PathLike) -> Path:
    """Atomically write `ds` as compressed netCDF4 (float32 unless the run was float64)."""
    return atomic_write(path, lambda tmp: ds.to_netcdf(tmp, engine="netcdf4", format="NETCDF4",
                                                       encoding=_encoding(ds)), mode=0o644)


def read_dataset(path: str | os.PathLike, kind: str | None = None) -> xr.Dataset:
    """Load a dataset fully into memory (the file is closed); check its kind if given."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"dataset file {str(path)!r} does not exist")
    try:
        with xr.open_dataset(path, engine="netcdf4") as ds:
            ds = ds.load()
    except (OSError, ValueError) as e:
        raise ValueError(f"dataset file {str(path)!r} is not a readable netCDF dataset ({e})") from None
    if kind is not None and ds.attrs.get("kind") != kind:
        raise ValueError(f"dataset file {str(path)!r} holds kind {ds.attrs.get('kind')!r}, expected {kind!r}")
    return ds


def params_of(ds: xr.Dataset) -> dict:
    return json.loads(ds.attrs["params_json"])
