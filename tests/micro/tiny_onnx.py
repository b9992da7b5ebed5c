"""A tiny int8 QDQ ONNX model (conv 3x3 stride 2 + relu) for device tests of the real compiler."""
import numpy as np


def tiny_qdq_conv(path):
    import onnx
    from onnx import TensorProto, helper
    from onnx import numpy_helper as nh

    rng = np.random.default_rng(0)
    w = rng.integers(-50, 50, (4, 3, 3, 3), dtype=np.int8)
    b = rng.integers(-100, 100, (4,), dtype=np.int32)
    inits = [nh.from_array(np.array(0.02, np.float32), "xs"), nh.from_array(np.array(-1, np.int8), "xz"),
             nh.from_array(w, "w_q"), nh.from_array(np.array(0.01, np.float32), "ws"),
             nh.from_array(np.array(0, np.int8), "wz"), nh.from_array(b, "b_q"),
             nh.from_array(np.array(0.0002, np.float32), "bs"), nh.from_array(np.array(0, np.int32), "bz"),
             nh.from_array(np.array(0.05, np.float32), "ys"), nh.from_array(np.array(-128, np.int8), "yz")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
             helper.make_node("DequantizeLinear", ["w_q", "ws", "wz"], ["wd"]),
             helper.make_node("DequantizeLinear", ["b_q", "bs", "bz"], ["bd"]),
             helper.make_node("Conv", ["xd", "wd", "bd"], ["c"], pads=[1, 1, 1, 1], strides=[2, 2]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("QuantizeLinear", ["r", "ys", "yz"], ["yq"]),
             helper.make_node("DequantizeLinear", ["yq", "ys", "yz"], ["y"])]
    g = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])], inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path
