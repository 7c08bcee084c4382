"""The flow's stage list and dvc.yaml must not drift apart; the plan respects DVC's graph."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components.common.params import load_params
from components.common.stages import DvcGraph, StageDrift, dvc_graph, stage_plan
from flows.pipeline import OPTIONAL_STAGES, STAGES

ROOT = Path(__file__).resolve().parents[2]
REQUIRED = [s for s in STAGES if s not in OPTIONAL_STAGES]

LINEAR = ["prepare", "validate", "finetune", "evaluate", "register"]
LINEAR_UP = {"prepare": set(), "validate": {"prepare"}, "finetune": {"prepare", "validate"},
             "evaluate": {"finetune"}, "register": {"evaluate", "finetune"}}


@pytest.fixture(scope="module")
def project_graph() -> DvcGraph:
    return dvc_graph(ROOT)


def test_every_dvc_yaml_stage_is_a_flow_stage(project_graph):
    """Fails when a stage is added to / removed from dvc.yaml but not the flow (or reordered):
    asking for every pretraining method, the flow runs exactly dvc.yaml's stages."""
    declared = list(yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"])
    assert {n.split("@")[0] for n in project_graph.names} == set(declared)
    # members as the planner names them: what follows "<step>@" or "<step>_", e.g. "mae",
    # "supervised_mobile@mobilevit_xxs" (a foreach stage)
    methods = [n[len("pretrain") + 1:] for n in project_graph.names if n.startswith("pretrain")]
    experiments = [n[len("experiment") + 1:] for n in project_graph.names
                   if n.startswith("experiment")]
    imagetext = [n[len("imagetext") + 1:] for n in project_graph.names if n.startswith("imagetext")]
    # curate and proposals run because the stages above depend on them (members None)
    everything = stage_plan(project_graph, STAGES, OPTIONAL_STAGES,
                            {"pretrain": {"methods": methods}, "experiments": {"run": experiments},
                             "imagetext": {"stages": imagetext}})
    assert sorted(everything) == sorted(project_graph.names)


def test_default_params_run_the_required_stages_in_order(project_graph):
    params = load_params(ROOT / "params.yaml")
    plan = stage_plan(project_graph, STAGES, OPTIONAL_STAGES, params)
    if not params["model"]["checkpoint"] and not (params.get("pretrain") or {}).get("methods"):
        assert plan == REQUIRED  # random init: no pretraining stage
    assert [s for s in plan if s in REQUIRED] == REQUIRED


@pytest.mark.parametrize("names, message", [
    (LINEAR + ["export"], "unknown to the flow: ['export']"),
    ([s for s in LINEAR if s != "evaluate"], "missing from dvc.yaml: ['evaluate']"),
])
def test_added_or_removed_stage_is_drift(names, message):
    graph = DvcGraph(names, {n: LINEAR_UP.get(n, set()) & set(names) for n in names})
    with pytest.raises(StageDrift, match=message.replace("[", r"\[").replace("]", r"\]")):
        stage_plan(graph, STAGES, OPTIONAL_STAGES)


def test_order_against_dependencies_is_drift():
    upstream = {**LINEAR_UP, "validate": {"prepare", "finetune"}}  # validate now needs finetune
    with pytest.raises(StageDrift, match="runs 'validate' before 'finetune'"):
        stage_plan(DvcGraph(LINEAR, upstream), STAGES, OPTIONAL_STAGES)


PRETRAIN = ["prepare", "validate", "pretrain_tokenizer", "pretrain_mae", "pretrain_beit",
            "pretrain@moco", "finetune", "evaluate", "register"]
PRETRAIN_UP = {**LINEAR_UP, "pretrain_tokenizer": {"validate"}, "pretrain_mae": {"validate"},
               "pretrain_beit": {"validate", "pretrain_tokenizer"}, "pretrain@moco": {"validate"}}
PRETRAIN_OUTS = {"pretrain_mae": ["pretrained/mae/backbone.safetensors"],
                 "pretrain_beit": ["pretrained/beit"], "pretrain@moco": ["pretrained/moco"]}


@pytest.mark.parametrize("params, expected", [
    ({}, []),                                                        # random init
    ({"pretrain": {"methods": ["random"]}}, []),                     # no stage for it: fine
    ({"pretrain": {"methods": ["mae"]}}, ["pretrain_mae"]),
    ({"pretrain": {"methods": ["beit", "moco"]}},                    # + beit's tokenizer
     ["pretrain_tokenizer", "pretrain_beit", "pretrain@moco"]),
    ({"model": {"checkpoint": "pretrained/mae/backbone.safetensors"}}, ["pretrain_mae"]),
    ({"model": {"checkpoint": "pretrained/beit/backbone.safetensors"}},  # inside an out folder
     ["pretrain_tokenizer", "pretrain_beit"]),
])
def test_pretraining_runs_what_params_ask_for(params, expected):
    graph = DvcGraph(PRETRAIN, PRETRAIN_UP, PRETRAIN_OUTS)
    plan = stage_plan(graph, STAGES, OPTIONAL_STAGES, params)
    assert plan == ["prepare", "validate", *expected, "finetune", "evaluate", "register"]


def test_unknown_method_is_drift_and_dependencies_are_pulled_in():
    graph = DvcGraph(PRETRAIN, PRETRAIN_UP, PRETRAIN_OUTS)
    with pytest.raises(StageDrift, match=r"lists \['byol'\]"):
        stage_plan(graph, STAGES, OPTIONAL_STAGES, {"pretrain": {"methods": ["byol"]}})
    # finetune declaring the MAE backbone as a dependency pulls pretrain_mae in, as in DVC
    graph.upstream["finetune"] = {"validate", "pretrain_mae"}
    assert "pretrain_mae" in stage_plan(graph, STAGES, OPTIONAL_STAGES, {})


def test_dvc_graph_expands_foreach_and_orders_by_dependency(tmp_path: Path):
    """A foreach stage appears as pretrain@<method>, before what needs it; outs are listed."""
    subprocess.run([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], cwd=tmp_path,
                   check=True)
    (tmp_path / "params.yaml").write_text("pretrain: {methods: [mae, moco]}\n")
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {
        "finetune": {"cmd": "true", "deps": ["pre/mae.pt", "data"], "outs": ["model"]},
        "pretrain": {"foreach": "${pretrain.methods}",
                     "do": {"cmd": "true", "deps": ["data"], "outs": ["pre/${item}.pt"]}},
        "prepare": {"cmd": "true", "outs": ["data"]},
    }}))
    graph = dvc_graph(tmp_path)
    assert sorted(graph.names) == ["finetune", "prepare", "pretrain@mae", "pretrain@moco"]
    assert graph.names.index("prepare") < graph.names.index("pretrain@mae") \
        < graph.names.index("finetune")
    assert graph.upstream["finetune"] == {"prepare", "pretrain@mae"}
    assert graph.outs["pretrain@moco"] == ["pre/moco.pt"]


EXPERIMENTS = [*LINEAR, "experiment_fpn", "experiment_transfer"]
EXPERIMENTS_UP = {**LINEAR_UP, "experiment_fpn": {"validate"},
                  "experiment_transfer": {"validate"}}


@pytest.mark.parametrize("params, expected", [
    ({}, []),
    ({"experiments": {"run": ["fpn"]}}, ["experiment_fpn"]),
    ({"experiments": {"run": ["transfer", "fpn"]}}, ["experiment_fpn", "experiment_transfer"]),
])
def test_experiments_run_after_register_when_listed(params, expected):
    plan = stage_plan(DvcGraph(EXPERIMENTS, EXPERIMENTS_UP), STAGES, OPTIONAL_STAGES, params)
    assert plan == [*LINEAR, *expected]


def test_unknown_experiment_is_drift():
    with pytest.raises(StageDrift, match=r"experiments.run lists \['table9'\]"):
        stage_plan(DvcGraph(EXPERIMENTS, EXPERIMENTS_UP), STAGES, OPTIONAL_STAGES,
                   {"experiments": {"run": ["table9"]}})
