"""int8 TIR kernels for Cortex-M7 (plain loops; tuned schedules come later)."""
from .conv2d import Conv2DParams, conv2d_nhwc_int8
from .dense import DenseParams, dense_int8
from .elementwise import AddParams, PadParams, RequantizeParams, add_int8, pad_int8, requantize_int8
from .fixed_point import multiply_by_quantized_multiplier, quantize_multiplier, quantize_multipliers
from .pool import PoolParams, avg_pool_int8, mean_params
