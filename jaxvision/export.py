"""Ship a trained model's inference function: a serialized ``jax.export.Exported`` with a
symbolic batch dimension, its weights, and a JSON contract, runnable with only ``jax`` and
``numpy`` installed (no jaxvision, no flax).

Run:

```
python -m jaxvision.export CHECKPOINT OUT_DIR [--platforms cpu,cuda,tpu]
    [--input-shape 180,180,3] [--class-names cat,dog] [--trusted-module NAME ...]
```

``OUT_DIR`` gets three files:

* ``model.jax``: ``Exported.serialize()`` of ``f(weights, x) = model(x)`` in eval mode, the
  computation [predict][jaxvision.train.predict] runs, lowered for every platform asked for;
  ``x`` has shape ``(b, *input_shape)`` with ``b`` symbolic, so any batch size runs.
* ``weights.npz``: one array per name (``"conv2d/kernel"``, BatchNorm statistics included).
  NumPy's own format: it needs nothing beyond numpy to read, and read with
  ``allow_pickle=False`` (the default) it holds plain arrays only, never code. Weights travel
  beside the function rather than inside it so the artifact stays small and diffable and a
  fine-tuned model can be swapped in without exporting again.
* ``contract.json``: input shape and dtype (``null`` for the batch), preprocessing, output
  shape, class names when known, platforms, the weights' sha256, and the model's build config.

[load_exported][jaxvision.export.load_exported] reads them back as untrusted input: every size is bounded, the JSON
contract and the weights' names, shapes and dtypes are checked against the exported signature,
and each mismatch is a [ExportError][jaxvision.export.ExportError] naming the file.
"""

import argparse
import hashlib
import io
import json
import math
import os
import sys
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import jax
import numpy as np
from flax import nnx

from jaxvision.untrusted import Budget, read_member, regular_file

__all__ = ["ExportError", "export_checkpoint", "export_model", "load_exported"]

FORMAT = "jaxvision.export/1"
FUNCTION_FILE, WEIGHTS_FILE, CONTRACT_FILE = "model.jax", "weights.npz", "contract.json"
PLATFORMS = ("cpu", "cuda", "tpu")
MAX_CONTRACT_BYTES = 1 << 20  # a contract is a few KB, with 1000 class names ~30 KB
# The only custom calls a jaxvision model's inference function contains: the symbolic batch's
# shape checks and sharding annotations. Anything else (a host callback, a vendor kernel) is
# refused: an exported folder from a stranger may compute on arrays, nothing more.
ALLOWED_CUSTOM_CALLS = frozenset({"shape_assertion", "Sharding", "SPMDFullToShardShape", "SPMDShardToFullShape"})
# The operations an exported function may contain: arithmetic and data movement on arrays,
# structure (functions, returns, calls between the module's own functions, branches) and
# sharding annotations. Left out: host transfers (``infeed``/``outfeed``/``send``/``recv``) and
# tokens, which make a run wait for a host forever; ``while`` (a loop that may never end);
# collectives across devices; and ``custom_call`` beyond ``ALLOWED_CUSTOM_CALLS``.
ALLOWED_OPS = frozenset({
    "builtin.module", "func.func", "func.return", "func.call",
    "sdy.mesh", "sdy.sharding_constraint",
    *(f"chlo.{name}" for name in (
        "acos", "acosh", "asin", "asinh", "atan", "atanh", "bessel_i1e", "conj", "constant", "constant_like",
        "cosh", "digamma", "erf", "erf_inv", "erfc", "is_inf", "is_neg_inf", "is_pos_inf", "lgamma", "next_after",
        "polygamma", "sinh", "square", "tan", "top_k", "zeta")),
    *(f"stablehlo.{name}" for name in (
        "abs", "add", "and", "atan2", "bitcast_convert", "broadcast", "broadcast_in_dim", "case", "cbrt", "ceil",
        "clamp", "compare", "complex", "concatenate", "constant", "convert", "convolution", "cosine",
        "count_leading_zeros", "custom_call", "divide", "dot", "dot_general", "dynamic_broadcast_in_dim",
        "dynamic_conv", "dynamic_gather", "dynamic_iota", "dynamic_pad", "dynamic_reshape", "dynamic_slice",
        "dynamic_update_slice", "exponential", "exponential_minus_one", "floor", "gather", "get_dimension_size",
        "get_tuple_element", "if", "imag", "iota", "is_finite", "log", "log_plus_one", "logistic", "maximum",
        "minimum", "multiply", "negate", "not", "optimization_barrier", "or", "pad", "popcnt", "power", "real",
        "real_dynamic_slice", "reduce", "reduce_precision", "reduce_window", "remainder", "reshape", "return",
        "reverse", "round_nearest_afz", "round_nearest_even", "rsqrt", "scatter", "select", "select_and_scatter",
        "shift_left", "shift_right_arithmetic", "shift_right_logical", "sign", "sine", "slice", "sort", "sqrt",
        "subtract", "tan", "tanh", "transpose", "tuple", "xor")),
})
IMAGENET_PREPROCESSING = "x / 127.5 - 1 on RGB pixels in [0, 255] (keras.applications preprocess_input, mode 'tf')"
# What each keras.applications preprocessing mode does (a backbone names its mode in ``preprocessing_mode``).
KERAS_PREPROCESSING = {
    "tf": IMAGENET_PREPROCESSING,
    "caffe": ("RGB pixels in [0, 255] reversed to BGR, minus the mean pixel (103.939, 116.779, 123.68) "
              "(keras.applications preprocess_input, mode 'caffe')"),
    "torch": ("x / 255 on RGB pixels in [0, 255], minus (0.485, 0.456, 0.406), divided by (0.229, 0.224, 0.225) "
              "per channel (keras.applications preprocess_input, mode 'torch')"),
}
PIXEL_PREPROCESSING = ("none: RGB pixels in [0, 255] as float32 (the model's Rescaling or Normalization layer "
                       "scales them)")


