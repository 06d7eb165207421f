"""The bench's step profile (benchmarks/bench.py): every kernel of the simulation is attributed to a
named part of the step, and loop thunks are not counted on top of the kernels inside them."""
from benchmarks.bench import STEP_PARTS, bench_step_profile


def test_step_profile_attributes_the_kernels():
    prof = bench_step_profile(batch=2, n_act=2)
    shares = prof["share_by_part"]
    assert abs(sum(shares.values()) - 1.0) < 1e-6
    for part in ("drive", "traces", "rule_update", "effects", "inputs_turnover", "records"):
        assert shares[part] > 0, (part, shares)   # kernels reach every named scope
    # the named scopes reach the kernels: little is left unattributed (carry copies, stacking)
    assert shares["other"] < 0.5, shares
    assert 10 < prof["kernels_per_step"] < 200
    assert not any(k["kernel"].startswith("while") for k in prof["top_kernels"])
    assert set(prof["profiled_us_per_step_by_part"]) == set(STEP_PARTS) | {"other"}
