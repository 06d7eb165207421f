"""Helpers the test modules share (tests/ is on sys.path under pytest)."""
import os

from plasticity_repro import cli


def run_cli(argv, capsys):
    """(exit code, stdout, stderr) of `cli.main(argv)`, run in this process."""
    try:
        code = cli.main(argv)
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def tree(root):
    """Every file and folder below `root`, as sorted relative paths."""
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, ds, fs in os.walk(root) for f in fs + ds)
