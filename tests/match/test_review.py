"""The review of a real run's uncertain pairs: values side by side, Splink's waterfall, decisions
written with who, when and what was seen, contradictions from the file and from the run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from crmmigrate.errors import SettingsError
from crmmigrate.match.decisions import decisions_path, read_decisions, record_decision
from crmmigrate.match.review import Review
from crmmigrate.rundir import read_tables

from tests.conftest import make_project, run_stages


@pytest.fixture(scope="module")
def done(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project after one run of all stages; tests that write copy it first."""
    folder = tmp_path_factory.mktemp("review") / "project"
    make_project(folder)
    run_stages(folder)
    return folder


@pytest.fixture
def project(done: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "project"
    shutil.copytree(done, copy)
    return copy


def opened(project: Path, entity: str = "contact", **kwargs: str) -> Review:
    return Review(project, project / "runs" / "r", entity, **kwargs)


@pytest.mark.parametrize("entity", ["contact", "account"])
def test_the_waterfall_adds_up_to_the_score_the_run_gave_each_pair(done: Path, entity: str) -> None:
    with opened(done, entity) as review:
        assert len(review.queue) >= 2
        for index in range(min(len(review.queue), 8)):
            pair, steps = review.pair(index), review.waterfall(index)
            assert steps["step"].iloc[0] == "prior" and steps["step"].iloc[-1] == "final"
            final = steps.iloc[-1]
            assert final["match_weight"] == pytest.approx(pair["match_weight"], abs=1e-9)
            assert final["probability"] == pytest.approx(pair["score"], abs=1e-12)
            running = steps["match_weight"].iloc[:-1].cumsum()
            assert steps["cumulative_weight"].iloc[:-1].to_numpy() == pytest.approx(running.to_numpy())
            assert running.iloc[-1] == pytest.approx(final["cumulative_weight"])
            compared = steps[~steps["step"].isin(["prior", "final"])]
            assert set(compared["status"]) <= {"agree", "partly", "differ", "missing"}
            assert (compared.loc[compared["step"].str.startswith("tf_"), "match_weight"] != 0).all()
            assert (compared.loc[compared["status"] == "missing", "match_weight"] == 0).all()


def test_side_by_side_shows_both_records_with_the_contacts_own_address(done: Path) -> None:
    mapped = done / "runs" / "r" / "map" / "mapped"
    contacts = read_tables(mapped / "contact").set_index(["_source", "_source_key"])
    addresses = read_tables(mapped / "address")
    own = addresses[(addresses["_link_contact_source"] == addresses["_source"])
                    & (addresses["_link_contact_key"] == addresses["_source_key"])]
    with opened(done) as review:
        # The first pair whose left record has an address of its own.
        index = next(i for i in range(len(review.queue)) if
                     ((own["_source"] == review.pair(i)["left_source"]) & (own["_source_key"] == review.pair(i)["left_key"])).any())
        pair = review.pair(index)
        table = review.side_by_side(index).set_index("field")
        steps = review.waterfall(index).set_index("step")
    left = (pair["left_source"], pair["left_key"])
    assert table.at["last_name", "left"] == contacts.at[left, "last_name"]
    home = own[(own["_source"] == left[0]) & (own["_source_key"] == left[1])].iloc[0]
    assert table.at["street", "left"] == home["street"] and table.at["city", "left"] == home["city"]
    assert table.at["email", "compared_as"] == "email" and table.at["mobile", "compared_as"] == "phone"
    assert table.at["email", "status"] == steps.at["email", "status"]
    assert table.at["email", "level"] == steps.at["email", "label"]
    assert table.at["middle_name", "compared_as"] == "" and table.at["middle_name", "level"] == "not compared"


def test_an_accounts_mail_domain_is_shown_as_the_model_compared_it(done: Path) -> None:
    with opened(done, "account") as review:
        table = review.side_by_side(0).set_index("field")
    assert list(table.index) == ["name", "website", "tax_id", "domain"]
    assert table.at["domain", "left"] and "@" not in table.at["domain", "left"]


def test_a_decision_is_written_with_who_when_and_what_was_seen(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("getpass.getuser", lambda: "os-user")
    with opened(project, reviewer="ann") as review:
        pair = review.pair(1)
        shown = review.side_by_side(1)
        entry = review.record(1, "different")
        review.record(0, "same", by="bob")
        assert review.queue.loc[1, "decision"] == "different"
    with opened(project) as review:  # no reviewer: the OS user
        review.record(2, "skip")
        assert review.queue["decision"].iloc[:3].tolist() == ["same", "different", "skip"]
        assert review.summary().set_index("reason").at["all", "decided"] == 3
    lines = [json.loads(line) for line in decisions_path(project).read_text(encoding="utf-8").splitlines()]
    assert [(e["by"], e["decision"]) for e in lines] == [("ann", "different"), ("bob", "same"), ("os-user", "skip")]
    assert entry == lines[0] and entry["at"] and entry["score"] == pytest.approx(pair["score"])
    assert (entry["left_source"], entry["left_key"], entry["right_source"], entry["right_key"]) == tuple(
        pair[["left_source", "left_key", "right_source", "right_key"]])
    assert entry["seen"] == {row.field: [row.left, row.right] for row in shown.itertuples()}
    assert len(read_decisions(project, "contact")) == 3


def test_the_next_run_applies_a_decision_recorded_in_review(project: Path) -> None:
    from crmmigrate.match import run_match
    from crmmigrate.rundir import RunDir
    from crmmigrate.spec import load_project

    with opened(project) as review:
        pair = review.pair(0)
        review.record(0, "same", by="ann")
    run = RunDir(project / "runs" / "r")
    run_match(run, load_project(project))
    keys = ["left_source", "left_key", "right_source", "right_key"]
    key = tuple(pair[keys])
    pairs = pd.read_parquet(run.path / "match" / "pairs.parquet")
    assert pairs[pairs["link"] == "same"][keys].apply(tuple, axis=1).tolist() == [key]
    assert key not in pd.read_parquet(run.path / "match" / "review.parquet")[keys].apply(tuple, axis=1).tolist()
    assert run.read_meta()["stages"]["match"]["counts"]["contact"]["decisions_applied"] == 1


def test_contradictions_show_from_the_file_and_from_the_run_that_met_them(project: Path) -> None:
    from crmmigrate.match import run_match
    from crmmigrate.rundir import RunDir
    from crmmigrate.spec import load_project

    with opened(project) as review:
        pair = review.pair(0)
        a, b = (pair["left_source"], pair["left_key"]), (pair["right_source"], pair["right_key"])
        c = next(key for key in review.records().index if key not in (a, b))
    for left, right, decision in [(a, b, "same"), (b, c, "same"), (a, c, "different")]:
        record_decision(project, "contact", left, right, decision, by="ann")
    with opened(project) as review:
        before = review.contradictions()  # before any run met them
    low, high = sorted([a, c])
    assert before[["left_source", "left_key", "right_source", "right_key", "found_in"]].values.tolist() == [
        [*low, *high, "decisions file"]]
    assert before["message"].iloc[0].startswith("decided different (by ann")
    run_match(RunDir(project / "runs" / "r"), load_project(project))
    with opened(project) as review:
        after = review.contradictions()
    assert after["found_in"].tolist() == ["decisions file, run r"]


def test_a_review_refuses_what_it_cannot_show(done: Path, tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="entity must be one of contact, account"):
        opened(done, "order")
    with opened(done) as review, pytest.raises(SettingsError, match=r"no pair 999; the contact queue of run r holds"):
        review.side_by_side(999)
    with pytest.raises(SettingsError, match="run the match stage first"):
        Review(done, tmp_path)


def test_styled_tables_escape_the_data_and_colour_by_status(project: Path) -> None:
    with opened(project) as review:
        source, key = review.pair(0)[["left_source", "left_key"]]
    path = project / "runs" / "r" / "map" / "mapped" / "contact" / f"{source}.parquet"
    mapped = pd.read_parquet(path)
    mapped.loc[mapped["_source_key"] == key, "owner_name"] = "<script>x</script>"
    mapped.to_parquet(path)
    with opened(project) as review:
        side = review.styled_side_by_side(0).to_html()
        waterfall = review.styled_waterfall(0).to_html()
    assert "<script>x" not in side and "&lt;script&gt;x&lt;/script&gt;" in side
    assert "background-color: #d7f0d7" in side and "Starting match weight (prior)" in waterfall
    assert "Final score" in waterfall


def test_the_styled_waterfall_draws_each_step_from_the_sum_before_it() -> None:
    from crmmigrate.match.review import _waterfall_bars

    frame = pd.DataFrame({"step": ["prior", "email", "city", "final"], "cumulative_weight": [-10.0, 5.0, 5.0, 5.0]})
    bars = _waterfall_bars(frame)  # zero at 66.7% of a scale from -10 to +5
    assert "transparent 0.0%, #e88 0.0%, #e88 66.7%," in bars[0]  # the prior: from zero down to -10
    assert "transparent 0.0%, #8c8 0.0%, #8c8 100.0%," in bars[1]  # +15: from -10 up to +5
    assert "#8c8 99.8%, #8c8 100.0%," in bars[2]  # nothing moved: a tick at +5
    assert "transparent 66.7%, #9ab 66.7%, #9ab 100.0%," in bars[3]  # the final score, from zero


def test_any_two_records_have_a_waterfall_and_can_be_decided(project: Path) -> None:
    keys = ["left_source", "left_key", "right_source", "right_key"]
    links = pd.read_parquet(project / "runs" / "r" / "match" / "pairs.parquet")
    link = links[(links["entity"] == "contact") & (links["link"] == "model")].iloc[0]
    left, right = tuple(link[keys[:2]]), tuple(link[keys[2:]])
    with opened(project, reviewer="ann") as review:
        steps = review.waterfall((left, right))
        assert steps["probability"].iloc[-1] == pytest.approx(link["score"], abs=1e-12)
        assert review.side_by_side((right, left)).columns.tolist() == ["field", "left", "right", "compared_as",
                                                                       "status", "level"]
        entry = review.record((right, left), "different")
        with pytest.raises(SettingsError, match="Record nowhere 1 is not among the run's mapped records"):
            review.waterfall((left, ("nowhere", "1")))
    assert [entry[k] for k in keys] == [*left, *right]  # kept in one order, whichever way it was asked
    assert entry["score"] == pytest.approx(link["score"])
