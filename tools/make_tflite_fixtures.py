"""Regenerate the full-int8 .tflite test fixtures in tests/fixtures/ (run by hand, rarely).

TensorFlow is not a dependency of tvm-fused or of CI: the fixtures are committed, and
this script only documents and reproduces how they were made. Run it from a separate
virtualenv:

    python3 -m venv /tmp/tfvenv && /tmp/tfvenv/bin/pip install tensorflow-cpu
    /tmp/tfvenv/bin/python tools/make_tflite_fixtures.py [--out tests/fixtures] [NAME ...]

Issue 8's model families (softmax classifier, MobileNetV3 block, YOLO-like head, per-tensor FC
autoencoder, keyword-spotting DS-CNN, float-io classifier) go to tests/fixtures/families/.

Benchmark models (mbv2_100_96, mbv1_025_96: multi-MB, never committed) are built only when named,
and go to benchmarks/models/ unless --out is given:

    /tmp/tfvenv/bin/python tools/make_tflite_fixtures.py mbv2_100_96 mbv1_025_96

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


def mbv2_100_96() -> keras.Model:
    """Benchmark model: Keras' MobileNetV2, alpha 1.0, 96x96x3, 10 classes, logits out."""
    return keras.applications.MobileNetV2(alpha=1.0, input_shape=(96, 96, 3), weights=None,
                                          classes=10, classifier_activation=None)


