import pytest
import torch
from torch import nn

from training.adversarial import LSGAN, WGANGP, HistoryPool, RaGANLS, build_adversarial
from training.discriminators import (
    DoubleScaleDiscriminator,
    NLayerDiscriminator,
    build_discriminator,
)


def test_output_shapes_for_256_crops():
    torch.manual_seed(0)
    double = DoubleScaleDiscriminator()
    x = torch.rand(1, 3, 256, 256)
    with torch.no_grad():
        patch, full = double(x)
    # padding 2 as upstream: each 4×4 stride-2 conv gives H/2 + 1, each stride-1 one H + 1.
    assert patch.shape == (1, 1, 35, 35)
    assert full.shape == (1, 1, 11, 11)
    assert isinstance(build_discriminator(), DoubleScaleDiscriminator)
    assert build_discriminator({"type": "patch", "ndf": 8}).n_layers == 3
    with pytest.raises(ValueError, match="unknown discriminator"):
        build_discriminator({"type": "multiscale"})


def test_layout_no_norm_on_first_layer_leaky_relu_and_widths():
    d = NLayerDiscriminator(n_layers=5)
    modules = list(d.model)
    assert isinstance(modules[0], nn.Conv2d) and isinstance(modules[1], nn.LeakyReLU)
    assert modules[1].negative_slope == 0.2
    norms = [m for m in modules if isinstance(m, nn.InstanceNorm2d)]
    assert len(norms) == 5  # every conv except the first and the last
    convs = [m for m in modules if isinstance(m, nn.Conv2d)]
    assert all(c.kernel_size == (4, 4) for c in convs)
    assert [c.out_channels for c in convs] == [64, 128, 256, 512, 512, 512, 1]
    assert [c.stride[0] for c in convs] == [2, 2, 2, 2, 2, 1, 1]


def test_receptive_fields():
    assert NLayerDiscriminator(n_layers=3).receptive_field == 70
    assert NLayerDiscriminator(n_layers=5).receptive_field == 286
    # Measured: the input pixels one interior score depends on (no norm: InstanceNorm would
    # couple every pixel through its statistics).
    torch.manual_seed(0)
    d = NLayerDiscriminator(ndf=4, n_layers=3, norm="none").double()
    x = torch.rand(1, 3, 160, 160, dtype=torch.float64, requires_grad=True)
    out = d(x)
    out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
    touched = x.grad.abs().sum(dim=(0, 1)) > 0
    rows = touched.any(dim=1).nonzero()
    cols = touched.any(dim=0).nonzero()
    assert int(rows.max() - rows.min() + 1) == 70
    assert int(cols.max() - cols.min() + 1) == 70
    # The full discriminator's central score sees all of a 256 crop.
    full = NLayerDiscriminator(ndf=2, n_layers=5, norm="none").double()
    x = torch.rand(1, 3, 256, 256, dtype=torch.float64, requires_grad=True)
    out = full(x)
    out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
    assert bool((x.grad.abs().sum(dim=(0, 1)) > 0).all())


def _identity(x):
    return x


def test_ragan_ls_losses_follow_the_formula_on_hand_made_scores():
    real = torch.tensor([[1.0, 0.5], [0.0, 2.0]]).view(2, 1, 1, 2)
    fake = torch.tensor([[-1.0, 0.0], [0.5, -0.5]]).view(2, 1, 1, 2)
    r = [1.0, 0.5, 0.0, 2.0]
    f = [-1.0, 0.0, 0.5, -0.5]
    mean_r, mean_f = sum(r) / 4, sum(f) / 4  # 0.875, -0.25
    loss = RaGANLS()
    d = loss.d_loss(_identity, real, fake)
    expected_d = 0.5 * (
        sum((v - mean_f - 1) ** 2 for v in r) / 4 + sum((v - mean_r + 1) ** 2 for v in f) / 4
    )
    assert d.item() == pytest.approx(expected_d, rel=1e-6)
    fake_g = fake.clone().requires_grad_(True)
    g = loss.g_loss(_identity, real, fake_g)
    expected_g = 0.5 * (
        sum((v - mean_f + 1) ** 2 for v in r) / 4 + sum((v - mean_r - 1) ** 2 for v in f) / 4
    )
    assert g.item() == pytest.approx(expected_g, rel=1e-6)
    g.backward()
    # dG/dfake_i = ½ · 2 (f_i − r̄ − 1) / 4, the expectation being a constant from the pool.
    expected_grad = torch.tensor([(v - mean_r - 1) / 4 for v in f]).view(2, 1, 1, 2)
    torch.testing.assert_close(fake_g.grad, expected_grad)


