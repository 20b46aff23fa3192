import math

import pytest
import torch
import torch.nn.functional as F

from training.losses import (
    MultiScaleLoss,
    PerceptualLoss,
    build_loss,
    charbonnier_loss,
    fft_loss,
    l1_loss,
    mse_loss,
    psnr_loss,
)


def _pair(seed: int = 0, shape=(2, 3, 8, 8)):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=g), torch.rand(shape, generator=g)


def test_l1_and_mse_on_known_values():
    pred = torch.tensor([0.0, 0.5, 1.0, 1.0]).view(1, 1, 2, 2)
    target = torch.tensor([0.0, 0.0, 0.0, 0.5]).view(1, 1, 2, 2)
    assert l1_loss(pred, target).item() == pytest.approx((0 + 0.5 + 1 + 0.5) / 4)
    assert mse_loss(pred, target).item() == pytest.approx((0 + 0.25 + 1 + 0.25) / 4)


def test_per_image_reduction_averages_to_the_mean():
    pred, target = _pair()
    per_image = mse_loss(pred, target, reduction="none")
    assert per_image.shape == (2,)
    assert per_image.mean().item() == pytest.approx(F.mse_loss(pred, target).item())
    with pytest.raises(ValueError, match="reduction"):
        mse_loss(pred, target, reduction="sum")
    with pytest.raises(ValueError, match="differ"):
        l1_loss(pred, target[:, :, :4])


def test_charbonnier_is_eps_for_zero_difference_and_about_l1_for_large_ones():
    x = torch.rand(1, 3, 4, 4)
    assert charbonnier_loss(x, x, eps=1e-3).item() == pytest.approx(1e-3, rel=1e-5)
    assert charbonnier_loss(x, x, eps=0.1).item() == pytest.approx(0.1, rel=1e-5)
    big = x + 5.0
    assert charbonnier_loss(big, x, eps=1e-3).item() == pytest.approx(5.0, rel=1e-6)


def test_psnr_loss_is_minus_psnr_per_image():
    target = torch.zeros(2, 3, 4, 4)
    pred = target.clone()
    pred[0] += 0.1  # mse 0.01 → 20 dB
    pred[1] += 0.01  # mse 1e-4 → 40 dB
    per_image = psnr_loss(pred, target, eps=0.0, reduction="none")
    assert per_image.tolist() == pytest.approx([-20.0, -40.0], abs=1e-4)
    # NAFNet averages the per-image log, which is not the log of the batch MSE.
    assert psnr_loss(pred, target, eps=0.0).item() == pytest.approx(-30.0, abs=1e-4)
    batch_mse = ((pred - target) ** 2).mean().item()
    assert psnr_loss(pred, target).item() != pytest.approx(10 * math.log10(batch_mse), abs=1)
    # The same images in [-1, 1] (range 2) give the same PSNR.
    scaled = psnr_loss(pred * 2 - 1, target * 2 - 1, data_range=2.0, eps=0.0, reduction="none")
    assert scaled.tolist() == pytest.approx([-20.0, -40.0], abs=1e-4)


def test_psnr_loss_matches_hand_computed_mse_on_random_images():
    pred, target = _pair(3)
    mse = ((pred[1] - target[1]) ** 2).mean().item()
    value = psnr_loss(pred, target, reduction="none")[1].item()
    assert value == pytest.approx(10 * math.log10(mse + 1e-8), abs=1e-4)


def test_fft_loss_is_zero_for_equal_inputs_and_matches_a_constant_offset():
    x = torch.rand(2, 3, 8, 6)
    assert fft_loss(x, x).item() == 0.0
    # A constant offset c only moves the DC term by c·H·W (real part) in each channel: the mean
    # over the 2·C·H·W real and imaginary entries is c / 2.
    assert fft_loss(x + 0.2, x).item() == pytest.approx(0.1, rel=1e-4)
    assert fft_loss(torch.rand(2, 3, 8, 6), x).item() > 0


def test_multiscale_loss_sums_over_a_coarsest_first_list():
    target = torch.rand(1, 3, 16, 16)
    outs = [
        F.interpolate(target, size=(4, 4), mode="bilinear", align_corners=False),
        F.interpolate(target, size=(8, 8), mode="bilinear", align_corners=False),
        target.clone(),
    ]
    ms = MultiScaleLoss(l1_loss)
    assert ms(outs, target).item() == pytest.approx(0.0, abs=1e-7)
    shifted = [o + 0.1 for o in outs]
    assert ms(shifted, target).item() == pytest.approx(0.3, rel=1e-5)
    # One tensor is a one-scale list.
    assert ms(target + 0.1, target).item() == pytest.approx(0.1, rel=1e-5)
    # Area resizing of the target: a 2×2 box average.
    area = MultiScaleLoss(mse_loss, resize="area")
    half = F.avg_pool2d(target, 2)
    assert area([half], target).item() == pytest.approx(0.0, abs=1e-12)
    # The FFT loss composes the same way (MIMO-UNet's MSFR over three scales).
    assert MultiScaleLoss(fft_loss)(outs, target).item() == pytest.approx(0.0, abs=1e-5)


