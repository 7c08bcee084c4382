"""Planning without training: override order, variant selection, transfer expansion and its
pre-flight checks, the CLI's usage errors."""
from __future__ import annotations

import json

import pytest

import components.experiments  # noqa: F401  (registers the built-ins)
from components.common.params import DEFAULT_PARAMS, load_params, load_params_or_exit
from components.experiments.__main__ import main
from components.experiments.plan import UsageError, plan, select_variants, variant_params
from components.experiments.registry import EXPERIMENTS, Variant, VariantError, get_experiment


@pytest.fixture
def params(tmp_path):
    p = load_params()
    p["experiments"] = {"work_dir": str(tmp_path / "runs"), "out": str(tmp_path / "reports"),
                        "seeds": [0, 1], "recipe": {}}
    return p


def test_override_order_base_recipe_variant_seed_folder(params, tmp_path):
    params["experiments"]["recipe"] = {"finetune.epochs": 3, "model.adapter": "simple",
                                       "seed": 99, "finetune.lr": 0.5}
    base = load_params_or_exit(DEFAULT_PARAMS, ["finetune.epochs=7", "finetune.batch_size=3"])
    base["experiments"] = params["experiments"]
    v = Variant("single", {"model.adapter": "single", "finetune.lr": 0.25})
    out = variant_params(base, v, 4, tmp_path / "job")
    assert out["finetune"]["batch_size"] == 3        # --set on the base survives
    assert out["finetune"]["epochs"] == 3            # recipe beats --set
    assert out["finetune"]["lr"] == 0.25             # variant beats recipe
    assert out["model"]["adapter"] == "single"
    assert out["seed"] == 4                          # the job's seed beats the recipe
    assert out["finetune"]["work_dir"] == str(tmp_path / "job")
    assert out["evaluate"]["out"] == str(tmp_path / "job" / "evaluate")
    assert base["finetune"]["epochs"] == 7           # the base is not modified


def test_experiment_recipe_sits_between_shared_recipe_and_variant(params, tmp_path):
    params["experiments"]["recipe"] = {"finetune.epochs": 3, "finetune.img_size": 128}
    params["experiments"]["fpn"] = {"recipe": {"finetune.img_size": 256, "finetune.lr": 0.1}}
    v = Variant("single", {"model.adapter": "single", "finetune.lr": 0.25})
    out = variant_params(params, v, 0, tmp_path / "job", experiment="fpn")
    assert out["finetune"]["epochs"] == 3 and out["finetune"]["img_size"] == 256
    assert out["finetune"]["lr"] == 0.25
    other = variant_params(params, v, 0, tmp_path / "job", experiment="attention")
    assert other["finetune"]["img_size"] == 128
    params["experiments"]["fpn"] = {"recipe": {"finetune.no_such_key": 1}}
    with pytest.raises(UsageError, match="experiments.fpn.recipe"):
        variant_params(params, v, 0, tmp_path / "job", experiment="fpn")


def test_recipe_with_unknown_key_is_a_usage_error(params):
    params["experiments"]["recipe"] = {"finetune.epoch": 3}
    with pytest.raises(UsageError, match="experiments.recipe.*finetune.epoch"):
        plan(get_experiment("fpn"), params)


def test_plan_is_seed_major_with_one_folder_per_job(params, tmp_path):
    jobs = plan(get_experiment("attention"), params, seeds=[3, 5], names=["windowed", "global*"])
    assert [j.key for j in jobs] == ["windowed-s3", "global_checkpointing-s3", "global-s3",
                                     "windowed-s5", "global_checkpointing-s5", "global-s5"]
    assert jobs[1].dir == tmp_path / "runs" / "attention" / "global_checkpointing-s3"
    assert jobs[1].params["model"]["attention"] == "global"
    assert jobs[1].params["model"]["activation_checkpointing"] is True
    assert jobs[2].params["model"]["activation_checkpointing"] is False


def test_registry_sweep_every_default_variant_applies_to_params_yaml(params):
    for spec in EXPERIMENTS.values():
        jobs = plan(spec, params, seeds=[0])
        assert jobs, spec.name
        assert len({j.dir for j in jobs}) == len(jobs)
        assert "bbox_mAP" in [c.key for c in spec.columns], spec.name  # every table has APbox


