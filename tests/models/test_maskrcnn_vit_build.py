"""mmdet 3.3 integration: a Mask R-CNN with the plain ViT + adapter + FPN builds from a config,
takes one loss/backward step and predicts on CPU (tiny dims, 128 px)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

pytest.importorskip("mmcv.ops", reason="needs the compiled mmcv (infra setup)")
mmdet = pytest.importorskip("mmdet")

from mmengine.config import Config  # noqa: E402
from mmengine.model import Sequential  # noqa: E402
from mmdet.registry import MODELS  # noqa: E402
from mmdet.testing import demo_mm_inputs  # noqa: E402
from mmdet.utils import register_all_modules  # noqa: E402

import components.models  # noqa: E402,F401  (registers PlainViT / ViTFPNAdapter)
from components.models import ViT, ViTFPNAdapter  # noqa: E402

BASE = Path(mmdet.__file__).parent / ".mim" / "configs" / "_base_" / "models" / "mask-rcnn_r50_fpn.py"
C = 64  # backbone embed dim
F = 64  # FPN / head channels


def maskrcnn_cfg() -> Config:
    """The packaged R50-FPN Mask R-CNN with our backbone/necks; heads narrowed (F channels,
    few proposals/detections) so one CPU step stays in seconds."""
    cfg = Config.fromfile(str(BASE)).model
    cfg.backbone = dict(type="PlainViT", size="tiny", embed_dim=C, depth=4, num_heads=2,
                        pretrain_img_size=64, drop_path_rate=0.1, global_blocks=[1, 3])
    cfg.neck = [dict(type="ViTFPNAdapter", in_channels=C),
                dict(type="FPN", in_channels=[C] * 4, out_channels=F, num_outs=5)]
    cfg.rpn_head.update(in_channels=F, feat_channels=F)
    roi = cfg.roi_head
    roi.bbox_roi_extractor.out_channels = roi.mask_roi_extractor.out_channels = F
    roi.bbox_head.update(in_channels=F, fc_out_channels=128, num_classes=3)
    roi.mask_head.update(in_channels=F, conv_out_channels=F, num_convs=2, num_classes=3)
    cfg.train_cfg.rpn_proposal.update(nms_pre=200, max_per_img=100)
    cfg.train_cfg.rcnn.sampler.num = 64
    cfg.test_cfg.rpn.update(nms_pre=200, max_per_img=100)
    cfg.test_cfg.rcnn.max_per_img = 10
    return cfg


def test_registered_names() -> None:
    assert MODELS.get("PlainViT") is ViT
    assert MODELS.get("ViTFPNAdapter") is ViTFPNAdapter


@pytest.mark.slow
def test_maskrcnn_builds_trains_one_step_and_predicts() -> None:
    register_all_modules()
    torch.manual_seed(0)
    model = MODELS.build(maskrcnn_cfg())
    model.init_weights()
    assert isinstance(model.backbone, ViT) and isinstance(model.neck, Sequential)
    packed = demo_mm_inputs(batch_size=2, image_shapes=[(3, 128, 128)] * 2, num_items=[3, 2],
                            num_classes=3, with_mask=True)
    data = model.data_preprocessor(packed, True)
    feats = model.extract_feat(data["inputs"])
    assert [f.shape[-1] for f in feats] == [32, 16, 8, 4, 2]  # strides 4..64 of a 128 px image
    losses = model(**data, mode="loss")
    total, _ = model.parse_losses(losses)
    assert torch.isfinite(total)
    total.backward()
    assert model.backbone.blocks[0].attn.qkv.weight.grad.abs().sum() > 0
    assert model.neck[0].scales[0][0].weight.grad is not None
    model.eval()
    with torch.no_grad():
        results = model(**model.data_preprocessor(packed, False), mode="predict")
    assert len(results) == 2 and hasattr(results[0].pred_instances, "masks")
