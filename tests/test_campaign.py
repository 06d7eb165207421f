"""The campaign's planned-against-spent table reads checkpoints and datasets, computes nothing."""
import pickle

from plasticity_repro import campaign, pipeline


def test_progress_is_read_from_the_checkpoint(tmp_path):
    (tmp_path / "campaign").mkdir()
    stem = pipeline.CAMPAIGN[0][1]
    with open(tmp_path / "campaign" / f"{stem}.ckpt", "wb") as f:
        pickle.dump(dict(generation=30, elapsed=7200.0), f)
    rows = {r.name: r for r in campaign.rows(tmp_path)}
    ee = rows["campaign_search_ee"]
    assert ee.state == "generation 30 of 150" and ee.spent == round(ee.planned * 30 / 150)
    assert ee.spent_hours == 2.0
    assert rows["campaign_search_ee_turnover"].spent == 0 and rows["fig2_eval"].state == "not started"
    text = campaign.table(list(rows.values()))
    assert "| campaign_search_ee | 36.0 M | 3.3 | 7.2 M | 2.0 | generation 30 of 150 |" in text
    assert f"measured so far: {7.2e6 / 7200:,.0f} network-activations/s" in text