def test_build_loss_weights_terms_and_reports_parts():
    pred, target = _pair(1)
    loss = build_loss({"mse": 0.5, "l1": {"weight": 2.0}, "charbonnier": 0})
    total, parts = loss(pred, target)
    expected_mse = 0.5 * F.mse_loss(pred, target).item()
    expected_l1 = 2.0 * F.l1_loss(pred, target).item()
    assert set(parts) == {"mse", "l1"}  # zero-weight terms are not built
    assert parts["mse"].item() == pytest.approx(expected_mse, rel=1e-6)
    assert parts["l1"].item() == pytest.approx(expected_l1, rel=1e-6)
    assert total.item() == pytest.approx(expected_mse + expected_l1, rel=1e-6)
    assert not parts["mse"].requires_grad


def test_build_loss_multiscale_gets_all_outputs_others_the_last():
    target = torch.rand(1, 3, 16, 16)
    outs = [torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 8, 8), target + 0.1]
    loss = build_loss(
        {
            "l1": {"weight": 1.0, "multiscale": True, "resize": "area"},
            "mse": 1.0,
            "fft": {"weight": 0.1, "multiscale": True},
        }
    )
    _, parts = loss(outs, target)
    coarse = F.interpolate(target, size=(4, 4), mode="area").mean()
    mid = F.interpolate(target, size=(8, 8), mode="area").mean()
    assert parts["l1"].item() == pytest.approx((coarse + mid).item() + 0.1, rel=1e-5)
    assert parts["mse"].item() == pytest.approx(0.01, rel=1e-4)
    assert parts["fft"].item() > 0


def test_build_loss_rejects_bad_configs():
    with pytest.raises(ValueError, match="unknown loss"):
        build_loss({"ssim": 1.0})
    with pytest.raises(ValueError, match="adversarial"):
        build_loss({"mse": 1.0, "adversarial": 0.01})
    with pytest.raises(ValueError, match="unknown options"):
        build_loss({"l1": {"weight": 1.0, "eps": 0.1}})
    with pytest.raises(ValueError, match="unknown options"):
        build_loss({"l1": {"weight": 1.0, "resize": "area"}})  # resize without multiscale
    with pytest.raises(ValueError, match="no term"):
        build_loss({"mse": 0})
    assert build_loss({"charbonnier": {"weight": 1, "eps": 0.5}}).terms["charbonnier"]


def _random_perceptual(**kwargs) -> PerceptualLoss:
    torch.manual_seed(0)
    # Random weights: these tests check the plumbing, not ImageNet features.
    return PerceptualLoss(arch="vgg16", layer="conv2_2", pretrained=False, **kwargs)


def test_perceptual_loss_normalises_every_sample_of_the_batch():
    loss = _random_perceptual()
    g = torch.Generator().manual_seed(5)
    pred = torch.rand(2, 3, 24, 24, generator=g)
    target = torch.rand(2, 3, 24, 24, generator=g)
    target[1] = target[1] * 0.3 + 0.6  # a very different second image
    batch = loss(pred, target, reduction="none")
    alone = torch.stack([loss(pred[i : i + 1], target[i : i + 1]) for i in range(2)])
    torch.testing.assert_close(batch, alone, rtol=1e-5, atol=1e-7)
    assert loss(pred, target).item() == pytest.approx(alone.mean().item(), rel=1e-5)


def test_perceptual_loss_maps_the_value_range_and_sends_gradients_to_pred_only():
    unit = _random_perceptual()
    signed = _random_perceptual(value_range=(-1, 1))
    pred, target = _pair(2, (1, 3, 16, 16))
    a = unit(pred, target)
    b = signed(pred * 2 - 1, target * 2 - 1)
    assert a.item() == pytest.approx(b.item(), rel=1e-5)
    pred.requires_grad_(True)
    target.requires_grad_(True)
    unit(pred, target).backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    assert target.grad is None
    assert all(not p.requires_grad for p in unit.parameters())


def test_null_switches_a_term_off():
    # A recipe variant turns its base recipe's terms off with null.
    from training.losses import build_loss

    loss = build_loss({"mse": None, "perceptual": None, "charbonnier": 1.0})
    a, b = torch.zeros(1, 3, 8, 8), torch.ones(1, 3, 8, 8)
    total, parts = loss(a, b)
    assert set(parts) == {"charbonnier"}
    assert float(total) == pytest.approx(float(parts["charbonnier"]))
