"""plasticity_repro: a JAX reproduction of Bell, Duffy & Fairhall (NeurIPS 2024),
"Discovering plasticity rules that organize and maintain neural circuits"."""
import subprocess as _sp
from pathlib import Path as _Path

__version__ = "0.1.0"


def _commit_at_import() -> str:
    """The checkout's commit when the package was imported (the code that actually runs), with
    '-dirty' if tracked files differed from it; 'unknown' outside a git checkout. A copy of the tree
    sent elsewhere (to a GPU machine, whose copy of .git may be stale or absent) is named by
    $PLASTICITY_REPRO_COMMIT (a 40-digit commit) where git knows no commit or another one:
    '<commit>-declared', the sender vouching that the copy is that commit's tree."""
    import os
    import re
    declared = os.environ.get("PLASTICITY_REPRO_COMMIT", "")
    declared = declared if re.fullmatch(r"[0-9a-f]{40}", declared) else ""
    root = _Path(__file__).resolve().parent.parent
    try:
        commit = _sp.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                         check=True).stdout.strip()
        dirty = _sp.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                        capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, _sp.CalledProcessError):
        return f"{declared}-declared" if declared else "unknown"
    if declared and declared != commit:
        return f"{declared}-declared"
    return commit + ("-dirty" if dirty else "")


COMMIT = _commit_at_import()


def configure(**kw):
    """Set how this process runs the package: plasticity_repro.engine.configure (backend, threads,
    host devices, the persistent compilation cache). Importing the package changes no setting."""
    from .engine import configure as _configure
    return _configure(**kw)


def load_rules(profile: str = "repro", data_dir="data"):
    """The learned (and the tuned hand-made) rules of a profile as an xr.Dataset, one row per
    search run (experiments.learned)."""
    from .experiments.learned import load_rules as _load
    return _load(profile, data_dir)


def rule_of(rules, name: str):
    """The Rule of one row (e.g. "ee/0") of `load_rules`' dataset."""
    from .experiments.learned import rule_of as _rule_of
    return _rule_of(rules, name)


def rule_config(rules, name: str):
    """The ModelConfig a row of `load_rules`' dataset was trained on (learning rate, horizon,
    plastic synapse types)."""
    from .experiments.learned import rule_config as _rule_config
    return _rule_config(rules, name)


def evaluate_rules(rules, names, seeds, **kw):
    """Rows `names` of `load_rules`' dataset run on fresh networks `seeds` at their training
    learning rate (optionally for `n_activations`, under E->E turnover `p_turnover`): an
    xr.Dataset of per-network loss and decoder R², example rates and weights
    (experiments.learned.evaluate_rules)."""
    from .experiments.learned import evaluate_rules as _evaluate
    return _evaluate(rules, names, seeds, **kw)


def evaluate_rule(rule, seeds, **kw):
    """A rule of your own (e.g. `Rule.from_terms({"x~ y": 0.02, "x y~": -0.02})`) run on fresh
    networks `seeds`, by default on the paper's protocol (400 activations, learning rate 5e-4,
    plastic where the rule has coefficients): the xr.Dataset `evaluate_rules` returns
    (experiments.learned.evaluate_rule)."""
    from .experiments.learned import evaluate_rule as _evaluate
    return _evaluate(rule, seeds, **kw)
