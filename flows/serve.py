"""Serve the `local` and `nightly` deployments from one process, without a work pool or worker.

    PREFECT_API_URL=http://127.0.0.1:4200/api python -m flows.serve

The alternative to ``prefect deploy`` + ``prefect worker start`` (infra/scripts/servers.sh) for a
single machine: the schedules, parameters and descriptions come from prefect.yaml, so both
routes deploy the same thing. Stop with SIGTERM or Ctrl-C (stopping pauses the schedules).
"""
from __future__ import annotations

import sys
from pathlib import Path

import yaml

from components.common.env import PROJECT_ROOT, apply_defaults

__all__ = ["deployments", "main"]

SERVED = ("local", "nightly")  # gpu-cluster needs its Kubernetes work pool


def deployments(prefect_yaml: Path = PROJECT_ROOT / "prefect.yaml") -> list:
    """RunnerDeployments of the `pipeline` flow for the SERVED entries of prefect.yaml."""
    from prefect.client.schemas.schedules import CronSchedule

    from flows.pipeline import pipeline

    spec = {d["name"]: d for d in yaml.safe_load(prefect_yaml.read_text())["deployments"]}
    out = []
    for name in SERVED:
        d = spec[name]
        schedules = [CronSchedule(cron=s["cron"], timezone=s.get("timezone"))
                     for s in d.get("schedules") or [] if s.get("active", True)]
        out.append(pipeline.to_deployment(name=name, parameters=d.get("parameters") or {},
                                          description=d.get("description"), tags=d.get("tags"),
                                          schedules=schedules or None))
    return out


def main() -> int:
    apply_defaults()
    from prefect import serve

    serve(*deployments())
    return 0


if __name__ == "__main__":
    sys.exit(main())
