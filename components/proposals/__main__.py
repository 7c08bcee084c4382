"""CLI: ``python -m components.proposals {train,propose} --params params.yaml [--set k=v ...]``.

* ``train``: BING on the train split's boxes -> ``pretrained/bing/`` (model.json, meta.json,
  metrics.json, recall.png), inside the MLflow stage run ``bing-train`` (DR@k of BING and of
  random boxes, img/s and train time as metrics; meta.json and recall.png as artifacts).
* ``propose``: proposals of every image of the given splits -> ``data/proposals/<split>.npz``,
  reusing cached entries whose image sha256 and model version match (stage run ``proposals``).

Values come from ``params.yaml`` ``proposals:`` over the defaults of
:data:`components.proposals.config.PROPOSAL_DEFAULTS` (the stage runs without the block).
"""
from __future__ import annotations

import argparse
import sys

from components.common.env import apply_defaults
from components.common.tracked import tracked
from components.common.params import add_params_arguments, params_from_args

__all__ = ["main"]

PROG = "python -m components.proposals"


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=PROG, description="BING objectness proposals (Cheng et al. "
                                 "2014): train the model, cache per-image proposals.")
    sub = ap.add_subparsers(dest="command", metavar="{train,propose}")
    sub.required = True
    commands = {
        "train": "train BING on the train split's boxes, evaluate DR@k on val, write "
                 "pretrained/bing/ (model.json, meta.json, metrics.json, recall.png)",
        "propose": "write data/proposals/<split>.npz (top-k boxes per image), reusing entries "
                   "whose image sha256 and model version match",
    }
    for name, text in commands.items():
        p = sub.add_parser(name, help=text, description=text)
        add_params_arguments(p, example="proposals.max_train_images=100")
        p.add_argument("--no-tracking", action="store_true",
                       help="do not log to MLflow (e.g. on a machine without mlflow)")
        p.add_argument("--quiet", action="store_true", help="no progress bar")
        if name == "propose":
            p.add_argument("--splits", nargs="+", default=None, metavar="SPLIT",
                           help="dataset splits to cover (default: params proposals.splits)")
    return ap


def _log_train(mlflow, meta: dict) -> None:
    metrics = {f"{name}.dr_at_{k}": v for name, table in meta["evaluation"]["dr"].items()
               for k, v in table.items() if v is not None}
    metrics.update({k: meta[k] for k in ("img_per_s", "train_s", "num_kept_sizes")
                    if meta.get(k) is not None})
    mlflow.log_metrics(metrics)
    mlflow.set_tags({"bing.version": meta["version"],
                     "bing.images_hash": meta["training"]["images_hash"]})
    from components.proposals.config import resolve_path

    out = resolve_path(meta["params"]["out"])
    for name in ("meta.json", "recall.png", "metrics.json"):
        if (out / name).is_file():
            mlflow.log_artifact(str(out / name), artifact_path="bing")


def _log_propose(mlflow, summary: dict) -> None:
    mlflow.log_metrics({f"{split}.{k}": v for split, counts in summary["splits"].items()
                        for k, v in counts.items() if isinstance(v, (int, float))})
    mlflow.set_tag("bing.version", summary["version"])


def main(argv: list[str] | None = None) -> int:
    apply_defaults()
    ap = _parser()
    args = ap.parse_args(argv)
    from components.proposals.config import with_defaults

    params = params_from_args(ap, args, with_defaults)

    from components.data.formats import DataFormatError
    from components.proposals.bing import ModelFileError
    from components.proposals.data import ImageReadError
    from components.proposals.stage import propose_stage, train_stage

    progress = not args.quiet
    try:
        if args.command == "train":
            work = lambda: train_stage(params, progress=progress)  # noqa: E731
            meta = work() if args.no_tracking else tracked("bing-train", params, work, _log_train)
            dr = meta["evaluation"]["dr"]
            table = " ".join(f"DR@{k} {v} (random {dr['random'][k]})" for k, v in dr["bing"].items())
            print(f"[bing train] {meta['training']['images']} images, {meta['train_s']} s, "
                  f"{meta['num_kept_sizes']}/{meta['num_sizes']} sizes kept, version "
                  f"{meta['version'][:12]}; {meta['evaluation']['split']}: {table}; "
                  f"{meta['img_per_s']} img/s")
        else:
            work = lambda: propose_stage(params, args.splits, progress=progress)  # noqa: E731
            summary = work() if args.no_tracking else tracked("proposals", params, work,
                                                               _log_propose)
            for split, c in summary["splits"].items():
                print(f"[bing propose] {split}: {c['images']} images, {c['reused']} reused, "
                      f"{c['computed']} computed, {c['dropped']} dropped -> {c['path']} "
                      f"(model {summary['version'][:12]}, top {summary['top_k']})")
    except (FileNotFoundError, ImageReadError, ModelFileError, DataFormatError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
