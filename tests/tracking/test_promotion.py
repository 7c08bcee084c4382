"""The promotion gate: the pure rule (many examples) and the MLflow layer (real sqlite store)."""
from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from components.tracking.promotion import (
    CHALLENGER,
    CHAMPION,
    HISTORY_TAG,
    Champion,
    MlflowRegistry,
    decide,
    describe,
    promote,
    rollback,
)
from components.tracking.runs import ensure_experiment
from tracking_helpers import unique

GATE = dict(min_ap=0.1, margin=0.005)
H1, H2 = "a" * 32 + ".dir", "b" * 32 + ".dir"


# --------------------------------------------------------------------------- pure rule
@pytest.mark.parametrize("candidate, champion, data_hash, status, promoted, why", [
    (0.09, None, H1, "FINISHED", False, "min_ap"),
    (0.10, None, H1, "FINISHED", True, "first champion"),
    (0.30, Champion("1", 0.30, H1), H1, "FINISHED", False, "margin"),
    (0.3049, Champion("1", 0.30, H1), H1, "FINISHED", False, "margin"),
    (0.3050, Champion("1", 0.30, H1), H1, "FINISHED", True, "beats champion"),
    (0.90, Champion("1", 0.30, H2), H1, "FINISHED", False, "not comparable"),
    (0.90, Champion("1", 0.30, None), H1, "FINISHED", False, "not comparable"),
    (0.90, Champion("1", None, H1), H1, "FINISHED", False, "no finite metric"),
    (0.90, Champion("1", 0.01, H1), H1, "FINISHED", True, "beats champion"),
    (0.05, Champion("1", 0.01, H1), H1, "FINISHED", False, "min_ap"),
    (math.nan, None, H1, "FINISHED", False, "NaN"),
    (math.inf, Champion("1", 0.3, H1), H1, "FINISHED", False, "NaN"),
    (0.90, None, H1, "FAILED", False, "not FINISHED"),
    (0.90, Champion("1", 0.3, H1), H1, "RUNNING", False, "not FINISHED"),
])
def test_decide_table(candidate, champion, data_hash, status, promoted, why):
    ok, reason = decide(candidate, data_hash, champion, run_status=status, **GATE)
    assert ok is promoted and why in reason


def test_decide_rejects_bad_settings_and_bad_other_metrics():
    with pytest.raises(ValueError):
        decide(0.5, H1, None, min_ap=0.1, margin=-0.01)
    with pytest.raises(ValueError):
        decide(0.5, H1, None, min_ap=math.nan, margin=0.0)
    ok, reason = decide(0.5, H1, None, bad_metrics=("segm_mAP",), **GATE)
    assert not ok and "segm_mAP" in reason


metric = st.one_of(st.floats(0, 1), st.just(math.nan), st.just(math.inf), st.just(-1.0))
step = st.tuples(metric, st.sampled_from([H1, H2]), st.sampled_from(["FINISHED"] * 3 + ["FAILED"]))


@settings(max_examples=400, deadline=None)
@given(steps=st.lists(step, min_size=1, max_size=12), min_ap=st.floats(0, 0.5),
       margin=st.floats(0, 0.1))
def test_property_champion_never_gets_worse(steps, min_ap, margin):
    champion: Champion | None = None
    for i, (cand, data_hash, status) in enumerate(steps):
        ok, reason = decide(cand, data_hash, champion, min_ap=min_ap, margin=margin,
                            run_status=status)
        assert isinstance(reason, str) and reason
        if ok:
            assert math.isfinite(cand) and cand >= min_ap and status == "FINISHED"
            if champion is not None:
                assert data_hash == champion.data_hash
                assert cand >= champion.metric + margin >= champion.metric
            champion = Champion(str(i), cand, data_hash)


# --------------------------------------------------------------------------- MLflow layer
class Injected(RuntimeError):
    """A fault injected into one registry write."""


