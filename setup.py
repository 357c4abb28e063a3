"""Installs mocse_tf: robust image classifiers (PreAct-ResNet-18 and MoCSE) for TensorFlow/Keras."""

import pathlib

from setuptools import find_packages, setup

HERE = pathlib.Path(__file__).parent

setup(
    name="mocse_tf",
    version="0.1.0",
    description="Mixture of Class-Specific Experts and PreAct-ResNet-18 for corruption and adversarial "
    "robustness in TensorFlow/Keras",
    long_description=(HERE / "README.md").read_text() if (HERE / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    packages=find_packages(include=["mocse_tf", "mocse_tf.*"]),
    package_data={"mocse_tf.experiments": ["paper_table1.json"]},  # the paper's Table 1 (bin/table1)
    python_requires=">=3.10",
    install_requires=[
        # CPU build: what CI and this machine need. GPU machines: see BUILD.md (pip install tensorflow[and-cuda]).
        "tensorflow-cpu>=2.16",
        "keras>=3",
        "tensorflow-datasets>=4.9",
        "keras-tuner[bayesian]>=1.4",  # [bayesian]: scikit-learn for --tuner=bayesian
        "absl-py",
        # Declared by hand: tfds needs it on Python >= 3.9 but declares it only for < 3.9.
        "importlib_resources",
        # Declared by hand: tensorflow-cpu >= 2.21 no longer pulls it in; keras-tuner and the TensorBoard
        # callback need it.
        "tensorboard",
        "numpy",
        "pillow",
        "matplotlib",
        # The six CIFAR-10-C frost textures ship byte-identical in this package (Apache-2.0); read in place.
        "imagecorruptions",
        # imagecorruptions imports pkg_resources, which setuptools 81 removed (a bench extra that upgrades
        # setuptools, e.g. torch, would otherwise break the frost corruption).
        "setuptools<81",
    ],
    extras_require={
        "test": ["pytest", "scipy", "scikit-image"],
        # bench/ only, never imported by mocse_tf: bench/autoattack.py compares with ART; bench/autoattack_reference.py
        # runs the reference AutoAttack (fra31/auto-attack, PyTorch; a checkout passed by --reference_dir).
        "bench": ["adversarial-robustness-toolbox>=1.17", "torch"],
    },
    scripts=[],
)