def test_transfer_expands_inits_x_sizes_x_epochs(params):
    params["experiments"]["transfer"] = {"inits": ["random", "mae"], "sizes": ["tiny", "small"],
                                         "epochs": [1, 3]}
    params["pretrain"]["out"] = "some/where"
    vs = select_variants(get_experiment("transfer"), params)
    assert [v.name for v in vs] == [
        "random-tiny-ep1", "random-tiny-ep3", "mae-tiny-ep1", "mae-tiny-ep3",
        "random-small-ep1", "random-small-ep3", "mae-small-ep1", "mae-small-ep3"]
    assert vs[3].overrides == {"model.checkpoint": "some/where/mae/backbone.safetensors",
                               "model.size": "tiny", "finetune.epochs": 3}
    assert vs[3].labels == {"init": "mae", "size": "tiny", "epochs": 3}
    assert [v.name for v in select_variants(get_experiment("transfer"), params, ["mae-small-*"])
            ] == ["mae-small-ep1", "mae-small-ep3"]


def test_transfer_defaults_apply_without_an_experiments_block():
    p = load_params()
    p.pop("experiments", None)
    names = [v.name for v in select_variants(get_experiment("transfer"), p)]
    assert len(names) == 5 * 1 * 2 and names[0] == "random-tiny-ep2"


def test_transfer_check_names_the_pretraining_command(params, tmp_path):
    spec = get_experiment("transfer")
    params["pretrain"]["out"] = str(tmp_path / "pre")
    params["experiments"]["transfer"] = {"inits": ["mae"], "sizes": ["tiny"], "epochs": [1]}
    job = plan(spec, params, seeds=[0])[0]
    with pytest.raises(VariantError, match=r"not found; produce it with `dvc repro pretrain_mae`"):
        spec.check(job.variant, job.params)
    folder = tmp_path / "pre" / "mae"
    folder.mkdir(parents=True)
    (folder / "backbone.safetensors").write_bytes(b"x")
    spec.check(job.variant, job.params)              # no meta.json: nothing to compare
    (folder / "meta.json").write_text(json.dumps({"size": "small", "images": 10}))
    with pytest.raises(VariantError, match=r"records size 'small'.*model.size='tiny'"):
        spec.check(job.variant, job.params)
    (folder / "meta.json").write_text(json.dumps({"size": "tiny"}))
    spec.check(job.variant, job.params)


@pytest.mark.parametrize("argv, needle", [
    (["run", "nope"], "known: attention, fpn, heads, mobilevit, objectaware, transfer"),
    (["report", "nope"], "known: attention, fpn, heads, mobilevit, objectaware, transfer"),
    (["run", "fpn", "--variants", "nope"], "known: ['multiscale', 'simple', 'single']"),
])
def test_cli_usage_errors_exit_2(argv, needle, capsys):
    assert main(argv) == 2
    assert needle in capsys.readouterr().err


def test_cli_bad_set_exits_2_and_list_shows_variants(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["run", "fpn", "--set", "finetune.nope=1"])
    assert exc.value.code == 2
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    longest = max(load_params()["experiments"]["transfer"]["epochs"])
    assert "fpn" in out and "global_checkpointing" in out and f"mae-tiny-ep{longest}" in out


def test_experiment_seeds_override_the_shared_seeds(params):
    spec = get_experiment("fpn")
    params["experiments"]["fpn"] = {"variants": ["single"], "seeds": [5]}
    assert [j.seed for j in plan(spec, params)] == [5]
    assert [j.seed for j in plan(spec, params, seeds=[1, 2])] == [1, 2]   # --seeds wins
    del params["experiments"]["fpn"]["seeds"]
    assert [j.seed for j in plan(spec, params)] == [0, 1]


def test_heads_variants_switch_one_upgrade_each(params, tmp_path):
    from components.train.config import head_upgrades

    spec = get_experiment("heads")
    params["experiments"]["heads"] = {"variants": ["paper", "classic", "no_box_4conv1fc"],
                                      "seeds": [0]}
    jobs = {j.variant.name: j for j in plan(spec, params)}
    assert head_upgrades(jobs["paper"].params["model"]["heads"]) == dict.fromkeys(
        ("fpn_norm", "rpn_2conv", "box_4conv1fc", "mask_norm"), True)
    assert not any(head_upgrades(jobs["classic"].params["model"]["heads"]).values())
    one = head_upgrades(jobs["no_box_4conv1fc"].params["model"]["heads"])
    assert one == {"fpn_norm": True, "rpn_2conv": True, "box_4conv1fc": False, "mask_norm": True}
    params["experiments"]["heads"]["variants"] = ["bigger"]
    with pytest.raises(UsageError, match="known"):
        plan(spec, params)
