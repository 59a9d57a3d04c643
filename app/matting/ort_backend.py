"""ONNX Runtime backend for the live engine: runs an RVM ONNX file one frame at a time.

Works with the official ``rvm_mobilenetv3_fp32.onnx`` and with the files that
:mod:`app.matting.export` writes (same inputs ``src, r1i..r4i, downsample_ratio`` and outputs
``fgr, pha, r1o..r4o``). Inputs and outputs go through I/O binding: the frame and the recurrent
state are bound where they live, ONNX Runtime allocates the outputs on the execution device, and
the outputs are handed back as torch tensors that share that memory (DLPack). On CUDA the state
therefore never leaves the GPU between frames.

Like the official file, the graph runs the refiner at every ratio, 1 included.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from .architecture import INPUT_NAMES, OUTPUT_NAMES, STATE_INPUTS

_ORT_TYPES = {"tensor(float)": torch.float32, "tensor(float16)": torch.float16}
_NUMPY_TYPES = {torch.float32: np.float32, torch.float16: np.float16}


class OrtBackendError(RuntimeError):
    """The ONNX Runtime backend cannot run; the message says why and what to do."""


class OrtRunner:
    """Runs an RVM ONNX model frame by frame with its recurrent state kept on the device.

    Args:
        onnx_path: the model; None uses the official export from
            :func:`app.matting.weights.fetch_onnx`.
        device: ``cpu`` or ``cuda`` (``cuda:N`` picks a GPU).
        threads: intra-op threads of the CPU provider; None lets ONNX Runtime choose.

    Raises:
        OrtBackendError: CUDA was asked for but this ONNX Runtime has no CUDA provider, the file is
            missing or not a usable RVM model.
        WeightsError: the official model had to be fetched and could not be.
    """

    def __init__(
        self,
        onnx_path: str | os.PathLike[str] | None = None,
        device: str = "cpu",
        threads: int | None = None,
    ):
        self.device = torch.device(device)
        if self.device.type not in ("cpu", "cuda"):
            raise OrtBackendError(f"Device '{device}' is not supported; use cpu or cuda.")
        if onnx_path is None:
            from app.matting.weights import fetch_onnx

            onnx_path = fetch_onnx()
        self.path = Path(onnx_path)
        if not self.path.is_file():
            raise OrtBackendError(f"ONNX model {self.path} does not exist.")
        options = ort.SessionOptions()
        if threads is not None:
            if threads < 1:
                raise OrtBackendError(f"Thread count {threads} must be at least 1.")
            options.intra_op_num_threads = threads
        self._device_id = self.device.index or 0
        providers: list[str | tuple[str, dict[str, str]]] = ["CPUExecutionProvider"]
        if self.device.type == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise OrtBackendError(
                    "CUDA was asked for but this ONNX Runtime has no CUDA provider; install "
                    "onnxruntime-gpu or use the CPU."
                )
            if not torch.cuda.is_available():
                raise OrtBackendError("CUDA was asked for but no CUDA device is available.")
            stream = torch.cuda.current_stream(self._device_id).cuda_stream
            cuda_options = {
                "device_id": str(self._device_id),
                # Run on torch's stream, so torch and ONNX Runtime work stays in order.
                "has_user_compute_stream": "1",
                "user_compute_stream": str(stream),
            }
            providers.insert(0, ("CUDAExecutionProvider", cuda_options))
        try:
            self._session = ort.InferenceSession(str(self.path), options, providers=providers)
        except Exception as e:  # onnxruntime raises its own exception types for bad files
            detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise OrtBackendError(f"{self.path} is not a usable ONNX model ({detail}).") from None
        if self.device.type == "cuda" and "CUDAExecutionProvider" not in self.providers:
            raise OrtBackendError("ONNX Runtime could not start its CUDA provider; use the CPU.")
        inputs = {i.name: i for i in self._session.get_inputs()}
        names = {o.name for o in self._session.get_outputs()}
        if set(INPUT_NAMES) - set(inputs) or set(OUTPUT_NAMES) - names:
            raise OrtBackendError(
                f"{self.path} is not an RVM model: it needs inputs {', '.join(INPUT_NAMES)} and "
                f"outputs {', '.join(OUTPUT_NAMES)}."
            )
        self.dtype = _ORT_TYPES.get(inputs["src"].type)
        if self.dtype is None:
            raise OrtBackendError(f"{self.path} takes {inputs['src'].type} frames; not supported.")
        self._binding = self._session.io_binding()
        self._zero = torch.zeros(1, 1, 1, 1, dtype=self.dtype, device=self.device)
        self._key: tuple[tuple[int, ...], float] | None = None

    @property
    def providers(self) -> list[str]:
        """The execution providers of the session, in order of preference."""
        return self._session.get_providers()

    @property
    def name(self) -> str:
        """``onnxruntime-cpu`` or ``onnxruntime-cuda``."""
        return f"onnxruntime-{self.device.type}"

    def _bind(self, name: str, tensor: torch.Tensor) -> None:
        self._binding.bind_input(
            name,
            self.device.type,
            self._device_id,
            _NUMPY_TYPES[tensor.dtype],
            list(tensor.shape),
            tensor.data_ptr(),
        )

    def __call__(
        self, src: torch.Tensor, rec: list[torch.Tensor | None], downsample_ratio: float
    ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """Mattes one frame.

        When the frame size, batch or ratio differs from the previous call, the given state does
        not fit the new size and the state starts again from zeros.

        Args:
            src: ``[1, 3, H, W]`` RGB in 0..1 (float32; moved and cast to the model's device and
                dtype as needed).
            rec: the four state tensors returned by the previous call, or Nones at the start.
            downsample_ratio: the network's internal scale, in (0, 1].

        Returns:
            ``fgr [1, 3, H, W]``, ``pha [1, 1, H, W]`` and the new state, as torch tensors on the
            device, in the model's dtype.
        """
        if src.dim() != 4 or src.shape[1] != 3:
            raise ValueError(f"src must be [B, 3, H, W], got {list(src.shape)}.")
        src = src.to(device=self.device, dtype=self.dtype).contiguous()
        key = (tuple(src.shape), float(downsample_ratio))
        if key != self._key or len(rec) != 4 or any(r is None for r in rec):
            state = [self._zero] * 4
        else:
            state = [r.to(device=self.device, dtype=self.dtype).contiguous() for r in rec]
        self._key = key
        self._bind("src", src)
        for name, tensor in zip(STATE_INPUTS, state, strict=True):
            self._bind(name, tensor)
        self._binding.bind_cpu_input(
            "downsample_ratio", np.array([downsample_ratio], dtype=np.float32)
        )
        for name in OUTPUT_NAMES:
            self._binding.bind_output(name, self.device.type, self._device_id)
        self._session.run_with_iobinding(self._binding)
        outs = [torch.from_dlpack(v) for v in self._binding.get_outputs()]
        self._binding.clear_binding_inputs()
        self._binding.clear_binding_outputs()
        return outs[0], outs[1], outs[2:]

    def reset(self) -> None:
        """Forgets the last frame size, so the next call starts from a zero state."""
        self._key = None
