# plasticity_repro — `make figures` (main job), `make data` and `make test`; all set up the environment.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
NB_TIMEOUT ?= 3600
# The profile each figure is regenerated at by default: the one whose datasets are shipped in data/
# (so `make figures` only reads and draws; plasticity_repro/profiles.py SHIPPED, checked by a test).
# `make figures PROFILE=quick|laptop|repro|paper` overrides all.
PROFILE_fig2_self_organization ?= repro
PROFILE_fig3_term_importance ?= repro
PROFILE_fig4_turnover_robustness ?= repro
PROFILE_fig5_inhibitory_plasticity ?= repro
PROFILE_fig6_homeostasis ?= repro
# GPU=cuda12 or cuda13 (the CUDA major version of the machine's driver) adds JAX's CUDA plugin of the
# locked JAX version to the environment and runs everything on the GPU; unset: CPU only.
GPU ?=
ifneq ($(filter-out cuda12 cuda13,$(GPU)),)
$(error GPU must be cuda12 or cuda13 (CUDA major version of JAX's plugin), or unset for CPU; got '$(GPU)')
endif
# a figure's other parameters go in P (make fig2 P="seed=1"); a bare SEED=1 would be ignored
ifeq ($(origin SEED),command line)
$(error SEED is not a make variable: give the notebooks' parameters as P="seed=$(SEED) ...", e.g. make fig2 P="seed=$(SEED)")
endif
JAX_PIN := $(shell grep -E '^jax==' requirements.lock | cut -d= -f3)
export JAX_PLATFORMS := $(if $(GPU),cuda,cpu)
export PYTHONHASHSEED := 0
# persistent XLA compilation cache (git-ignored), every program cached
export JAX_COMPILATION_CACHE_DIR ?= $(CURDIR)/.jax_cache
export JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS ?= 0
# the simulation engine (plasticity_repro.engine): ENGINE=auto|fused|xla, THREADS=n (fused engine)
ifneq ($(ENGINE),)
export PLASTICITY_REPRO_ENGINE := $(ENGINE)
endif
ifneq ($(THREADS),)
export PLASTICITY_REPRO_THREADS := $(THREADS)
endif

FIGURE_NOTEBOOKS := $(sort $(wildcard notebooks/fig*.ipynb))

.PHONY: env test test-fast data readme regenerate regenerate-status figures html bench device-wheels clean-env $(patsubst notebooks/%.ipynb,%,$(FIGURE_NOTEBOOKS))

env: $(VENV)/.installed $(if $(GPU),$(VENV)/.installed-$(GPU))

$(VENV)/.installed: pyproject.toml requirements.lock tools/quiet_kernel.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.lock
	$(PY) -m pip install -q --no-deps -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3" > /dev/null
	$(PY) tools/quiet_kernel.py
	$(PY) -c "from plasticity_repro.engine import fused; fused.build()" || echo "note: the fused CPU engine did not build; the XLA engine will run"
	touch $@

$(VENV)/.installed-cuda12 $(VENV)/.installed-cuda13: $(VENV)/.installed-%: $(VENV)/.installed
	$(PY) -m pip install -q "jax[$*]==$(JAX_PIN)"
	touch $@

test: env
	PLASTICITY_REPRO_SAVE_FIGURES=0 $(PY) -m pytest -q tests $(if $(FIGURE_NOTEBOOKS),--nbval $(FIGURE_NOTEBOOKS) --nbval-current-env,)

# `make data PROFILE=laptop|quick|repro|paper`: every dataset the figures read at PROFILE (default:
# each figure's datasets at its shipped profile, what `make figures` reads), made in dependency
# order where missing (searches resume from their checkpoints);
# DATA_ARGS="--plan" prints the plan and its hours, "--dry-run" what exists and what would be made,
# "--only NAME ..." limits it to those datasets and what they need (plasticity_repro/pipeline.py)
DATA_ARGS ?=
data: env
	$(VENV)/bin/plasticity-repro data $(if $(PROFILE),--profile $(PROFILE)) $(DATA_ARGS)

# `make regenerate`: make or resume the recorded regeneration of every repro dataset by one commit
# (data/regen/REGENERATION.json) in data/regen, from a clean worktree of that commit; hours, resumable
# (plasticity_repro/campaign.py; FORCE=1 on a fresh clone, whose checkpoints look just written).
# `make regenerate-status`: its table, and each file against the shipped one
regenerate: env
	$(PY) -m plasticity_repro.campaign --regenerate $(if $(ONLY),--only $(ONLY)) $(if $(FORCE),--force)
# `make readme`: rewrite the README's claims table and campaign table from the shipped data
readme: env
	$(PY) -m plasticity_repro.readme README.md
regenerate-status: env
	$(PY) -m plasticity_repro.campaign --data-dir data/regen
	$(PY) -m plasticity_repro.campaign --compare data/regen

# the figure notebooks only read data/ (PLASTICITY_REPRO_READ_ONLY): a missing dataset stops the
# notebook with the `make data` command that makes it; READ_ONLY=0 lets them compute it instead
READ_ONLY ?= 1
figures: env
ifeq ($(FIGURE_NOTEBOOKS),)
	@echo "No figure notebooks exist yet (see the open issues); nothing to regenerate."
else
	@$(MAKE) --no-print-directory $(patsubst notebooks/%.ipynb,%,$(FIGURE_NOTEBOOKS))
endif

# interactive copies of every figure (HoloViews' bokeh backend, hover read-outs) in figures/html/<profile>/
# (git-ignored), drawn from the shipped data as `make figures` draws the static ones (which it redraws too)
html: env
	@PLASTICITY_REPRO_HTML_DIR=$(CURDIR)/figures/html $(MAKE) --no-print-directory figures

# `make fig2_self_organization` etc.: one notebook through papermill at $(PROFILE), reading data/.
# With P="NAME=VALUE ..." (e.g. make fig2 P="seed=1 n_networks=50"; `plasticity-repro params fig2`
# lists them) the notebook runs with those parameters in compute mode instead: the datasets they
# need are read from data/ where a shipped one has exactly them, else computed into $(RUNS_DIR)/data/;
# figure and executed notebook go to $(RUNS_DIR)/<fig>-<profile>-<hash of the parameters>/ (git-ignored)
P ?=
RUNS_DIR ?= runs
$(patsubst notebooks/%.ipynb,%,$(FIGURE_NOTEBOOKS)): %: env
ifeq ($(strip $(P)),)
	PLASTICITY_REPRO_READ_ONLY=$(READ_ONLY) $(PY) -m plasticity_repro.figure_runs --timeout $(NB_TIMEOUT) \
	  --profile $(or $(PROFILE),$(PROFILE_$@),repro) notebooks/$@.ipynb figures/notebooks/$@.ipynb
else
	$(VENV)/bin/plasticity-repro figure $@ --runs-dir $(RUNS_DIR) --timeout $(NB_TIMEOUT) \
	  $(if $(PROFILE),--profile $(PROFILE),$(if $(filter profile=%,$(P)),,--profile $(PROFILE_$@))) $(P)
endif

# short aliases: make fig2, make fig3, ...
NB_NAMES := $(patsubst notebooks/%.ipynb,%,$(FIGURE_NOTEBOOKS))
$(foreach nb,$(NB_NAMES),$(eval .PHONY: $(firstword $(subst _, ,$(nb))))$(eval $(firstword $(subst _, ,$(nb))): $(nb)))

bench: env
	$(PY) -m benchmarks.bench

# wheels of the dependencies a lent GPU machine lacks (it reaches no network; its python3 is 3.12),
# for benchmarks/device.sh and tools/device_data.sh: carry ".device_wheels" into the device call
device-wheels: env
	$(PY) -m pip download -q --no-deps -d .device_wheels \
	  $$(grep -E '^(evosax|dotmap)==' requirements.lock)
	$(PY) -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
	  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
	  -d .device_wheels $$(grep -E '^(netCDF4|cftime)==' requirements.lock)

clean-env:
	rm -rf $(VENV)
