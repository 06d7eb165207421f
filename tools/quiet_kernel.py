"""Quiet the environment's `python3` kernel: its kernel application logs only critical messages.

Run by `make env` after `ipykernel install --sys-prefix`. The kernel application's own log is what
papermill prints between a figure's cells: a warning that the kernel talks to papermill over local
TCP without CurveZMQ encryption (papermill does not provision keys) and an error line when papermill
stops the kernel with an interrupt at the end. Neither concerns the figure; a failing cell still
fails the notebook, with its traceback, through papermill and nbval.
"""
import json
import sys
from pathlib import Path

FLAG = "--IPKernelApp.log_level=CRITICAL"

spec = Path(sys.prefix) / "share" / "jupyter" / "kernels" / "python3" / "kernel.json"
kernel = json.loads(spec.read_text())
if FLAG not in kernel["argv"]:
    kernel["argv"].append(FLAG)
    spec.write_text(json.dumps(kernel, indent=1) + "\n")
