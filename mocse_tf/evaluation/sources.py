"""Where corrupted test images come from: tfds `cifar10_corrupted`, a folder in the released CIFAR-10-C layout,
or on-the-fly generation from a clean data set with `mocse_tf.corruptions`.

Every source answers `dataset(corruption, severity, batch_size)` with a tf.data.Dataset of
(uint8 images [B, 32, 32, 3], labels [B] of mocse_tf.labels.LABEL_DTYPE) in a fixed order, prefetched so the
model never waits.
"""

import os

import numpy as np
import tensorflow as tf

from mocse_tf import corruptions
from mocse_tf.errors import UsageError, describe_error
from mocse_tf.files import read_json
from mocse_tf.labels import LABEL_DTYPE, NUMPY_LABEL_DTYPE

SOURCES = ("tfds", "folder", "generate")
LABELS_FILE = "labels.npy"
NUM_SEVERITIES = len(corruptions.SEVERITIES)
IMAGE_SHAPE = (32, 32, 3)
TFDS_NAME = "cifar10_corrupted"
TFDS_ARCHIVE = "CIFAR-10-C.tar"
TFDS_ARCHIVE_SHA256 = "c72763e101c723b7c507b96205f7e938912a5d587376173b825850cf3cb876a7"
# Images generated on the fly get one stateless seed per chunk of this many images, so the same seed gives
# the same corrupted images whatever the evaluation batch size (and bin/make_c writes exactly those images).
SEED_CHUNK = 250


def released_file_name(corruption):
    """The file of a corruption in the released layout, e.g. frosted_glass_blur -> glass_blur.npy."""
    return corruptions.GENERATOR_NAMES[corruptions.canonical_name(corruption)] + ".npy"


def _prefetched(dataset):
    return dataset.prefetch(tf.data.AUTOTUNE)


# --- tfds cifar10_corrupted ---------------------------------------------------------------------------------


def tfds_data_root(data_dir):
    import tensorflow_datasets as tfds

    return os.path.expanduser(data_dir) if data_dir else tfds.core.constants.DATA_DIR


def tfds_manual_dir(data_dir):
    """tfds' default manual-download folder for a data dir: <data_dir>/downloads/manual."""
    return os.path.join(tfds_data_root(data_dir), "downloads", "manual")


def tfds_offline_help(data_dir):
    """How to make `cifar10_corrupted` available without a network (BUILD.md says the same)."""
    root = tfds_data_root(data_dir)
    manual = tfds_manual_dir(data_dir)
    return (f"place the genuine {TFDS_ARCHIVE} (2.7 GiB from https://zenodo.org/record/2535967, sha256 "
            f"{TFDS_ARCHIVE_SHA256}) at {os.path.join(manual, TFDS_ARCHIVE)} (mkdir -p {manual} && cp "
            f"CIFAR-10-C.tar {manual}/) and rerun with `data_dir`={root}; or extract it (tar -xf CIFAR-10-C.tar) "
            f"and pass `source`=folder `c_dir`=<path>/CIFAR-10-C; or generate the corruptions on the fly with "
            f"`source`=generate")


