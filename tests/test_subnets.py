import pytest
import torch

from invhide.nn import subnets
from invhide.nn.subnets import ConvSubnet, DenseSubnet, ResidualSubnet, SubnetFactory
from invhide.testing import randomize_

FACTORIES = [
    subnets.dense(growth=8, depth=3),
    subnets.residual(hidden=8, depth=2),
    subnets.conv(hidden=8, depth=3, kernel_size=5),
]


@pytest.mark.parametrize("factory", FACTORIES, ids=lambda f: f.name)
class TestShippedSubnets:
    def test_shape_and_zero_start(self, factory):
        net = factory(6, 10)
        x = torch.rand(2, 6, 7, 5)
        y = net(x)
        assert y.shape == (2, 10, 7, 5)
        assert torch.equal(y, torch.zeros_like(y))
        assert torch.equal(net.output_layer.weight, torch.zeros_like(net.output_layer.weight))

    def test_gradients_reach_every_parameter(self, factory):
        net = randomize_(factory(3, 4), seed=0, gain=1.0)
        net(torch.rand(2, 3, 6, 6)).square().sum().backward()
        for name, param in net.named_parameters():
            assert param.grad is not None and param.grad.abs().sum() > 0, name

    def test_config_round_trip(self, factory):
        rebuilt = SubnetFactory.from_config(factory.config())
        assert rebuilt == factory
        a, b = factory(3, 4), rebuilt(3, 4)
        assert [(k, v.shape) for k, v in a.state_dict().items()] == [(k, v.shape) for k, v in b.state_dict().items()]


def test_dense_subnet_matches_the_reference_block():
    net = DenseSubnet(12, 12)
    assert [getattr(net, f"conv{i}").in_channels for i in range(1, 6)] == [12, 44, 76, 108, 140]
    assert [getattr(net, f"conv{i}").out_channels for i in range(1, 6)] == [32, 32, 32, 32, 12]
    assert all(getattr(net, f"conv{i}").kernel_size == (3, 3) for i in range(1, 6))
    assert all(getattr(net, f"conv{i}").bias is not None for i in range(1, 6))
    assert net.act.negative_slope == 0.01
    # LeakyReLU after conv1..conv4 only: a conv5 with a negative bias gives negative outputs.
    with torch.no_grad():
        net.conv5.bias.fill_(-1.0)
    assert torch.equal(net(torch.rand(1, 12, 4, 4)), torch.full((1, 12, 4, 4), -1.0))


def test_dense_forward_is_dense():
    torch.manual_seed(0)
    net = randomize_(DenseSubnet(2, 3, growth=4, depth=3), seed=1, gain=1.0)
    x = torch.rand(1, 2, 5, 5)
    act = torch.nn.functional.leaky_relu
    x1 = act(net.conv1(x), 0.01)
    x2 = act(net.conv2(torch.cat((x, x1), 1)), 0.01)
    expected = net.conv3(torch.cat((x, x1, x2), 1))
    assert torch.allclose(net(x), expected, atol=1e-6)


def test_resolve_and_register():
    assert subnets.resolve("residual")(4, 4).head.out_channels == 4
    custom = lambda c_in, c_out: torch.nn.Conv2d(c_in, c_out, 1)
    assert subnets.resolve(custom) is custom
    with pytest.raises(ValueError, match="unknown subnet 'unet'"):
        subnets.resolve("unet")
    with pytest.raises(TypeError, match="registered name"):
        subnets.resolve(3)

    class Pointwise(torch.nn.Conv2d):
        def __init__(self, c_in, c_out, bias=True):
            super().__init__(c_in, c_out, 1, bias=bias)

    subnets.register("test-pointwise", Pointwise)
    subnets.register("test-pointwise", Pointwise)  # same class again: fine
    assert "test-pointwise" in subnets.registered()
    assert SubnetFactory("test-pointwise", {"bias": False})(2, 3).bias is None
    with pytest.raises(ValueError, match="already registered"):
        subnets.register("dense", Pointwise)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: subnets.dense(growth=0), "growth must be a positive integer, got 0"),
        (lambda: subnets.dense(depth=1), "depth must be at least 2, got 1"),
        (lambda: subnets.dense(negative_slope=1.5), "negative_slope must be a finite number in \\[0, 1\\)"),
        (lambda: subnets.residual(depth=-1), "depth must be a non-negative integer"),
        (lambda: subnets.conv(kernel_size=4), "kernel_size must be odd"),
        (lambda: subnets.conv(hidden=2.5), "hidden must be a positive integer, got 2.5"),
        (lambda: ResidualSubnet(0, 3), "in_channels must be a positive integer, got 0"),
        (lambda: ConvSubnet(3, True), "out_channels must be a positive integer, got True"),
        (lambda: SubnetFactory.from_config({"growth": 3}), "mapping with a 'name'"),
    ],
)
def test_bad_options(build, message):
    with pytest.raises(ValueError, match=message):
        build()
