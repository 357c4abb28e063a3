"""The one trainer for both architectures: a keras.Model wrapping a network with custom train/test steps.

The wrapped network returns a dict ({"logits"} or, for MoCSE, also {"expert_logits"}); the loss is the
class cross-entropy of the logits plus `bce_weight` times the experts' one-vs-rest binary cross-entropy.
An optional `attack` (mocse_tf.attacks) makes adversarial examples inside the same step.
"""

import keras
import tensorflow as tf

from mocse_tf import losses


class RobustTrainer(keras.Model):
    """Trains `network` (a functional model taking [0, 255] pixels) with CE (+ expert BCE) in train_step."""

    def __init__(self, network, bce_weight=1.0, attack=None, **kwargs):
        super().__init__(name=kwargs.pop("name", "trainer"), **kwargs)
        self.network = network
        self.bce_weight = float(bce_weight)
        self.attack = attack
        self.is_mocse = "expert_logits" in network.output
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.ce_tracker = keras.metrics.Mean(name="ce")
        self.accuracy_tracker = keras.metrics.Mean(name="accuracy")
        self.bce_tracker = keras.metrics.Mean(name="bce")
        self.expert_accuracy_tracker = keras.metrics.Mean(name="expert_accuracy")

    def call(self, inputs, training=False):
        return self.network(inputs, training=training)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras' version (run by fit/evaluate under any tf.distribute strategy) peeks at one batch to build an
        # unbuilt model. The network is built already, and the peek does harm: it opens one extra iterator, so a
        # reshuffling pipeline starts one shuffle later than on one device, and under
        # MultiWorkerMirroredStrategy it fails reducing the batch (keras-team/keras#20585). Build only what
        # may be missing: the optimizer's slots.
        if self.optimizer is not None and not self.optimizer.built:
            with self.distribute_strategy.scope():
                self.optimizer.build(self.network.trainable_variables)
        self.built = True

    @property
    def metrics(self):
        trackers = [self.loss_tracker, self.ce_tracker, self.accuracy_tracker]
        if self.is_mocse:
            trackers += [self.bce_tracker, self.expert_accuracy_tracker]
        return trackers

    def _loss_terms(self, labels, outputs):
        """Batch-mean loss and its parts; the mean is over this replica's examples."""
        ce = tf.reduce_mean(losses.class_cross_entropy(labels, outputs["logits"]))
        terms = {"ce": ce, "loss": ce}
        if self.is_mocse:
            bce = tf.reduce_mean(losses.expert_binary_cross_entropy(labels, outputs["expert_logits"]))
            terms["bce"] = bce
            terms["loss"] = ce + self.bce_weight * bce
        return terms

    def _update_metrics(self, labels, outputs, terms):
        labels = tf.cast(tf.reshape(labels, [-1]), tf.int32)
        self.loss_tracker.update_state(terms["loss"])
        self.ce_tracker.update_state(terms["ce"])
        predictions = tf.cast(tf.argmax(outputs["logits"], axis=-1), tf.int32)
        self.accuracy_tracker.update_state(tf.cast(tf.equal(predictions, labels), tf.float32))
        if self.is_mocse:
            self.bce_tracker.update_state(terms["bce"])
            self.expert_accuracy_tracker.update_state(
                losses.expert_binary_accuracy(labels, outputs["expert_logits"]))

    def _metric_logs(self):
        logs = {m.name: m.result() for m in self.metrics}
        strategy = tf.distribute.get_strategy()
        if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and \
                strategy.extended._in_multi_worker_mode():
            # Keras reduces each worker's logs with reduce(MEAN, axis=0), which rejects scalars
            # (keras-team/keras#20585): hand it shape [1], which it averages over workers into a scalar.
            logs = {name: tf.reshape(value, [1]) for name, value in logs.items()}
        return logs

    def train_step(self, data):
        images, labels = data
        images = tf.cast(images, tf.float32)
        if self.attack is not None:
            images = self.attack.perturb_for_training(self.network, images, labels, self.optimizer.iterations)
        with tf.GradientTape() as tape:
            outputs = self.network(images, training=True)
            terms = self._loss_terms(labels, outputs)
            # Gradients are summed over replicas, so each replica's mean loss is divided by their number.
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            scaled_loss = self.optimizer.scale_loss(terms["loss"] / replicas)
        variables = self.network.trainable_variables
        gradients = tape.gradient(scaled_loss, variables)
        self.optimizer.apply_gradients(zip(gradients, variables))
        self._update_metrics(labels, outputs, terms)
        return self._metric_logs()

    def test_step(self, data):
        images, labels = data
        outputs = self.network(tf.cast(images, tf.float32), training=False)
        self._update_metrics(labels, outputs, self._loss_terms(labels, outputs))
        return self._metric_logs()
