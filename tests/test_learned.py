"""The learned rules as a dataset (experiments.learned): one row per search run, loadable in one
line, and each row's Rule and protocol reproduce the loss its search measured."""
import numpy as np
import pytest

import plasticity_repro as pr
from plasticity_repro.experiments import paper
from plasticity_repro.experiments.evaluate import network_losses, stack_rules
from plasticity_repro.experiments.learned import ARMS


@pytest.fixture(scope="module")
def rules():
    return pr.load_rules("quick", "data")


def test_one_row_per_run_of_every_arm(rules):
    runs = paper.FIGURE_PROFILES["quick"]["runs"]
    hm_runs = paper.FIGURE_PROFILES["quick"]["handmade_runs"]
    assert list(rules.rule.values) == [f"{a}/{r}" for a in ARMS for r in range(hm_runs if a == "handmade" else runs)]
    # E->E arms have nothing on E->I / I->E; the all-synapse arm does
    ee = rules.sel(rule=rules.arm == "ee")
    assert float(np.abs(ee.coefs.sel(synapse=["ei", "ie"])).max()) == 0.0
    assert int(rules.sel(rule="all_turnover/0").term_on.sel(synapse="ie").sum()) == 20
    # the hand-made row carries its fixed additive terms and a bound that binds
    hm = rules.sel(rule="handmade/0")
    assert float(hm.coefs.sel(synapse="ee", term="x y~")) == pytest.approx(-0.001, rel=1e-3)
    assert int(hm.term_on.sel(synapse="ee").sum()) == 4 and float(hm.hetero[0]) < 1e3
    assert rules.attrs["kind"] == "rules" and "git_commit" in rules.attrs


def test_a_row_reproduces_its_search_test_loss(rules):
    search = paper.searches("quick", "data", progress=False)
    cfg = paper.search_config("quick")
    run = 1
    name = f"ee/{run}"
    assert float(rules.test_loss.sel(rule=name)) == pytest.approx(
        float(search.best_test_loss.values[run]) / cfg.n_test)
    rule, model = pr.rule_of(rules, name), pr.rule_config(rules, name)
    assert model.n_activations == cfg.model.n_activations and model.plasticity.lr == cfg.model.plasticity.lr
    seeds = rules.test_network_seed.sel(rule=name).values
    losses = network_losses(model, stack_rules([rule]), seeds)["loss"]
    assert float(np.sum(losses)) == pytest.approx(float(search.best_test_loss.values[run]), rel=1e-4)


def test_bad_names_and_profiles(rules, tmp_path):
    with pytest.raises(ValueError, match="rule must be one of"):
        pr.rule_of(rules, "ee/99")
    with pytest.raises(ValueError, match="profile must be one of"):
        pr.load_rules("laptopp")
    with pytest.raises(FileNotFoundError, match="make data PROFILE=quick"):
        pr.load_rules("quick", tmp_path)


def test_evaluate_rules_reruns_a_row_on_its_own_test_networks(rules):
    """pr.evaluate_rules on a row's held-out networks gets its search's test loss, and records
    the activations it is asked for."""
    name = "ee/1"
    seeds = rules.test_network_seed.sel(rule=name).values
    ds = pr.evaluate_rules(rules, name, seeds, record_rates=(0, 23), record_weights=(23,))
    assert list(ds.rule.values) == [name] and ds.sizes["network"] == len(seeds)
    assert float(ds.loss.sum()) == pytest.approx(float(rules.test_loss.sel(rule=name)) * len(seeds), rel=1e-4)
    assert list(ds.rate_activation.values) == [1, 24] and list(ds.weight_activation.values) == [24]
    assert ds.attrs["kind"] == "evaluation" and ds.attrs["profile"] == "quick"
    assert np.all(np.isfinite(ds.decoder_r2.values)) and ds.example_rates.sizes["cell"] == 33


