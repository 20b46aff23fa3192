"""Adversarial losses: RaGAN-LS (DeblurGAN-v2) with history pools, LSGAN and WGAN-GP.

One interface for all three::

    adv = build_adversarial({"type": "ragan-ls"})
    loss_d = adv.d_loss(D, real, fake)   # D step; ``fake`` is detached inside
    loss_g = adv.g_loss(D, real, fake)   # G step; gradients reach ``fake``

``D`` may return one score tensor or a list of them (the double-scale discriminator); each score
map gets its own history pools and the losses are averaged over the maps, as DeblurGAN-v2 does.
Call ``d_loss`` before ``g_loss`` in a step (upstream's order): the D step feeds the pools the
G step reads. The pools are state: save :meth:`AdversarialLoss.state_dict` with the checkpoint so
that a resumed run continues exactly.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

Scores = torch.Tensor | Sequence[torch.Tensor]
Discriminator = Callable[[torch.Tensor], Scores]


def _heads(scores: Scores) -> list[torch.Tensor]:
    return [scores] if isinstance(scores, torch.Tensor) else list(scores)


class HistoryPool:
    """The last ``size`` per-sample discriminator outputs, detached, oldest dropped first.

    DeblurGAN-v2 takes the expectations E[D(real)] and E[D(fake)] of RaGAN-LS over such a
    history instead of the current batch alone, which steadies them at batch size 1.

    Args:
        size: samples kept (upstream: 50).
    """

    def __init__(self, size: int = 50) -> None:
        if size < 1:
            raise ValueError(f"a history pool keeps at least 1 sample, got {size}")
        self.size = size
        # Per sample: (mean of its scores as a 0-dim float tensor, number of scores). The mean
        # over the concatenated history is then one weighted average, not a concat per step.
        self._items: deque[tuple[torch.Tensor, int]] = deque(maxlen=size)

    def __len__(self) -> int:
        return len(self._items)

    def add(self, scores: torch.Tensor) -> None:
        """Append every sample of a batch of outputs (detached).

        Args:
            scores: discriminator outputs.

        Shape:
            - scores: :math:`(N, *)`
        """
        scores = scores.detach()
        count = scores[0].numel() if scores.dim() > 1 else 1
        for mean in scores.float().reshape(scores.shape[0], -1).mean(dim=1):
            self._items.append((mean, count))

    def mean(self) -> torch.Tensor:
        """Mean over every element of every stored sample (a constant: no gradient).

        Returns:
            A 0-dim float32 tensor on the scores' device.

        Raises:
            RuntimeError: the pool is empty.
        """
        if not self._items:
            raise RuntimeError("the history pool is empty")
        means = torch.stack([mean for mean, _ in self._items])
        counts = means.new_tensor([count for _, count in self._items])
        return (means * counts).sum() / counts.sum()

    def state_dict(self) -> dict[str, Any]:
        """The pool's contents, for a checkpoint."""
        return {
            "size": self.size,
            "means": [mean for mean, _ in self._items],
            "counts": [count for _, count in self._items],
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.size = int(state["size"])
        pairs = zip(state["means"], state["counts"], strict=True)
        self._items = deque(((m, int(c)) for m, c in pairs), maxlen=self.size)


class AdversarialLoss:
    """Base of the adversarial losses: per-score-map averaging and history pools.

    Args:
        pool_size: samples kept per history pool (used by RaGAN-LS only).
    """

    name = "base"
    # Whether the generator loss looks at D(real) (only the relativistic loss does).
    needs_real_in_g = False

    def __init__(self, pool_size: int = 50) -> None:
        self.pool_size = pool_size
        # Per score map (index into D's outputs): {"real": pool, "fake": pool}.
        self.pools: list[dict[str, HistoryPool]] = []

    def _pools(self, index: int) -> dict[str, HistoryPool]:
        while len(self.pools) <= index:
            self.pools.append(
                {"real": HistoryPool(self.pool_size), "fake": HistoryPool(self.pool_size)}
            )
        return self.pools[index]

    def d_loss(self, disc: Discriminator, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """Discriminator loss, averaged over D's score maps.

        Args:
            disc: the discriminator.
            real: sharp images.
            fake: generator outputs (detached here, so G gets no gradient).

        Returns:
            A scalar.

        Shape:
            - real, fake: :math:`(N, C, H, W)`; D sees them as one batch of 2N, so it must not
              mix samples (no BatchNorm)
        """
        n = real.shape[0]
        # One forward over both batches: under DDP each parameter is then used once per
        # backward, and with per-sample norms (InstanceNorm) it equals two separate calls.
        both = _heads(disc(torch.cat([real, fake.detach()])))
        real_scores = [scores[:n] for scores in both]
        fake_scores = [scores[n:] for scores in both]
        terms = [
            self._d_head(i, r.float(), f.float())
            for i, (r, f) in enumerate(zip(real_scores, fake_scores, strict=True))
        ]
        return torch.stack(terms).mean()

    def g_loss(self, disc: Discriminator, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """Generator loss, averaged over D's score maps.

        Args:
            disc: the discriminator (its parameters get gradients too unless frozen by the caller).
            real: sharp images.
            fake: generator outputs (not detached).

        Returns:
            A scalar.

        Shape:
            - real, fake: :math:`(N, C, H, W)`
        """
        fake_scores = _heads(disc(fake))
        real_scores: list[torch.Tensor | None] = [None] * len(fake_scores)
        if self.needs_real_in_g:
            # D(real) does not depend on G: no graph is needed for it.
            with torch.no_grad():
                real_scores = list(_heads(disc(real)))
        terms = [
            self._g_head(i, None if r is None else r.float(), f.float())
            for i, (r, f) in enumerate(zip(real_scores, fake_scores, strict=True))
        ]
        return torch.stack(terms).mean()

    def _d_head(self, index: int, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _g_head(self, index: int, real: torch.Tensor | None, fake: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """The history pools, for a checkpoint (empty for losses that keep none)."""
        return {
            "pools": [{key: pool.state_dict() for key, pool in pair.items()} for pair in self.pools]
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.pools = []
        for i, pair in enumerate(state.get("pools", [])):
            for key, pool_state in pair.items():
                self._pools(i)[key].load_state_dict(pool_state)


class RaGANLS(AdversarialLoss):
    """Relativistic average least-squares GAN (DeblurGAN-v2), expectations over histories.

    With :math:`\\bar r = E[D(real)]` and :math:`\\bar f = E[D(fake)]` taken over the last
    ``pool_size`` samples (current batch included, detached):

    * D: ½ [mean((D(real) − f̄ − 1)²) + mean((D(fake) − r̄ + 1)²)]
    * G: ½ [mean((D(real) − f̄ + 1)²) + mean((D(fake) − r̄ − 1)²)]

    ``d_loss`` adds the batch to the pools before taking the expectations; ``g_loss`` only
    reads them (falling back to the current batch while they are empty).
    """

    name = "ragan-ls"
    needs_real_in_g = True

    def _d_head(self, index: int, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        pools = self._pools(index)
        pools["fake"].add(fake)
        pools["real"].add(real)
        mean_fake, mean_real = pools["fake"].mean(), pools["real"].mean()
        return 0.5 * ((real - mean_fake - 1).pow(2).mean() + (fake - mean_real + 1).pow(2).mean())

    def _g_head(self, index: int, real: torch.Tensor | None, fake: torch.Tensor) -> torch.Tensor:
        assert real is not None
        pools = self._pools(index)
        mean_fake = pools["fake"].mean() if len(pools["fake"]) else fake.detach().mean()
        mean_real = pools["real"].mean() if len(pools["real"]) else real.mean()
        return 0.5 * ((real - mean_fake + 1).pow(2).mean() + (fake - mean_real - 1).pow(2).mean())


class LSGAN(AdversarialLoss):
    """Least-squares GAN (Mao et al.), as DeblurGAN-v2's ``lsgan`` option.

    * D: ½ [mean((D(real) − 1)²) + mean(D(fake)²)]
    * G: mean((D(fake) − 1)²)
    """

    name = "lsgan"

    def _d_head(self, index: int, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((real - 1).pow(2).mean() + fake.pow(2).mean())

    def _g_head(self, index: int, real: torch.Tensor | None, fake: torch.Tensor) -> torch.Tensor:
        return (fake - 1).pow(2).mean()


class WGANGP(AdversarialLoss):
    """Wasserstein GAN with gradient penalty (Gulrajani et al.).

    * D: mean(D(fake)) − mean(D(real)) + λ · mean_i((‖∇ₓ̂ D(x̂_i)‖₂ − 1)²), with
      x̂ = α·real + (1 − α)·fake, α ~ U(0, 1) per sample, and the gradient norm taken over all
      of a sample's pixels and channels (upstream DeblurGAN took it over channels only);
    * G: −mean(D(fake)).

    Args:
        gp_weight: λ (10 in the paper).
        pool_size: unused; kept for a uniform constructor.
    """

    name = "wgan-gp"

    def __init__(self, gp_weight: float = 10.0, pool_size: int = 50) -> None:
        super().__init__(pool_size)
        self.gp_weight = gp_weight

    def gradient_penalty(
        self,
        disc: Discriminator,
        real: torch.Tensor,
        fake: torch.Tensor,
        alpha: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The penalty mean((‖∇D(x̂)‖₂ − 1)²), averaged over D's score maps (λ not applied).

        Args:
            disc: the critic.
            real: sharp images.
            fake: generator outputs (detached here).
            alpha: interpolation weights per sample; drawn from U(0, 1) when ``None``.

        Returns:
            A scalar with a graph to D's parameters (``create_graph=True``).

        Shape:
            - real, fake: :math:`(N, C, H, W)`
            - alpha: :math:`(N,)`
        """
        fake = fake.detach()
        if alpha is None:
            alpha = torch.rand(real.shape[0], device=real.device, dtype=real.dtype)
        alpha = alpha.view(-1, *([1] * (real.dim() - 1)))
        mixed = (alpha * real.detach() + (1 - alpha) * fake).requires_grad_(True)
        penalties = []
        for scores in _heads(disc(mixed)):
            (grad,) = torch.autograd.grad(scores.sum(), mixed, create_graph=True)
            norm = grad.flatten(1).norm(2, dim=1)
            penalties.append((norm - 1).pow(2).mean())
        return torch.stack(penalties).mean()

    def d_loss(self, disc: Discriminator, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """Critic loss plus λ times the gradient penalty (see the class docstring)."""
        wasserstein = super().d_loss(disc, real, fake)
        return wasserstein + self.gp_weight * self.gradient_penalty(disc, real, fake)

    def _d_head(self, index: int, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return fake.mean() - real.mean()

    def _g_head(self, index: int, real: torch.Tensor | None, fake: torch.Tensor) -> torch.Tensor:
        return -fake.mean()


ADVERSARIAL_LOSSES: dict[str, type[AdversarialLoss]] = {
    "ragan-ls": RaGANLS,
    "lsgan": LSGAN,
    "wgan-gp": WGANGP,
}


def build_adversarial(config: str | Mapping[str, Any]) -> AdversarialLoss:
    """Build an adversarial loss from its name or a ``{"type": name, ...options}`` mapping.

    Args:
        config: ``"ragan-ls"``, ``"lsgan"``, ``"wgan-gp"``, or a mapping with ``type`` plus
            ``pool_size`` (RaGAN-LS) or ``gp_weight`` (WGAN-GP). A ``weight`` key, if present,
            is ignored here: the caller scales the generator term.

    Returns:
        The loss object.

    Raises:
        ValueError: unknown type or option.
    """
    options = {"type": config} if isinstance(config, str) else dict(config)
    kind = str(options.pop("type", "ragan-ls")).lower().replace("_", "-")
    options.pop("weight", None)
    if kind not in ADVERSARIAL_LOSSES:
        raise ValueError(
            f"unknown adversarial loss {kind!r}; choose from {list(ADVERSARIAL_LOSSES)}"
        )
    try:
        return ADVERSARIAL_LOSSES[kind](**options)
    except TypeError as exc:
        raise ValueError(f"bad option for adversarial loss {kind!r}: {exc}") from None
