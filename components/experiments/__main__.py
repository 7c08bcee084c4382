"""``python -m components.experiments {list,run,report,variant} ...`` (each has ``--help``).

Exit status: 0 ok; 1 a variant failed (or, for ``report``, is failed/missing); 2 usage error
(unknown experiment or variant, bad ``--set``).
"""
from __future__ import annotations

import argparse
import shlex
import sys

from components.common.env import apply_defaults
from components.common.params import add_params_arguments

PROG = "python -m components.experiments"


def _common(ap: argparse.ArgumentParser, *, selection: bool = True) -> None:
    add_params_arguments(ap, example="finetune.epochs=2 (applied before experiments.recipe and "
                         "the variant's overrides)")
    if selection:
        ap.add_argument("--seeds", nargs="+", type=int, default=None,
                        help="seeds (default: experiments.seeds)")
        ap.add_argument("--variants", nargs="+", default=None, metavar="NAME",
                        help="only these variants (names or shell patterns, e.g. 'mae-*')")


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=PROG, description=(
        "Paper experiments (arXiv 2111.11429): fine-tune + evaluate every variant x seed, each "
        "in its own process under one MLflow parent run, and write reports/<name>/."))
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("list", help="list the experiments and their variants")
    _common(p, selection=False)
    p = sub.add_parser("run", help="run an experiment's variants x seeds, then write its report",
                       description="Run NAME: every selected variant at every seed (each in "
                                   "its own process), skipping jobs whose result is current, "
                                   "then write reports/NAME/ and log it to MLflow.")
    p.add_argument("name", help="experiment (see `list`)")
    _common(p)
    p.add_argument("--force", action="store_true", help="rerun jobs even if their result is current")
    p.add_argument("--validated", default=None, metavar="PATH",
                   help="validation marker (default: results/validation/validated.json)")
    p.add_argument("--inference-images", type=int, default=10, metavar="N",
                   help="test images timed for inference, batch 1 (default: %(default)s)")
    p = sub.add_parser("report", help="re-render reports/NAME/ from saved result.json files",
                       description="Re-render reports/NAME/ from the jobs' result.json files "
                                   "(no training) and log it to the MLflow parent run.")
    p.add_argument("name", help="experiment (see `list`)")
    _common(p)
    p.add_argument("--no-mlflow", action="store_true", help="do not log the report to MLflow")
    p = sub.add_parser("variant", help="internal: run one job from its request.json",
                       description="Internal (started by `run`): run the job described by "
                                   "REQUEST (a request.json) in this process; writes "
                                   "result.json next to it.")
    p.add_argument("request", help="path of the job's request.json")
    return ap


def _usage(msg: str) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    apply_defaults()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    if args.cmd == "variant":
        from components.experiments.variant import run_request

        return run_request(args.request)

    import components.experiments as experiments
    from components.common.params import load_params_or_exit
    from components.experiments.plan import UsageError, select_variants

    params = load_params_or_exit(args.params, args.overrides)
    try:
        if args.cmd == "list":
            for spec in experiments.EXPERIMENTS.values():
                print(f"{spec.name:10s} {spec.paper}: {spec.title}")
                for v in select_variants(spec, params):
                    print(f"    {v.name:28s} {v.overrides}")
            return 0
        try:
            spec = experiments.get_experiment(args.name)
        except KeyError as exc:
            return _usage(str(exc.args[0]))
        command = f"{PROG} {shlex.join(argv)}"
        if args.cmd == "run":
            from components.experiments.runner import run_experiment

            return run_experiment(spec.name, params, seeds=args.seeds, variants=args.variants,
                                  force=args.force, validation_marker=args.validated,
                                  inference_images=args.inference_images,
                                  command=command).exit_code
        return _report(spec, params, args, command)
    except UsageError as exc:  # planning: unknown variant, bad section or recipe
        return _usage(str(exc))


def _report(spec, params: dict, args: argparse.Namespace, command: str) -> int:
    from components.experiments.plan import plan
    from components.experiments.report import collect_results, write_report

    jobs = plan(spec, params, seeds=args.seeds, names=args.variants)
    variants = list({j.variant.name: j.variant for j in jobs}.values())
    seeds = list(dict.fromkeys(j.seed for j in jobs))
    folder, summaries = write_report(spec, params, variants, seeds, collect_results(jobs),
                                     command=command, mlflow=not args.no_mlflow)
    print(f"[exp {spec.name}] wrote {folder}")
    return 0 if all(s.status == "ok" for s in summaries) else 1

if __name__ == "__main__":
    sys.exit(main())
