"""Backbone families behind one contract (:mod:`.base`), each registered by name in
:data:`BACKBONES` (``model.backbone`` in params.yaml):

* ``vit`` (:mod:`.vit`): the paper's plain ViT, sizes tiny/small/base/large;
* ``resnet`` (:mod:`.resnet`): mmdet's ResNet-18/34/50/101, the CNN baseline (mmdet only);
* ``mobilevit`` / ``mobilenetv2`` (:mod:`.mobile`): timm's MobileViT XXS/XS/S and MobileNetV2.

Adding one is one file and one import line below (see :mod:`.base`).
"""
from components.models.backbones.base import (BACKBONES, BackboneFamily, FeatureShape,
                                              family_of, get_backbone, single_level_anchor_scales)
from components.models.backbones import vit  # noqa: F401,E402  (registers "vit")
from components.models.backbones import resnet  # noqa: F401,E402  (registers "resnet" with mmdet)
from components.models.backbones import mobile  # noqa: F401,E402  ("mobilevit", "mobilenetv2")

__all__ = ["BACKBONES", "BackboneFamily", "FeatureShape", "family_of", "get_backbone",
           "single_level_anchor_scales"]
