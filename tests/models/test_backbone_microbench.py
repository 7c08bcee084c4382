"""The backbone micro-benchmark: analytic FLOPs agree with torch's counter; JSON rows come out."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from components.models import ViT

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "backbone_microbench.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("backbone_microbench", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("global_blocks, window, img", [([1, 3], 4, (128, 96)), ([], 3, (160, 112))])
def test_analytic_flops_match_flop_counter(bench, global_blocks: list, window: int, img: tuple) -> None:
    model = ViT("tiny", embed_dim=32, depth=4, num_heads=2, pretrain_img_size=128,
                window_size=window, global_blocks=global_blocks, attn_impl="naive")
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.randn(2, 3, *img))
    assert bench.forward_flops(model, img, batch=2) == counter.get_total_flops()


def test_rows_are_json_per_configuration(bench, capsys) -> None:
    common = ["--size", "tiny", "--img", "32", "--pretrain-img", "32", "--device", "cpu",
              "--dtype", "fp32", "--iters", "1", "--warmup", "0", "--peak-tflops", "1"]
    assert bench.main(common + ["--strategies", "hybrid,global_ckpt", "--impls", "naive",
                                "--no-isolate"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["strategy"], r["attn_impl"]) for r in rows] == [("hybrid", "naive"),
                                                              ("global_ckpt", "naive")]
    for row in rows:
        assert row["ms_per_iter"] > 0 and row["gflop_per_iter"] > 0 and row["peak_mem_mib"] > 0
        assert row["mfu"] == pytest.approx(row["tflops"], abs=1e-3) and row["window"] == 2
    assert rows[0]["global_blocks"] == [2, 5, 8, 11]
    # default CPU path: one fresh process per configuration
    assert bench.main(common + ["--strategies", "windowed", "--impls", "fused"]) == 0
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row["strategy"] == "windowed" and "ru_maxrss" in row["mem_method"]
