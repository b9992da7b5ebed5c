"""Relax passes: integer legalization, conv-chain fusion, memory planning."""
from .legalize_qdq import LegalizeQDQ