class FlakyRegistry(MlflowRegistry):
    """The real registry, except that write call number ``fail_at`` (0-based) raises once."""

    WRITES = ("create_version", "set_version_tag", "set_model_tag", "set_alias", "delete_alias")

    def __init__(self, fail_at: int | None, only: str | None = None):
        super().__init__()
        self.fail_at, self.only, self.calls = fail_at, only, 0

    def __getattribute__(self, name):
        attr = super().__getattribute__(name)
        if name not in FlakyRegistry.WRITES:
            return attr
        if self.only is not None and name != self.only:
            return attr

        def call(*args, **kwargs):
            n, self.calls = self.calls, self.calls + 1
            if n == self.fail_at:
                raise Injected(f"injected failure in {name} (write #{n})")
            return attr(*args, **kwargs)
        return call


def _run(status: str = "FINISHED") -> str:
    client = MlflowClient()
    run = client.create_run(ensure_experiment("tracking-tests-eval"))
    if status != "RUNNING":
        client.set_terminated(run.info.run_id, status)
    return run.info.run_id


def _aliases(name: str) -> dict[str, str]:
    try:
        return MlflowRegistry().aliases(name)
    except MlflowException:
        return {}


def _promote(name, uri, value, data_hash=H1, run_status="FINISHED", registry=None, **extra):
    metrics = {"bbox_mAP": value, "segm_mAP": 0.2, "model_config": "x.py", **extra}
    return promote(name, _run(run_status), uri, metrics, data_hash, registry=registry, **GATE)


def test_first_model_below_min_ap_is_registered_but_not_champion(logged_tiny_model):
    name = unique("m")
    d = _promote(name, logged_tiny_model, 0.05)
    assert not d.promoted and d.version == "1" and d.champion is None
    assert _aliases(name) == {CHALLENGER: "1"}
    tags = MlflowRegistry().version_tags(name, "1")
    assert tags["decision"] == "rejected" and "min_ap" in tags["reason"]
    assert tags["metric.bbox_mAP"] == "0.05" and tags["data_hash"] == H1
    assert "metric.model_config" not in tags  # non-numeric values are not metrics


def test_gate_margin_data_hash_nan_status_and_rollback(logged_tiny_model):
    name, uri = unique("m"), logged_tiny_model
    reg = MlflowRegistry()
    v1 = _promote(name, uri, 0.30)
    assert v1.promoted and _aliases(name) == {CHAMPION: "1", CHALLENGER: "1"}

    v2 = _promote(name, uri, 0.303)  # within the margin
    assert not v2.promoted and "margin" in v2.reason
    assert _aliases(name) == {CHAMPION: "1", CHALLENGER: "2"}

    v3 = _promote(name, uri, 0.31)  # beats 0.30 + 0.005
    assert v3.promoted and v3.previous_champion == "1" and v3.champion_metric == 0.30
    assert _aliases(name) == {CHAMPION: "3", CHALLENGER: "3"}
    t3 = reg.version_tags(name, "3")
    assert t3["previous_champion"] == "1" and t3["decision"] == "promoted"
    assert float(t3["candidate_metric"]) == 0.31 and float(t3["champion_metric"]) == 0.30
    assert t3["decided_at"].endswith("+00:00") and t3["run_id"] == v3.run_id

    v4 = _promote(name, uri, 0.99, data_hash=H2)  # other data: not comparable
    assert not v4.promoted and "not comparable" in v4.reason and v4.champion == "3"
    v5 = _promote(name, uri, 0.99, segm_mAP=math.nan)  # any NaN metric blocks
    assert not v5.promoted and "segm_mAP" in v5.reason
    v6 = _promote(name, uri, 0.99, run_status="FAILED")
    assert not v6.promoted and "FAILED" in v6.reason
    v7 = _promote(name, uri, 0.99, run_status="RUNNING")
    assert not v7.promoted and "RUNNING" in v7.reason
    assert _aliases(name) == {CHAMPION: "3", CHALLENGER: "7"}
    assert json.loads(json.dumps(v5.to_dict()))["model_name"] == name  # JSON-safe

    history = json.loads(reg.model_tags(name)[HISTORY_TAG])
    assert [(h["event"], h["version"], h["from"]) for h in history] == \
        [("promote", "1", None), ("promote", "3", "1")]

    r1 = rollback(name)
    assert r1.promoted and r1.version == "1" and r1.previous_champion == "3"
    assert _aliases(name)[CHAMPION] == "1"
    assert "rolled_back_at" in reg.version_tags(name, "3")
    r2 = rollback(name)  # v1 replaced nobody
    assert not r2.promoted and "no previous champion" in r2.reason
    assert _aliases(name)[CHAMPION] == "1"
    info = describe(name)
    assert info["aliases"] == {CHAMPION: "1", CHALLENGER: "7"}
    assert [h["event"] for h in info["history"]] == ["promote", "promote", "rollback"]

    # after a rollback, a new champion records the restored one as its predecessor
    v8 = _promote(name, uri, 0.40)
    assert v8.promoted and v8.previous_champion == "1"
    assert rollback(name).version == "1"