class ExportError(ValueError):
    """An exported folder that does not hold what its contract says."""


def _named_leaves(state: nnx.State) -> tuple[list[str], jax.tree_util.PyTreeDef, list[jax.Array]]:
    """``"block1_bn1/moving_mean"``-style names, the tree to rebuild ``state``, and its arrays."""
    leaves, treedef = jax.tree_util.tree_flatten_with_path(state)
    names = [jax.tree_util.keystr(path, simple=True, separator="/").removesuffix("/value") for path, _ in leaves]
    return names, treedef, [value for _, value in leaves]


def _build_config(model: nnx.Module) -> dict:
    """The registry's record of how ``model`` was built (``{}`` for a model built by hand)."""
    return json.loads(getattr(model, "build_config", None) or "{}")


def _default_preprocessing(model: nnx.Module) -> str | None:
    if getattr(model, "preprocessing_mode", None) in KERAS_PREPROCESSING:
        return KERAS_PREPROCESSING[model.preprocessing_mode]
    # The applications that scale inside the model (MobileNetV3, EfficientNet, ConvNeXt) have no mode.
    if any(type(layer).__name__ in ("Rescaling", "Normalization") for _, layer in nnx.iter_children(model)):
        return PIXEL_PREPROCESSING
    return None


def _default_class_names(model: nnx.Module, outputs: int) -> list[str] | None:
    if outputs == 1000 and (getattr(model, "preprocessing_mode", None) in KERAS_PREPROCESSING
                            or _build_config(model).get("module", "").startswith("jaxvision.applications")):
        from jaxvision.applications.imagenet_utils import imagenet_class_names

        return imagenet_class_names()
    return None


