"""CLI: ``python -m components.pretrain --params params.yaml --method mae [--set k=v ...]``.

Resolves the method's config (:mod:`components.pretrain.config`), runs it
(:func:`components.pretrain.stage.run`) inside an MLflow stage run ``pretrain-<method>`` nested
under the pipeline's parent run (per-step ``loss``/``lr``/... metrics, final figures, meta.json
and the loss curve as artifacts; the weights themselves are versioned by DVC, not MLflow).
"""
from __future__ import annotations

import argparse
import sys
from typing import Any, Callable

from components.common.env import apply_defaults
from components.common.tracked import tracked
from components.common.params import add_params_arguments, apply_overrides, load_params, parse_override

__all__ = ["main", "run_stage", "pretrain_method"]

_FINAL_METRICS = ("final_loss", "initial_loss", "throughput_img_s", "train_s", "wall_s", "steps",
                  "images")


def _parser(prog: str, description: str, with_method: bool) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=prog, description=description)
    add_params_arguments(ap, example="pretrain.mae.epochs=2 or pretrain.max_steps=2")
    if with_method:
        ap.add_argument("--method", help="pretraining method (see --list)")
        ap.add_argument("--list", action="store_true", help="list the registered methods and exit")
    ap.add_argument("--no-tracking", action="store_true",
                    help="do not log to MLflow (e.g. on a machine without mlflow)")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    return ap


def _tracked(name: str, params: dict, work: Callable[..., dict[str, Any]], out_dir) -> dict:
    """``work`` in the stage run ``pretrain-<name>``, streaming per-step metrics to it."""
    def run() -> dict[str, Any]:
        import mlflow

        meta = work(on_log=lambda step, metrics: mlflow.log_metrics(metrics, step=step))
        meta["mlflow_run_id"] = mlflow.active_run().info.run_id
        return meta

    def log(mlflow, meta: dict[str, Any]) -> None:
        mlflow.log_metrics({k: float(meta[k]) for k in _FINAL_METRICS
                            if isinstance(meta.get(k), (int, float))})
        mlflow.set_tags({"pretrain.method": name, "pretrain.data_hash": str(meta.get("data_hash"))})
        for artifact in ("meta.json", "loss_curve.png", "loss.csv"):
            if (out_dir / artifact).is_file():
                mlflow.log_artifact(str(out_dir / artifact), artifact_path=f"pretrain-{name}")

    return tracked(f"pretrain-{name}", params, run, log)


def pretrain_method(params: dict, name: str, *, progress: bool = True,
                    tracking: bool = True) -> dict[str, Any]:
    """Run registered method ``name`` on ``params`` (a full params dict, overrides applied) as
    the stage would, inside its MLflow stage run when ``tracking``; returns meta.json's dict
    (plus ``mlflow_run_id``). For callers composing stages in one process (experiments)."""
    import components.pretrain as pretrain
    from components.pretrain.config import config_from_params, with_defaults
    from components.pretrain.stage import run

    spec = pretrain.get_method(name)
    params = with_defaults(params, name, spec.defaults)
    cfg = config_from_params(params, name, spec.defaults)

    def work(on_log=None) -> dict[str, Any]:
        return run(cfg, progress=progress, on_log=on_log)

    return _tracked(name, params, work, cfg.out_dir) if tracking else work()


def run_stage(name: str | None, argv: list[str] | None, *, prog: str, description: str) -> int:
    """Shared entry point of ``components.pretrain`` (name None: ``--method``) and the tokenizer."""
    apply_defaults()
    ap = _parser(prog, description, with_method=name is None)
    args = ap.parse_args(argv)
    import components.pretrain as pretrain
    from components.pretrain.config import SHARED_DEFAULTS, config_from_params, with_defaults

    if name is None:
        if args.list:
            for spec in pretrain.METHODS.values():
                print(f"{spec.name:12s} data={spec.data:9s} {spec.summary}")
            return 0
        if not args.method:
            ap.error(f"--method is required; one of {sorted(pretrain.METHODS)}")
        try:
            spec = pretrain.get_method(args.method)
        except KeyError as exc:
            ap.error(str(exc.args[0]))
        name, defaults = spec.name, spec.defaults
    else:
        from components.pretrain.tokenizer import TOKENIZER_DEFAULTS

        defaults = TOKENIZER_DEFAULTS
    params = with_defaults(load_params(args.params), name, defaults)
    try:
        overrides = dict(parse_override(s) for s in args.overrides)
        # A shared training key may be set for one method (``pretrain.mae.batch_size=4``) even
        # though the method section does not list it.
        own = {k: v for k, v in overrides.items()
               if k.startswith(f"pretrain.{name}.") and k.split(".")[-1] in SHARED_DEFAULTS
               and k.count(".") == 2}
        for key, value in own.items():
            params["pretrain"][name][key.split(".")[-1]] = value
        params = apply_overrides(params, {k: v for k, v in overrides.items() if k not in own})
        cfg = config_from_params(params, name, defaults)
    except (KeyError, ValueError) as exc:
        ap.error(str(exc.args[0] if exc.args else exc))

    def work(on_log=None) -> dict[str, Any]:
        if name == "tokenizer":
            from components.pretrain.tokenizer import train_tokenizer

            return train_tokenizer(cfg, progress=not args.quiet, on_log=on_log)
        from components.pretrain.stage import run

        return run(cfg, progress=not args.quiet, on_log=on_log)

    try:
        meta = work() if args.no_tracking else _tracked(name, params, work, cfg.out_dir)
    except (FileNotFoundError, FloatingPointError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    loss = meta.get("final_loss")
    print(f"[pretrain {name}] wrote {cfg.out_dir} ({meta['steps']} steps on {meta['images']} "
          f"images, final loss {'n/a' if loss is None else f'{loss:.4f}'}, "
          f"{meta['throughput_img_s']} img/s, {meta['wall_s']} s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_stage(None, argv, prog="python -m components.pretrain",
                     description="Pretrain the PlainViT backbone with a registered method and "
                                 "write pretrained/<method>/backbone.safetensors + meta.json.")


if __name__ == "__main__":
    sys.exit(main())
