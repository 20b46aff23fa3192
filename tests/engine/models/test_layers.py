import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

from engine.models.layers import conv3x3_of_upsampled, conv_kxk, dense_kernel  # noqa: E402


@pytest.mark.parametrize("separable", [False, True])
@pytest.mark.parametrize("bias", [False, True])
def test_conv_of_upsampled_equals_upsample_then_conv(separable, bias):
    torch.manual_seed(0)
    conv = conv_kxk(8, 3, bias=bias, separable=separable)
    x = torch.randn(2, 8, 7, 11)
    want = conv(F.interpolate(x, scale_factor=2, mode="nearest"))
    got = conv3x3_of_upsampled(x, *dense_kernel(conv))
    assert got.shape == want.shape == (2, 3, 14, 22)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_dense_kernel_of_a_separable_conv_is_the_same_convolution():
    torch.manual_seed(1)
    conv = conv_kxk(4, 5, separable=True)
    weight, bias = dense_kernel(conv)
    x = torch.randn(1, 4, 9, 9)
    torch.testing.assert_close(F.conv2d(x, weight, bias, padding=1), conv(x), atol=1e-5, rtol=1e-5)
