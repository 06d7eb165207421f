"""The README's two generated tables, rewritten in place from the shipped data: the claims table
(between its markers, `claims.readme_block`) and the campaign's planned-against-spent table (from
its "planned hours at" line through its "measured so far:" line, `campaign.summary`).

    python -m plasticity_repro.readme [README.md] [--data-dir data]    (`make readme`)

tests/test_claims.py checks that the claims table is what the claims compute; this writes it.
"""
from __future__ import annotations

from pathlib import Path

CAMPAIGN_BEGIN, CAMPAIGN_END = "planned hours at ", "measured so far:"


def replace_block(text: str, begin: str, end: str, block: str, what: str) -> str:
    """`text` with the lines from the first starting with `begin` through the next starting with
    `end` replaced by `block`; a ValueError naming `what` when either line is missing."""
    lines = text.split("\n")
    first = next((i for i, line in enumerate(lines) if line.startswith(begin)), None)
    last = None if first is None else next((i for i in range(first, len(lines)) if lines[i].startswith(end)), None)
    if first is None or last is None:
        raise ValueError(f"README has no {what} (a line starting {begin!r}, then one starting {end!r})")
    return "\n".join(lines[:first] + block.rstrip("\n").split("\n") + lines[last + 1:])


def update(readme="README.md", data_dir="data") -> bool:
    """Rewrite both tables of `readme` from `data_dir` (atomically); True when anything changed."""
    from . import campaign, claims
    from .datasets import atomic_write
    path = Path(readme)
    old = path.read_text()
    new = replace_block(old, claims.README_BEGIN, claims.README_END,
                        claims.readme_block(claims.evaluate(None, data_dir)), "claims table")
    new = replace_block(new, CAMPAIGN_BEGIN, CAMPAIGN_END, campaign.summary(data_dir), "campaign table")
    if new != old:
        atomic_write(path, lambda tmp: Path(tmp).write_text(new), mode=path.stat().st_mode & 0o777)
    return new != old


def main(argv=None) -> int:
    import argparse
    ap = argparse.ArgumentParser(prog="python -m plasticity_repro.readme", description=__doc__.split("\n\n")[0])
    ap.add_argument("readme", nargs="?", default="README.md")
    ap.add_argument("--data-dir", default="data")
    a = ap.parse_args(argv)
    try:
        changed = update(a.readme, a.data_dir)
    except (ValueError, OSError) as e:
        ap.exit(2, f"{ap.prog}: {e}\n")
    print(f"{a.readme}: {'tables rewritten' if changed else 'tables already current'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
