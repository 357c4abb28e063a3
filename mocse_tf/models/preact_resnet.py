"""PreAct-ResNet-18 for 32x32 images (He et al. 2016, "Identity Mappings"), as a Keras functional model.

The body is also the body of every MoCSE expert, so it is built by `preact_resnet_body` on any input tensor,
with a name prefix that keeps layer names deterministic (`stage2_block1_conv1`).
"""

import keras

from mocse_tf.errors import UsageError
from mocse_tf.models.preprocessing import pixel_input, normalize_pixels

STAGE_BLOCKS = (2, 2, 2, 2)  # PreAct-ResNet-18: 4 stages of 2 basic blocks.


def check_positive_int(name, value):
    """Raises UsageError unless value is a positive integer (bools rejected)."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise UsageError(f"{name} must be a positive integer, got {value!r}")


def torch_default_kernel_init():
    """PyTorch's default for Conv2d and Linear weights, kaiming_uniform(a=sqrt(5)): U(-b, b) with
    b = 1 / sqrt(fan_in), which is VarianceScaling(scale 1/3, fan_in, uniform) (limit sqrt(3 * scale / fan_in))."""
    return keras.initializers.VarianceScaling(scale=1.0 / 3.0, mode="fan_in", distribution="uniform")


def torch_default_dense(units, fan_in, name, dtype=None):
    """A Dense layer initialised as torch.nn.Linear: weights and bias both U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = 1.0 / fan_in**0.5
    return keras.layers.Dense(units, kernel_initializer=torch_default_kernel_init(),
                              bias_initializer=keras.initializers.RandomUniform(-bound, bound), dtype=dtype,
                              name=name)


def _conv(filters, kernel, strides, name):
    # PyTorch's default initialisation (the PreAct-ResNet references never override it).
    return keras.layers.Conv2D(
        filters, kernel, strides=strides, padding="same", use_bias=False,
        kernel_initializer=torch_default_kernel_init(), name=name,
    )


def _bn(name):
    # PyTorch's BatchNorm2d defaults (momentum 0.1 there == 0.9 here, eps 1e-5), as in the reference recipe.
    return keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=name)


def _preact_block(x, filters, strides, prefix):
    """Pre-activation basic block: BN-ReLU-conv3x3-BN-ReLU-conv3x3, identity or 1x1-conv shortcut."""
    out = keras.layers.ReLU(name=f"{prefix}_relu1")(_bn(f"{prefix}_bn1")(x))
    if strides != 1 or x.shape[-1] != filters:
        shortcut = _conv(filters, 1, strides, f"{prefix}_shortcut")(out)
    else:
        shortcut = x
    out = _conv(filters, 3, strides, f"{prefix}_conv1")(out)
    out = keras.layers.ReLU(name=f"{prefix}_relu2")(_bn(f"{prefix}_bn2")(out))
    out = _conv(filters, 3, 1, f"{prefix}_conv2")(out)
    return keras.layers.Add(name=f"{prefix}_add")([out, shortcut])


def preact_resnet_body(x, width):
    """Stem conv, 4 stages (widths w, 2w, 4w, 8w; strides 1, 2, 2, 2), final BN-ReLU and global pooling."""
    x = _conv(width, 3, 1, "stem_conv")(x)
    for stage, blocks in enumerate(STAGE_BLOCKS):
        filters = width * 2**stage
        for block in range(blocks):
            strides = 2 if (stage > 0 and block == 0) else 1
            x = _preact_block(x, filters, strides, f"stage{stage + 1}_block{block}")
    x = keras.layers.ReLU(name="final_relu")(_bn("final_bn")(x))
    return keras.layers.GlobalAveragePooling2D(name="pool")(x)


def preact_resnet18(num_classes=10, width=64, input_shape=(32, 32, 3), name="preact_resnet18"):
    """The standard CIFAR PreAct-ResNet-18 (11.17 M parameters at width 64 and 10 classes).

    Input: pixels in [0, 255] (float or uint8), [B, H, W, 3]. Output: {"logits": [B, num_classes]}.
    """
    check_positive_int("num_classes", num_classes)
    check_positive_int("width", width)
    pixels = pixel_input(input_shape)
    features = preact_resnet_body(normalize_pixels(pixels), width)
    logits = torch_default_dense(num_classes, features.shape[-1], "logits", dtype="float32")(features)
    return keras.Model(pixels, {"logits": logits}, name=name)
