"""A small Mask R-CNN (about 1.5 M parameters) that trains from scratch on a CPU in minutes.

A light conv backbone (strided conv-BN-ReLU stages with depthwise-separable blocks) under
torchvision's FPN, anchors sized for 256-pixel inputs, and narrow box and mask heads. It is
meant for simple domains (and for the project's own end-to-end tests), not for photos.
"""

from __future__ import annotations

from typing import Any

from torch import nn
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.models.detection.rpn import RPNHead
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

# Channels of the stages at strides 4, 8, 16 and 32.
STAGE_CHANNELS = (32, 64, 128, 192)
FPN_CHANNELS = 64
BOX_REPRESENTATION = 256
MASK_CHANNELS = 64


def _conv_bn(cin: int, cout: int, stride: int = 1, groups: int = 1, kernel: int = 3) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class _SeparableBlock(nn.Module):
    """Depthwise 3x3 then pointwise 1x1, with a residual connection."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _conv_bn(channels, channels, groups=channels),
            _conv_bn(channels, channels, kernel=1),
        )

    def forward(self, x: Any) -> Any:
        return x + self.body(x)


def _stage(cin: int, cout: int, blocks: int) -> nn.Sequential:
    layers: list[nn.Module] = [_conv_bn(cin, cout, stride=2)]
    layers += [_SeparableBlock(cout) for _ in range(blocks)]
    return nn.Sequential(*layers)


class TinyBackbone(nn.Module):
    """Stem at stride 2, then four stages at strides 4 to 32."""

    def __init__(self) -> None:
        super().__init__()
        c2, c3, c4, c5 = STAGE_CHANNELS
        self.stem = nn.Sequential(_conv_bn(3, 16, stride=2), _conv_bn(16, 16))
        self.layer1 = _stage(16, c2, 1)
        self.layer2 = _stage(c2, c3, 2)
        self.layer3 = _stage(c3, c4, 2)
        self.layer4 = _stage(c4, c5, 1)

    def forward(self, x: Any) -> Any:
        x = self.stem(x)
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        return self.layer4(x)


def build_tiny_maskrcnn(
    num_classes: int, *, min_size: int = 256, max_size: int = 256, **kwargs: Any
) -> MaskRCNN:
    """An untrained tiny Mask R-CNN; `num_classes` counts the background."""
    backbone = BackboneWithFPN(
        TinyBackbone(),
        return_layers={"layer1": "0", "layer2": "1", "layer3": "2", "layer4": "3"},
        in_channels_list=list(STAGE_CHANNELS),
        out_channels=FPN_CHANNELS,
        extra_blocks=LastLevelMaxPool(),
    )
    # One size per pyramid level (strides 4..64), suited to objects of 12-200 px at 256 px.
    anchors = AnchorGenerator(
        sizes=((16,), (32,), (64,), (128,), (256,)), aspect_ratios=((0.5, 1.0, 2.0),) * 5
    )
    levels = ["0", "1", "2", "3"]
    box_pool = MultiScaleRoIAlign(featmap_names=levels, output_size=7, sampling_ratio=2)
    mask_pool = MultiScaleRoIAlign(featmap_names=levels, output_size=14, sampling_ratio=2)
    options: dict[str, Any] = {
        # Fewer proposals and sampled RoIs than the ResNet-50 defaults: small images hold
        # few objects, and it keeps a CPU iteration well under a second.
        "rpn_pre_nms_top_n_train": 1000,
        "rpn_post_nms_top_n_train": 500,
        "rpn_pre_nms_top_n_test": 500,
        "rpn_post_nms_top_n_test": 300,
        "box_batch_size_per_image": 128,
        "box_detections_per_img": 100,
    }
    options.update(kwargs)
    return MaskRCNN(
        backbone,
        num_classes=None,
        min_size=min_size,
        max_size=max_size,
        rpn_anchor_generator=anchors,
        rpn_head=RPNHead(FPN_CHANNELS, anchors.num_anchors_per_location()[0]),
        box_roi_pool=box_pool,
        box_head=TwoMLPHead(FPN_CHANNELS * 7 * 7, BOX_REPRESENTATION),
        box_predictor=FastRCNNPredictor(BOX_REPRESENTATION, num_classes),
        mask_roi_pool=mask_pool,
        mask_head=MaskRCNNHeads(FPN_CHANNELS, [MASK_CHANNELS] * 3, 1),
        mask_predictor=MaskRCNNPredictor(MASK_CHANNELS, MASK_CHANNELS, num_classes),
        **options,
    )
