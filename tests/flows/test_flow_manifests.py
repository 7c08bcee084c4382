"""Static checks of every deployment/infra manifest with the tools that consume them
(Prefect's own schemas and templating, DVC's config schema): they parse, they validate,
the Kubernetes job template renders with its variables substituted."""
from __future__ import annotations

import json
import re
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
TEMPLATE = json.loads((INFRA / "k8s" / "base-job-template.json").read_text())
PREFECT_YAML = yaml.safe_load((ROOT / "prefect.yaml").read_text())
DEPLOYMENTS = {d["name"]: d for d in PREFECT_YAML["deployments"]}


@pytest.mark.parametrize("path", sorted(
    p.relative_to(ROOT).as_posix() for p in [*INFRA.rglob("*.json"), *INFRA.rglob("*.yaml"),
                                              *INFRA.rglob("*.yml"), *INFRA.rglob("*.toml"),
                                              ROOT / "prefect.yaml"]))
def test_every_manifest_parses(path):
    text = (ROOT / path).read_text()
    loaded = (json.loads(text) if path.endswith(".json") else tomllib.loads(text)
              if path.endswith(".toml") else yaml.safe_load(text))
    assert loaded


def _render(values: dict) -> dict:
    """What a Kubernetes worker does: variable defaults, then values, substituted by Prefect's
    own templating (placeholders without a value are dropped)."""
    from prefect.utilities.schema_tools import validate
    from prefect.utilities.templating import apply_values
    from prefect.workers.base import BaseJobConfiguration

    validate(values, TEMPLATE["variables"], raise_on_error=True, preprocess=True,
             ignore_required=True)
    variables = BaseJobConfiguration._get_base_config_defaults(TEMPLATE["variables"]["properties"])
    variables.update(values)
    return apply_values(TEMPLATE["job_configuration"], variables)


def test_k8s_template_is_accepted_by_prefect_server_schema():
    from prefect.server.schemas.actions import WorkPoolCreate

    WorkPoolCreate(name="gpu-cluster", type="kubernetes", base_job_template=TEMPLATE)
    broken = json.loads(json.dumps(TEMPLATE))
    del broken["variables"]["properties"]["gpu_count"]
    with pytest.raises(ValueError, match="gpu_count"):
        WorkPoolCreate(name="gpu-cluster", type="kubernetes", base_job_template=broken)