def export_model(model: nnx.Module, out_dir: str | os.PathLike, *, input_shape: Sequence[int],
                 platforms: Sequence[str] = PLATFORMS, preprocessing: str | None = None,
                 class_names: Sequence[str] | None = None) -> Path:
    """Write ``model``'s eval-mode inference function to ``out_dir`` (see the module docstring).

    Args:
      model: any ``nnx.Module`` taking (N, *input_shape) float32 inputs; left unchanged.
      out_dir: created if needed; its three files are replaced.
      input_shape: one example's shape, e.g. ``(180, 180, 3)``.
      platforms: any of "cpu", "cuda", "tpu"; the artifact runs on each of them.
      preprocessing: what the caller must do to pixels first; default from the model (the
        ImageNet backbones' ``preprocess_input``, or raw pixels when the model starts with
        ``Rescaling``).
      class_names: one per output (two for a single sigmoid output: class 0, then class 1);
        default ImageNet's for a 1000-class backbone head.

    Returns:
      ``out_dir``.

    Examples:
        >>> import tempfile
        >>> from jaxvision.models import build_model
        >>> out = export_model(build_model("mnist_convnet"), tempfile.mkdtemp(), input_shape=(28, 28, 1),
        ...                    platforms=("cpu",))
        >>> run = load_exported(out)
        >>> run(np.zeros((3, 28, 28, 1), np.float32)).shape
        (3, 10)
    """
    from jaxvision.train.steps import split  # the same split predict uses

    unknown = sorted(set(platforms) - set(PLATFORMS))
    if unknown or not platforms:
        raise ValueError(f"export_model: platforms must be a non-empty subset of {PLATFORMS}, got {tuple(platforms)}")
    input_shape = tuple(int(d) for d in input_shape)
    if not input_shape or min(input_shape) <= 0:
        raise ValueError(f"export_model: input_shape must be positive sizes, got {input_shape}")
    _, eval_graphdef, params, rngs, state = split(model)
    param_names, param_tree, param_arrays = _named_leaves(params)
    state_names, state_tree, state_arrays = _named_leaves(state)
    weights = {name: np.asarray(a) for name, a in zip(param_names + state_names, param_arrays + state_arrays)}
    if len(weights) != len(param_names) + len(state_names):
        raise ValueError(f"export_model: two weights of {type(model).__name__} share a name")

    def infer(named: dict[str, jax.Array], x: jax.Array) -> jax.Array:
        params = jax.tree.unflatten(param_tree, [named[n] for n in param_names])
        state = jax.tree.unflatten(state_tree, [named[n] for n in state_names])
        # The RNG streams are unused in eval mode; they stay constants of the function.
        return nnx.merge(eval_graphdef, params, rngs, state)(x)

    (batch,) = jax.export.symbolic_shape("b")
    example = jax.ShapeDtypeStruct((batch, *input_shape), np.float32)
    specs = {name: jax.ShapeDtypeStruct(a.shape, a.dtype) for name, a in weights.items()}
    try:
        exported = jax.export.export(jax.jit(infer), platforms=tuple(platforms))(specs, example)
    except Exception as e:
        raise ValueError(f"export_model: {type(model).__name__} does not export for {tuple(platforms)} with a "
                         f"symbolic batch: {type(e).__name__}: {e}") from e
    (output,) = exported.out_avals
    outputs = int(output.shape[-1])
    if class_names is None:
        class_names = _default_class_names(model, outputs)
    elif len(class_names) != outputs and not (outputs == 1 and len(class_names) == 2):
        raise ValueError(f"export_model: {len(class_names)} class_names for {outputs} outputs "
                         "(a single sigmoid output takes two: class 0, class 1)")

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    np.savez(buffer, **weights)
    weights_bytes = buffer.getvalue()
    contract = {
        "format": FORMAT,
        "weights": {"file": WEIGHTS_FILE, "sha256": hashlib.sha256(weights_bytes).hexdigest(), "count": len(weights)},
        "input": {"shape": [None, *input_shape], "dtype": "float32"},
        "output": {"shape": [None, *map(int, output.shape[1:])], "dtype": str(output.dtype)},
        "preprocessing": preprocessing if preprocessing is not None else _default_preprocessing(model),
        "class_names": None if class_names is None else [str(c) for c in class_names],
        "platforms": list(platforms),
        "model": _build_config(model) or None,
    }
    _write_atomic(out / WEIGHTS_FILE, weights_bytes)
    _write_atomic(out / FUNCTION_FILE, bytes(exported.serialize()))
    _write_atomic(out / CONTRACT_FILE, json.dumps(contract, indent=1).encode())
    return out


