"""The upstream DeblurGAN-v2 way of running FPN-MobileNetV2, kept as the benchmark's yardstick.

It reproduces what the published inference script does per frame, on purpose: eager PyTorch in
fp32, a new tensor for every frame, normalisation and conversion in NumPy, grey padding of
every frame to ``(h // 32 + 1) * 32`` (even when h is already a multiple), and the network in
train mode (InstanceNorm, backbone BatchNorm on batch statistics). ``rtdeblur bench`` prints
every configuration's speed as a ratio to this path, measured in the same run.
"""

from __future__ import annotations

import numpy as np
import torch

from engine.models.fpn_mobilenet import FPNMobileNet


class UpstreamReference:
    """Upstream-style FPN-MobileNetV2 inference on one uint8 RGB frame at a time.

    Args:
        device: torch device.
        seed: initialisation seed (the timing does not depend on the weights).
        threads: CPU threads for torch (default: torch's choice).
    """

    def __init__(self, device: str = "cpu", seed: int = 0, threads: int | None = None) -> None:
        if threads:
            torch.set_num_threads(threads)
        torch.manual_seed(seed)
        self.device = torch.device(device)
        self.model = FPNMobileNet(separable=False, norm="instance").to(self.device).train()

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        """Deblur one (H, W, 3) uint8 RGB frame as upstream does."""
        h, w, _ = frame.shape
        x = (frame.astype(np.float32) - 127.5) / 127.5
        ph, pw = (h // 32 + 1) * 32, (w // 32 + 1) * 32
        padded = np.zeros((ph, pw, 3), np.float32)  # grey in [-1, 1]
        padded[:h, :w] = x
        tensor = torch.from_numpy(np.transpose(padded, (2, 0, 1))[None].copy()).to(self.device)
        with torch.no_grad():
            pred = self.model(tensor)
        out = pred[0].cpu().float().numpy()
        out = (np.transpose(out, (1, 2, 0)) + 1) / 2.0 * 255.0
        return out.astype(np.uint8)[:h, :w]
