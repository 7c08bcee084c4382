"""Per-iteration cost of the fine-tuning stage's own machinery (goal: <= 5 %, MLflow <= 2 %).

Compares, in one process on the same synthetic data and resolved config:

  stage  components.train.finetune.finetune(): our hooks (NaN guard, MLflow metrics, run
         state), the finite-loss optimizer wrapper, inside stage_run's MLflow runs;
  plain  mmengine Runner.from_cfg(cfg).train() of the same config without our custom hooks
         and without an MLflow run.

Iteration times come from mmengine's IterTimerHook (``train/time``: data + step) - for the
stage from the ``train/iter_time`` metric our hook logs, for the plain runner from its message
hub - dropping the first ``--skip`` iterations. Variants alternate (plain, stage, plain, ...)
over ``--rounds`` to spread machine noise; the ratio is of the medians. The MLflow share is the
time the training thread spent inside ``MLflowMetricsHook.after_train_iter`` (building and
queueing metrics; the sqlite writes run on MLflow's async logging thread and show up in the
stage/plain ratio instead).

    python benchmarks/finetune_overhead.py --iters 20 --tiny
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from components.common.env import apply_defaults  # noqa: E402


def _dataset(tmp: Path, n_train: int, image_size: int):
    from components.data.synthetic import generate, resolve_config
    from components.validation import validate_dataset

    root = tmp / "ds"
    cfg = resolve_config({"image_size": image_size,
                          "num_images": {"train": n_train, "val": 2, "test": 0, "unlabeled": 0}})
    generate(root, cfg, seed=0)
    marker_dir = tmp / "validation"
    if not validate_dataset(root, {"decode_images": False}, marker_dir, progress=False).success:
        raise SystemExit("benchmark dataset failed validation")
    return root, marker_dir / "validated.json"


def _plain(params: dict, work: Path, skip: int) -> list[float]:
    from mmengine.runner import Runner

    from components.train.config import build_config

    cfg = build_config(params, work_dir=work)
    cfg.custom_hooks = []
    cfg.default_hooks.checkpoint.interval = 10**6  # no checkpoint inside the timed epoch
    cfg.default_hooks.checkpoint.save_last = False
    cfg.default_hooks.checkpoint.save_best = None
    runner = Runner.from_cfg(cfg)
    runner.train()
    return list(runner.message_hub.get_scalar("train/time").data[0])[skip:]


def _stage(params: dict, marker: Path, skip: int) -> tuple[list[float], int]:
    import mlflow

    from components.train.finetune import finetune

    result = finetune(params, validation_marker=marker)
    run_id = result.meta["finetune_run_id"]
    hist = mlflow.MlflowClient().get_metric_history(run_id, "train/iter_time")
    times = [h.value for h in sorted(hist, key=lambda h: h.step)][skip:]
    return times, result.meta["iterations"]


def main(argv: list[str] | None = None) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="vitdet-bench-"))
    # benchmark runs stay out of the project's MLflow store unless a URI is given
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{tmp / 'mlflow.db'}")
    os.environ.setdefault("VITDET_PIPELINE_ID", "bench-finetune-overhead")
    apply_defaults()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--iters", type=int, default=20, help="iterations per variant and round")
    ap.add_argument("--skip", type=int, default=2, help="warm-up iterations not timed")
    ap.add_argument("--rounds", type=int, default=2, help="alternating plain/stage rounds")
    ap.add_argument("--tiny", action="store_true",
                    help="tiny model (testkit.finetune.TINY_OVERRIDES) at 128 px")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args(argv)

    from components.common.params import apply_overrides, load_params, parse_override
    from components.train import hooks
    from testkit.finetune import tiny_params

    params = load_params(args.params, dict(parse_override(o) for o in args.overrides))
    if args.tiny:
        params = tiny_params(params, tmp / "ds", tmp / "work")
    ft = params["finetune"]
    root, marker = _dataset(tmp, args.iters * int(ft["batch_size"]), int(ft["img_size"]))
    params = apply_overrides(params, {"data.out": str(root), "finetune.epochs": 1,
                                      "finetune.val_interval": 1, "finetune.warmup_epochs": 0.1})

    # measure the hook's own time in the training thread (kept in a class-level counter)
    original = hooks.MLflowMetricsHook.after_train_iter
    spent = {"s": 0.0, "n": 0}

    def timed(self, runner, *a, **k):
        t0 = time.perf_counter()
        original(self, runner, *a, **k)
        spent["s"] += time.perf_counter() - t0
        spent["n"] += 1

    hooks.MLflowMetricsHook.after_train_iter = timed
    plain_t, stage_t, walls = [], [], {"plain": [], "stage": []}
    for r in range(args.rounds):
        t0 = time.perf_counter()
        plain_t += _plain(params, tmp / f"plain{r}", args.skip)
        t1 = time.perf_counter()
        p = apply_overrides(params, {"finetune.work_dir": str(tmp / f"stage{r}")})
        times, iters = _stage(p, marker, args.skip)
        stage_t += times
        walls["plain"].append(t1 - t0)
        walls["stage"].append(time.perf_counter() - t1)
        print(f"round {r}: plain {t1 - t0:.1f}s wall, stage {time.perf_counter() - t1:.1f}s wall "
              f"({iters} iterations each)", flush=True)
    mp, ms = statistics.median(plain_t), statistics.median(stage_t)
    hook_per_iter = spent["s"] / max(1, spent["n"])
    print(f"\niteration time (median of {len(plain_t)}): plain {mp * 1e3:.1f} ms, "
          f"stage {ms * 1e3:.1f} ms, ratio {ms / mp:.3f} (goal <= 1.05)")
    print(f"MLflow hook in the training thread: {hook_per_iter * 1e3:.2f} ms/iter = "
          f"{100 * hook_per_iter / ms:.2f}% of an iteration (goal <= 2%)")
    print(json.dumps({
        "iterations_timed": {"plain": len(plain_t), "stage": len(stage_t)},
        "median_iter_s": {"plain": round(mp, 4), "stage": round(ms, 4)},
        "ratio": round(ms / mp, 4), "ratio_goal": 1.05,
        "mlflow_hook_ms_per_iter": round(hook_per_iter * 1e3, 3),
        "mlflow_share_of_iter": round(hook_per_iter / ms, 5), "mlflow_share_goal": 0.02,
        "wall_s_per_run": {k: [round(v, 1) for v in vs] for k, vs in walls.items()},
        "tiny": args.tiny, "batch_size": int(ft["batch_size"]), "img_size": int(ft["img_size"]),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
