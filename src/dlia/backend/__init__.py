"""Devices: which array module (NumPy or CuPy) an op computes with."""

from dlia.backend import allocator  # importing it changes nothing: see allocator.ensure_tuned
from dlia.backend.device import Device, cpu, get_array_module, get_device, gpu_available

__all__ = [
    "allocator","Device", "cpu", "get_array_module", "get_device", "gpu_available"]
