"""SimCLR views made on the training device, with per-sample (or per-group) random parameters.

Why: at GPU speed (14k images/s for a ResNet-18 on CIFAR) two SimCLR views are 28k augmented
images per second, more than per-sample CPU transforms in loader workers deliver. With
``augment_on="device"`` the loader ships uint8 images and :class:`DeviceSimCLRAugment` makes
the views after the transfer, in a handful of batched kernels.

Why hand-written: ``transforms.v2`` draws ONE parameter set per call on a batch, and kornia's
augmentation module (measured against this one by ``benchmarks/gpu_augment.py``) draws one per
sample or one per batch, but not one per *group* of samples, which CARE's chunks need (one
augmentation pair shared by each chunk, Gupta et al., "Structuring Representation Geometry
with Rotationally Equivariant Contrastive Learning", arXiv:2306.13924, Algorithm 1); its
``ColorJitter`` also applies the four adjustments in one order per batch, where torchvision
draws the order per image. Here every op is batched with per-row parameters:

* random resized crop: the crop box is drawn exactly as ``v2.RandomResizedCrop`` draws it (10
  tries of area/log-ratio, first valid one, else the centre fallback), then every box is
  resized at once by ``grid_sample`` on a per-row grid: bilinear with half-pixel centres and
  the crop's border repeated, i.e. ``resized_crop`` without antialiasing, which only acts when
  a box is larger than the output (never here: the stored images already have the output
  size, so every crop is enlarged or kept);
* horizontal flip, grayscale: ``torch.where`` on per-row coins;
* colour jitter: per-row factors from torchvision's ranges and a per-row random order of the
  four adjustments; a row whose op is not due this round gets the identity factor, and rows
  outside the jitter's ``p`` get identity factors throughout;
* Gaussian blur (96 px and up, as the CPU pipeline): per-row sigma, separable grouped conv.

All random numbers come from a generator on the batch's device, so no step waits for the host:
the augmentation's own (seeded by ``seed`` on first use, then running on; its state is saved in
checkpoints through :meth:`DeviceSimCLRAugment.state_dict`), or one the caller passes (what
ranks other than 0 do, :mod:`ssl_geom.rank_draws`).
The arithmetic runs in float on [0, 1] images, where the CPU pipeline rounds to uint8 after
every op: the parameter distributions are the same (tested against torchvision's samplers),
pixel values differ by that rounding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ssl_geom.augment.params import SimCLRParams
from ssl_geom.augment.same_params import SameParams, group_size

#: ``v2.RandomResizedCrop``'s default aspect-ratio range.
CROP_RATIO = (3.0 / 4.0, 4.0 / 3.0)
#: ``rgb_to_grayscale`` weights (ITU-R 601-2 luma), as torchvision.
_LUMA = (0.2989, 0.587, 0.114)
_CROP_TRIES = 10


@dataclass
class ViewParams:
    """One row per image: the random parameters of a SimCLR view (all tensors on one device).

    ``box``: ``(n, 4)`` crop ``(left, top, width, height)`` in pixels; ``flip``, ``gray``:
    ``(n,)`` bool; ``factors``: ``(n, 4)`` brightness, contrast, saturation, hue (identity
    values ``1, 1, 1, 0`` where the jitter is not applied); ``order``: ``(n, 4)`` the
    permutation of the four jitter ops; ``sigma``: ``(n,)`` blur sigma, 0 = no blur.
    """

    box: torch.Tensor
    flip: torch.Tensor
    gray: torch.Tensor
    factors: torch.Tensor
    order: torch.Tensor
    sigma: torch.Tensor

    def repeat_interleave(self, repeats: int) -> ViewParams:
        """Each row repeated ``repeats`` times in place (one draw shared by a group of rows)."""
        return ViewParams(*(t.repeat_interleave(repeats, dim=0) for t in vars(self).values()))


class DeviceSimCLRAugment:
    """SimCLR views of a batch on its own device; one draw per sample or per group.

    Args:
        image_size: output side (the stored images must already have it: no variable-size
            decoding happens on the device).
        in_channels: 1 (brightness/contrast jitter only, no grayscale) or 3.
        params: the SimCLR knobs (:func:`ssl_geom.augment.params.simclr_params`), the same
            object the CPU pipeline is built from.
        mean, std: normalisation applied to every output view.
        seed: seeds the device generator (one per device, created on first use).

    ``aug(images)`` returns one normalised float32 view of a ``(B, C, H, W)`` uint8 or [0, 1]
    float batch; ``aug(images, n_groups=k)`` draws ``k`` parameter sets, each shared by one
    of ``k`` equal consecutive groups of rows; ``generator=g`` draws from ``g`` instead of the
    augmentation's own generator.
    """

    def __init__(
        self,
        image_size: int,
        in_channels: int,
        params: SimCLRParams,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        seed: int = 0,
    ) -> None:
        if in_channels not in (1, 3):
            raise ValueError(f"in_channels must be 1 or 3, got {in_channels}")
        if len(mean) != in_channels or len(std) != in_channels:
            raise ValueError(
                f"mean and std need {in_channels} values (one per channel), got {mean} and {std}"
            )
        self.image_size = image_size
        self.in_channels = in_channels
        self.params = params
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
        self.seed = seed
        s = params.jitter_strength
        # v2.ColorJitter ranges: [max(0, 1 - x), 1 + x] for b/c/s, [-x, x] for hue.
        strengths: tuple[float, ...] = (
            (0.8 * s, 0.8 * s, 0.8 * s, 0.2 * s) if in_channels == 3 else (0.8 * s,) * 2
        )
        self._jitter_ranges = [(max(0.0, 1.0 - x), 1.0 + x) for x in strengths[:3]]
        if in_channels == 3:
            self._jitter_ranges.append((-strengths[3], strengths[3]))
        self._generators: dict[torch.device, torch.Generator] = {}
        self._saved_states: dict[str, torch.Tensor] = {}
        self._stat_cache: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}

    def __repr__(self) -> str:
        return f"DeviceSimCLRAugment(image_size={self.image_size}, params={self.params})"

    # ------------------------------------------------------------------ randomness
    def generator(self, device: torch.device) -> torch.Generator:
        """The seeded generator for ``device`` (created on first use)."""
        device = torch.device(device)
        if device.type == "cuda" and device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        if device not in self._generators:
            generator = torch.Generator(device).manual_seed(self.seed)
            saved = self._saved_states.pop(str(device), None)
            if saved is not None:
                generator.set_state(saved)
            self._generators[device] = generator
        return self._generators[device]

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Each device generator's state (by device name), so a resumed run draws on from it."""
        states = dict(self._saved_states)
        states.update({str(d): g.get_state() for d, g in self._generators.items()})
        return states

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Continue from :meth:`state_dict`: each generator resumes when its device is first used."""
        self._generators.clear()
        self._saved_states = dict(state)

    def _uniform(self, shape: tuple[int, ...], low: float, high: float, g: torch.Generator):
        return torch.rand(shape, generator=g, device=g.device) * (high - low) + low

    def sample_crop(self, n: int, height: int, width: int, g: torch.Generator) -> torch.Tensor:
        """``(n, 4)`` float boxes ``(left, top, w, h)``, as ``v2.RandomResizedCrop`` draws them."""
        lo, hi = self.params.crop_scale
        area = float(height * width)
        target = area * self._uniform((n, _CROP_TRIES), lo, hi, g)
        log_r = self._uniform((n, _CROP_TRIES), math.log(CROP_RATIO[0]), math.log(CROP_RATIO[1]), g)
        aspect = torch.exp(log_r)
        w = torch.round(torch.sqrt(target * aspect))
        h = torch.round(torch.sqrt(target / aspect))
        valid = (w > 0) & (w <= width) & (h > 0) & (h <= height)
        first = valid.to(torch.uint8).argmax(dim=1, keepdim=True)  # first valid try (0 if none)
        w, h = w.gather(1, first).squeeze(1), h.gather(1, first).squeeze(1)
        # Fallback (no valid try): v2's centre crop clamped to the ratio range.
        in_ratio = width / height
        if in_ratio < CROP_RATIO[0]:
            fw, fh = float(width), float(round(width / CROP_RATIO[0]))
        elif in_ratio > CROP_RATIO[1]:
            fw, fh = float(round(height * CROP_RATIO[1])), float(height)
        else:
            fw, fh = float(width), float(height)
        ok = valid.any(dim=1)
        w = torch.where(ok, w, torch.full_like(w, fw))
        h = torch.where(ok, h, torch.full_like(h, fh))
        # randint(0, H - h + 1): uniform integer offsets.
        u = torch.rand((n, 2), generator=g, device=g.device)
        top = torch.where(ok, torch.floor(u[:, 0] * (height - h + 1)), (height - h) // 2)
        left = torch.where(ok, torch.floor(u[:, 1] * (width - w + 1)), (width - w) // 2)
        return torch.stack((left, top, w, h), dim=1)

    def sample(
        self,
        n: int,
        height: int,
        width: int,
        device: torch.device,
        generator: torch.Generator | None = None,
    ) -> ViewParams:
        """``n`` independent parameter sets, drawn on ``device`` (from ``generator`` if given)."""
        g = self.generator(device) if generator is None else generator
        p = self.params
        box = self.sample_crop(n, height, width, g)
        coins = torch.rand((n, 4), generator=g, device=g.device)
        flip = coins[:, 0] < (0.5 if p.flip else 0.0)
        gray = coins[:, 1] < (p.grayscale_p if self.in_channels == 3 else 0.0)
        jitter = coins[:, 2] < p.jitter_p
        identity = torch.ones(len(self._jitter_ranges), device=g.device)
        if len(self._jitter_ranges) == 4:
            # Hue's identity is a shift of 0. Built by kernels alone: an indexed write of a
            # Python scalar (identity[3] = 0.0) is a host-to-device copy that synchronises.
            identity = torch.cat([identity[:3], torch.zeros(1, device=g.device)])
        drawn = torch.stack(
            [self._uniform((n,), lo, hi, g) for lo, hi in self._jitter_ranges], dim=1
        )
        factors = torch.where(jitter[:, None], drawn, identity)
        # v2.ColorJitter: torch.randperm(4) per image; argsort of uniforms is a uniform permutation.
        order = torch.rand((n, 4), generator=g, device=g.device).argsort(dim=1)
        blur = p.blur_kernel is not None
        sigma = self._uniform((n,), *p.blur_sigma, g) if blur else torch.zeros(n, device=g.device)
        if blur:
            sigma = torch.where(coins[:, 3] < p.blur_p, sigma, torch.zeros_like(sigma))
        return ViewParams(box, flip, gray, factors, order, sigma)

    # ------------------------------------------------------------------ ops
    def resized_crop(self, images: torch.Tensor, box: torch.Tensor) -> torch.Tensor:
        """Crop each row to its box and resize to ``image_size`` (bilinear, half-pixel centres).

        Output pixel ``k`` samples ``left + (k + 0.5) w / size - 0.5`` clamped to the box, which
        is what ``resized_crop`` computes on the cropped image (its border pixels repeat).
        """
        n, _, height, width = images.shape
        steps = (torch.arange(self.image_size, device=images.device) + 0.5) / self.image_size
        left, top, w, h = (box[:, i : i + 1].to(images.device) for i in range(4))
        x = (left + steps * w - 0.5).clamp(min=left, max=left + w - 1)
        y = (top + steps * h - 0.5).clamp(min=top, max=top + h - 1)
        # grid_sample's normalised coordinates (align_corners=False): -1 and 1 are pixel edges.
        gx = ((2 * x + 1) / width - 1)[:, None, :].expand(n, self.image_size, self.image_size)
        gy = ((2 * y + 1) / height - 1)[:, :, None].expand(n, self.image_size, self.image_size)
        grid = torch.stack((gx, gy), dim=-1).to(images.dtype)
        return F.grid_sample(
            images, grid, mode="bilinear", padding_mode="border", align_corners=False
        )

    @staticmethod
    def _gray(images: torch.Tensor) -> torch.Tensor:
        if images.shape[1] == 1:
            return images
        r, g, b = images.unbind(dim=1)
        return (_LUMA[0] * r + _LUMA[1] * g + _LUMA[2] * b).unsqueeze(1)

    @staticmethod
    def _blend(a: torch.Tensor, b: torch.Tensor, ratio: torch.Tensor) -> torch.Tensor:
        ratio = ratio.view(-1, 1, 1, 1)
        return (ratio * a + (1.0 - ratio) * b).clamp_(0.0, 1.0)

    @staticmethod
    def _shift_hue(images: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        """RGB -> HSV, ``h += shift`` (mod 1), -> RGB, per row (the HSV model of ``adjust_hue``)."""
        maxc, _ = images.max(dim=1)
        minc, _ = images.min(dim=1)
        span = maxc - minc
        flat = span == 0
        safe = torch.where(flat, torch.ones_like(span), span)
        r, g, b = images.unbind(dim=1)
        hue = torch.where(
            maxc == r,
            (g - b) / safe,
            torch.where(maxc == g, 2.0 + (b - r) / safe, 4.0 + (r - g) / safe),
        )
        hue = torch.where(flat, torch.zeros_like(hue), hue) / 6.0
        hue = torch.remainder(hue + shift.view(-1, 1, 1), 1.0)
        sat = span / torch.where(maxc == 0, torch.ones_like(maxc), maxc)
        # Branch-free HSV -> RGB: channel n (5, 3, 1 for r, g, b) is v - v s clamp(min(k, 4 - k)).
        k = torch.remainder(
            torch.arange(5.0, 0.0, -2.0, device=images.device).view(1, 3, 1, 1)
            + hue.unsqueeze(1) * 6.0,
            6.0,
        )
        amount = torch.minimum(k, 4.0 - k).clamp_(0.0, 1.0)
        v = maxc.unsqueeze(1)
        return v - v * sat.unsqueeze(1) * amount

    def color_jitter(
        self, images: torch.Tensor, factors: torch.Tensor, order: torch.Tensor
    ) -> torch.Tensor:
        """The jitter ops in each row's own order; identity factors where an op is not due.

        Brightness, contrast and saturation are all ``clamp(f x + (1 - f) base)`` with base
        black, the mean grey level or the grey image, so each of the four rounds is one blend
        (each row's own base and factor) and one hue shift (by 0 where not due), not four ops.
        """
        n_ops = factors.shape[1]
        for step in range(4):
            due = order[:, step].view(-1, 1, 1, 1)
            blend_op = due.view(-1) < min(n_ops, 3)
            f = factors.gather(1, order[:, step : step + 1].clamp(max=n_ops - 1)).squeeze(1)
            gray = self._gray(images)
            base = torch.where(
                due == 1,
                gray.mean(dim=(1, 2, 3), keepdim=True),
                torch.where(due == 2, gray, torch.zeros_like(gray)),
            )
            images = self._blend(images, base, torch.where(blend_op, f, torch.ones_like(f)))
            if n_ops == 4:
                images = self._shift_hue(images, torch.where(due.view(-1) == 3, f, 0.0))
        return images

    def blur(self, images: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """Per-row separable Gaussian blur (reflect padding, as ``v2.GaussianBlur``); 0 = none."""
        n, c, h, w = images.shape
        k = self.params.blur_kernel
        if k is None:
            raise ValueError("blur() needs params.blur_kernel (an odd kernel size); it is None")
        x = torch.arange(k, device=images.device, dtype=images.dtype) - k // 2
        safe = torch.where(sigma > 0, sigma, torch.ones_like(sigma)).to(images.dtype)
        kernel = torch.exp(-0.5 * (x[None] / safe[:, None]) ** 2)
        kernel = kernel / kernel.sum(dim=1, keepdim=True)
        delta = (x == 0).to(images.dtype).expand(n, k)
        kernel = torch.where((sigma > 0)[:, None], kernel, delta).repeat_interleave(c, dim=0)
        flat = F.pad(images.reshape(1, n * c, h, w), (k // 2,) * 4, mode="reflect")
        flat = F.conv2d(flat, kernel.view(n * c, 1, 1, k), groups=n * c)
        flat = F.conv2d(flat, kernel.view(n * c, 1, k, 1), groups=n * c)
        return flat.view(n, c, h, w)

    # ------------------------------------------------------------------ views
    def to_unit(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 -> float32 in [0, 1]; float input is taken as already in [0, 1]."""
        if images.ndim != 4 or images.shape[1] != self.in_channels:
            raise ValueError(
                f"expected a batch of shape (B, {self.in_channels}, H, W), got {tuple(images.shape)}"
            )
        if images.dtype == torch.uint8:
            return images.float().div_(255.0)
        return images.float()

    def _stats(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and std on ``device``, copied once: a host-to-device copy per call would wait."""
        if device not in self._stat_cache:
            self._stat_cache[device] = (self.mean.to(device), self.std.to(device))
        return self._stat_cache[device]

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        mean, std = self._stats(images.device)
        return (images - mean) / std

    def apply(self, images: torch.Tensor, params: ViewParams) -> torch.Tensor:
        """The view of [0, 1] float ``images`` under ``params`` (one row each), not normalised."""
        x = self.resized_crop(images, params.box)
        x = torch.where(params.flip.view(-1, 1, 1, 1), x.flip(-1), x)
        x = self.color_jitter(x, params.factors, params.order)
        if self.in_channels == 3:
            x = torch.where(params.gray.view(-1, 1, 1, 1), self._gray(x).expand_as(x), x)
        if self.params.blur_kernel is not None:
            x = self.blur(x, params.sigma)
        return x

    def draw(
        self,
        n: int,
        images: torch.Tensor,
        n_groups: int | None,
        generator: torch.Generator | None = None,
    ) -> ViewParams:
        """Parameters for ``n`` rows: one set per row, or one per group of ``n / n_groups``."""
        _, _, h, w = images.shape
        if n_groups is None:
            return self.sample(n, h, w, images.device, generator)
        size = group_size(n, n_groups)
        return self.sample(n_groups, h, w, images.device, generator).repeat_interleave(size)

    def __call__(
        self,
        images: torch.Tensor,
        n_groups: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        unit = self.to_unit(images)
        return self.normalise(self.apply(unit, self.draw(len(unit), unit, n_groups, generator)))

    def same_params(
        self, batch: torch.Tensor, n_groups: int = 1, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """CARE / Wahba: a *normalised* batch, one draw per group (``n_groups=1``: per batch).

        The batched counterpart of ``SameParamsTransform``: :meth:`DeviceSameParams.pair` passes
        CARE's ``n_split``, so one call replaces a Python loop of one transform call per chunk.
        """
        mean, std = self._stats(batch.device)
        unit = (batch.float() * std + mean).clamp_(0.0, 1.0)
        return self.normalise(self.apply(unit, self.draw(len(unit), unit, n_groups, generator)))


class DeviceSameParams(SameParams):
    """:meth:`DeviceSimCLRAugment.same_params` as a :class:`SameParams` transform.

    What ``Augmentation.same_params("simclr")`` returns with ``augment_on="device"``: its
    :meth:`pair` makes all of CARE's groups of one view in one batched call.
    """

    def __init__(self, augment: DeviceSimCLRAugment) -> None:
        self.augment = augment

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        return self.augment.same_params(batch)

    def pair(
        self, batch: torch.Tensor, n_groups: int = 1, seed: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Both views with one draw per group: all of the first view, then all of the second.

        ``seed``: both from a fresh generator on the batch's device seeded by it; ``None``:
        from the augmentation's own generator.
        """
        g = None if seed is None else torch.Generator(batch.device).manual_seed(seed)
        aug = self.augment
        return aug.same_params(batch, n_groups, g), aug.same_params(batch, n_groups, g)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.augment.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.augment.load_state_dict(state)

    def __repr__(self) -> str:
        return f"DeviceSameParams({self.augment})"