def _write_atomic(path: Path, data: bytes) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    os.replace(partial, path)


def export_checkpoint(checkpoint: str | os.PathLike, out_dir: str | os.PathLike, *,
                      input_shape: Sequence[int] | None = None, platforms: Sequence[str] = PLATFORMS,
                      class_names: Sequence[str] | None = None, trusted_modules: Sequence[str] = ()) -> Path:
    """[export_model][jaxvision.export.export_model] of the model
    [load_model][jaxvision.train.load_model] rebuilds from ``checkpoint``. ``input_shape``
    defaults to the shape of the examples ``fit`` trained it on (recorded in the checkpoint),
    else the model's build config's, else the ``image_size`` recorded in the checkpoint's folder
    or its run folder (``config.json``/``metrics.json``) with 3 channels."""
    from jaxvision.train import load_model

    model = load_model(checkpoint, trusted_modules=trusted_modules)
    if input_shape is None:
        input_shape = _recorded_input_shape(Path(checkpoint), model)
    return export_model(model, out_dir, input_shape=input_shape, platforms=platforms, class_names=class_names)


def _recorded_input_shape(checkpoint: Path, model: nnx.Module) -> tuple[int, ...]:
    """One example's shape as ``fit`` recorded it in ``checkpoint``, else as the model's build
    config gives it, else the image size recorded in the run folder, with 3 channels."""
    from jaxvision.train.checkpoint import recorded_image_size, recorded_input

    recorded = recorded_input(checkpoint)
    if recorded is not None:
        return recorded[0]
    config = _build_config(model).get("kwargs", {})
    if config.get("input_shape"):
        return tuple(config["input_shape"])
    size = config.get("image_size")
    if size:
        return (*([size] * 2 if isinstance(size, int) else size), 3)
    size = recorded_image_size(checkpoint)
    if size is None:
        raise ValueError(f"{checkpoint}: no input shape recorded beside the checkpoint (not written by fit, and "
                         "neither its build config nor its run folder gives an image size); pass --input-shape H,W,C")
    return (*size, 3)


