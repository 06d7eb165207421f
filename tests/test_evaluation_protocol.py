"""The post-hoc evaluations' protocol: the training protocol, or at profile repro the paper's 400
activations with the plasticity as trained (experiments.paper.evaluation_model)."""
from plasticity_repro import pipeline
from plasticity_repro.experiments import paper
from plasticity_repro.experiments.perturb import perturbation_protocol
from plasticity_repro.experiments.stress import stress_protocol
from plasticity_repro.experiments.sweep import sweep_protocol


def test_repro_rules_are_evaluated_on_the_papers_400_activations():
    train = paper.search_config("repro").model
    ev = paper.evaluation_model("repro", train)
    assert (train.n_activations, ev.n_activations) == (200, 400)
    assert ev.loss.fit_activations == (344, 349, 354, 359, 364, 369)
    assert ev.loss.test_activations == (374, 379, 384, 389, 394, 399)
    assert ev.plasticity == train.plasticity and ev.network == train.network   # the rule runs as trained
    # the paper's windows follow: stress organise 400, turnover 400..548, test 574..599; sweep 600; Fig 6 450
    sp = stress_protocol(ev)
    assert sp.turnover_window == (400, 549) and sp.stressed.n_activations == 600
    assert sp.stressed.loss.test_activations[-1] == 599
    assert sweep_protocol(ev).n_activations == 600
    assert perturbation_protocol(ev.n_activations)["n_activations"] == 450
    assert paper.evaluation_key("repro", train)


def test_other_profiles_evaluate_on_the_training_protocol_and_keep_their_file_names():
    for profile in ("quick", "laptop"):
        train = paper.search_config(profile).model
        assert paper.evaluation_model(profile, train) is train
        assert paper.evaluation_key(profile, train) == ()


def test_repro_plan_counts_the_longer_protocol():
    plan = {d.name: d for d in pipeline.declare("repro")}
    assert plan["fig2_eval"].cost == 9 * 100 * 400
    # 16 learned rules on 400 + 600, the hand-made rule on its own 1200 + 1400 (spec §8)
    assert plan["fig4_stress"].cost == 16 * 100 * (400 + 600) + 100 * (1200 + 1400)
    assert plan["fig5_sweep"].cost == 16 * 6 * 100 * 600
    assert plan["fig3_dropout"].cost == 8 * 21 * 40 * 200   # dropout and refits stay on the training protocol
