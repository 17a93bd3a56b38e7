"""Building blocks of the Gaussian-moment neural networks (GM-NN) of Zaverkin et al. 2022.

Zaverkin, Netz, Zills, Köhn & Kästner, "Thermally Averaged Magnetic Anisotropy Tensors via
Machine Learning Based on Gaussian Moments" (2022), section 2.2.2, and the GM-NN papers it
builds on (Zaverkin & Kästner, JCTC 2020, 16, 5410; Zaverkin et al., JCTC 2021, 17, 6658).

* :class:`NTKLinear` - a dense layer in the neural-tangent-kernel (NTK) parameterisation,

      h_out = 0.1 * b + W h_in / sqrt(d_in),      W_kl ~ N(0, 1),  b = 0 at the start

  (the bracket of eq. 8; "0.1" is the bias factor, 1/sqrt(d_l) the weight factor).
* :class:`ScaledSiLU` - phi(x) = alpha * x / (1 + exp(-x)) with alpha = 1.6765324703...
  chosen so that E_{x ~ N(0,1)} phi(x)^2 = 1 (the paper gives alpha ~ 1.6765).
* :class:`AtomicMLP` - eq. 8, the per-atom network G_i -> y_i:

      y_i = 0.1 b3 + W3 phi(0.1 b2 + W2 phi(0.1 b1 + W1 G_i / sqrt(d0)) / sqrt(d1)) / sqrt(d2)

  with d0 = 360 input features and d1 = d2 = 512 hidden neurons in the paper (any number of
  hidden layers here; the paper's two are the default of the models).
* :class:`SpeciesScaleShift` - eq. 9, m_i = y_i * sigma_{Z_i} + mu_{Z_i}, both trainable and
  per species.

All layers are dimensionless; units enter through sigma and mu (cm-1 for D-tensor models, eV
for energy models).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor, nn

__all__ = ["SILU_SCALE", "ScaledSiLU", "NTKLinear", "AtomicMLP", "SpeciesScaleShift"]

#: alpha of the scaled SiLU: 1 / sqrt(E_{x~N(0,1)} [x sigmoid(x)]^2) (paper: alpha ~ 1.6765).
SILU_SCALE = 1.6765324703310913


class ScaledSiLU(nn.Module):
    """phi(x) = alpha x / (1 + exp(-x)), alpha = :data:`SILU_SCALE`, so that
    E[phi(x)^2] = 1 for x ~ N(0, 1) (Zaverkin et al. 2022, text after eq. 8)."""

    def forward(self, x: Tensor) -> Tensor:
        return SILU_SCALE * torch.nn.functional.silu(x)


class NTKLinear(nn.Module):
    """Dense layer in the NTK parameterisation: y = bias_factor * b + W x / sqrt(d_in).

    ``weight`` (d_out, d_in) starts as N(0, 1) draws from ``generator``, ``bias`` (d_out,) as
    zeros (Zaverkin et al. 2022, eq. 8 and the text after it; bias factor 0.1)."""

    def __init__(self, d_in: int, d_out: int, *, bias_factor: float = 0.1,
                 generator: torch.Generator | None = None,
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        if d_in < 1 or d_out < 1:
            raise ValueError(f"layer sizes must be >= 1, got {d_in} -> {d_out}")
        self.d_in, self.d_out = int(d_in), int(d_out)
        self.bias_factor = float(bias_factor)
        self.weight_factor = 1.0 / math.sqrt(d_in)
        w = torch.randn((d_out, d_in), generator=generator, dtype=torch.float64)
        self.weight = nn.Parameter(w.to(dtype))
        self.bias = nn.Parameter(torch.zeros(d_out, dtype=dtype))

    def forward(self, x: Tensor) -> Tensor:
        # addmm(bias_term, x, W^T, alpha=1/sqrt(d_in)) = 0.1 b + x W^T / sqrt(d_in)
        return torch.addmm(self.bias * self.bias_factor, x, self.weight.t(),
                           alpha=self.weight_factor)

    def extra_repr(self) -> str:
        return f"{self.d_in} -> {self.d_out}, bias_factor={self.bias_factor}"


class AtomicMLP(nn.Module):
    """Eq. 8 of Zaverkin et al. 2022: (N, d0) Gaussian moments -> (N,) dimensionless y_i.

    ``hidden`` are the hidden widths (paper: (512, 512)); every hidden layer is an
    :class:`NTKLinear` followed by :class:`ScaledSiLU`, the output layer an
    :class:`NTKLinear` with one neuron."""

    def __init__(self, d_in: int, hidden: Sequence[int] = (512, 512), *,
                 bias_factor: float = 0.1, generator: torch.Generator | None = None,
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        sizes = [int(d_in), *(int(h) for h in hidden), 1]
        layers: list[nn.Module] = []
        for k in range(len(sizes) - 1):
            layers.append(NTKLinear(sizes[k], sizes[k + 1], bias_factor=bias_factor,
                                    generator=generator, dtype=dtype))
            if k < len(sizes) - 2:
                layers.append(ScaledSiLU())
        self.layers = nn.Sequential(*layers)

    def forward(self, g: Tensor) -> Tensor:
        return self.layers(g).squeeze(-1)


class SpeciesScaleShift(nn.Module):
    """Eq. 9: m_i = y_i * scale[s_i] + shift[s_i] with trainable per-species scale (sigma_Z)
    and shift (mu_Z), in the unit of the target (cm-1 or eV); ``s_i`` are species indices."""

    def __init__(self, n_species: int, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(n_species, dtype=dtype))
        self.shift = nn.Parameter(torch.zeros(n_species, dtype=dtype))

    def forward(self, y: Tensor, species: Tensor) -> Tensor:
        return y * self.scale.index_select(0, species) + self.shift.index_select(0, species)
