"""CIFAR through tfds: the loading code on tfds mock data, the network probe, and the fast offline error."""

import http.server
import threading
import time

import numpy as np
import pytest
import tensorflow_datasets as tfds

from mocse_tf.data import load_arrays, tfds_source
from mocse_tf.errors import UsageError


# Hosts that never serve anything: TEST-NET-1 (RFC 5737, documentation only) and the .invalid domain (RFC 6761,
# never resolves). Not 10.255.255.1: in some sandboxes a proxy answers on any private address.
UNREACHABLE_URLS = ["https://192.0.2.1/", "https://cifar.invalid/"]


@pytest.fixture(params=UNREACHABLE_URLS)
def unreachable_download_host(monkeypatch, request):
    """Points the probe at a host that cannot answer, with a short timeout; returns the host name."""
    monkeypatch.setattr(tfds_source, "PROBE_URL", request.param)
    monkeypatch.setattr(tfds_source, "PROBE_TIMEOUT_S", 0.5)
    return request.param.split("/")[2]


@pytest.mark.parametrize("name, num_classes", [("cifar10", 10), ("cifar100", 100)])
def test_loads_tfds_data_as_arrays(monkeypatch, name, num_classes):
    # mock_data replaces the stored records with random ones and download_and_prepare with a no-op; the probe
    # (no network here) is told the host answers, so the real not-prepared -> download -> read path runs.
    monkeypatch.setattr(tfds_source, "network_reachable", lambda: True)
    with tfds.testing.mock_data(num_examples=13):
        data = load_arrays(name, "test", data_dir="/nonexistent/tfds", num_examples=11)
    assert data.images.dtype == np.uint8 and data.images.shape == (11, 32, 32, 3)
    assert data.labels.dtype == np.int64 and data.labels.shape == (11,)
    assert data.num_classes == num_classes and data.name == name
    assert 0 <= data.labels.min() and data.labels.max() < num_classes
    if name == "cifar10":
        assert data.class_names[0] == "airplane"  # mock metadata has only numbers: the CIFAR-10 names are used


def test_offline_and_not_prepared_fails_fast_with_how_to_supply(tmp_path, unreachable_download_host):
    start = time.monotonic()
    with pytest.raises(UsageError) as caught:
        load_arrays("cifar10", "train", data_dir=tmp_path)
    elapsed = time.monotonic() - start
    message = str(caught.value)
    assert elapsed < 10, f"the offline error took {elapsed:.1f} s"
    assert "\n" not in message
    assert f"not prepared in {tmp_path}" in message and f"{unreachable_download_host} cannot be reached" in message
    for remedy in ("network access", "`data_dir`=DIR", "`dataset`=cifar10_local `local_dir`=PATH",
                   "`dataset`=synthetic"):
        assert remedy in message
    assert list(tmp_path.iterdir()) == []  # nothing half-downloaded left behind


def test_cifar100_offline_message_does_not_offer_the_cifar10_folder(tmp_path, unreachable_download_host):
    with pytest.raises(UsageError) as caught:
        load_arrays("cifar100", "test", data_dir=tmp_path)
    assert "cifar10_local" not in str(caught.value) and "`dataset`=synthetic" in str(caught.value)


def test_probe_sees_a_web_server_and_not_a_closed_port(monkeypatch):
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setattr(tfds_source, "PROBE_URL", f"http://127.0.0.1:{server.server_port}/no-such-file")
        assert tfds_source.network_reachable()  # a 404 is still an answer
    finally:
        server.shutdown()
        server.server_close()
    # Closed now: the connection is refused.
    assert not tfds_source.network_reachable()


def test_probe_gives_up_after_its_timeout(unreachable_download_host):
    start = time.monotonic()
    assert not tfds_source.network_reachable()
    assert time.monotonic() - start < 2