def test_ragan_ls_takes_expectations_over_the_history():
    loss = RaGANLS(pool_size=50)
    ones = torch.ones(1, 1, 2, 2)
    loss.d_loss(_identity, ones * 3, ones * -3)
    # Second step: the expectations mix both steps (3 and 1 for real, -3 and -1 for fake).
    d = loss.d_loss(_identity, ones, -ones)
    mean_r, mean_f = 2.0, -2.0
    expected = 0.5 * ((1 - mean_f - 1) ** 2 + (-1 - mean_r + 1) ** 2)
    assert d.item() == pytest.approx(expected)
    # The pools are state that a checkpoint must carry.
    again = RaGANLS()
    again.load_state_dict(loss.state_dict())
    x = torch.rand(1, 1, 2, 2)
    assert again.g_loss(_identity, x, -x).item() == pytest.approx(
        loss.g_loss(_identity, x, -x).item()
    )


def test_history_pool_keeps_the_last_50():
    pool = HistoryPool(50)
    for step in range(30):
        pool.add(torch.full((2, 1, 3, 3), float(step)))  # 2 samples per step
    assert len(pool) == 50
    # 60 samples went in; the oldest 10 (steps 0–4) were dropped.
    expected = sum(range(5, 30)) / 25
    assert pool.mean().item() == pytest.approx(expected)
    with pytest.raises(RuntimeError, match="empty"):
        HistoryPool().mean()


def test_double_scale_losses_average_the_heads_with_separate_pools():
    def two_heads(x):
        return [x, 2 * x[:, :, :1, :1]]

    real = torch.rand(2, 1, 4, 4)
    fake = torch.rand(2, 1, 4, 4)
    double = RaGANLS()
    value = double.d_loss(two_heads, real, fake)
    first = RaGANLS().d_loss(_identity, real, fake)
    second = RaGANLS().d_loss(_identity, 2 * real[:, :, :1, :1], 2 * fake[:, :, :1, :1])
    assert value.item() == pytest.approx((first.item() + second.item()) / 2, rel=1e-6)
    assert len(double.pools) == 2


def test_lsgan_values():
    real = torch.full((1, 1, 2, 2), 0.5)
    fake = torch.full((1, 1, 2, 2), 0.25)
    loss = LSGAN()
    assert loss.d_loss(_identity, real, fake).item() == pytest.approx(0.5 * (0.25 + 0.0625))
    assert loss.g_loss(_identity, real, fake).item() == pytest.approx(0.5625)


def test_wgan_gp_penalty_vanishes_for_a_unit_gradient_linear_critic():
    torch.manual_seed(0)
    w = torch.randn(1, 3, 8, 8)
    w = w / w.norm()

    def critic(x):
        return (x * w).sum(dim=(1, 2, 3))

    real, fake = torch.rand(4, 3, 8, 8), torch.rand(4, 3, 8, 8)
    loss = WGANGP(gp_weight=10.0)
    assert loss.gradient_penalty(critic, real, fake).item() == pytest.approx(0.0, abs=1e-10)

    def steep(x):
        return 3 * critic(x)

    assert loss.gradient_penalty(steep, real, fake).item() == pytest.approx(4.0, rel=1e-5)
    d = loss.d_loss(critic, real, fake)
    expected = critic(fake).mean() - critic(real).mean()
    assert d.item() == pytest.approx(expected.item(), abs=1e-5)
    assert loss.g_loss(critic, real, fake).item() == pytest.approx(-critic(fake).mean().item())


def test_wgan_gp_penalty_trains_the_critic():
    torch.manual_seed(0)
    d = NLayerDiscriminator(ndf=4, n_layers=2)
    real, fake = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    WGANGP().d_loss(d, real, fake).backward()
    assert all(p.grad is not None for p in d.parameters())


def test_build_adversarial_by_name():
    assert isinstance(build_adversarial("ragan-ls"), RaGANLS)
    assert isinstance(build_adversarial({"type": "RaGAN_LS", "weight": 0.01}), RaGANLS)
    assert build_adversarial({"type": "wgan-gp", "gp_weight": 5}).gp_weight == 5
    with pytest.raises(ValueError, match="unknown adversarial"):
        build_adversarial("hinge")


def test_d_loss_on_a_real_double_discriminator_matches_separate_calls():
    torch.manual_seed(0)
    disc = DoubleScaleDiscriminator(ndf=4)
    real, fake = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    value = RaGANLS().d_loss(disc, real, fake)  # one forward over the 2N batch
    with torch.no_grad():
        expected = 0.0
        for r, f in zip(disc(real), disc(fake), strict=True):
            mr, mf = r.mean(), f.mean()
            expected += 0.5 * (((r - mf - 1) ** 2).mean() + ((f - mr + 1) ** 2).mean()) / 2
    assert value.item() == pytest.approx(expected.item(), rel=1e-5)
    value.backward()
    assert all(p.grad is not None for p in disc.parameters())