@pytest.mark.parametrize("kw, message", [
    (dict(names="ee/9"), "rule must be one of"),
    (dict(names=[]), "names must name at least one row"),
    (dict(seeds=[-1]), "seeds must be a non-empty sequence of integers"),
    (dict(n_activations=5), r"n_activations must be an integer in \[12, 100000\]"),
    (dict(p_turnover=1.5), r"p_turnover must be a number in \[0, 1\]"),
    (dict(record_rates=(0, 24)), r"record_rates must be activations in \[0, 23\]"),
    (dict(names=["ee/0", "ee/0"]), "names must be distinct rows"),
    (dict(names=["ee/0", "handmade/0"]), "rows that run different horizons"),
])
def test_evaluate_rules_rejects_bad_input_before_running(rules, kw, message):
    args = dict(names="ee/0", seeds=[1, 2])
    args.update(kw)
    with pytest.raises(ValueError, match=message):
        pr.evaluate_rules(rules, args.pop("names"), args.pop("seeds"), **args)


def test_evaluate_rule_runs_a_row_as_evaluate_rules_does(rules):
    """A Rule handed over with its protocol gets exactly the row's evaluation."""
    name, seeds = "ee/1", [5, 6]
    own = pr.evaluate_rule(pr.rule_of(rules, name), seeds, model=pr.rule_config(rules, name), name="mine")
    row = pr.evaluate_rules(rules, name, seeds)
    assert list(own.rule.values) == ["mine"]
    np.testing.assert_allclose(own.loss.values, row.loss.values, rtol=1e-6)
    np.testing.assert_allclose(own.decoder_r2.values, row.decoder_r2.values, rtol=1e-6, atol=1e-9)
    assert own.attrs["kind"] == "evaluation" and "coefs" in own.attrs["params_json"]


def test_evaluate_rule_defaults_to_the_papers_protocol_on_the_rules_synapses():
    """Default protocol: 400 activations at learning rate 5e-4, plastic where the rule has
    coefficients; here a 3-term E->E rule, cut to 24 activations to stay small."""
    from plasticity_repro.rules import Rule
    rule = Rule.from_terms({"x~ y": 0.02, "x y~": -0.02, "w y~ y": -0.02})
    ds = pr.evaluate_rule(rule, [3], n_activations=24, name="three terms")
    model = next(iter(__import__("json").loads(ds.attrs["params_json"])["models"].values()))
    assert model["n_activations"] == 24 and model["plasticity"]["lr"] == pytest.approx(5e-4)
    assert tuple(model["plasticity"]["synapses"]) == ("ee",)
    assert list(ds.rule.values) == ["three terms"] and np.all(np.isfinite(ds.loss.values))


@pytest.mark.parametrize("kw, message", [
    (dict(rule="x~ y"), "rule must be a plasticity_repro Rule"),
    (dict(name=""), "name must be a non-empty string"),
    (dict(model="paper"), "model must be a ModelConfig or None"),
    (dict(model="ee model"), r"rule has coefficients on \['ie'\]"),
    (dict(seeds=[]), "seeds must be a non-empty sequence of integers"),
    (dict(n_activations=400.0), r"n_activations must be an integer in \[12, 100000\]"),
])
def test_evaluate_rule_rejects_bad_input_before_running(rules, kw, message):
    from plasticity_repro.rules import Rule
    args = dict(rule=Rule.from_terms({"x~ y": 0.02, "y": -0.01}, synapse="ie"), seeds=[1])
    args.update(kw)
    if args.get("model") == "ee model":
        args["model"] = pr.rule_config(rules, "ee/0")
    with pytest.raises(ValueError, match=message):
        pr.evaluate_rule(args.pop("rule"), args.pop("seeds"), **args)


def test_evaluate_rule_keeps_a_rules_summed_weight_bound(rules):
    """The hand-made row's bound binds: the default protocol turns it on, a model without it is
    an error rather than a silently different rule."""
    hm = pr.rule_of(rules, "handmade/0")
    with pytest.raises(ValueError, match="model.plasticity.heterosynaptic is False"):
        pr.evaluate_rule(hm, [1], model=pr.rule_config(rules, "ee/0"))
    default = pr.evaluate_rule(hm, [5], n_activations=24)
    model = next(iter(__import__("json").loads(default.attrs["params_json"])["models"].values()))
    assert model["plasticity"]["heterosynaptic"] is True and model["plasticity"]["lr"] == pytest.approx(5e-4)
    cfg = pr.rule_config(rules, "handmade/0")
    own = pr.evaluate_rule(hm, [5], model=cfg)
    row = pr.evaluate_rules(rules, "handmade/0", [5])
    np.testing.assert_allclose(own.loss.values, row.loss.values, rtol=1e-6)
