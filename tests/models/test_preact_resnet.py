import numpy as np
import pytest

from mocse_tf.errors import UsageError
from mocse_tf.models import build_network, preact_resnet18


def _count(weights):
    return sum(int(np.prod(w.shape)) for w in weights)


def expected_trainable_parameters(width, num_classes):
    """Hand count: bias-free convs, BN gamma/beta, 1x1 shortcuts where the shape changes, dense head."""
    total = 3 * 3 * 3 * width  # stem
    in_ch = width
    for stage in range(4):
        ch = width * 2**stage
        for block in range(2):
            total += 2 * in_ch  # bn1
            total += 3 * 3 * in_ch * ch + 2 * ch + 3 * 3 * ch * ch  # conv1, bn2, conv2
            if in_ch != ch:
                total += in_ch * ch  # 1x1 shortcut
            in_ch = ch
    total += 2 * in_ch  # final BN
    return total + in_ch * num_classes + num_classes


def test_width_64_has_11_17_million_parameters():
    model = preact_resnet18(num_classes=10, width=64)
    trainable = _count(model.trainable_weights)
    assert trainable == expected_trainable_parameters(64, 10) == 11_172_170
    assert abs(trainable - 11.17e6) / 11.17e6 < 0.005


def test_layer_names_are_deterministic_and_output_is_logits_dict():
    model = preact_resnet18(num_classes=7, width=4)
    names = {layer.name for layer in model.layers}
    assert {"stem_conv", "stage2_block0_shortcut", "stage4_block1_conv2", "final_bn", "logits"} <= names
    out = model(np.zeros((3, 32, 32, 3), np.uint8))
    assert list(out) == ["logits"] and tuple(out["logits"].shape) == (3, 7)
    assert _count(model.trainable_weights) == expected_trainable_parameters(4, 7)


@pytest.mark.parametrize("kwargs, message", [
    (dict(width=0), "width must be a positive integer, got 0"),
    (dict(width=-3), "width must be a positive integer"),
    (dict(num_classes=0), "num_classes must be a positive integer"),
])
def test_bad_sizes_are_rejected(kwargs, message):
    with pytest.raises(UsageError, match=message):
        preact_resnet18(**kwargs)


def test_unknown_arch_lists_choices():
    with pytest.raises(UsageError, match="unknown arch 'resnet50'; choose one of preact_resnet18, mocse"):
        build_network("resnet50")


def test_initialisation_is_pytorchs_default():
    """Conv and Linear weights U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (kaiming_uniform a=sqrt(5)), Linear bias the same
    bound; BatchNorm gamma 1, beta 0, momentum 0.1 in torch's convention (0.9 here), eps 1e-5."""
    import keras

    model = preact_resnet18(num_classes=10, width=8)
    for layer in model.layers:
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
            kernel = layer.kernel.numpy()
            fan_in = int(np.prod(kernel.shape[:-1]))
            bound = 1.0 / np.sqrt(fan_in)
            assert np.abs(kernel).max() <= bound + 1e-7, layer.name
            # Uniform on [-b, b] has standard deviation b / sqrt(3); he_normal's would be sqrt(6) = 2.4x larger.
            assert abs(kernel.std() / (bound / np.sqrt(3)) - 1) < (0.25 if kernel.size > 200 else 0.6), layer.name
            if isinstance(layer, keras.layers.Dense):
                bias = layer.bias.numpy()
                assert np.abs(bias).max() <= bound and np.abs(bias).max() > 0, layer.name
        if isinstance(layer, keras.layers.BatchNormalization):
            assert layer.momentum == 0.9 and layer.epsilon == 1e-5, layer.name
            assert np.all(layer.gamma.numpy() == 1) and np.all(layer.beta.numpy() == 0)
