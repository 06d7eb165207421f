"""Helpers to write the figure notebooks from cell lists (kept so notebooks can be regenerated)."""
import nbformat as nbf


def notebook(cells):
    nb = nbf.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    out = []
    for kind, src, *tags in cells:
        c = nbf.v4.new_markdown_cell(src) if kind == "md" else nbf.v4.new_code_cell(src)
        if tags:
            c.metadata["tags"] = list(tags[0])
        out.append(c)
    nb.cells = out
    return nb


SETUP = '''import os, sys
from pathlib import Path
os.environ.setdefault("JAX_PLATFORMS", "cpu")
root = Path.cwd()
while not (root / "pyproject.toml").exists() and root != root.parent:
    root = root.parent
import numpy as np
import xarray as xr
xr.set_options(display_style="text")
from plasticity_repro import plots
from plasticity_repro.experiments import paper
paper.validate_parameters(profile, seed=seed, data_dir=data_dir{extra})
data = (root / data_dir) if not Path(data_dir).is_absolute() else Path(data_dir)
figs = (root / fig_dir) if not Path(fig_dir).is_absolute() else Path(fig_dir)
big = profile != "quick"   # qualitative claims are asserted only where the profile can make them'''

HV = '''hv = plots.setup()'''
