"""Backend: plain C kernels, the AOT entry, const weights and the static arena."""
from .aot import CLibrary, generate_c
from .host_reference import HostReference
from .host_runner import HostExecutable
from .plain_c import lower_to_c
