"""Decoding to RGB and Keras-matching resize (image_io)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from jaxvision.data.image_io import check_decodable, load_rgb, nearest_indices, resize

SHAPES = [((37, 53), (20, 64)), ((128, 128), (180, 180)), ((5, 3), (1, 1)), ((1, 1), (4, 7)),
          ((300, 10), (7, 10))]


@pytest.mark.parametrize(("src", "dst"), SHAPES)
def test_bilinear_matches_jax_resize_without_antialias(src, dst):
    x = np.random.default_rng(0).uniform(0, 255, (*src, 3)).astype(np.float32)
    ours = resize(x, dst)
    ref = np.asarray(jax.image.resize(jnp.asarray(x), (*dst, 3), "bilinear", antialias=False))
    exact = np.asarray(jax.image.resize(jnp.asarray(x, jnp.float32), (*dst, 3), "bilinear", antialias=False,
                                        precision=jax.lax.Precision.HIGHEST))
    assert ours.shape == (*dst, 3) and ours.dtype == np.float32
    # jax's CPU contraction was seen to drift ~1e-3 on this scale; the weights are identical.
    np.testing.assert_allclose(ours, ref, rtol=0, atol=5e-3)
    np.testing.assert_allclose(ours, exact, rtol=0, atol=5e-3)


def test_bilinear_matches_keras_ops_image_resize(keras):
    x = np.random.default_rng(1).uniform(0, 255, (30, 41, 3)).astype(np.float32)
    ref = np.asarray(keras.ops.image.resize(x, (17, 64), interpolation="bilinear"))
    np.testing.assert_allclose(resize(x, (17, 64)), ref, rtol=0, atol=5e-3)


def test_bilinear_known_values_and_edge_clamp():
    x = np.array([[0.0, 10.0]], np.float32)
    # Half-pixel centres: output centres at input -0.25, 0.25, 0.75, 1.25; outside ones clamp.
    np.testing.assert_array_equal(resize(x, (1, 4)), [[0.0, 2.5, 7.5, 10.0]])
    # Downsampling without antialias samples between two pixels, no wider filter.
    np.testing.assert_array_equal(resize(np.arange(8, dtype=np.float32)[None], (1, 2)), [[1.5, 5.5]])


def test_nearest_matches_jax_and_pillow():
    x = np.random.default_rng(2).integers(0, 255, (23, 31), dtype=np.uint8)
    for size in ((10, 47), (23, 8), (64, 64)):
        ours = resize(x, size, "nearest")
        assert ours.dtype == np.uint8
        np.testing.assert_array_equal(ours, np.asarray(jax.image.resize(x, size, "nearest")))
        pil = np.asarray(Image.fromarray(x).resize(size[::-1], Image.Resampling.NEAREST))
        np.testing.assert_array_equal(ours, pil)
    np.testing.assert_array_equal(nearest_indices(2, 3), [0, 1, 1])


def test_unknown_interpolation_is_rejected():
    with pytest.raises(ValueError, match="interpolation must be one of"):
        resize(np.zeros((2, 2, 3), np.float32), (4, 4), "bicubic")


@pytest.mark.parametrize(
    ("mode", "value", "expected"),
    [
        ("RGB", (10, 20, 30), [10, 20, 30]),
        ("L", 77, [77, 77, 77]),
        ("RGBA", (40, 50, 60, 0), [40, 50, 60]),  # alpha dropped, not composited (as Keras)
        ("LA", (90, 3), [90, 90, 90]),
        ("I;16", 65535, [255, 255, 255]),
        ("I;16", 25700, [100, 100, 100]),
        ("1", 1, [255, 255, 255]),
    ],
)
def test_modes_decode_to_exact_rgb(tmp_path, mode, value, expected):
    path = tmp_path / "x.png"
    Image.new(mode, (3, 2), value).save(path)
    out = load_rgb(path)
    assert out.shape == (2, 3, 3) and out.dtype == np.float32
    np.testing.assert_array_equal(out, np.broadcast_to(np.float32(expected), (2, 3, 3)))


def test_palette_with_transparency_and_cmyk(tmp_path):
    palette = Image.new("P", (4, 4), 1)
    palette.putpalette([0, 0, 0, 70, 80, 90] + [0] * 762)
    palette.save(tmp_path / "p.gif")
    # tRNS as bytes: Pillow's .convert("RGB") would warn (an error under this suite).
    palette.save(tmp_path / "p.png", transparency=b"\x00\x80")
    with Image.open(tmp_path / "p.png") as img:
        assert isinstance(img.info["transparency"], bytes)
    for name in ("p.gif", "p.png"):
        np.testing.assert_array_equal(load_rgb(tmp_path / name), np.full((4, 4, 3), [70, 80, 90], np.float32))
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(tmp_path / "c.jpg", quality=100)
    with Image.open(tmp_path / "c.jpg") as img:
        assert img.mode == "CMYK"
    np.testing.assert_allclose(load_rgb(tmp_path / "c.jpg")[0, 0], [255, 0, 0], atol=3)


def test_truncated_and_corrupt_files_are_named(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(tmp_path / "ok.jpg")
    data = (tmp_path / "ok.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    (tmp_path / "junk.png").write_bytes(b"\x89PNG\r\n\x1a\n" + rng.bytes(200))
    assert check_decodable(tmp_path / "ok.jpg") is None
    for name in ("cut.jpg", "junk.png"):
        assert check_decodable(tmp_path / name)  # a reason string
        with pytest.raises(ValueError, match=rf"cannot decode image file .*{name}"):
            load_rgb(tmp_path / name)
