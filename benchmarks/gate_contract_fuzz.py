"""Long sweep of the gate/stage contract: N randomly mutated COCO datasets, each either rejected
by the gate with lines naming records, or fine-tuned (tiny model, 3 iterations) and evaluated.

Prints one line per dataset and a JSON summary: tried, accepted, rejected, crashes (contract
breaks, with the mutations that caused them). Exit 1 if any crashed.

    python benchmarks/gate_contract_fuzz.py --examples 60 [--seed 0]
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from testkit.coco_mutations import MUTATIONS, check, mutate  # noqa: E402
from testkit.finetune import make_tiny_dataset  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--examples", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-mutations", type=int, default=3)
    args = ap.parse_args(argv)
    rnd = random.Random(args.seed)
    counts, crashes, rules = Counter(), [], Counter()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="vitdet-fuzz-") as tmp:
        base = make_tiny_dataset(Path(tmp) / "base", validate=False).root
        for i in range(args.examples):
            names = rnd.sample(sorted(MUTATIONS), rnd.randint(1, args.max_mutations))
            work = Path(tmp) / f"ex{i}"
            root = work / "ds"
            shutil.copytree(base, root)
            done = mutate(root, names, rnd.randrange(10**6))
            try:
                out = check(root, work, done)
            except AssertionError as exc:
                counts["crashes"] += 1
                crashes.append({"mutations": done, "error": str(exc)[:600]})
                print(f"[{i}] CRASH {done}: {str(exc)[:200]}", flush=True)
            else:
                counts["accepted" if out.accepted else "rejected"] += 1
                for line in out.failures:
                    rules[line.split(": ", 1)[-1].split(" (")[0][:80]] += 1
                print(f"[{i}] {'accepted' if out.accepted else 'rejected'} {done}"
                      + (f" ({len(out.failures)} failures)" if out.failures else
                         f" ({out.warnings} warnings)"), flush=True)
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({"tried": args.examples, **{k: counts[k] for k in ("accepted", "rejected",
                                                                          "crashes")},
                      "seconds": round(time.perf_counter() - t0, 1),
                      "top_rejection_rules": dict(rules.most_common(12)), "crash_cases": crashes},
                     indent=2))
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())
