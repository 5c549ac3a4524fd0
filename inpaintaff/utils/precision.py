"""Float32 on CUDA: whether convolutions and matrix products may round through TensorFloat-32."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def float32_precision(tf32: bool) -> Iterator[None]:
    """Inside the block, float32 convolutions (cuDNN) and matrix products on CUDA run as exact
    IEEE float32 (``tf32=False``) or through TensorFloat-32 (``tf32=True``); restored after.

    PyTorch lets cuDNN convolutions use TF32 by default. The split engine's iterations amplify
    that rounding into other splits: on an H200, 28 % of a crop's affinities differed from the
    CPU's with TF32 and none without (README, "A whole frame"). Only the new
    ``fp32_precision`` API is used, since mixing it with the legacy ``allow_tf32`` flags is an error.
    """
    conv, matmul = torch.backends.cudnn.conv, torch.backends.cuda.matmul
    before = conv.fp32_precision, matmul.fp32_precision
    mode = "tf32" if tf32 else "ieee"
    conv.fp32_precision = matmul.fp32_precision = mode
    try:
        yield
    finally:
        conv.fp32_precision, matmul.fp32_precision = before
