"""Checkpoint import without torch: the official zip ``.pth`` through a restricted unpickler,
Hugging Face safetensors, shape checks, and the released configs' parameter counts."""

import hashlib
import json
import pickle
import zipfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxvision.models.segment_anything import CONFIGS, Sam, count_params, load_sam, sam_from_state_dict
from jaxvision.models.segment_anything.checkpoint import config_from_state_dict, hf_key, reference_shapes
from jaxvision.models.segment_anything.mask_decoder import MaskDecoder
from jaxvision.models.segment_anything.prompt_encoder import PromptEncoder
from jaxvision.models.segment_anything.torch_zip import UnsafeCheckpointError, load_torch_state_dict

HERE = Path(__file__).parent
TINY = HERE / "sam_tiny.pth"
TINY_SHA256 = "ea9f441ace00ef19f9590bc036db5939971f6f98d1a83479c84e527853fc7bc6"


@pytest.fixture(scope="module")
def tiny_tensors():
    return load_torch_state_dict(TINY)


def test_torch_zip_reader(tiny_tensors):
    assert len(tiny_tensors) == 174
    assert tiny_tensors["image_encoder.blocks.0.attn.rel_pos_h"].shape == (27, 16)  # windowed (14)
    assert tiny_tensors["image_encoder.blocks.1.attn.rel_pos_h"].shape == (31, 16)  # global (16-grid)
    assert tiny_tensors["image_encoder.patch_embed.proj.weight"].dtype == np.float32
    assert sum(v.size for v in tiny_tensors.values()) == 220_492 + 32  # params + the (2, 16) gaussian buffer


def test_load_reports_variant_and_sha256(tiny_tensors):
    sam, info = load_sam(TINY)
    assert (info.format, info.variant, info.sha256) == ("torch", "tiny", TINY_SHA256)
    assert hashlib.sha256(TINY.read_bytes()).hexdigest() == TINY_SHA256
    np.testing.assert_array_equal(np.asarray(sam.image_encoder.blocks[0].attn.qkv.kernel[...]),
                                  tiny_tensors["image_encoder.blocks.0.attn.qkv.weight"].T)
    # Conv2DTranspose keeps Keras's kernel layout (kh, kw, out, in); torch's is (in, out, kh, kw).
    np.testing.assert_array_equal(np.asarray(sam.mask_decoder.output_upscaling[0].kernel[...]),
                                  tiny_tensors["mask_decoder.output_upscaling.0.weight"].transpose(2, 3, 1, 0))


