"""MAE's compute saving: the encoder runs on the visible 25% of the patches only.

(a) encoder forward+backward on the visible tokens (``MAEPretrainer.forward_encoder``: patch
    embedding, random 75% masking, blocks on 25%, final norm) vs the SAME backbone on the full
    sequence (patch embedding, blocks on 100%, final norm); loss = mean of squares of the output.
    Expect ~3-4x (attention is quadratic, MLPs linear in tokens; patch embedding runs on all).
(b) one whole MAE training step (encoder + decoder + masked-patch loss + backward + AdamW) vs
    one full-sequence ViT training step of the same size (average-pooled tokens -> LayerNorm ->
    linear classifier over ``--classes``, cross-entropy, backward, AdamW).

Reference (issue): H200, bf16, 224 px, batch 256: ViT-B/16 encoder on 25% + 8-block 512-d
decoder = 3,407 img/s vs 2,563 img/s full-sequence ViT-B step (1.33x)::

    python benchmarks/mae_speedup.py --size base --img 224 --batch 256 --dtype bf16 --device cuda
    python benchmarks/mae_speedup.py                 # CPU default: tiny, 128 px, batch 32

Decoder: the paper's 8 blocks x 512-d x 16 heads for base/large, 2 x 128-d x 4 heads otherwise
(override with --decoder-*). Timing: each configuration is warmed up alone, then the two are
timed in ``--rounds`` interleaved rounds of ``--steps`` calls and the median round is reported,
so load drift on a shared CPU hits both alike. CUDA peak memory is the absolute maximum allocated
during a configuration's warmup (both models of a part are resident). Prints one JSON line per
part. Needs only torch and this repo's
``components`` (no mmcv, mmengine or mlflow).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchutil

from benchutil import DTYPES, compare, emit, env_info  # noqa: E402
from components.pretrain.common import build_backbone, embed_patches, run_blocks  # noqa: E402
from components.pretrain.engine import param_groups  # noqa: E402
from components.pretrain.mae import DECODER_PRESETS, MAEPretrainer  # noqa: E402
from components.pretrain.supervised import SupervisedPretrainer  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="tiny", help="ViT size (tiny|small|base|large)")
    ap.add_argument("--img", type=int, default=128)
    ap.add_argument("--patch", type=int, default=16)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--dtype", choices=sorted(DTYPES), default="fp32")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--mask-ratio", type=float, default=0.75)
    ap.add_argument("--decoder-dim", type=int, default=None)
    ap.add_argument("--decoder-depth", type=int, default=None)
    ap.add_argument("--decoder-heads", type=int, default=None)
    ap.add_argument("--classes", type=int, default=1000, help="classifier width of the full-ViT step")
    ap.add_argument("--steps", type=int, default=5, help="timed calls per round")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3,
                    help="interleaved timing rounds; the median is reported")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    ap.add_argument("--parts", default="ab", help="which parts to run: a, b or ab")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    preset = DECODER_PRESETS["paper" if args.size in ("base", "large") else "tiny"]
    dec = (args.decoder_dim or preset[0], args.decoder_depth or preset[1],
           args.decoder_heads or preset[2])
    dtype = DTYPES[args.dtype]
    autocast = lambda: torch.autocast(device.type, dtype=dtype or torch.float32,  # noqa: E731
                                      enabled=dtype is not None)
    common = {"bench": "mae_speedup", "size": args.size, "img": args.img, "batch": args.batch,
              "device": str(device), "dtype": args.dtype, "mask_ratio": args.mask_ratio,
              "decoder": {"dim": dec[0], "depth": dec[1], "heads": dec[2]}, "steps": args.steps,
              "rounds": args.rounds, **env_info(device)}
    torch.manual_seed(0)
    x = torch.randn(args.batch, 3, args.img, args.img, device=device)
    mae = MAEPretrainer(build_backbone(args.size, args.img, args.patch), args.mask_ratio,
                        *dec).to(device).train()

    if "a" in args.parts:
        def enc_visible() -> None:
            mae.zero_grad(set_to_none=True)
            with autocast():
                latent, _, _ = mae.forward_encoder(x)
            latent.float().square().mean().backward()

        def enc_full() -> None:
            mae.zero_grad(set_to_none=True)
            with autocast():
                bb = mae.backbone
                out = mae.norm(run_blocks(bb, embed_patches(bb, x) + bb.pos_embed))
            out.float().square().mean().backward()

        res = compare({"visible": enc_visible, "full": enc_full}, device, args.steps,
                      args.warmup, args.rounds)
        (vis_s, vis_peak), (full_s, full_peak) = res["visible"], res["full"]
        emit({**common, "part": "a_encoder_fwd_bwd",
              "visible_img_s": round(args.batch / vis_s, 2), "full_img_s": round(args.batch / full_s, 2),
              "speedup": round(full_s / vis_s, 3),
              "visible_peak_mib": vis_peak, "full_peak_mib": full_peak})

    if "b" in args.parts:
        mae_opt = torch.optim.AdamW(param_groups(mae, 0.05), lr=1e-4)

        def mae_step() -> None:
            with autocast():
                loss = mae({"image": x})["loss"]
            mae_opt.zero_grad(set_to_none=True)
            loss.backward()
            mae_opt.step()

        torch.manual_seed(0)
        backbone = build_backbone(args.size, args.img, args.patch)
        vit = SupervisedPretrainer(backbone, num_classes=args.classes, embed_dim=backbone.embed_dim,
                                   img_size=args.img).to(device).train()
        vit_opt = torch.optim.AdamW(param_groups(vit, 0.05), lr=1e-4)
        labels = torch.randint(0, args.classes, (args.batch,), device=device)

        def vit_step() -> None:
            with autocast():
                loss = F.cross_entropy(vit.forward_logits(x).float(), labels)
            vit_opt.zero_grad(set_to_none=True)
            loss.backward()
            vit_opt.step()

        res = compare({"mae": mae_step, "vit": vit_step}, device, args.steps, args.warmup,
                      args.rounds)
        (mae_s, mae_peak), (vit_s, vit_peak) = res["mae"], res["vit"]
        emit({**common, "part": "b_train_step",
              "mae_img_s": round(args.batch / mae_s, 2), "full_vit_img_s": round(args.batch / vit_s, 2),
              "speedup": round(vit_s / mae_s, 3), "mae_peak_mib": mae_peak,
              "full_vit_peak_mib": vit_peak})
    return 0


if __name__ == "__main__":
    sys.exit(main())