@pytest.mark.parametrize("source", ["values.example.json", "prefect.yaml gpu-cluster"])
def test_k8s_job_renders_gpu_node_selector_tolerations_image(source):
    values = (json.loads((INFRA / "k8s" / "values.example.json").read_text())
              if source.endswith(".json") else DEPLOYMENTS["gpu-cluster"]["work_pool"]["job_variables"])
    cfg = _render({**values, "name": "pipeline-run", "command": "prefect flow-run execute"})
    assert "{{" not in json.dumps(cfg), "a placeholder was left unsubstituted"
    job = cfg["job_manifest"]
    assert job["apiVersion"] == "batch/v1" and job["kind"] == "Job"
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == values["image"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == values["gpu_count"]
    assert isinstance(container["resources"]["limits"]["nvidia.com/gpu"], int)
    assert pod["nodeSelector"] == values["node_selector"]
    assert pod["tolerations"] == values["tolerations"]
    assert container["env"] == values["env"]
    assert job["metadata"]["generateName"] == "pipeline-run-"
    assert {"name": "dshm", "mountPath": "/dev/shm"} in container["volumeMounts"]


def test_k8s_defaults_render_and_bad_values_are_rejected():
    cfg = _render({})
    limits = cfg["job_manifest"]["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits["nvidia.com/gpu"] == 1 and "cpu" not in limits  # unset cpu_limit is dropped
    from prefect.utilities.schema_tools import ValidationError, validate

    for bad in ({"gpu_count": -1}, {"gpu_count": "two"},
                {"tolerations": [{"operator": "Sometimes"}]}, {"node_selector": {"a": 1}}):
        with pytest.raises(ValidationError):
            validate(bad, TEMPLATE["variables"], raise_on_error=True, ignore_required=True)


def test_prefect_yaml_deployments():
    from prefect.cli.deploy._models import PrefectYamlModel
    from prefect.client.schemas.schedules import CronSchedule
    from prefect.flows import load_flow_from_entrypoint

    model = PrefectYamlModel.model_validate(PREFECT_YAML)
    assert {d.name for d in model.deployments} == {"local", "nightly", "gpu-cluster"}
    pools = {d.name: d.work_pool.name for d in model.deployments}
    assert pools == {"local": "local", "nightly": "local", "gpu-cluster": "gpu-cluster"}
    for d in model.deployments:
        flow = load_flow_from_entrypoint(str(ROOT / d.entrypoint))
        assert flow.name == "pipeline"
        assert set(d.parameters) <= set(flow.parameters.properties)
    (nightly,) = DEPLOYMENTS["nightly"]["schedules"]
    assert nightly["timezone"] and nightly["active"] is True
    CronSchedule(cron=nightly["cron"], timezone=nightly["timezone"])  # valid cron + IANA zone
    assert "pull" not in PREFECT_YAML, "a global pull step would break local deployments"
    assert DEPLOYMENTS["gpu-cluster"]["pull"]  # the image's path, not the deploying machine's


def test_prefect_profiles_are_valid_settings():
    from prefect.settings.profiles import _read_profiles_from

    profiles = _read_profiles_from(INFRA / "prefect" / "profiles.toml")
    assert set(profiles.names) == {"vitdet-local", "vitdet-team"}
    for name in profiles.names:
        profiles[name].validate_settings()
    assert profiles["vitdet-local"].settings  # not silently empty


def test_dvc_s3_remote_example_passes_dvc_schema():
    import configobj
    from dvc.config import Config, ConfigError

    raw = configobj.ConfigObj(str(INFRA / "dvc" / "config.s3.example"))
    conf: dict = {"remote": {}}
    for section, values in raw.items():
        if m := re.fullmatch(r'remote "(.+)"', section):
            conf["remote"][m.group(1)] = dict(values)
        else:
            conf[section] = dict(values)
    checked = Config.validate(conf)
    assert checked["core"]["remote"] in checked["remote"]
    assert checked["remote"]["team"]["url"].startswith("s3://")
    conf["remote"]["team"]["endpoint_url"] = "typo"
    with pytest.raises(ConfigError):
        Config.validate(conf)


def test_mlflow_team_stack_uses_postgres_and_s3_and_binds_localhost():
    compose = yaml.safe_load((INFRA / "mlflow" / "docker-compose.yml").read_text())
    services = compose["services"]
    cmd = " ".join(services["mlflow"]["command"])
    assert "--backend-store-uri postgresql+psycopg2://" in cmd
    assert "--artifacts-destination s3://" in cmd and "--serve-artifacts" in cmd
    assert services["mlflow"]["environment"]["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    for svc in services.values():
        for port in svc.get("ports", []):
            assert port.startswith("127.0.0.1:"), port
    env_keys = {line.split("=")[0] for line in (INFRA / "mlflow" / "mlflow.env.example")
                .read_text().splitlines() if "=" in line and not line.startswith("#")}
    used = set(re.findall(r"\$\{(\w+)", (INFRA / "mlflow" / "docker-compose.yml").read_text()))
    assert used <= env_keys, f"compose uses variables the env example lacks: {used - env_keys}"


@pytest.mark.parametrize("name", ["Dockerfile.cpu", "Dockerfile.cuda"])
def test_worker_dockerfiles(name):
    text = (INFRA / "docker" / name).read_text()
    instructions = [line.split()[0] for line in text.splitlines()
                    if line and not line.startswith((" ", "#"))]
    assert set(instructions) <= {"ARG", "FROM", "ENV", "RUN", "WORKDIR", "COPY", "USER",
                                 "ENTRYPOINT", "CMD", "EXPOSE"}
    assert "bash infra/setup.sh" in text and "prefect worker start" in text
    assert re.search(r"^FROM (python:3\.11|\$\{CUDA_IMAGE\})", text, re.M)
    assert (INFRA / "docker" / f"{name}.dockerignore").read_text().count(".venv")


def test_servers_script_syntax_and_commands():
    script = INFRA / "scripts" / "servers.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)
    out = subprocess.run(["bash", str(script), "help"], capture_output=True, text=True,
                         check=True).stdout
    for cmd in ("prefect-start", "prefect-stop", "mlflow-start", "mlflow-stop", "pool", "deploy",
                "worker-start", "worker-stop", "status"):
        assert cmd in out


def test_serve_builds_the_same_local_and_nightly_deployments():
    from flows.serve import deployments

    served = {d.name: d for d in deployments()}
    assert set(served) == {"local", "nightly"}
    (sched,) = served["nightly"].schedules
    (spec,) = DEPLOYMENTS["nightly"]["schedules"]
    assert (sched.schedule.cron, sched.schedule.timezone) == (spec["cron"], spec["timezone"])
    assert served["local"].schedules == [] and served["local"].entrypoint.endswith(":pipeline")
