"""Paper-size configs (ViT-B/L at 224 px) build and run forward on the meta device (no memory)."""
from __future__ import annotations

import pytest
import torch

from components.models.backbones.vit import encoder_param_count
from components.pretrain.beit import BEiTPretrainer
from components.pretrain.common import build_backbone
from components.pretrain.mae import DECODER_PRESETS, MAEPretrainer
from components.pretrain.mocov3 import MoCoV3Pretrainer
from components.pretrain.supervised import SupervisedPretrainer
from components.pretrain.tokenizer import VQTokenizer


@pytest.mark.parametrize("size, dim", [("base", 768), ("large", 1024)])
def test_paper_sizes_shapes_on_meta(size: str, dim: int) -> None:
    x = torch.empty(2, 3, 224, 224, device="meta")
    with torch.device("meta"):
        backbone = build_backbone(size, 224)
        assert sum(p.numel() for p in backbone.parameters()) == encoder_param_count(size, 224)
        dec_dim, dec_depth, dec_heads = DECODER_PRESETS["paper"]
        mae = MAEPretrainer(backbone, decoder_dim=dec_dim, decoder_depth=dec_depth,
                            decoder_heads=dec_heads)
        latent, mask, ids = mae.forward_encoder(x, noise=torch.rand(2, 196))
        assert latent.shape == (2, 49, dim) and mask.shape == (2, 196)
        assert mae.forward_decoder(latent, ids).shape == (2, 196, 768)
        assert len(mae.decoder_blocks) == 8 and mae.decoder_embed.out_features == 512
        assert mae({"image": x})["loss"].shape == ()

        moco = MoCoV3Pretrainer(build_backbone(size, 224), proj_dim=256, mlp_dim=4096)
        assert moco.base(x).shape == (2, 256)
        assert moco({"view1": x, "view2": x})["loss"].shape == ()

        vit = build_backbone(size, 224)
        sup = SupervisedPretrainer(vit, num_classes=1000, embed_dim=vit.embed_dim, img_size=224)
        assert sup.forward_logits(x).shape == (2, 1000)

        tok = VQTokenizer(codebook_size=8192, code_dim=32, hidden=64)
        beit = BEiTPretrainer(build_backbone(size, 224), tok, mask_ratio=0.4)
    assert beit.num_masked == 78 and beit.min_block == 16
    mask = beit.sample_masks(2).to("meta")
    assert beit.forward_logits(x, mask).shape == (2, 196, 8192)
