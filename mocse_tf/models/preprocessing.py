"""The model's own input handling: raw pixels in, CIFAR-normalised floats out, so exports take raw images."""

import keras

# CIFAR-10 training-set channel statistics in [0, 1] units (the usual constants of the reference recipes).
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


def pixel_input(input_shape=(32, 32, 3)):
    """The network input: pixel values in [0, 255]; uint8 batches are cast to float32 by Keras."""
    return keras.Input(shape=tuple(input_shape), dtype="float32", name="pixels")


def normalize_pixels(pixels):
    """Scales [0, 255] pixels to [0, 1] and standardises each channel with the CIFAR-10 statistics."""
    x = keras.layers.Rescaling(1.0 / 255.0, name="rescale")(pixels)
    return keras.layers.Normalization(
        mean=CIFAR10_MEAN, variance=tuple(s * s for s in CIFAR10_STD), name="normalize"
    )(x)