def mbv1_025_96() -> keras.Model:
    """Benchmark model: Keras' MobileNet (V1), alpha 0.25, 96x96x3, 10 classes, logits out."""
    return keras.applications.MobileNet(alpha=0.25, input_shape=(96, 96, 3), weights=None,
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


# ---- model families of issue 8 (what users deploy: softmax heads, MobileNetV3, YOLO, FC, KWS) ----


def classifier_softmax() -> keras.Model:
    """Tiny image classifier ending in SOFTMAX: conv 3x3 s2, max pool, depthwise-separable block,
    global average pool, dense, softmax (int8 out, scale 1/256, zero point -128)."""
    x_in = keras.Input((32, 32, 3), batch_size=1, name="input")
    x = layers.Conv2D(16, 3, strides=2, padding="same", use_bias=False)(x_in)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    x = layers.MaxPooling2D(2)(x)                                # 16 -> 8
    x = layers.DepthwiseConv2D(3, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    x = layers.Conv2D(32, 1, use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(10)(x)
    x = layers.Softmax(name="probs")(x)
    return keras.Model(x_in, x, name="classifier_softmax")


def _hard_swish(x):
    return layers.Activation(keras.activations.hard_swish)(x)


def mbv3_block() -> keras.Model:
    """MobileNetV3-like: stem conv 3x3 s2 + hard-swish, an inverted residual block with 1x1 expand +
    hard-swish, 3x3 depthwise + hard-swish, squeeze-excite (global average pool, 1x1 + ReLU,
    1x1 + hard sigmoid, MUL with broadcast over H and W), 1x1 project, residual ADD, then
    global average pool and dense (logits)."""
    x_in = keras.Input((32, 32, 3), batch_size=1, name="input")
    x = layers.Conv2D(16, 3, strides=2, padding="same", use_bias=False)(x_in)
    x = layers.BatchNormalization()(x)
    x = _hard_swish(x)
    y = layers.Conv2D(48, 1, use_bias=False)(x)
    y = layers.BatchNormalization()(y)
    y = _hard_swish(y)
    y = layers.DepthwiseConv2D(3, padding="same", use_bias=False)(y)
    y = layers.BatchNormalization()(y)
    y = _hard_swish(y)
    s = layers.GlobalAveragePooling2D(keepdims=True)(y)
    s = layers.Conv2D(12, 1, activation="relu")(s)
    s = layers.Conv2D(48, 1, activation="hard_sigmoid")(s)
    y = layers.Multiply()([y, s])
    y = layers.Conv2D(16, 1, use_bias=False)(y)
    y = layers.BatchNormalization()(y)
    x = layers.Add()([x, y])
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(10, name="logits")(x)
    return keras.Model(x_in, x, name="mbv3_block")


def yolo_head() -> keras.Model:
    """Tiny-YOLO-like detector: conv + LeakyReLU(0.1) and 2x2 max pools down to 8x8, a coarse head,
    a 1x1 conv upsampled x2 (nearest) and concatenated with the 16x16 features, a fine head; each
    head is reshaped to [anchors*cells, 5 + classes] and squashed by a sigmoid. Two outputs.

    The batch dimension is left dynamic (as Keras models usually are), so the converter emits the
    SHAPE / STRIDED_SLICE / PACK subgraph that computes each RESHAPE's target shape."""
    def cbl(t, c, k=3):
        t = layers.Conv2D(c, k, padding="same", use_bias=False)(t)
        t = layers.BatchNormalization()(t)
        return layers.LeakyReLU(negative_slope=0.1)(t)

    x_in = keras.Input((64, 64, 3), name="input")
    x = cbl(x_in, 8)
    x = layers.MaxPooling2D(2)(x)                   # 32
    x = cbl(x, 16)
    x = layers.MaxPooling2D(2)(x)                   # 16
    route = cbl(x, 24)
    x = layers.MaxPooling2D(2)(route)               # 8
    x = cbl(x, 32)
    coarse = layers.Conv2D(3 * 7, 1, name="coarse_conv")(x)
    coarse = layers.Reshape((-1, 7))(coarse)
    coarse = layers.Activation("sigmoid", name="coarse")(coarse)
    u = cbl(x, 16, k=1)
    # Keras 3's UpSampling2D lowers to EXPAND_DIMS/TILE/RESHAPE; tf.image.resize is what the
    # converter turns into RESIZE_NEAREST_NEIGHBOR (as TF-Keras 2 and Darknet exports have it).
    u = layers.Lambda(lambda t: tf.image.resize(t, (16, 16), method="nearest"), name="upsample")(u)
    f = layers.Concatenate()([u, route])
    f = cbl(f, 24)
    fine = layers.Conv2D(3 * 7, 1, name="fine_conv")(f)
    fine = layers.Reshape((-1, 7))(fine)
    fine = layers.Activation("sigmoid", name="fine")(fine)
    return keras.Model(x_in, [coarse, fine], name="yolo_head")


def fc_autoencoder() -> keras.Model:
    """Fully-connected autoencoder (the anomaly-detection shape of MLPerf Tiny, scaled down):
    64 -> 32 -> 16 -> 32 -> 64, ReLU between, linear output. Every FULLY_CONNECTED has
    per-tensor weights (the converter's default for Dense), the case where TFLite forms
    input_scale * filter_scale in float32 before dividing by the output scale."""
    x_in = keras.Input((64,), batch_size=1, name="input")
    x = layers.Dense(32, activation="relu")(x_in)
    x = layers.Dense(16, activation="relu")(x)
    x = layers.Dense(32, activation="relu")(x)
    x = layers.Dense(64, name="reconstruction")(x)
    return keras.Model(x_in, x, name="fc_autoencoder")


def kws_dscnn() -> keras.Model:
    """Keyword-spotting DS-CNN (MLPerf Tiny's architecture, narrower): 49x10 MFCC input, conv 10x4
    stride 2 + ReLU, three depthwise-separable blocks (3x3 depthwise + ReLU, 1x1 + ReLU), average
    pool over the whole 25x5 map, flatten (RESHAPE), dense to 12 keywords, softmax."""
    x_in = keras.Input((49, 10, 1), batch_size=1, name="input")
    x = layers.Conv2D(32, (10, 4), strides=2, padding="same", use_bias=False)(x_in)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    for _ in range(3):
        x = layers.DepthwiseConv2D(3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
        x = layers.Conv2D(32, 1, use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
    x = layers.AveragePooling2D(pool_size=(25, 5))(x)
    x = layers.Flatten()(x)
    x = layers.Dense(12)(x)
    x = layers.Softmax(name="probs")(x)
    return keras.Model(x_in, x, name="kws_dscnn")


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


def to_int8_tflite(model: keras.Model, float_io: bool = False, per_tensor_dense: bool = False) -> bytes:
    """Full-int8 TFLite; with `float_io` the input and output stay float32 (the converter adds a
    QUANTIZE at the entry and a DEQUANTIZE at each exit), as a user who skips the io types gets.
    With `per_tensor_dense` Dense weights get one scale per tensor (TF < 2.16's default and what
    many published models have) instead of TF 2.21's per-channel scales."""
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative(model.input_shape[1:])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if per_tensor_dense:
        converter._experimental_disable_per_channel_quantization_for_dense_layers = True
    if not float_io:
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return converter.convert()


FIXTURES = {"mbv2_035_96": mbv2_035_96, "conv_chain": conv_chain, "dw5_stride2": dw5_stride2,
            "classifier_softmax": classifier_softmax, "mbv3_block": mbv3_block, "yolo_head": yolo_head,
            "fc_autoencoder": fc_autoencoder, "kws_dscnn": kws_dscnn, "classifier_float_io": classifier_softmax}
FLOAT_IO = {"classifier_float_io"}   # float32 in/out: QUANTIZE ... DEQUANTIZE around the int8 graph
PER_TENSOR_DENSE = {"fc_autoencoder"}
# Issue 8's model families live in tests/fixtures/families/ (tests/test_model_families.py), apart from
# the fixtures every compiler test runs over (tests/fixture_paths.py globs tests/fixtures/*.tflite).
FAMILIES = {"classifier_softmax", "mbv3_block", "yolo_head", "fc_autoencoder", "kws_dscnn", "classifier_float_io"}
# Benchmark models: not test fixtures (multi-MB, git-ignored); written only when named, to
# benchmarks/models/ unless --out is given.
BENCHMARKS = {"mbv2_100_96": mbv2_100_96, "mbv1_025_96": mbv1_025_96}
ALL = {**FIXTURES, **BENCHMARKS}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    root = os.path.join(os.path.dirname(__file__), "..")
    ap.add_argument("--out", default=None,
                    help="output folder (default: tests/fixtures for fixtures, benchmarks/models for "
                         "benchmark models)")
    ap.add_argument("names", nargs="*", metavar="NAME",
                    help=f"fixtures to write (default: all fixtures): {', '.join(FIXTURES)}; "
                         f"benchmark models (only when named): {', '.join(BENCHMARKS)}")
    args = ap.parse_args()
    unknown = sorted(set(args.names) - set(ALL))
    if unknown:
        ap.error(f"unknown fixture(s) {', '.join(unknown)}; choose from {', '.join(ALL)}")
    for name in args.names or FIXTURES:
        build = ALL[name]
        if args.out is not None:
            out = args.out
        elif name in BENCHMARKS:
            out = os.path.join(root, "benchmarks", "models")
        else:
            out = os.path.join(root, "tests", "fixtures")
        keras.backend.clear_session()   # layer names (in the .tflite) must not depend on what ran before
        keras.utils.set_random_seed(SEED)
        model = build()
        calib = np.random.default_rng(SEED + 2).uniform(-1, 1, (32, *model.input_shape[1:]))
        randomize_biases(model)
        randomize_batchnorm(model, calib.astype(np.float32))
        buf = to_int8_tflite(model, float_io=name in FLOAT_IO, per_tensor_dense=name in PER_TENSOR_DENSE)
        folder = os.path.join(out, "families") if name in FAMILIES else out
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, f"{name}.tflite")
        with open(path, "wb") as f:
            f.write(buf)
        print(f"{path}: {len(buf)} bytes")


if __name__ == "__main__":
    main()