def _zip_with_pickle(path: Path, payload: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", payload)
        archive.writestr("archive/byteorder", "little")
    return path


class _RunsCommand:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        import os

        return os.system, (f"touch {self.marker}",)


def test_malicious_pickle_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    path = _zip_with_pickle(tmp_path / "evil.pth", pickle.dumps({"x": _RunsCommand(marker)}, protocol=2))
    with pytest.raises(UnsafeCheckpointError, match=r"evil\.pth.*(posix|os)\.system"):
        load_sam(path)
    assert not marker.exists()


def test_non_zip_and_truncated_files(tmp_path):
    legacy = tmp_path / "legacy.pth"
    legacy.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(ValueError, match="legacy.pth: not a torch zip checkpoint"):
        load_sam(legacy)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(TINY.read_bytes()[: TINY.stat().st_size // 2])
    with pytest.raises(ValueError, match="truncated.pth: not a torch zip checkpoint.*truncated"):
        load_sam(truncated)
    with pytest.raises(FileNotFoundError, match="sam_vit_b_01ec64.pth"):
        load_sam(tmp_path / "missing.pth")
    not_a_dict = _zip_with_pickle(tmp_path / "list.pth", pickle.dumps([1, 2], protocol=2))
    with pytest.raises(ValueError, match="list.pth: expected a state_dict"):
        load_sam(not_a_dict)


def test_shape_mismatch_names_the_tensor(tiny_tensors):
    bad = dict(tiny_tensors, **{"mask_decoder.iou_token.weight": np.zeros((1, 31), np.float32)})
    with pytest.raises(ValueError, match=r"'mask_decoder.iou_token.weight' has shape \(1, 31\)"):
        sam_from_state_dict(bad, CONFIGS["tiny"], source="bad.pth")
    missing = {k: v for k, v in tiny_tensors.items() if k != "prompt_encoder.no_mask_embed.weight"}
    with pytest.raises(ValueError, match="missing tensor 'prompt_encoder.no_mask_embed.weight'"):
        sam_from_state_dict(missing, CONFIGS["tiny"])
    with pytest.raises(ValueError, match=r"unexpected tensor\(s\) \['extra'\]"):
        sam_from_state_dict(dict(tiny_tensors, extra=np.zeros(1)), CONFIGS["tiny"])
    with pytest.raises(ValueError, match="does not fit the vit_b model"):  # right names, wrong size
        sam_from_state_dict(tiny_tensors, CONFIGS["vit_b"])


def test_safetensors_with_hugging_face_names(tmp_path, tiny_tensors):
    from safetensors.numpy import save_file

    hf = {hf_key(k): v for k, v in tiny_tensors.items()}
    assert "vision_encoder.layers.1.attn.rel_pos_h" in hf and "mask_decoder.upscale_conv1.weight" in hf
    assert "prompt_encoder.mask_embed.layer_norm2.bias" in hf and "mask_decoder.iou_prediction_head.proj_out.bias" in hf
    # SamModel stores the shared Fourier matrix at the top level
    hf["shared_image_embedding.positional_embedding"] = hf.pop("prompt_encoder.shared_embedding.positional_embedding")
    save_file(hf, str(tmp_path / "model.safetensors"))
    sam, info = load_sam(tmp_path / "model.safetensors")
    assert (info.format, info.variant) == ("safetensors", "tiny")
    reference, _ = load_sam(TINY)
    for ours, theirs in zip(jax.tree.leaves(nnx.state(sam)), jax.tree.leaves(nnx.state(reference))):
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))


def test_keras_hub_preset_directory(tmp_path):
    """keras_hub_tiny/model.weights.h5 was written through KerasHub itself and its KerasHub
    forward pass matched the torch reference (make_keras_hub_fixture.py)."""
    sam, info = load_sam(HERE / "keras_hub_tiny")
    assert (info.format, info.variant) == ("keras_hub", "tiny") and info.path.endswith("model.weights.h5")
    reference, _ = load_sam(TINY)
    for ours, theirs in zip(jax.tree.leaves(nnx.state(sam)), jax.tree.leaves(nnx.state(reference))):
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))
    with pytest.raises(ValueError, match="needs model.weights.h5"):
        load_sam(tmp_path)


def test_vit_b_state_dict_layout_matches_the_reference():
    listing = json.loads((HERE / "vit_b_state_dict.json").read_text())  # from the reference, see make_fixture.py
    assert reference_shapes(CONFIGS["vit_b"]) == {k: tuple(v) for k, v in listing.items()}
    shapes = {k: np.zeros(v, dtype=np.bool_) for k, v in listing.items()}  # no 94M floats, only shapes
    assert config_from_state_dict(shapes) == CONFIGS["vit_b"]


@pytest.mark.parametrize("name, params, encoder", [("vit_b", 93_735_472, 89_670_912),
                                                   ("vit_l", 312_342_832, 308_278_272),
                                                   ("vit_h", 641_090_608, 637_026_048)])  # book: 641_090_864
def test_parameter_counts(name, params, encoder):
    sam = nnx.eval_shape(lambda: Sam(CONFIGS[name], rngs=nnx.Rngs(0)))
    assert count_params(sam) == params
    # With the 2 × 128 positional-encoding buffer, as Keras counts it (the book: 641,090,864 for vit_h).
    assert count_params(sam, include_buffers=True) == params + 256
    assert (count_params(sam.image_encoder), count_params(sam.prompt_encoder),
            count_params(sam.mask_decoder)) == (encoder, 6_220, 4_058_340)