def load_exported(folder: str | os.PathLike) -> Callable[[np.ndarray], np.ndarray]:
    """Read an exported folder back, checking it, and return ``run(x) -> outputs``.

    Checked before anything runs: the three files are regular files inside ``folder``; the
    contract is a small JSON object of the expected format; the function calls no custom call
    beyond ``ALLOWED_CUSTOM_CALLS`` (no host callback, no vendor kernel); the weights archive holds plain
    arrays (no pickles) within a budget of its size, with the recorded sha256; the weights'
    names, shapes and dtypes and the input shape equal the exported function's signature.
    Any mismatch raises [ExportError][jaxvision.export.ExportError] naming the file.
    """
    folder = Path(folder)
    contract_path = _member(folder, CONTRACT_FILE, "export contract")
    if contract_path.stat().st_size > MAX_CONTRACT_BYTES:
        raise ExportError(f"{contract_path}: {contract_path.stat().st_size:,} bytes, more than a contract's "
                          f"{MAX_CONTRACT_BYTES:,}")
    try:
        contract = json.loads(contract_path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ExportError(f"{contract_path}: not JSON ({e})") from None
    if not isinstance(contract, dict) or contract.get("format") != FORMAT:
        raise ExportError(f"{contract_path}: not a {FORMAT} contract")
    shape = contract.get("input", {}).get("shape") if isinstance(contract.get("input"), dict) else None
    if (not isinstance(shape, list) or len(shape) < 2 or shape[0] is not None
            or not all(isinstance(d, int) and d > 0 for d in shape[1:])):
        raise ExportError(f"{contract_path}: input.shape must be [null, positive sizes...], got {shape!r}")

    function_path = _member(folder, FUNCTION_FILE, "exported function")
    try:
        exported = jax.export.deserialize(bytearray(function_path.read_bytes()))
    except Exception as e:  # a corrupt flatbuffer raises many types
        raise ExportError(f"{function_path}: not a serialized jax.export.Exported ({type(e).__name__}: {e})") from None
    _check_operations(exported, function_path)
    _check_contract(contract, exported, contract_path)
    weights = _read_weights(_member(folder, WEIGHTS_FILE, "exported weights"), contract)

    expected_tree = jax.tree.structure(((weights, 0), {}))
    if exported.in_tree != expected_tree:
        names = set(weights)
        signature = jax.tree.unflatten(exported.in_tree, [0] * len(exported.in_avals))[0][0]
        wanted = set(signature) if isinstance(signature, dict) else set()
        raise ExportError(f"{folder / WEIGHTS_FILE}: weight names do not match {function_path.name}'s signature; "
                          f"missing {sorted(wanted - names)[:5]}, unexpected {sorted(names - wanted)[:5]}")
    *weight_avals, input_aval = exported.in_avals
    for (name, array), aval in zip(sorted(weights.items()), weight_avals):
        if array.shape != aval.shape or array.dtype != aval.dtype:
            raise ExportError(f"{folder / WEIGHTS_FILE}: {name} is {array.dtype}{list(array.shape)}, "
                              f"{function_path.name} takes {aval.dtype}{list(aval.shape)}")
    if [str(d) if i == 0 else d for i, d in enumerate(input_aval.shape)][1:] != shape[1:]:
        raise ExportError(f"{contract_path}: input.shape {shape} does not match {function_path.name}'s input "
                          f"{input_aval.shape}")

    def run(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float32)
        if x.shape[1:] != tuple(shape[1:]):
            raise ValueError(f"{folder}: inputs must have shape (batch, {', '.join(map(str, shape[1:]))}), "
                             f"got {x.shape}")
        return np.asarray(exported.call(weights, x))

    return run


def _operations(exported: "jax.export.Exported"):
    """Every operation of the exported StableHLO module, nested regions included."""
    from jax.interpreters import mlir

    with mlir.make_ir_context() as context:
        module = mlir.ir.Module.parse(exported.mlir_module(), context=context)  # owns the operations: keep it
        pending = [module.operation]
        while pending:
            op = pending.pop()
            yield op
            pending.extend(inner.operation for region in op.regions for block in region.blocks
                           for inner in block.operations)


def _check_operations(exported: "jax.export.Exported", path: Path) -> None:
    """Refuse any operation outside ``ALLOWED_OPS`` and any custom call outside
    ``ALLOWED_CUSTOM_CALLS``, read from the parsed module (not its text), so no spelling of
    a name slips past."""
    calls = set()
    try:
        for op in _operations(exported):
            if op.name not in ALLOWED_OPS:
                raise ExportError(f"{path}: contains the operation {op.name}, which is not among the array "
                                  "operations an exported model may run (host transfers, loops, collectives and "
                                  "foreign dialects are refused)")
            if op.name == "stablehlo.custom_call":
                calls.add(op.attributes["call_target_name"].value)
    except ExportError:
        raise
    except Exception as e:  # a module MLIR cannot parse
        raise ExportError(f"{path}: its StableHLO module cannot be read ({type(e).__name__}: {str(e)[:200]})") \
            from None
    if calls - ALLOWED_CUSTOM_CALLS:
        raise ExportError(f"{path}: calls {sorted(calls - ALLOWED_CUSTOM_CALLS)}, outside what a model's inference "
                          f"needs ({sorted(ALLOWED_CUSTOM_CALLS)}); refused")


def _check_contract(contract: dict, exported: "jax.export.Exported", path: Path) -> None:
    """The contract's output, class names and platforms as the function has them."""
    (output,) = exported.out_avals if len(exported.out_avals) == 1 else (None,)
    if output is None:
        raise ExportError(f"{path}: the exported function has {len(exported.out_avals)} outputs, not one")
    expected = {"shape": [None, *map(int, output.shape[1:])], "dtype": str(output.dtype)}
    if contract.get("output") != expected:
        raise ExportError(f"{path}: output {contract.get('output')!r:.200} is not the function's {expected}")
    outputs = expected["shape"][-1] if len(expected["shape"]) > 1 else 1
    names = contract.get("class_names")
    if names is not None and not (isinstance(names, list) and all(isinstance(n, str) for n in names)
                                  and (len(names) == outputs or (outputs == 1 and len(names) == 2))):
        raise ExportError(f"{path}: class_names must be null or one name per output ({outputs}), got "
                          f"{names!r:.200}")
    if contract.get("platforms") != list(exported.platforms):
        raise ExportError(f"{path}: platforms {contract.get('platforms')!r:.200} are not the function's "
                          f"{list(exported.platforms)}")
    if not isinstance(contract.get("preprocessing"), (str, type(None))):
        raise ExportError(f"{path}: preprocessing must be a sentence or null")


def _member(folder: Path, name: str, what: str) -> Path:
    """``folder / name``, a regular file that is not a link: an exported folder is read, never
    what it points to."""
    path = folder / name
    if path.is_symlink():
        raise ExportError(f"{path}: {what} is a symbolic link; an exported folder must hold its own files")
    return regular_file(path, what)


def _read_weights(path: Path, contract: dict) -> dict[str, np.ndarray]:
    expected = contract.get("weights", {}).get("sha256") if isinstance(contract.get("weights"), dict) else None
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != expected:
        raise ExportError(f"{path}: sha256 differs from the contract's; the weights were changed or swapped")
    budget = Budget(str(path), len(data))
    weights = {}
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for member in archive.namelist():
                if not member.endswith(".npy"):
                    raise ExportError(f"{path}: member {member!r} is not an .npy array")
                weights[member[:-4]] = _read_npy(read_member(archive, member, budget), f"{path}: {member}")
    except (zipfile.BadZipFile, ValueError, EOFError) as e:
        if isinstance(e, ExportError):
            raise
        raise ExportError(f"{path}: not a weights archive of plain arrays ({type(e).__name__}: {e})") from None
    return weights


def _read_npy(raw: bytes, source: str) -> np.ndarray:
    """An ``.npy`` array whose header's shape and dtype account for exactly the bytes that
    follow it, checked before NumPy allocates what the header declares."""
    stream = io.BytesIO(raw)
    version = np.lib.format.read_magic(stream)
    if version not in ((1, 0), (2, 0)):
        raise ExportError(f"{source}: .npy version {version} is not supported")
    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, _fortran, dtype = read_header(stream)
    if dtype.hasobject:  # pickled objects: read_array refuses them (allow_pickle=False)
        return np.lib.format.read_array(io.BytesIO(raw), allow_pickle=False)
    declared = math.prod(shape) * dtype.itemsize
    if declared != len(raw) - stream.tell():
        raise ExportError(f"{source}: its header declares {declared:,} bytes of {dtype}{list(shape)}, the member "
                          f"holds {len(raw) - stream.tell():,}")
    return np.lib.format.read_array(io.BytesIO(raw), allow_pickle=False)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m jaxvision.export", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", type=Path, help="a checkpoint folder (ModelCheckpoint or save_checkpoint)")
    p.add_argument("out_dir", type=Path)
    p.add_argument("--platforms", default=",".join(PLATFORMS), help="comma-separated, from cpu,cuda,tpu")
    p.add_argument("--input-shape", default=None, help="H,W,C (default: the image size recorded with the run)")
    p.add_argument("--class-names", default=None, help="comma-separated, one per output")
    p.add_argument("--trusted-module", action="append", default=[], help="import this module to rebuild the model")
    args = p.parse_args(argv)
    try:
        shape = None if args.input_shape is None else tuple(int(d) for d in args.input_shape.split(","))
        out = export_checkpoint(args.checkpoint, args.out_dir, input_shape=shape,
                                platforms=tuple(args.platforms.split(",")),
                                class_names=None if args.class_names is None else args.class_names.split(","),
                                trusted_modules=args.trusted_module)
    except Exception as e:  # a checkpoint from a stranger fails in every type: one line, never a traceback
        print(f"error: {' '.join(str(e).split())[:500] or type(e).__name__}", file=sys.stderr)
        return 2
    contract = json.loads((out / CONTRACT_FILE).read_text())
    print(f"wrote {out}: input {contract['input']['shape']}, output {contract['output']['shape']}, "
          f"platforms {', '.join(contract['platforms'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
