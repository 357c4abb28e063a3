"""mocse_tf: robust CIFAR classifiers (PreAct-ResNet-18, Mixture of Class-Specific Experts) in TensorFlow/Keras."""

__version__ = "0.1.0"
