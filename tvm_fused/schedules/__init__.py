"""int8 TIR kernels for Cortex-M7: DSP micro-kernels (gemm, depthwise) with typed schedule configs."""
from .config import DepthwiseConfig, GemmConfig
from .conv2d import Conv2DParams, conv2d_int8, conv2d_kernel
from .dense import DenseParams, dense_int8
from .elementwise import AddParams, RequantizeParams, add_int8, requantize_int8
from .fixed_point import multiply_by_quantized_multiplier, quantize_multiplier, quantize_multipliers
from .pool import PoolParams, avg_pool_int8, mean_params
