"""Writes the version-1 search checkpoints that tests/test_search.py resumes (format
"plasticity_repro.search/1": a pickled dict of format, config_json, restart, generation, states,
history, best, stopped, elapsed, segments), with the code that wrote that format:

    git worktree add /tmp/v1 0358613 && PYTHONPATH=/tmp/v1 .venv/bin/python tests/data/make_search_v1_checkpoints.py

Two runs of a tiny IPOP search (8 activations, 1 train and 1 test network, popsize 4, 2 restarts
allowed, stall after 2 generations): stopped after 3 generations (run 0 stopped and frozen, the
restart still ahead) and after 5 (after the restart at generation 4, population 8). The test runs
under tests/conftest.py's settings, so this script makes them the same.
"""
import json
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")
import plasticity_repro  # noqa: E402

HERE = Path(__file__).resolve().parent
SEEDS = (3, 8)
STOPS = (3, 6)


def config():
    from plasticity_repro.config import LossConfig, ModelConfig, PlasticityConfig
    from plasticity_repro.search import ParamSpace, SearchConfig
    model = ModelConfig(loss=LossConfig(fit_activations=(4, 5), test_activations=(6, 7), n_fit=100, n_test=50),
                        n_activations=8, plasticity=PlasticityConfig(lr=4e-3))
    space = ParamSpace.for_terms(["x y", "w", "x~ y", "w y~ y"])   # 4 coefficients, 2 time constants
    return SearchConfig(model=model, space=space, n_train=1, n_test=1, popsize=4, max_generations=8, sigma0=0.01,
                        max_restarts=2, stall_generations=1, profile="tiny")


def checkpoint_path(k: int) -> Path:
    return HERE / f"search_v1_stopped_after_{k}.ckpt"


SETTINGS = HERE / "search_v1_settings.json"


def settings() -> dict:
    """What the numbers of a float32 search depend on (besides the code): the engine, the host
    devices a batch is split over, the CPU."""
    import jax
    from plasticity_repro import datasets
    from plasticity_repro.engine import settings as engine_settings
    return dict(engine=engine_settings()[0], host_devices=len(jax.devices()), host_cpu=datasets.cpu_name(),
                x64=bool(jax.config.jax_enable_x64))


def main() -> None:
    plasticity_repro.configure(host_devices="auto", compilation_cache=True)   # as tests/conftest.py
    import jax
    jax.config.update("jax_enable_x64", True)
    from plasticity_repro.search import run_search
    tmp = HERE / "tmp.ckpt"
    for k in STOPS:
        assert run_search(config(), seeds=SEEDS, checkpoint=tmp, progress=False, stop_after=k) is None
        shutil.move(tmp, checkpoint_path(k))
    SETTINGS.write_text(json.dumps(dict(settings(), git_commit=plasticity_repro.COMMIT), indent=1) + "\n")


if __name__ == "__main__":
    sys.exit(main())
