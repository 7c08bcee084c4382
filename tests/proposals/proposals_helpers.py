"""Tiny settings for the BING tests (imported by name; conftest modules are not importable
by name once several test folders have one)."""
from __future__ import annotations

from pathlib import Path

from components.data.synthetic import tiny_config

# 128 px, 1-3 objects of 20-50% of the side (like the built-in `easy` scenes), 40 images: ~0.5 s.
TINY = tiny_config(image_size=128, objects_per_image=[1, 3], scale_range=[0.2, 0.5],
                   crowd_fraction=0.0, num_images={"train": 24, "val": 12, "test": 0, "unlabeled": 0})
# Training knobs shrunk to the tiny set (everything else: PROPOSAL_DEFAULTS).
TINY_PROPOSALS = {"negatives_per_image": 30, "per_size": 60}



def make_params(ds: Path, workdir: Path, **proposals) -> dict:
    """Full params for the stages: the dataset, outputs under ``workdir``, tiny training knobs;
    ``proposals`` override any of them."""
    from components.proposals.config import with_defaults

    return with_defaults({"seed": 0, "data": {"out": str(ds)},
                          "proposals": {"out": str(workdir / "bing"),
                                        "cache_dir": str(workdir / "cache"),
                                        **TINY_PROPOSALS, **proposals}})