class TfdsSource:
    """The official CIFAR-10-C through the real tfds loader (`cifar10_corrupted/<name>_<severity>`).

    A config that is not prepared yet is built from <data_dir>/downloads/manual/CIFAR-10-C.tar when that file
    is there; without it and without a network (probed once, as mocse_tf.data does for cifar10) the source fails
    at once with instructions, instead of letting tfds retry the download for minutes.
    """

    name = "tfds"

    def __init__(self, data_dir=None, num_examples=None):
        self.data_dir = data_dir
        self.num_examples = num_examples
        self.num_classes = 10
        self._network_checked = False

    def describe(self):
        return {"source": self.name, "source_detail": f"{TFDS_NAME}, data_dir={tfds_data_root(self.data_dir)}"}

    def _config_builder(self, corruption, severity):
        import tensorflow_datasets as tfds

        config = f"{TFDS_NAME}/{corruptions.canonical_name(corruption)}_{corruptions.validate_severity(severity)}"
        return tfds.builder(config, data_dir=self.data_dir)

    def _builder(self, corruption, severity):
        builder = self._config_builder(corruption, severity)
        if not builder.is_prepared():
            self._check_can_prepare(builder)
            self._prepare(builder)
        return builder

    def check_available(self, corruption_names, severities):
        """Fails now, before any model runs, when a needed config is neither prepared nor preparable."""
        for corruption in corruption_names:
            for severity in severities:
                builder = self._config_builder(corruption, severity)
                if not builder.is_prepared():
                    self._check_can_prepare(builder)
                    return  # the archive or the network is there: every config can be prepared

    def _check_can_prepare(self, builder):
        manual_dir = tfds_manual_dir(self.data_dir)
        if os.path.isfile(os.path.join(manual_dir, TFDS_ARCHIVE)) or self._network_checked:
            return
        from mocse_tf.data.tfds_source import network_reachable

        if not network_reachable():
            raise UsageError(f"{builder.info.full_name} is not prepared in {tfds_data_root(self.data_dir)}, "
                             f"{os.path.join(manual_dir, TFDS_ARCHIVE)} is absent and the network cannot be "
                             f"reached: {tfds_offline_help(self.data_dir)}")
        self._network_checked = True

    def _prepare(self, builder):
        import tensorflow_datasets as tfds

        manual_dir = tfds_manual_dir(self.data_dir)
        try:
            builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
        except Exception as err:  # a wrong tar (checksum), a full disk, a cut connection: say so in one line
            if "Checksum" in type(err).__name__:
                raise UsageError(f"cannot prepare {builder.info.full_name}: {os.path.join(manual_dir, TFDS_ARCHIVE)} "
                                 f"is not the genuine archive (its checksum differs); "
                                 f"{tfds_offline_help(self.data_dir)}") from None
            raise UsageError(f"cannot prepare {builder.info.full_name}: {describe_error(err)}; "
                             f"{tfds_offline_help(self.data_dir)}") from None

    def dataset(self, corruption, severity, batch_size):
        builder = self._builder(corruption, severity)
        data = builder.as_dataset(split="test", as_supervised=True, shuffle_files=False)
        if self.num_examples:
            # `take`, not a split slice: it reads only the first records and also works under tfds mock data.
            data = data.take(self.num_examples)
        as_labels = tf.autograph.experimental.do_not_convert(lambda image, label: (image, tf.cast(label, LABEL_DTYPE)))
        data = data.map(as_labels)
        return _prefetched(data.batch(batch_size))


# --- a folder in the released layout ------------------------------------------------------------------------


def _load_npy(path, what):
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        raise UsageError(f"{what}: {path} is missing") from None
    except (OSError, ValueError) as err:
        raise UsageError(f"{what}: cannot read {path} as a .npy array ({err}); the file is damaged or is not "
                         f"an .npy file") from None