def test_vit_b_shapes():
    sam = nnx.eval_shape(lambda: Sam(CONFIGS["vit_b"], rngs=nnx.Rngs(0)))
    graphdef, state = nnx.split(sam)

    def run(state, image, points, labels):
        model = nnx.merge(graphdef, state)
        return model.decode(model.embed(model.preprocess(image)), points, labels)

    emb = jax.eval_shape(lambda s, x: nnx.merge(graphdef, s).embed(x), state,
                         jax.ShapeDtypeStruct((1, 1024, 1024, 3), jnp.float32))
    assert emb.shape == (1, 64, 64, 256)
    masks, iou = jax.eval_shape(run, state, jax.ShapeDtypeStruct((1, 600, 800, 3), jnp.uint8),
                                jax.ShapeDtypeStruct((4, 2, 2), jnp.float32), jax.ShapeDtypeStruct((4, 2), jnp.int32))
    assert (masks.shape, iou.shape) == ((4, 3, 256, 256), (4, 3))


def random_module(factory, seed: int = 0):
    """The module ``factory`` builds, with N(0, 0.05²) NumPy weights: eager random
    initialisation would compile one XLA program per parameter shape."""
    graphdef, state = nnx.split(nnx.eval_shape(factory))
    rng = np.random.default_rng(seed)
    filled = [(path, v.replace(jnp.asarray(rng.normal(0, 0.05, v.get_value().shape), jnp.float32)))
              for path, v in nnx.to_flat_state(state)]
    return nnx.merge(graphdef, nnx.from_flat_state(filled))


def test_vit_b_decoder_forward_on_a_real_embedding():
    """The prompt encoder and mask decoder are the same in every released variant: run them
    at full width (4M parameters) on a small 16×16 embedding (their weights do not depend on
    its size) for three prompts in one batched call."""
    prompt_encoder = random_module(lambda: PromptEncoder(image_embedding_size=(16, 16), input_image_size=(256, 256),
                                                         rngs=nnx.Rngs(0)))
    decoder = random_module(lambda: MaskDecoder(rngs=nnx.Rngs(0)))
    assert count_params(prompt_encoder) + count_params(decoder) == 6_220 + 4_058_340

    @nnx.jit
    def run(prompt_encoder, decoder, embedding, boxes):
        sparse, dense = prompt_encoder(boxes=boxes)
        return decoder(embedding, prompt_encoder.dense_pe(), sparse, dense, multimask_output=False)

    boxes = jnp.array([[0.0, 0.0, 120.0, 100.0], [30.0, 50.0, 200.0, 250.0], [10.0, 10.0, 20.0, 20.0]])
    masks, iou = run(prompt_encoder, decoder, jax.random.normal(jax.random.key(1), (1, 16, 16, 256)), boxes)
    assert masks.shape == (3, 1, 64, 64) and iou.shape == (3, 1)
    assert bool(jnp.all(jnp.isfinite(masks))) and float(jnp.std(masks[0] - masks[1])) > 0  # prompts matter


def test_tensor_reading_past_its_storage_is_refused(tmp_path):
    """Allowed globals only, but the tensor claims 16 floats of a 4-float storage."""
    payload = (b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n("
               b"(Vstorage\nctorch\nFloatStorage\nV0\nVcpu\nK\x04tQ"  # persistent id of storage data/0
               b"K\x00K\x10\x85K\x01\x85\x89ccollections\nOrderedDict\n)RtR.")
    path = tmp_path / "overrun.pth"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", payload)
        archive.writestr("archive/data/0", np.arange(4, dtype=np.float32).tobytes())
    with pytest.raises(ValueError, match=r"overrun.pth: corrupt .* size \(16,\) has more elements than its storage \(4\)"):
        load_sam(path)
