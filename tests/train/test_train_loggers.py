"""CSVLogger and TensorBoard: Keras's files, one entry per epoch across a resume."""

import struct

import numpy as np
import pytest

from jaxvision.train import BackupAndRestore, CSVLogger, TensorBoard, fit
from test_train_checkpoint import Crash
from train_helpers import blobs, dropout_bn_net, train_kwargs

DATA, VALIDATION = blobs(64), blobs(32, seed=1)


def keras_csv(keras, path, history, **kwargs) -> str:
    logger = keras.callbacks.CSVLogger(str(path), **kwargs)
    logger.on_train_begin()
    for i, epoch in enumerate(history.epoch):
        logger.on_epoch_end(epoch, {key: values[i] for key, values in history.history.items()})
    logger.on_train_end()
    return path.read_text()


@pytest.mark.parametrize("validation, separator", [(True, ","), (False, ";")])
def test_csv_logger_writes_what_keras_writes(keras, tmp_path, validation, separator):
    extra = {"validation_data": VALIDATION} if validation else {}
    history = fit(dropout_bn_net(), DATA, **train_kwargs(epochs=2, **extra, callbacks=[
        CSVLogger(tmp_path / "ours.csv", separator=separator)]))
    expected = keras_csv(keras, tmp_path / "keras.csv", history, separator=separator)
    assert (tmp_path / "ours.csv").read_text() == expected
    assert expected.count("\n") == 3 and ("val_loss" in expected.splitlines()[0])
    # append=True adds rows without a second header, as Keras does
    second = fit(dropout_bn_net(), DATA, **train_kwargs(epochs=1, **extra, callbacks=[
        CSVLogger(tmp_path / "ours.csv", separator=separator, append=True)]))
    assert (tmp_path / "ours.csv").read_text() == expected + keras_csv(
        keras, tmp_path / "keras.csv", second, separator=separator, append=True)[len(expected):]


def test_csv_logger_has_one_row_per_epoch_after_a_resume(tmp_path):
    fit(dropout_bn_net(), DATA, **train_kwargs(epochs=3, callbacks=[CSVLogger(tmp_path / "reference.csv")]))
    logger, backup = CSVLogger(tmp_path / "log.csv", append=True), BackupAndRestore(tmp_path / "backup")
    with pytest.raises(KeyboardInterrupt):
        fit(dropout_bn_net(), DATA, **train_kwargs(epochs=3, callbacks=[logger, backup, Crash()]))
    # the crash came after epoch 2's row but before its backup: that row is rewritten once
    assert len((tmp_path / "log.csv").read_text().splitlines()) == 3
    fit(dropout_bn_net(), DATA, **train_kwargs(epochs=3, callbacks=[CSVLogger(tmp_path / "log.csv", append=True), backup]))
    assert (tmp_path / "log.csv").read_text() == (tmp_path / "reference.csv").read_text()


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def masked_crc(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def read_events(folder) -> list:
    """Every Event in the folder's event files, in TensorBoard's order (file names), checking the TFRecord
    framing: length, masked CRC-32C of the length, payload, masked CRC-32C of the payload."""
    from tensorboardX.proto.event_pb2 import Event

    files = sorted(folder.glob("events.out.tfevents.*"))
    assert files, f"no event file in {folder}"
    events = []
    for path in files:
        raw, at = path.read_bytes(), 0
        while at < len(raw):
            header = raw[at:at + 8]
            (length,), (length_crc,) = struct.unpack("<Q", header), struct.unpack("<I", raw[at + 8:at + 12])
            payload = raw[at + 12:at + 12 + length]
            (payload_crc,) = struct.unpack("<I", raw[at + 12 + length:at + 16 + length])
            assert length_crc == masked_crc(header) and payload_crc == masked_crc(payload), path
            events.append(Event.FromString(payload))
            at += 16 + length
    return events


def scalars(folder) -> dict[str, dict[int, float]]:
    """``{tag: {step: value}}`` as TensorBoard shows it: a SessionLog START at step s hides
    the earlier events at steps >= s."""
    series: dict[str, dict[int, float]] = {}
    for event in read_events(folder):
        if event.HasField("session_log") and event.session_log.status == event.session_log.START:
            series = {tag: {s: v for s, v in values.items() if s < event.step} for tag, values in series.items()}
        for value in event.summary.value:
            if value.HasField("simple_value"):
                series.setdefault(value.tag, {})[event.step] = value.simple_value
    return series


def test_tensorboard_event_files_hold_keras_tags_and_values(tmp_path):
    pytest.importorskip("tensorboardX")
    history = fit(dropout_bn_net(), DATA, **train_kwargs(epochs=2, validation_data=VALIDATION, callbacks=[
        TensorBoard(tmp_path / "logs", histogram_freq=1)]))
    train, validation = scalars(tmp_path / "logs" / "train"), scalars(tmp_path / "logs" / "validation")
    assert sorted(train) == ["epoch_accuracy", "epoch_loss"] and sorted(validation) == sorted(train)
    for name in ("loss", "accuracy"):
        assert train[f"epoch_{name}"] == {i: np.float32(v) for i, v in enumerate(history.history[name])}
        assert validation[f"epoch_{name}"] == {i: np.float32(v) for i, v in enumerate(history.history[f"val_{name}"])}
    histograms = {(v.tag, e.step) for e in read_events(tmp_path / "logs" / "train") for v in e.summary.value
                  if v.HasField("histo")}
    assert ("dense/kernel/histogram", 1) in histograms
    assert ("batch_normalization/moving_mean/histogram", 0) in histograms


def test_tensorboard_shows_each_epoch_once_after_a_resume(tmp_path):
    pytest.importorskip("tensorboardX")
    reference = fit(dropout_bn_net(), DATA, **train_kwargs(epochs=3))
    backup = BackupAndRestore(tmp_path / "backup")
    with pytest.raises(KeyboardInterrupt):  # epoch 2 is logged, then the crash comes before its backup
        fit(dropout_bn_net(), DATA, **train_kwargs(epochs=3, callbacks=[TensorBoard(tmp_path / "logs"), backup, Crash()]))
    fit(dropout_bn_net(), DATA, **train_kwargs(epochs=3, callbacks=[TensorBoard(tmp_path / "logs"), backup]))
    logged = scalars(tmp_path / "logs" / "train")["epoch_loss"]
    assert logged == {i: np.float32(v) for i, v in enumerate(reference.history["loss"])}
