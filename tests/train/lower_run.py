"""Prints the sha256 of the StableHLO of fit's train step for the mini-Xception, exported for
("tpu", "cuda") over fit's default mesh, in mixed_bfloat16 and float32: run once with 8 forced
CPU devices and as two processes of 4 (``jax.distributed``) by ``test_portability.py``.

Run: python tests/train/lower_run.py [--process I --processes P --coordinator HOST:PORT]
"""

import argparse
import hashlib


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--process", type=int, default=0)
    p.add_argument("--processes", type=int, default=1)
    p.add_argument("--coordinator", default=None)
    args = p.parse_args()

    import jax

    if args.processes > 1:
        jax.distributed.initialize(args.coordinator, num_processes=args.processes, process_id=args.process)
    from flax import nnx

    from jaxvision.layers import policy_scope
    from jaxvision.models import build_model
    from jaxvision.train.cost import lower_train_step
    from jaxvision.train.sharding import default_mesh

    mesh = default_mesh()
    for policy in ("float32", "mixed_bfloat16"):
        with policy_scope(policy):
            model = nnx.eval_shape(lambda: build_model("mini_xception"))
        steps, step_args = lower_train_step(model, loss="binary_crossentropy", input_shape=(8, 64, 64, 3),
                                            label_shape=(8, 1), label_dtype=jax.numpy.float32, mesh=mesh)
        exported = jax.export.export(steps.train_batch, platforms=("tpu", "cuda"))(*step_args)
        digest = hashlib.sha256(exported.mlir_module().encode()).hexdigest()
        print(policy, jax.process_count(), jax.device_count(), exported.nr_devices, digest, flush=True)


if __name__ == "__main__":
    main()
