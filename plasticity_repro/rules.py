"""The generalized-Oja rule family (spec §3) as a declarative term table.

Each of the 20 terms is (optional w) x (post factor) x (pre factor), where the post factor is one
of 1, y, y~, y~ y and the pre factor one of 1, x, x~, x~ x (x: presynaptic rate, y: postsynaptic
rate, ~: an exponential trace with the term's own time constant). `model.terms` writes the update
out term by term; the XLA engine's low-rank form of it is `engine.xla_rule`, the fused engine's
`engine/fused.cc`.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from .config import SYNAPSE_TYPES, check_number

N_TERMS = 20
N_TAUS = 12
HETERO_OFF = (1e9, 0.0, 1e9)   # (summed-weight limit, rate, cap) that never binds
HETERO_NAMES = ("hetero:sum_max", "hetero:rate", "hetero:w_cap")


class Term(NamedTuple):
    name: str        # as the paper writes it
    post: str        # "1", "y", "y~" or "y~ y"
    pre: str         # "1", "x", "x~" or "x~ x"
    times_w: bool
    tau_slot: int    # index into the type's 12 time constants, or -1 when the term has no trace


def _table() -> tuple:
    base = [("1", "1", "1"), ("y", "y", "1"), ("x", "1", "x"), ("x y", "y", "x"),
            ("y~", "y~", "1"), ("x y~", "y~", "x"), ("x~", "1", "x~"), ("x~ y", "y", "x~"),
            ("y~ y", "y~ y", "1"), ("x~ x", "1", "x~ x")]
    terms, slot = [], 0
    for times_w in (False, True):
        for name, post, pre in base:
            has_trace = "~" in name
            terms.append(Term(("w " + name if name != "1" else "w") if times_w else name,
                              post, pre, times_w, slot if has_trace else -1))
            slot += has_trace
    return tuple(terms)


TERMS = _table()
TERM_NAMES = tuple(t.name for t in TERMS)
TRACE_TERMS = tuple(k for k, t in enumerate(TERMS) if t.tau_slot >= 0)  # term index of each tau slot
TAU_NAMES = tuple(f"tau[{TERMS[k].name}]" for k in TRACE_TERMS)
# slots whose trace is of the post (y~) or pre (x~) cell, in slot order
POST_TRACE_SLOTS = tuple(TERMS[k].tau_slot for k in TRACE_TERMS if "y~" in TERMS[k].post)
PRE_TRACE_SLOTS = tuple(TERMS[k].tau_slot for k in TRACE_TERMS if "x~" in TERMS[k].pre)


def tau_index(tau_convention: str) -> np.ndarray:
    """(3, 12) indices into the flattened (36,) time constants that each type's slots read.

    independent: type t slot j reads taus[t, j] (flat 12 t + j).
    shifted (paper era): type t slot j reads flat index t + j, i.e. E->I and I->E read the E->E
    time constants shifted by one and two places; taus[1, 0] and taus[1, 1] serve as the 13th and
    14th, and the rest of rows 1-2 is unused.
    """
    t = np.arange(3)[:, None]
    j = np.arange(N_TAUS)[None, :]
    return 12 * t + j if tau_convention == "independent" else t + j + 0 * j


@struct.dataclass
class Rule:
    """A plasticity rule: coefficients c (3 types x 20 terms) and time constants (3 x 12, s).

    Rows follow SYNAPSE_TYPES = (ee, ei, ie); rows of types that are not plastic are ignored.
    `term_mask` (1 = on) zeroes terms for dropout and refits without touching c.
    `hetero` = (summed-weight limit, depression rate, single-synapse cap) of the hand-made rule's
    heterosynaptic E->E bound; used only with PlasticityConfig(heterosynaptic=True).
    """
    coefs: jnp.ndarray
    taus: jnp.ndarray
    term_mask: jnp.ndarray
    hetero: jnp.ndarray = None

    def __post_init__(self):
        if self.hetero is None:  # plain construction: the bound is inactive
            object.__setattr__(self, "hetero", jnp.asarray(HETERO_OFF, jnp.float32))

    @classmethod
    def create(cls, coefs=None, taus=None, term_mask=None, hetero=None, *, validate: bool = True) -> "Rule":
        coefs = np.zeros((3, N_TERMS)) if coefs is None else np.asarray(coefs, dtype=np.float64)
        taus = np.full((3, N_TAUS), 5e-3) if taus is None else np.asarray(taus, dtype=np.float64)
        term_mask = np.ones((3, N_TERMS)) if term_mask is None else np.asarray(term_mask, np.float64)
        if coefs.shape == (N_TERMS,):
            coefs = np.concatenate([coefs[None], np.zeros((2, N_TERMS))])
        if taus.shape == (N_TAUS,):
            taus = np.repeat(taus[None], 3, axis=0)
        if term_mask.shape == (N_TERMS,):
            term_mask = np.repeat(term_mask[None], 3, axis=0)
        if validate:
            for name, arr, shape in (("coefs", coefs, (3, N_TERMS)), ("taus", taus, (3, N_TAUS)),
                                     ("term_mask", term_mask, (3, N_TERMS))):
                if arr.shape != shape:
                    raise ValueError(f"{name} must have shape {shape} or ({shape[1]},), got {arr.shape}")
                if not np.all(np.isfinite(arr)):
                    raise ValueError(f"{name} must be finite")
            bad = taus[(taus <= 0) | (taus > 10.0)]
            if bad.size:
                check_number("taus", float(bad[0]), 0.0, 10.0, lo_open=True)
        hetero = np.asarray(HETERO_OFF if hetero is None else hetero, np.float64)
        if validate and (hetero.shape != (3,) or np.any(hetero < 0) or not np.all(np.isfinite(hetero))):
            raise ValueError(f"hetero must be 3 non-negative numbers (sum limit, rate, cap), got {hetero.tolist()}")
        # float64 where JAX has it enabled (a float64 run then uses the rule's exact values), float32
        # otherwise; a float32 run casts to float32 at use, so its numbers are the same either way
        return cls(jnp.asarray(coefs), jnp.asarray(taus), jnp.asarray(term_mask), jnp.asarray(hetero))

    @classmethod
    def from_terms(cls, terms: dict, synapse: str = "ee", taus=None) -> "Rule":
        """Rule from {term name: coefficient} on one synapse type, e.g. {"x~ y": 1.0}."""
        coefs = np.zeros((3, N_TERMS))
        t = SYNAPSE_TYPES.index(synapse)
        for name, c in terms.items():
            if name not in TERM_NAMES:
                raise ValueError(f"term must be one of {list(TERM_NAMES)}, got {name!r}")
            coefs[t, TERM_NAMES.index(name)] = c
        return cls.create(coefs, taus)

    def effective_taus(self, tau_convention: str) -> jnp.ndarray:
        """Time constants each type actually uses under the chosen convention."""
        return self.taus.reshape(-1)[tau_index(tau_convention)]
