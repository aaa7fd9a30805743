"""Xception's weights="imagenet" offline: a clear error naming Keras's file and where to put it."""

import urllib.error

import pytest

from jaxvision.applications import Xception


def test_imagenet_offline_names_the_file_and_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("JAXVISION_DATA", str(tmp_path))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr("urllib.request.urlopen", offline)
    with pytest.raises(RuntimeError, match=r"(?s)xception_weights_tf_dim_ordering_tf_kernels_notop\.h5 not found in "
                                           + str(tmp_path / "pretrained") + r".*sha256 e3fa3252"):
        Xception(include_top=False, weights="imagenet")
    with pytest.raises(ValueError, match="classes=1000"):
        Xception(classes=10, weights="imagenet")
