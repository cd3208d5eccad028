"""C4 rotation-equivariant layers by basis augmentation, as the H-SSL paper builds them.

H-SSL App. A: "To construct the rotation equivariant backbones, we use only a
single scale of [1.0] and augment the basis set with four 90-degree rotated
copies of the basis functions". So the basis here is SESN's Hermite-Gaussian
basis at scale 1 (``sesn.steerable_basis_a``) and its ``torch.rot90`` copies,

    basis[f, g] = rot90(ψ_f, g),   g = 0, 1, 2, 3,

and the layers are ``sesn.BasisLift`` / ``sesn.BasisGroupConv``: element ``g``
of the output uses the kernel rotated by ``g`` quarter turns, and the group
convolution convolves fiber ``g`` with ``rot90(κ, g)`` only (SESN's scale filter
of size 1, which the paper's layers also use). Why this is equivariant: for a
centred odd kernel, cross-correlation commutes with a quarter turn of both
image and kernel, ``rot(x) ⋆ rot(κ) = rot(x ⋆ κ)``, hence

    f(rot x)[g] = rot(x) ⋆ rot^g(κ) = rot(x ⋆ rot^(g-1)(κ)) = rot(f(x)[g-1]),

i.e. ``f(torch.rot90(x, 1, dims=(-2, -1)))
== torch.roll(torch.rot90(f(x), 1, dims=(-2, -1)), shifts=1, dims=2)``:
a counter-clockwise quarter turn rotates the spatial axes and rolls the group
axis forward by one. ``rot90`` of a kernel on a centred grid is exact, so the
layers are exactly equivariant wherever the sampled grid is symmetric under the
rotation (odd input sizes; see ``hssl.py`` for even ones).

Why not e2cnn's ``R2Conv``: its regular-to-regular convolution is the *full*
C4 group convolution (every fiber sees every fiber, 72 parameters per pair of
fields at kernel 7 against the paper's 9) and its basis expansion is built in
Python per pair of fields, too slow and too large to build the 512-field
ResNet20 (the measurement: docs/decisions.md). The paper's construction above
has the parameter count and compute the paper reports and builds instantly. It
is written here (a few lines on top of ``sesn.py``) because no maintained
package offers it.
"""

from __future__ import annotations

import torch

from ssl_geom.symmetry import Symmetry

from .families import SteeredFamily
from .sesn import steerable_basis_a

C4 = 4


def rotation_basis(kernel_size: int, effective_size: int) -> torch.Tensor:
    """``(effective_size², 4, k, k)``: SESN basis "A" at scale 1 and its quarter turns."""
    base = steerable_basis_a(kernel_size, [1.0], effective_size)[:, 0]
    return torch.stack([torch.rot90(base, g, dims=(-2, -1)) for g in range(C4)], dim=1)


class RotationFamily(SteeredFamily):
    """C4 (90° rotations) regular-representation layers; ``G = 4``."""

    group: Symmetry = Symmetry.ROTATION
    group_size = C4

    def basis(self, kernel_size: int, effective_size: int) -> torch.Tensor:
        return rotation_basis(kernel_size, effective_size)
