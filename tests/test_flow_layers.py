"""Property tests over every invertible layer, in float64 on tiny inputs."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn
from torch.func import jacrev

from srflow.flows import (
    ActNorm2d,
    AffineInjector,
    ConditionalAffineCoupling,
    FlowLayer,
    FlowSequence,
    FlowStep,
    InvConv1x1,
    SplitPrior,
    Squeeze2d,
    data_dependent_init,
)
from srflow.flows.bounded_coupling import BoundedAffineCoupling, LowpassAffineShift
from srflow.flows.haar import HaarSqueeze2d
from srflow.flows.nets import ActNormSubnet, DenseSubnet, SubnetSpec, last_conv

C, H, W, COND = 4, 2, 2, 3
SRFLOW = SubnetSpec(hidden_channels=8)
#: SRFlow-DA's sub-networks (DA / DA-S, DA-R, DA-D), shallow enough for tiny Jacobians
DA_SUBNETS = {
    "plain": SubnetSpec("plain", 8, depth=2, kernel=3),
    "long_skip": SubnetSpec("long_skip", 8, depth=2, kernel=3),
    "residual": SubnetSpec("residual", 8, depth=4, kernel=3),
}
FACTORIES: dict[str, Callable[[], FlowLayer]] = {
    "actnorm": lambda: ActNorm2d(C),
    "invconv": lambda: InvConv1x1(C),
    "injector": lambda: AffineInjector(C, COND, SRFLOW),
    "coupling": lambda: ConditionalAffineCoupling(C, COND, SRFLOW),
    "transition_step": lambda: FlowStep(C, None, SRFLOW),
    "conditional_step": lambda: FlowStep(C, COND, SRFLOW),
    "squeeze": lambda: Squeeze2d(),
    "squeeze_by_4": lambda: Squeeze2d(4),
    "sequence": lambda: FlowSequence([FlowStep(C, COND, SRFLOW), ActNorm2d(C), InvConv1x1(C)]),
    # HCFlow: bounded (atan) couplings, the rescaling trunk's low-pass coupling, Haar squeeze
    "bounded_coupling": lambda: BoundedAffineCoupling(C, ActNormSubnet(C // 2, C, SRFLOW)),
    "bounded_conditional_coupling": lambda: BoundedAffineCoupling(
        C, ActNormSubnet(C // 2 + COND, C, SRFLOW), conditional=True
    ),
    "lowpass_affine": lambda: LowpassAffineShift(C, DenseSubnet(3, 2 * (C - 3), 4), True),
    "lowpass_shift": lambda: LowpassAffineShift(C, DenseSubnet(C - 3, 3, 4), False),
    "haar": lambda: HaarSqueeze2d(C),
    **{
        f"{kind}_injector": (lambda spec=spec: AffineInjector(C, COND, spec))
        for kind, spec in DA_SUBNETS.items()
    },
    **{
        f"{kind}_coupling": (lambda spec=spec: ConditionalAffineCoupling(C, COND, spec))
        for kind, spec in DA_SUBNETS.items()
    },
    **{
        f"{kind}_step": (lambda spec=spec: FlowStep(C, COND, spec))
        for kind, spec in DA_SUBNETS.items()
    },
}
#: spatial size per layer (a squeeze by 4 needs 4x4)
SIZE = {"squeeze_by_4": 4}


def _build(name: str) -> FlowLayer:
    layer = FACTORIES[name]().double()
    with torch.no_grad():  # move away from identity/zero init so every parameter matters
        for p in layer.parameters():
            if p.requires_grad:  # fixed parameters (Haar filters) stay as they are
                p.add_(0.2 * torch.randn_like(p))
    return layer


def _inputs(name: str = "") -> tuple[torch.Tensor, torch.Tensor]:
    size = SIZE.get(name, H)
    return torch.randn(2, C, size, size, dtype=torch.float64), torch.randn(
        2, COND, size, size, dtype=torch.float64
    )


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_inverse_round_trip_float64(name: str) -> None:
    layer, (x, cond) = _build(name), _inputs(name)
    y, logdet = layer(x, cond)
    x_back, logdet_inv = layer.inverse(y, cond)
    torch.testing.assert_close(x_back, x, atol=1e-10, rtol=0)
    torch.testing.assert_close(logdet_inv, -logdet, atol=1e-10, rtol=0)
    y_again, _ = layer(layer.inverse(y, cond)[0], cond)
    torch.testing.assert_close(y_again, y, atol=1e-10, rtol=0)
    assert logdet.shape == (2,)


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_logdet_equals_autograd_jacobian(name: str) -> None:
    layer, (x, cond) = _build(name), _inputs(name)
    _, logdet = layer(x, cond)
    for i in range(x.shape[0]):

        def f(v: torch.Tensor, i: int = i) -> torch.Tensor:
            return layer(v.view(1, *x.shape[1:]), cond[i : i + 1])[0].reshape(-1)

        jac = jacrev(f)(x[i].reshape(-1))
        torch.testing.assert_close(torch.linalg.slogdet(jac)[1], logdet[i], atol=1e-9, rtol=0)


@pytest.mark.parametrize("name", sorted(set(FACTORIES) - {"squeeze", "squeeze_by_4", "haar"}))
def test_gradients_reach_every_parameter(name: str) -> None:
    layer, (x, cond) = _build(name), _inputs(name)
    y, logdet = layer(x, cond)
    (0.5 * (y**2).sum() - logdet.sum()).backward()
    for pname, p in layer.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and p.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_state_dict_round_trip(name: str) -> None:
    layer, (x, cond) = _build(name), _inputs(name)
    fresh = FACTORIES[name]().double()
    fresh.load_state_dict(layer.state_dict())
    torch.testing.assert_close(fresh(x, cond)[0], layer(x, cond)[0], atol=0, rtol=0)


def test_split_prior_round_trip_and_density() -> None:
    split = SplitPrior(C).double()
    with torch.no_grad():
        for p in split.parameters():
            p.add_(0.2 * torch.randn_like(p))
    x = torch.randn(2, C, H, W, dtype=torch.float64)
    kept, eps, log_p = split(x)
    back, log_p_back = split.inverse(kept, eps)
    torch.testing.assert_close(back, x, atol=1e-12, rtol=0)
    torch.testing.assert_close(log_p_back, log_p, atol=1e-12, rtol=0)
    mean, logs = split.mean_logs(kept)
    dist = torch.distributions.Normal(mean, logs.exp())
    torch.testing.assert_close(log_p, dist.log_prob(x[:, C // 2 :]).sum((1, 2, 3)))


def test_actnorm_data_dependent_init_normalizes() -> None:
    layer = ActNorm2d(3)
    x = torch.randn(8, 3, 5, 5) * torch.tensor([2.0, 0.5, 3.0]).view(1, 3, 1, 1) + 4.0
    with data_dependent_init(layer):
        y, _ = layer(x)
    torch.testing.assert_close(y.mean((0, 2, 3)), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(y.std((0, 2, 3), unbiased=False), torch.ones(3), atol=1e-4, rtol=0)
    y2, _ = layer(x * 2)  # outside the context the parameters stay fixed
    torch.testing.assert_close(y2, (x * 2 + layer.bias) * layer.logs.exp())


def test_affine_scale_is_bounded_below() -> None:
    layer = AffineInjector(C, COND, SRFLOW, eps=1e-4)
    with torch.no_grad():
        last_conv(layer.net).bias.fill_(-1e4)  # drive the raw scale to -inf
    _, logdet = layer(torch.randn(1, C, H, W), torch.randn(1, COND, H, W))
    assert torch.isfinite(logdet).all()


def test_invconv_keeps_float64_in_inverse() -> None:
    layer = InvConv1x1(C).double()
    y = torch.randn(1, C, H, W, dtype=torch.float64)
    assert layer.inverse(y)[0].dtype == torch.float64
    assert isinstance(layer, nn.Module)


@pytest.mark.parametrize("kind", ["actnorm", *DA_SUBNETS])
def test_subnets_output_zero_at_init(kind: str) -> None:
    """Each coupling starts as zero shift and the constant scale sigmoid(2) + eps."""
    spec = DA_SUBNETS.get(kind, SRFLOW)
    layer = ConditionalAffineCoupling(C, COND, spec)
    x, cond = torch.randn(2, C, H, W), torch.randn(2, COND, H, W)
    y, _ = layer(x, cond)
    scale = torch.sigmoid(torch.tensor(2.0)) + 1e-4
    torch.testing.assert_close(y[:, C // 2 :], x[:, C // 2 :] * scale)


@pytest.mark.parametrize("kind", ["actnorm", *DA_SUBNETS])
def test_shared_conditioning_equals_repeated(kind: str) -> None:
    """Samples sharing one conditioning tensor give what repeating it gives (fast path)."""
    layer = _build(f"{kind}_coupling" if kind != "actnorm" else "coupling")
    x = torch.randn(6, C, H, W, dtype=torch.float64)
    cond = torch.randn(2, COND, H, W, dtype=torch.float64)
    shared, logdet_shared = layer(x, cond)
    repeated, logdet = layer(x, cond.repeat(3, 1, 1, 1))
    torch.testing.assert_close(shared, repeated, atol=1e-12, rtol=0)
    torch.testing.assert_close(logdet_shared, logdet, atol=1e-12, rtol=0)


def test_deep_subnet_layer_order() -> None:
    """DA-R adds the first activation before the last conv; DA-D adds per block."""
    from srflow.flows.nets import DeepSubnet

    torch.manual_seed(1)
    x = torch.randn(1, 3, 4, 4)
    for kind, depth in (("long_skip", 4), ("residual", 4), ("plain", 4)):
        net = DeepSubnet(3, 2, SubnetSpec(kind, 5, depth, 3))
        with torch.no_grad():
            for p in net.parameters():
                p.add_(0.1 * torch.randn_like(p))
        a = torch.relu(net.first(x))
        if kind == "long_skip":
            expected = net.last(net.hidden(a) + a)
        elif kind == "residual":
            for block in net.hidden:
                a = a + torch.relu(block[2](torch.relu(block[0](a))))
            expected = net.last(a)
        else:
            expected = net.last(net.hidden(a))
        torch.testing.assert_close(net(x), expected)


def test_bounded_log_scale_stays_within_its_bound() -> None:
    from srflow.flows.bounded_coupling import bounded_log_scale

    raw = torch.tensor([-1e6, -1.0, 0.0, 1.0, 1e6])
    log_scale = bounded_log_scale(raw)
    assert log_scale.abs().max() < 0.318 * torch.pi / 2 + 1e-6
    assert log_scale[2] == 0 and log_scale[3] > 0 > log_scale[1]


def test_haar_squeeze_low_pass_is_the_block_mean_and_filters_are_fixed() -> None:
    layer = HaarSqueeze2d(3)
    x = torch.rand(2, 3, 4, 6)
    y, _ = layer(x)
    torch.testing.assert_close(y[:, :3], torch.nn.functional.avg_pool2d(x, 2))
    assert not layer.haar_weights.requires_grad
    assert tuple(layer.haar_weights.shape) == (12, 1, 2, 2)


def test_new_couplings_start_as_the_identity() -> None:
    x = torch.randn(2, C, H, W)
    for layer in (
        LowpassAffineShift(C, DenseSubnet(3, 2 * (C - 3), 4), True),
        LowpassAffineShift(C, DenseSubnet(C - 3, 3, 4), False),
    ):
        y, logdet = layer(x)
        torch.testing.assert_close(y, x)
        assert torch.equal(logdet, torch.zeros(2))
