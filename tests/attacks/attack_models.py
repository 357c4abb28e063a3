"""Small models and data shared by the attack tests: a linear logistic model with a known optimal attack, tiny
Keras functional conv nets with dict outputs (plain and MoCSE-like), and one such net trained on separable
synthetic images."""

import numpy as np
import pytest
import tensorflow as tf
import keras

NUM_CLASSES = 4
IMAGE_SHAPE = (32, 32, 3)


def linear_logistic_forward(weights):
    """forward(x01) of the binary logistic model z = <w, x>, as class logits [0, z] (label 1 wants z > 0)."""
    weights = tf.constant(np.reshape(weights, [-1, 1]), tf.float32)

    def forward(x01):
        z = tf.matmul(tf.reshape(x01, [tf.shape(x01)[0], -1]), weights)
        return {"logits": tf.concat([tf.zeros_like(z), z], axis=1)}

    return forward


def tiny_conv_net(num_classes=NUM_CLASSES, experts=False, batch_norm=False, seed=0):
    """A Keras functional net on [0, 255] pixels with dict outputs: {"logits"} or, with experts=True, MoCSE's
    {"logits": margin of each expert, "expert_logits": [B, N, 2]}."""
    keras.utils.set_random_seed(seed)
    pixels = keras.Input(IMAGE_SHAPE, name="pixels")
    x = keras.layers.Rescaling(1.0 / 255.0)(pixels)
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same")(x)
    if batch_norm:
        x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(x)
    x = keras.layers.Flatten()(x)
    if not experts:
        return keras.Model(pixels, {"logits": keras.layers.Dense(num_classes, name="logits")(x)})
    expert_logits = keras.layers.Reshape((num_classes, 2), name="expert_logits")(keras.layers.Dense(2 * num_classes)(x))
    margin = keras.layers.Lambda(lambda e: e[..., 1] - e[..., 0], name="logits")(expert_logits)
    return keras.Model(pixels, {"logits": margin, "expert_logits": expert_logits})


def synthetic_images(count, seed, num_classes=NUM_CLASSES, noise=0.2):
    """Images in [0, 1]: a smooth random prototype per class plus pixel noise; labels cycle through the classes."""
    rng = np.random.default_rng(1234)
    # Close prototypes and strong noise: a model that is accurate on clean images but not robust at eps 4/255.
    coarse = rng.uniform(0.42, 0.58, size=(num_classes, 4, 4, 3))
    prototypes = np.repeat(np.repeat(coarse, 8, axis=1), 8, axis=2)
    labels = np.arange(count) % num_classes
    noise_rng = np.random.default_rng(seed)
    images = prototypes[labels] + noise * noise_rng.normal(size=(count,) + IMAGE_SHAPE)
    return np.clip(images, 0, 1).astype("float32"), labels.astype("int64")


@pytest.fixture(scope="session")
def trained_net():
    """A tiny conv net trained to high clean accuracy on the synthetic images, with held-out test images."""
    net = tiny_conv_net()
    train_x, train_y = synthetic_images(512, seed=1)
    net.compile(optimizer=keras.optimizers.Adam(3e-3),
                loss={"logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True)})
    net.fit(train_x * 255.0, {"logits": train_y}, batch_size=64, epochs=8, verbose=0)
    test_x, test_y = synthetic_images(64, seed=2)
    return net, test_x, test_y
