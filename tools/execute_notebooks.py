"""Execute figure notebooks in place at their default (quick) parameters, so the stored outputs
are what nbval checks in `make test`. Usage: python tools/execute_notebooks.py notebooks/fig*.ipynb"""
import os
import sys
from pathlib import Path

import nbclient
import nbformat

os.environ.setdefault("JAX_PLATFORMS", "cpu")

for path in sys.argv[1:]:
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=3600,
                                     resources={"metadata": {"path": str(Path(path).parent)}})
    client.execute()
    nbformat.write(nb, path)
    print("executed", path)
