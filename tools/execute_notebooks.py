"""Execute figure notebooks in place at their default (quick) parameters, so the stored outputs
are what nbval checks in `make test`.

Usage: python tools/execute_notebooks.py notebooks/fig*.ipynb   (or the paired notebooks/fig*.py)

The source of each notebook is its jupytext percent script notebooks/<name>.py; the .ipynb is
first rebuilt from it (cells and metadata from the .py, nothing else kept), then executed. Per-cell
execution timestamps are dropped so that re-executing an unchanged notebook changes no bytes
except where an output itself changed.
"""
import os
import sys
from pathlib import Path

import jupytext
import nbclient
import nbformat

os.environ.setdefault("JAX_PLATFORMS", "cpu")


def rebuild(ipynb: Path) -> nbformat.NotebookNode:
    """The notebook as its paired .py describes it (no outputs), or the .ipynb itself without one."""
    src = ipynb.with_suffix(".py")
    if src.exists():
        nb = jupytext.read(src, fmt="py:percent")
        nb.metadata.get("jupytext", {}).pop("text_representation", None)   # as `jupytext --sync` writes it
        return nb
    return nbformat.read(ipynb, as_version=4)


def strip_execution_metadata(nb: nbformat.NotebookNode) -> None:
    for cell in nb.cells:
        cell.metadata.pop("execution", None)


def stable_ids(nb: nbformat.NotebookNode) -> None:
    """Cell ids from the cell's position and source (jupytext draws random ones), so a rebuild of
    an unchanged notebook keeps them."""
    import hashlib
    for i, cell in enumerate(nb.cells):
        cell.id = hashlib.sha1(f"{i}:{cell.source}".encode()).hexdigest()[:8]


for arg in sys.argv[1:]:
    path = Path(arg).with_suffix(".ipynb")
    nb = rebuild(path)
    stable_ids(nb)
    client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=3600,
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    strip_execution_metadata(nb)
    nbformat.write(nb, str(path))
    print("executed", path)
