"""pytorch-AdaIN's network layouts (naoto0804/pytorch-AdaIN, net.py), rebuilt for tests.

Random weights in these Sequentials produce state dicts with exactly the keys and shapes of
the published ``vgg_normalised.pth`` and ``decoder.pth``, and the Sequentials themselves are the
reference forward passes our loaders must reproduce.
"""

from torch import nn


def _pad_conv_relu(cin: int, cout: int) -> list[nn.Module]:
    return [nn.ReflectionPad2d((1, 1, 1, 1)), nn.Conv2d(cin, cout, (3, 3)), nn.ReLU()]


def _pool() -> nn.Module:
    return nn.MaxPool2d((2, 2), (2, 2), (0, 0), ceil_mode=True)


def adain_vgg() -> nn.Sequential:
    """``vgg`` of net.py: 1×1 preprocessing conv, then VGG19 with reflection padding (53 modules)."""
    layers: list[nn.Module] = [nn.Conv2d(3, 3, (1, 1))]
    blocks = [[(3, 64), (64, 64)], [(64, 128), (128, 128)], [(128, 256)] + [(256, 256)] * 3,
              [(256, 512)] + [(512, 512)] * 3, [(512, 512)] * 4]  # fmt: skip
    for b, block in enumerate(blocks):
        for cin, cout in block:
            layers += _pad_conv_relu(cin, cout)
        if b < 4:
            layers.append(_pool())
    return nn.Sequential(*layers)


def adain_decoder() -> nn.Sequential:
    """``decoder`` of net.py."""
    up = lambda: nn.Upsample(scale_factor=2, mode="nearest")  # noqa: E731
    layers = _pad_conv_relu(512, 256) + [up()]
    layers += _pad_conv_relu(256, 256) + _pad_conv_relu(256, 256) + _pad_conv_relu(256, 256)
    layers += _pad_conv_relu(256, 128) + [up()]
    layers += _pad_conv_relu(128, 128) + _pad_conv_relu(128, 64) + [up()]
    layers += _pad_conv_relu(64, 64) + [nn.ReflectionPad2d((1, 1, 1, 1)), nn.Conv2d(64, 3, (3, 3))]
    return nn.Sequential(*layers)


RELU4_1_END = 31  # vgg[:31] ends with relu4_1
