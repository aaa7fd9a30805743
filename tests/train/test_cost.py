"""Step costs and roofline estimates: XLA's FLOPs equal the convolutions' count by hand, the
estimate is the roofline formula on the published peaks, and port_check writes its table."""

import math

import pytest
from flax import nnx

from jaxvision.models import build_model
from jaxvision.train.cost import CHIPS, StepCost, lower_train_step, profile_seconds, step_cost


def conv_macs(out_size, channels_in, channels_out, kernel=3):
    return out_size * out_size * channels_out * kernel * kernel * channels_in


def test_flops_of_the_mnist_step_are_three_forward_passes_of_its_convolutions():
    model = nnx.eval_shape(lambda: build_model("mnist_convnet"))
    steps, args = lower_train_step(model, loss="sparse_categorical_crossentropy", input_shape=(64, 28, 28, 1),
                                   label_shape=(64,))
    forward = 2 * (conv_macs(26, 1, 64) + conv_macs(11, 64, 128) + conv_macs(3, 128, 256) + 256 * 10)
    lowered = step_cost(steps, args)
    assert lowered.bytes_accessed is None
    # Backward: the gradients with respect to weights and to inputs (none for the first conv's input).
    assert 3 * 64 * forward * 0.95 < lowered.flops < 3 * 64 * forward * 1.05
    compiled = step_cost(steps, args, compile=True)
    assert compiled.flops == pytest.approx(lowered.flops, rel=0.1) and compiled.bytes_accessed > 0


def test_the_estimate_is_the_roofline_bound_on_published_peaks():
    h100, v5e = CHIPS["H100"], CHIPS["TPU v5e"]
    assert (h100.bf16_flops, h100.f32_flops, h100.bandwidth) == (989e12, 495e12, 3.35e12)
    assert (v5e.bf16_flops, v5e.bandwidth) == (197e12, 819e9)
    compute_bound, memory_bound = StepCost(1e12, 1e9), StepCost(1e12, 1e11)
    assert compute_bound.seconds(h100) == pytest.approx(1e12 / 495e12)
    assert compute_bound.seconds(h100, "mixed_bfloat16") == pytest.approx(1e12 / 989e12)
    assert memory_bound.seconds(h100) == pytest.approx(1e11 / 3.35e12)
    assert StepCost(1e12, None).seconds(v5e) == pytest.approx(1e12 / 197e12)
    # 2,000 images in batches of 64 (32 steps) and 1,000 validation images (16 steps at a third).
    total = profile_seconds(memory_bound, h100, epochs=50, train_examples=2000, batch_size=64,
                            validation_examples=1000)
    assert total == pytest.approx(50 * (32 + 16 / 3) * 1e11 / 3.35e12)
    assert math.ceil(2000 / 64) == 32


def test_port_check_estimates_a_book_profile_and_writes_its_table(tmp_path):
    import port_check

    spec = port_check.experiments()["ch08_mnist_convnet"]
    row = port_check.estimate("ch08_mnist_convnet", spec)
    assert (row["epochs"], row["batch_size"], row["train_examples"]) == (5, 64, 60000)
    assert 4.4 < row["gflop_per_step"] < 4.8
    cost = StepCost(row["gflop_per_step"] * 1e9, row["gbytes_per_step"] * 1e9)
    assert row["profile_s H100"] == pytest.approx(5 * 938 * cost.seconds(CHIPS["H100"]))
    target = tmp_path / "BENCHMARKS.md"
    target.write_text("# Benchmarks\n\nkept\n")
    for _ in range(2):  # the second write replaces the first
        port_check.write_section(target, port_check.markdown([row]))
    text = target.read_text()
    assert text.startswith("# Benchmarks\n\nkept\n") and text.count("step-cost estimates: begin") == 1
    assert "| ch08_mnist_convnet | 5 | 64 | 28 |" in text and "Estimates, not measurements" in text
    assert "peaks from NVIDIA H100 Tensor Core GPU datasheet, NVIDIA H200" in text
    # Pricing some experiments again (--models) keeps the other rows, in their place.
    port_check.write_section(target, port_check.markdown([{**row, "experiment": "other", "epochs": 7}]))
    port_check.write_section(target, port_check.markdown([{**row, "epochs": 9}]))
    rows = [line for line in target.read_text().splitlines() if line.startswith("|")]
    assert rows[0].startswith("| experiment (book profile) |") and rows[1].startswith("|---|")
    assert [r.split("|")[1:3] for r in rows[2:]] == [[" ch08_mnist_convnet ", " 9 "], [" other ", " 7 "]]
    # Beside a GPU run: run_all's summary gives the measured seconds.
    (line,) = port_check.report([row], {"ch08_mnist_convnet": 150.0})
    assert line.startswith("  ch08_mnist_convnet: 4.") and "TPU v6e" in line
    assert line.endswith("; measured 2.5 min (the whole script, compilation included)")
    # Every book model is priced (the applications only where an experiment trains them).
    from jaxvision.models.registry import registered

    priced = {spec[0] for spec in port_check.experiments().values()}
    book_models = {name for name in port_check.MODELS if registered()[name].startswith("jaxvision.models")}
    assert book_models <= priced <= set(port_check.MODELS)