def test_missing_metric_key_raises_before_registering(logged_tiny_model):
    name = unique("m")
    with pytest.raises(KeyError, match="bbox_mAP"):
        promote(name, _run(), logged_tiny_model, {"segm_mAP": 0.5}, H1, **GATE)
    with pytest.raises(ValueError, match="data_hash"):
        promote(name, _run(), logged_tiny_model, {"bbox_mAP": 0.5}, "", **GATE)
    with pytest.raises(MlflowException):
        MlflowClient().get_registered_model(name)


def test_failure_inside_alias_commit_restores_every_alias(logged_tiny_model):
    name, uri = unique("m"), logged_tiny_model
    _promote(name, uri, 0.30)
    _promote(name, uri, 0.301)
    before = _aliases(name)
    assert before == {CHAMPION: "1", CHALLENGER: "2"}
    # challenger moves first, then champion fails: the commit must put challenger back
    with pytest.raises(Injected):
        _promote(name, uri, 0.50, registry=FlakyRegistry(fail_at=1, only="set_alias"))
    assert _aliases(name) == before
    tags = MlflowRegistry().version_tags(name, "3")
    assert tags["decision"] == "error" and "Injected" in tags["reason"]
    history = json.loads(MlflowRegistry().model_tags(name)[HISTORY_TAG])
    assert [h["version"] for h in history] == ["1"]
    # history write is part of the commit too
    with pytest.raises(Injected):
        _promote(name, uri, 0.50, registry=FlakyRegistry(fail_at=0, only="set_model_tag"))
    assert _aliases(name) == before


# write order of one promotion: create_version (0), six version tags (1-6), challenger alias
# (7), champion alias (8), history tag (9); failure-tagging writes follow a fault
fail_at = st.one_of(st.none(), st.sampled_from([7, 8, 9]), st.integers(0, 12))


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(st.tuples(st.one_of(st.floats(0, 1), st.just(math.nan)), fail_at),
                      min_size=1, max_size=3))
def test_property_registry_failed_promotions_change_no_alias(logged_tiny_model, steps):
    """Any sequence of candidates with a fault injected at any registry write: a raising
    promotion leaves every alias as it was; the champion's metric never decreases."""
    name = unique("p")
    champion_metric: float | None = None
    for value, fail_at in steps:
        before = _aliases(name)
        try:
            d = _promote(name, logged_tiny_model, value, registry=FlakyRegistry(fail_at))
        except Injected:
            assert _aliases(name) == before
            continue
        after = _aliases(name)
        assert after[CHALLENGER] == d.version
        if d.promoted:
            assert after[CHAMPION] == d.version
            assert champion_metric is None or value >= champion_metric + GATE["margin"]
            champion_metric = value
        else:
            assert after.get(CHAMPION) == before.get(CHAMPION)
