"""Test setup: CPU only, float64 available (the float32 path is exercised explicitly)."""
import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import plasticity_repro  # noqa: E402
plasticity_repro.configure(host_devices="auto", compilation_cache=True)   # as the CLI does
import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
