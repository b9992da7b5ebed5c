"""Relax passes: integer legalization, conv-chain fusion, memory planning."""
from .legalize_qdq import LegalizeQDQ
from .conv_chains import find_chains
from .fuse_conv_chains import FuseConvChains, fuse_conv_chains, fusable_blocks
from .memory_plan import GreedyMemoryPlanner, plan_memory
