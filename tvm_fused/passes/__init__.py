"""Relax passes: integer legalization, conv-chain fusion, memory planning.

The module passes (run in this order by ``tvm_fused.pipeline``): ``LegalizeQDQ``,
``FuseConvChainsPass``, ``PlanMemory``. The functions they wrap stay importable for
what-if tools (``fuse_conv_chains``, ``plan_memory``, ``find_chains``).
"""
from .legalize_qdq import LegalizeQDQ
from .fuse_pass import FuseConvChainsPass
from .memory_plan_pass import PlanMemory
from .conv_chains import find_chains
from .fuse_conv_chains import FuseConvChains, fuse_conv_chains, fusable_blocks
from .memory_plan import GreedyMemoryPlanner, plan_memory
