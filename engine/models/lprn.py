"""Lightweight progressive residual network (LPRN) for image deblurring.

A small residual network applied recursively over several stages with one set of weights,
plus a feature recalibration module (input-image fusion, channel then spatial attention).
"""

from __future__ import annotations

import torch
from torch import nn

from engine.models.base import ImageRestorationNet
from engine.models.layers import res_stack

RECALIBRATIONS = ("none", "channel", "spatial", "both")


def _conv3x3(in_channels: int, out_channels: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)


class ChannelAttention(nn.Module):
    """CBAM channel attention: a gate per channel from global average and max pooling.

    Both pooled descriptors go through one shared two-layer MLP (1×1 convs); the two results
    are summed and squashed by a sigmoid. Max pooling complements the average because a blur
    streak or an edge is a small, strong response that the average dilutes.

    Args:
        channels: feature channels.
        reduction: bottleneck ratio of the MLP.

    Shape:
        - x: :math:`(N, C, H, W)`
        - output: :math:`(N, C, H, W)`, ``x`` scaled per sample and channel.
    """

    def __init__(self, channels: int, reduction: int = 8) -> None:
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.mlp = nn.Sequential(
            nn.Conv2d(channels, hidden, kernel_size=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, kernel_size=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Gate the channels of ``x``.

        Args:
            x: features.

        Returns:
            The gated features.
        """
        # Reductions over (H, W) keep H and W symbolic in a traced ONNX graph, unlike
        # pooling modules that bake the kernel size in.
        avg = torch.mean(x, dim=(2, 3), keepdim=True)
        peak = torch.amax(x, dim=(2, 3), keepdim=True)
        return x * torch.sigmoid(self.mlp(avg) + self.mlp(peak))


class SpatialAttention(nn.Module):
    """CBAM spatial attention: a gate per pixel from the channel-wise mean and max.

    Args:
        kernel_size: size of the convolution over the two pooled maps (odd).

    Shape:
        - x: :math:`(N, C, H, W)`
        - output: :math:`(N, C, H, W)`, ``x`` scaled per sample and pixel.
    """

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size=kernel_size, padding=kernel_size // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Gate the pixels of ``x``.

        Args:
            x: features.

        Returns:
            The gated features.
        """
        pooled = torch.cat(
            (torch.mean(x, dim=1, keepdim=True), torch.amax(x, dim=1, keepdim=True)), dim=1
        )
        return x * torch.sigmoid(self.conv(pooled))


class FeatureRecalibration(nn.Module):
    """Fuse the blurred image's features into a stage's features, then re-weight them.

    ``out = h + A(conv1x1([h, g]))`` where ``h`` are the stage's features, ``g`` the features
    of the blurred input image and ``A`` channel attention followed by spatial attention
    (either alone, or neither, for the ablation). The residual form keeps the stage's own
    features intact: the module only adds what the gated fusion contributes, so it starts
    close to the plain PRN stage and cannot starve later stages of signal (two sigmoids at
    about 0.5 would otherwise quarter the features on every stage).

    Args:
        channels: feature channels of ``h`` and ``g``.
        channel_attention: whether to apply :class:`ChannelAttention`.
        spatial_attention: whether to apply :class:`SpatialAttention` (after the channel one).
        reduction: bottleneck ratio of the channel-attention MLP.

    Shape:
        - h: :math:`(N, C, H, W)`
        - g: :math:`(N, C, H, W)`
        - output: :math:`(N, C, H, W)`
    """

    def __init__(
        self,
        channels: int,
        channel_attention: bool = True,
        spatial_attention: bool = True,
        reduction: int = 8,
    ) -> None:
        super().__init__()
        self.fuse = nn.Conv2d(2 * channels, channels, kernel_size=1)
        self.channel = ChannelAttention(channels, reduction) if channel_attention else None
        self.spatial = SpatialAttention() if spatial_attention else None

    def forward(self, h: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """Recalibrate ``h`` with the help of the input-image features ``g``.

        Args:
            h: the stage's features after its ResBlocks.
            g: features of the blurred input image.

        Returns:
            The recalibrated stage features.
        """
        fused = self.fuse(torch.cat((h, g), dim=1))
        if self.channel is not None:
            fused = self.channel(fused)
        if self.spatial is not None:
            fused = self.spatial(fused)
        return h + fused


class LPRN(ImageRestorationNet):
    """Lightweight progressive residual network: one small residual net, applied T times.

    Every stage ``t = 1..T`` maps ``(y, x_{t-1})`` to a new estimate, with the same weights::

        h   = relu(conv3x3([y, x_{t-1}]))            6 -> C
        h   = ResBlock^B(h)                          C -> C
        h   = FeatureRecalibration(h, g)             C -> C, g = conv3x3(y) computed once
        x_t = y + conv3x3(h)                         C -> 3

    where ``y`` is the blurred input and ``x_0 = y``. :meth:`forward_padded` returns
    ``[x_1, ..., x_T]`` so training can supervise every stage; :meth:`forward` returns ``x_T``.

    What comes from where:

    * Paper abstract (MODELS.md): a shallow residual base network called recursively over
      several stages with shared parameters (6 stages best: 5 -> 30.17 dB, 6 -> 30.21,
      7 -> 30.21); a feature recalibration module that fuses the input image and each stage's
      features with channel attention followed by spatial attention (ablation: none 30.08,
      channel 30.16, spatial 30.14, both 30.21). ``recalibration`` reproduces that ablation.
    * PRN (Ren et al., "Progressive Image Deraining Networks", CVPR 2019), the closest public
      design: the stage skeleton above (concat of input and previous estimate, conv 32 + ReLU,
      5 ResBlocks, conv to 3, plus the input), the first estimate being the input, and the
      weight sharing. We take PRN, not PReNet: no recurrent LSTM state between stages, which
      keeps each stage a pure function of ``(y, x_{t-1})`` and the export a plain unrolled
      graph.
    * Our choices (the abstract does not give them):

      - Where the module sits: after the ResBlocks, just before the output conv, so it
        re-weights the features that directly produce the residual of this stage.
      - Image features ``g``: one 3x3 conv of the blurred input, shared by all stages and
        computed once per forward (``y`` does not change between stages, so recomputing it
        would only cost time). The stage input already contains ``y``, but after eleven
        convs that evidence is mixed with the current estimate; ``g`` re-injects the raw
        blurred image where the residual is formed.
      - Fusion: concatenate ``[h, g]`` and mix with a 1x1 conv (2C -> C). Addition would force
        ``g`` into the same feature basis as ``h`` with a single 3x3 conv; the 1x1 learns the
        mixing per channel for 2C·C weights (2 k at C = 32), the cheapest learned fusion.
        The attended result is *added* to ``h`` (see :class:`FeatureRecalibration`), so the
        module refines rather than replaces the stage's features.
      - Attention: CBAM (Woo et al., ECCV 2018), channel then spatial. The abstract gives the
        order, and it is the order CBAM found best: channels are selected first on global
        statistics, then the surviving features decide where to act. Reduction 8 for the
        MLP (C = 32 gives a hidden width of 4), 7x7 for the spatial gate, both from CBAM.
        ``"channel"`` / ``"spatial"`` keep the fusion and drop the other gate; ``"none"``
        drops the whole module, image-feature conv included (the plain PRN).
      - Outputs are not clamped, so losses see the raw estimate and gradients never vanish
        at the range limits; clamp at display / export time.

    Why shared weights: every stage solves the same problem (refine an estimate given the
    blurred image), so one set of weights suffices and the parameter count does not grow with
    the number of stages; only compute does. Deep supervision trains that one function to
    improve any estimate, so a model trained at T stages can also be run at fewer (set
    ``model.stages``) to trade quality for speed.

    Receptive field (defaults): one stage sees 31 px of ``x_{t-1}`` (eleven 3x3 convs to
    ``h``: 23; the 7x7 spatial gate: +6; the output conv: +2), 25 px without the spatial
    gate. Because each stage consumes the previous estimate, T stages reach ``1 + 30T`` px
    (181 at T = 6; 145 without the spatial gate), a wide window for motion blur from a net
    of about 0.1 M parameters. Channel attention is global, but only as one scalar per
    channel. Sharing saves parameters, not compute: every stage runs at full resolution,
    about 97 k MACs per pixel each, some 537 GMACs for a 1280x720 frame at T = 6.

    Args:
        stages: number of recursive stages T (the paper found 6 best).
        channels: feature width C.
        res_blocks: ResBlocks per stage.
        recalibration: ``"both"`` (channel then spatial), ``"channel"``, ``"spatial"`` or
            ``"none"``.
        return_all: make :meth:`forward` return every stage's output.

    Raises:
        ValueError: ``recalibration`` is not one of the four names, or ``stages`` < 1.

    Shape:
        - x: :math:`(N, 3, H, W)`, any H and W (``multiple`` is 1), range [0, 1].
        - output: :math:`(N, 3, H, W)`; with ``return_all`` a list of T such tensors.
    """

    multiple = 1

    def __init__(
        self,
        stages: int = 6,
        channels: int = 32,
        res_blocks: int = 5,
        recalibration: str = "both",
        return_all: bool = False,
    ) -> None:
        super().__init__(return_all=return_all)
        if recalibration not in RECALIBRATIONS:
            raise ValueError(
                f"recalibration must be one of {RECALIBRATIONS}, got {recalibration!r}"
            )
        if stages < 1:
            raise ValueError(f"stages must be at least 1, got {stages}")
        self.stages = stages
        self.recalibration = recalibration
        self.head = nn.Sequential(_conv3x3(6, channels), nn.ReLU(inplace=True))
        self.body = res_stack(channels, res_blocks, relu_after=True)
        if recalibration == "none":
            self.image_features = None
            self.recalibrate = None
        else:
            self.image_features = _conv3x3(3, channels)
            self.recalibrate = FeatureRecalibration(
                channels,
                channel_attention=recalibration in ("channel", "both"),
                spatial_attention=recalibration in ("spatial", "both"),
            )
        self.tail = _conv3x3(channels, 3)

    def forward_padded(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Run all stages.

        Args:
            x: blurred images.

        Returns:
            The estimate after every stage, the last one final.

        Shape:
            - x: :math:`(N, 3, H, W)`
            - output: list of ``stages`` tensors :math:`(N, 3, H, W)`
        """
        g = self.image_features(x) if self.image_features is not None else None
        estimate = x
        outputs = []
        for _ in range(self.stages):
            h = self.body(self.head(torch.cat((x, estimate), dim=1)))
            if self.recalibrate is not None:
                h = self.recalibrate(h, g)
            estimate = x + self.tail(h)
            outputs.append(estimate)
        return outputs
