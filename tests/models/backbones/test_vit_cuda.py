"""CUDA checks of the backbone (skipped without a GPU; also runnable as a script on a torch-only box:
``python tests/models/test_vit_cuda.py``): fused SDPA kernels vs the naive form, rel-pos bias as
an SDPA mask with gradients, checkpointing, bf16 autocast."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from components.models.backbones.vit import ViT  # noqa: E402

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
CUDA = torch.device("cuda")


def tiny(**kw) -> ViT:
    torch.manual_seed(0)
    with CUDA:
        return ViT("tiny", **{"embed_dim": 64, "depth": 4, "num_heads": 2,
                              "pretrain_img_size": 128, "window_size": 4, "global_blocks": [3],
                              **kw}).train()


def grads_of(model: ViT, x: torch.Tensor, bf16: bool = False) -> tuple[torch.Tensor, dict]:
    model.zero_grad(set_to_none=True)
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
        outs = model(x)
    loss = sum(o.float().square().mean() for o in outs)
    loss.backward()
    return outs[-1].float().detach(), {n: p.grad.float() for n, p in model.named_parameters()}


@pytest.mark.parametrize("use_rel_pos", [False, True])
def test_fused_matches_naive_with_grads(use_rel_pos: bool) -> None:
    fused = tiny(use_rel_pos=use_rel_pos, rel_pos_zero_init=False)
    naive = tiny(use_rel_pos=use_rel_pos, rel_pos_zero_init=False, attn_impl="naive")
    naive.load_state_dict(fused.state_dict())
    x = torch.randn(2, 3, 160, 112, device=CUDA)  # 10x7 grid: padded windows
    out_f, g_f = grads_of(fused, x)
    out_n, g_n = grads_of(naive, x)
    torch.testing.assert_close(out_f, out_n, rtol=1e-3, atol=1e-3)
    for name, g in g_n.items():
        torch.testing.assert_close(g_f[name], g, rtol=1e-3, atol=1e-4, msg=name)


def test_checkpointing_same_grads_bf16() -> None:
    plain, ckpt = tiny(), tiny(with_cp=True)
    ckpt.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 128, 128, device=CUDA)
    out_p, g_p = grads_of(plain, x, bf16=True)
    out_c, g_c = grads_of(ckpt, x, bf16=True)
    assert torch.equal(out_p, out_c)
    for name, g in g_p.items():
        torch.testing.assert_close(g_c[name], g, rtol=1e-2, atol=1e-4, msg=name)


def test_bf16_autocast_close_to_fp32() -> None:
    model = tiny(use_rel_pos=True)
    x = torch.randn(1, 3, 256, 256, device=CUDA)
    out32, _ = grads_of(model, x)
    out16, g16 = grads_of(model, x, bf16=True)
    assert all(torch.isfinite(g).all() for g in g16.values())
    assert (out16 - out32).abs().max() < 0.1 * out32.abs().max()


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
