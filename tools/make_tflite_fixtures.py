"""Regenerate the full-int8 .tflite test fixtures in tests/fixtures/ (run by hand, rarely).

TensorFlow is not a dependency of tvm-fused or of CI: the fixtures are committed, and
this script only documents and reproduces how they were made. Run it from a separate
virtualenv:

    python3 -m venv /tmp/tfvenv && /tmp/tfvenv/bin/pip install tensorflow-cpu
    /tmp/tfvenv/bin/python tools/make_tflite_fixtures.py [--out tests/fixtures]

Made with tensorflow-cpu 2.21 (Keras 3.15). Weights are random (global seed 0); batch-norm
statistics are re-estimated on random inputs so every layer's activations have a sane
range after int8 quantization (Keras' fresh BN layers have mean 0 / variance 1, which
would let activations grow or collapse through the network).
"""
from __future__ import annotations

import argparse
import os

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf  # noqa: E402
from tensorflow import keras  # noqa: E402
from tensorflow.keras import layers  # noqa: E402

SEED = 0


def _relu6():
    return layers.ReLU(6.0)


def mbv2_035_96() -> keras.Model:
    """Keras' own MobileNetV2, alpha 0.35, 96x96x3, 10 classes, logits out (no softmax:
    a float post-processing step that belongs on the host, not in the int8 graph)."""
    return keras.applications.MobileNetV2(alpha=0.35, input_shape=(96, 96, 3), weights=None,
                                          classes=10, classifier_activation=None)


def conv_chain() -> keras.Model:
    """Stem conv, one inverted-residual block with a residual Add, 2x2 avg pool, GAP, dense."""
    x_in = keras.Input((32, 32, 3), batch_size=1, name="input")
    x = layers.Conv2D(16, 3, strides=2, padding="same", use_bias=False)(x_in)
    x = layers.BatchNormalization()(x)
    x = _relu6()(x)
    y = layers.Conv2D(96, 1, use_bias=False)(x)           # expand
    y = layers.BatchNormalization()(y)
    y = _relu6()(y)
    y = layers.DepthwiseConv2D(3, padding="same", use_bias=False)(y)
    y = layers.BatchNormalization()(y)
    y = _relu6()(y)
    y = layers.Conv2D(16, 1, use_bias=False)(y)           # project (linear)
    y = layers.BatchNormalization()(y)
    x = layers.Add()([x, y])
    x = layers.AveragePooling2D(2)(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(10, name="logits")(x)
    return keras.Model(x_in, x, name="conv_chain")


def dw5_stride2() -> keras.Model:
    """A 'valid' 3x3 conv, then a 5x5 depthwise stride-2 'same' conv (asymmetric padding)."""
    x_in = keras.Input((32, 32, 3), batch_size=1, name="input")
    x = layers.Conv2D(8, 3, padding="valid")(x_in)          # 32 -> 30
    x = _relu6()(x)
    x = layers.DepthwiseConv2D(5, strides=2, padding="same")(x)  # 30 -> 15, pads 1 top / 2 bottom
    x = _relu6()(x)
    x = layers.Conv2D(16, 1)(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(10, name="logits")(x)
    return keras.Model(x_in, x, name="dw5_stride2")


def randomize_biases(model: keras.Model) -> None:
    """Small random biases: Keras initializes them to zero, and the converter drops an
    all-zero bias (FULLY_CONNECTED then has no bias input), leaving that path untested."""
    rng = np.random.default_rng(SEED + 3)
    for layer in model.layers:
        bias = getattr(layer, "bias", None)
        if bias is not None and not isinstance(layer, layers.BatchNormalization):
            bias.assign((rng.standard_normal(bias.shape) * 0.1).astype(np.float32))


def randomize_batchnorm(model: keras.Model, calib: np.ndarray) -> None:
    """Random gamma/beta, then moving statistics set to the batch statistics of `calib`.

    With momentum 0, one training-mode forward pass copies each layer's batch mean and
    variance into its moving statistics; since every BN normalizes with those same
    statistics in that pass, inference on similar data then sees normalized activations.
    """
    rng = np.random.default_rng(SEED)
    bns = [l for l in model.layers if isinstance(l, layers.BatchNormalization)]
    for bn in bns:
        c = bn.gamma.shape[0]
        bn.gamma.assign(rng.uniform(0.5, 1.5, c).astype(np.float32))
        bn.beta.assign((rng.standard_normal(c) * 0.2 + 0.2).astype(np.float32))
        bn.momentum = 0.0
    model(calib, training=True)


def representative(shape, n=16):
    rng = np.random.default_rng(SEED + 1)

    def gen():
        for _ in range(n):
            yield [rng.uniform(-1.0, 1.0, (1, *shape)).astype(np.float32)]
    return gen


def to_int8_tflite(model: keras.Model) -> bytes:
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative(model.input_shape[1:])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return converter.convert()


FIXTURES = {"mbv2_035_96": mbv2_035_96, "conv_chain": conv_chain, "dw5_stride2": dw5_stride2}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for name, build in FIXTURES.items():
        keras.utils.set_random_seed(SEED)
        model = build()
        calib = np.random.default_rng(SEED + 2).uniform(-1, 1, (32, *model.input_shape[1:]))
        randomize_biases(model)
        randomize_batchnorm(model, calib.astype(np.float32))
        buf = to_int8_tflite(model)
        path = os.path.join(args.out, f"{name}.tflite")
        with open(path, "wb") as f:
            f.write(buf)
        print(f"{path}: {len(buf)} bytes")


if __name__ == "__main__":
    main()
