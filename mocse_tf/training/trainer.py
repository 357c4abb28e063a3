"""The one trainer for both architectures: a keras.Model wrapping a network with custom train/test steps.

The wrapped network returns a dict ({"logits"} or, for MoCSE, also {"expert_logits"}); the loss is the
class cross-entropy of the logits plus `bce_weight` times the experts' one-vs-rest binary cross-entropy.
An optional `attack` (mocse_tf.training.adversarial.AdversarialTraining) makes adversarial examples inside the
same step, on the training device, before the step's weight update is recorded.
"""

import keras
import tensorflow as tf

from mocse_tf import attacks, losses
from mocse_tf.errors import UsageError
from mocse_tf.labels import top1_correct
from mocse_tf.training.adversarial import AdversarialTraining


class RobustTrainer(keras.Model):
    """Trains `network` (a functional model taking [0, 255] pixels) with CE (+ expert BCE) in train_step.

    attack: None (standard training), an `AdversarialTraining` (`make_training_attack(config)`), or a bare
    `mocse_tf.attacks.Attack` of a training kind (wrapped with TRADES beta 6, seed 0, inference-mode BN).
    Training metrics with `adv`=pgd or fgsm_rs are those of the adversarial batch the step trains on (loss, ce,
    bce, accuracy = adversarial accuracy, expert_accuracy). With trades, loss is the whole TRADES loss, ce, bce,
    accuracy and expert_accuracy are those of the clean batch, kl is the mean KL(clean || adv) (before beta) and
    adv_accuracy the accuracy on the TRADES adversarial batch. Validation metrics are always clean.
    """

    def __init__(self, network, bce_weight=1.0, attack=None, **kwargs):
        super().__init__(name=kwargs.pop("name", "trainer"), **kwargs)
        self.network = network
        self.bce_weight = float(bce_weight)
        if isinstance(attack, attacks.Attack):
            attack = AdversarialTraining(attack)
        if attack is not None and not isinstance(attack, AdversarialTraining):
            raise UsageError(f"attack must be None, an AdversarialTraining or a mocse_tf.attacks.Attack, got "
                             f"{type(attack).__name__}; build it with make_training_attack(config)")
        if attack is not None and attack.attack.objective == "mocse_total" and \
                attack.attack.bce_weight != self.bce_weight:
            raise UsageError(f"the attack maximises CE + {attack.attack.bce_weight} x BCE but the trainer minimises "
                             f"CE + {self.bce_weight} x BCE; build both from one config (make_training_attack(config) "
                             f"and bce_weight=config.bce_weight)")
        self.attack = attack
        self.is_mocse = "expert_logits" in network.output
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.ce_tracker = keras.metrics.Mean(name="ce")
        self.accuracy_tracker = keras.metrics.Mean(name="accuracy")
        self.bce_tracker = keras.metrics.Mean(name="bce")
        self.expert_accuracy_tracker = keras.metrics.Mean(name="expert_accuracy")
        self.kl_tracker = keras.metrics.Mean(name="kl")
        self.adv_accuracy_tracker = keras.metrics.Mean(name="adv_accuracy")

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
        if self._is_trades:
            trackers += [self.kl_tracker, self.adv_accuracy_tracker]
        return trackers

    @property
    def _is_trades(self):
        return self.attack is not None and self.attack.is_trades

    def _loss_terms(self, labels, outputs):
        """Batch-mean loss and its parts; the mean is over this replica's examples."""
        ce = tf.reduce_mean(losses.class_cross_entropy(labels, outputs["logits"]))
        terms = {"ce": ce, "loss": ce}
        if self.is_mocse:
            bce = tf.reduce_mean(losses.expert_binary_cross_entropy(labels, outputs["expert_logits"]))
            terms["bce"] = bce
            terms["loss"] = ce + self.bce_weight * bce
        return terms

    @staticmethod
    def _correct(labels, outputs):
        return tf.cast(top1_correct(outputs["logits"], labels), tf.float32)

    def _update_metrics(self, labels, outputs, terms):
        self.loss_tracker.update_state(terms["loss"])
        self.ce_tracker.update_state(terms["ce"])
        self.accuracy_tracker.update_state(self._correct(labels, outputs))
        if self.is_mocse:
            self.bce_tracker.update_state(terms["bce"])
            self.expert_accuracy_tracker.update_state(
                losses.expert_binary_accuracy(labels, outputs["expert_logits"]))

    def _metric_logs(self, trackers=None):
        logs = {m.name: m.result() for m in (self.metrics if trackers is None else trackers)}
        strategy = tf.distribute.get_strategy()
        if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and \
                strategy.extended._in_multi_worker_mode():
            # Keras reduces each worker's logs with reduce(MEAN, axis=0), which rejects scalars
            # (keras-team/keras#20585): hand it shape [1], which it averages over workers into a scalar.
            logs = {name: tf.reshape(value, [1]) for name, value in logs.items()}
        return logs

    def _adversarial_terms(self, labels, pixels, adversarial_pixels):
        """Outputs whose metrics are logged, and the loss terms, of one adversarial step (inside the tape)."""
        if not self.attack.is_trades:
            outputs = self.network(adversarial_pixels, training=True)
            return outputs, self._loss_terms(labels, outputs)
        # TRADES: the clean and the adversarial batch are separate training-mode passes, as in the reference,
        # so each normalises with its own batch statistics.
        clean_outputs = self.network(pixels, training=True)
        adversarial_outputs = self.network(adversarial_pixels, training=True)
        clean_logits, adversarial_logits = clean_outputs["logits"], adversarial_outputs["logits"]
        terms = self._loss_terms(labels, clean_outputs)
        terms["kl"] = tf.reduce_mean(attacks.trades_kl(clean_logits, adversarial_logits))
        # TRADES' own loss, CE(clean) + beta KL(clean || adv), plus the experts' BCE on the clean batch for MoCSE.
        trades = tf.reduce_mean(attacks.trades_loss(labels, clean_logits, adversarial_logits, self.attack.trades_beta))
        terms["loss"] = trades + terms["loss"] - terms["ce"]
        terms["adv_correct"] = self._correct(labels, adversarial_outputs)
        return clean_outputs, terms

    def train_step(self, data):
        images, labels = data
        pixels = tf.cast(images, tf.float32)
        if self.attack is not None:
            # Made before the tape opens: the attack differentiates w.r.t. its input only, and sees the network
            # as the AdversarialTraining's BN mode says, without writing its moving statistics.
            adversarial_pixels = self.attack.perturb(self.network, pixels, labels, self.optimizer.iterations)
        with tf.GradientTape() as tape:
            if self.attack is None:
                outputs = self.network(pixels, training=True)
                terms = self._loss_terms(labels, outputs)
            else:
                outputs, terms = self._adversarial_terms(labels, pixels, adversarial_pixels)
            # Gradients are summed over replicas, so each replica's mean loss is divided by their number.
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            scaled_loss = self.optimizer.scale_loss(terms["loss"] / replicas)
        variables = self.network.trainable_variables
        gradients = tape.gradient(scaled_loss, variables)
        self.optimizer.apply_gradients(zip(gradients, variables))
        self._update_metrics(labels, outputs, terms)
        if self._is_trades:
            self.kl_tracker.update_state(terms["kl"])
            self.adv_accuracy_tracker.update_state(terms["adv_correct"])
        return self._metric_logs()

    def test_step(self, data):
        images, labels = data
        outputs = self.network(tf.cast(images, tf.float32), training=False)
        self._update_metrics(labels, outputs, self._loss_terms(labels, outputs))
        # Clean metrics only: the TRADES trackers (kl, adv_accuracy) have no clean counterpart.
        return self._metric_logs([m for m in self.metrics if m.name not in ("kl", "adv_accuracy")])