class FolderSource:
    """A folder in the released CIFAR-10-C layout: `<generator name>.npy` (uint8 [5 N, 32, 32, 3], severity 1
    to 5 stacked) and `labels.npy` ([5 N] integers). Files are memory-mapped and read batch by batch."""

    name = "folder"

    def __init__(self, c_dir, corruption_names, num_examples=None):
        if not c_dir:
            raise UsageError("`source`=folder needs `c_dir`, a folder holding <corruption>.npy files and "
                             "labels.npy (the extracted CIFAR-10-C download or bin/make_c output)")
        if not os.path.isdir(c_dir):
            raise UsageError(f"`c_dir` {c_dir} is not a folder; expected the extracted CIFAR-10-C folder or "
                             f"bin/make_c output")
        self.c_dir = c_dir
        what = f"`c_dir` {c_dir}"
        labels = _load_npy(os.path.join(c_dir, LABELS_FILE), what)
        if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer) or len(labels) % NUM_SEVERITIES \
                or len(labels) == 0:
            raise UsageError(f"{what}: {LABELS_FILE} has dtype {labels.dtype} and shape {labels.shape}; expected "
                             f"integers of shape [5 N] (the test labels repeated for the 5 severities)")
        self.labels = labels
        self.per_severity = len(labels) // NUM_SEVERITIES
        expected = (len(labels),) + IMAGE_SHAPE
        missing = [released_file_name(c) for c in corruption_names
                   if not os.path.isfile(os.path.join(c_dir, released_file_name(c)))]
        if missing:
            raise UsageError(f"{what} lacks {', '.join(missing)}; expected one <name>.npy per corruption "
                             f"(choose others with `corruptions`, or write them with bin/make_c)")
        self.arrays = {}
        for corruption in corruption_names:
            file_name = released_file_name(corruption)
            array = _load_npy(os.path.join(c_dir, file_name), what)
            if array.dtype != np.uint8 or array.shape != expected:
                raise UsageError(f"{what}: {file_name} has dtype {array.dtype} and shape {array.shape}; expected "
                                 f"uint8 {expected} (5 severities x {self.per_severity} images, matching "
                                 f"{LABELS_FILE})")
            self.arrays[corruptions.canonical_name(corruption)] = array
        self.num_examples = min(num_examples or self.per_severity, self.per_severity)
        self.manifest = read_manifest(c_dir)
        # bin/make_c records the class count; for the released layout the largest label is all there is.
        self.num_classes = int((self.manifest or {}).get("num_classes") or int(labels.max()) + 1)
        outside = np.flatnonzero((labels < 0) | (labels >= self.num_classes))
        if len(outside):  # such an image would silently count as a miss
            index = int(outside[0])
            raise UsageError(f"{what}: {LABELS_FILE} holds label {int(labels[index])} at index {index}, outside the "
                             f"{self.num_classes} classes {MANIFEST_FILE} records (labels 0 to {self.num_classes - 1}); "
                             f"the folder is damaged: write it again with bin/make_c")

    def describe(self):
        return {"source": self.name, "source_detail": os.path.abspath(self.c_dir)}

    def dataset(self, corruption, severity, batch_size):
        array = self.arrays[corruptions.canonical_name(corruption)]
        start = (corruptions.validate_severity(severity) - 1) * self.per_severity
        stop = start + self.num_examples
        labels = self.labels

        def read_batch(index):
            first = start + int(index) * batch_size
            last = min(first + batch_size, stop)
            return np.asarray(array[first:last]), np.asarray(labels[first:last], NUMPY_LABEL_DTYPE)

        @tf.autograph.experimental.do_not_convert  # plain TF ops: nothing for AutoGraph to convert
        def read(index):
            images, batch_labels = tf.numpy_function(read_batch, [index], (tf.uint8, LABEL_DTYPE), stateful=False)
            return tf.ensure_shape(images, (None,) + IMAGE_SHAPE), tf.ensure_shape(batch_labels, (None,))

        num_batches = -(-self.num_examples // batch_size)
        data = tf.data.Dataset.range(num_batches).map(read, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return _prefetched(data)


MANIFEST_FILE = "make_c.json"


def read_manifest(c_dir):
    """The make_c.json that bin/make_c leaves beside its arrays (None for other folders)."""
    path = os.path.join(c_dir, MANIFEST_FILE)
    try:
        return read_json(path) if os.path.isfile(path) else None
    except (OSError, ValueError) as err:
        raise UsageError(f"cannot read {path}: {err}; delete it if the folder was not made by bin/make_c") from None


# --- on-the-fly generation ----------------------------------------------------------------------------------


def chunk_seed(seed, corruption, severity, chunk_index):
    """The shape-[2] stateless seed of one chunk of SEED_CHUNK images: a function of all four arguments."""
    base = tf.constant([int(seed), 0], tf.int64)
    key = tf.random.experimental.stateless_fold_in(base, corruptions.ALL.index(corruption))
    key = tf.random.experimental.stateless_fold_in(key, int(severity))
    return tf.random.experimental.stateless_fold_in(key, tf.cast(chunk_index, tf.int64))


def generated_dataset(images, labels, corruption, severity, seed, batch_size):
    """Corrupts (images, labels) inside tf.data.map, SEED_CHUNK images per call, each chunk with its own seed.

    Chunk k equals `corrupt(images[k*SEED_CHUNK:(k+1)*SEED_CHUNK], corruption, severity,
    seed=chunk_seed(seed, corruption, severity, k))`; the result is re-batched to `batch_size`.
    """
    corruption = corruptions.canonical_name(corruption)
    severity = corruptions.validate_severity(severity)
    data = tf.data.Dataset.from_tensor_slices((images, np.asarray(labels, NUMPY_LABEL_DTYPE))).batch(SEED_CHUNK).enumerate()

    @tf.autograph.experimental.do_not_convert  # plain TF ops; AutoGraph only slows tracing down
    def corrupt_chunk(index, chunk):
        chunk_images, chunk_labels = chunk
        seed_pair = chunk_seed(seed, corruption, severity, index)
        return corruptions.apply(chunk_images, corruption, severity, seed_pair), chunk_labels

    data = data.map(corrupt_chunk, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if batch_size != SEED_CHUNK:
        data = data.rebatch(batch_size)
    return _prefetched(data)


class GeneratedSource:
    """Corruptions computed on the fly from clean test images with `mocse_tf.corruptions` (seeded per chunk)."""

    name = "generate"

    def __init__(self, images, labels, seed=0, dataset_name=None):
        self.images = np.asarray(images)
        self.labels = np.asarray(labels, NUMPY_LABEL_DTYPE)
        self.seed = int(seed)
        self.dataset_name = dataset_name
        self.num_examples = len(self.images)

    def describe(self):
        return {"source": self.name,
                "source_detail": f"mocse_tf.corruptions on {self.dataset_name or 'the clean test set'}, "
                                 f"seed {self.seed}, one seed per {SEED_CHUNK} images"}

    def dataset(self, corruption, severity, batch_size):
        return generated_dataset(self.images, self.labels, corruption, severity, self.seed, batch_size)

