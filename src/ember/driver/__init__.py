"""Devices and the tensors that live on them."""

from .device import CPU, Accelerator, Device, accelerator_count
from .tensor import Buffer, Tensor

__all__ = ["CPU", "Accelerator", "Buffer", "Device", "Tensor", "accelerator_count"]
