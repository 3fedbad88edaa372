"""Variational autoencoders for the audio features and the album covers, trained with the full ELBO.

Kingma & Welling, "Auto-Encoding Variational Bayes" (2014). The paper's audio "VAE" had no KL term and its
album VAE was exported with BatchNorm in training mode; here the loss is reconstruction + beta * KL, and
embeddings are the posterior means (or samples) computed in eval mode without gradients.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)), summed over latent dimensions, averaged over the batch."""
    return (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=1)).mean()


def elbo_loss(x: torch.Tensor, reconstruction: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
              beta: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss, reconstruction term, KL term): squared error summed per example (a Gaussian likelihood up to
    constants), plus beta times the KL; both averaged over the batch."""
    reconstruction_term = (reconstruction - x).pow(2).flatten(1).sum(dim=1).mean()
    kl = kl_to_standard_normal(mu, logvar)
    return reconstruction_term + beta * kl, reconstruction_term, kl


def reparameterise(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    return mu + torch.randn_like(mu) * (0.5 * logvar).exp()


class AudioVAE(nn.Module):
    """MLP VAE over the scaled audio features: (B, n_features) -> latent (B, latent_dim)."""

    def __init__(self, n_features: int, latent_dim: int = 16, hidden: int = 64):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.to_mu = nn.Linear(hidden, latent_dim)
        self.to_logvar = nn.Linear(hidden, latent_dim)
        self.decoder = nn.Sequential(nn.Linear(latent_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                     nn.Linear(hidden, n_features))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(x)
        return self.to_mu(h), self.to_logvar(h)

    def forward(self, x: torch.Tensor):
        mu, logvar = self.encode(x)
        return self.decoder(reparameterise(mu, logvar)), mu, logvar


class AlbumArtVAE(nn.Module):
    """Convolutional VAE over 128x128x3 covers in [0, 1]: four stride-2 convolutions down to 8x8, and back."""

    def __init__(self, latent_dim: int = 64, width: int = 32):
        super().__init__()
        c = [3, width, width * 2, width * 4, width * 8]

        def down(a, b):
            return nn.Sequential(nn.Conv2d(a, b, 4, stride=2, padding=1), nn.BatchNorm2d(b), nn.LeakyReLU(0.2))

        def up(a, b):
            return nn.Sequential(nn.ConvTranspose2d(a, b, 4, stride=2, padding=1), nn.BatchNorm2d(b), nn.LeakyReLU(0.2))

        self.encoder = nn.Sequential(*[down(c[i], c[i + 1]) for i in range(4)], nn.Flatten())  # (B, c4 * 8 * 8)
        flat = c[4] * 8 * 8
        self.to_mu = nn.Linear(flat, latent_dim)
        self.to_logvar = nn.Linear(flat, latent_dim)
        self.from_latent = nn.Linear(latent_dim, flat)
        self.decoder = nn.Sequential(
            nn.Unflatten(1, (c[4], 8, 8)),
            *[up(c[i], c[i - 1]) for i in range(4, 1, -1)],
            nn.ConvTranspose2d(c[1], 3, 4, stride=2, padding=1),
            nn.Sigmoid(),
        )

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(x)  # x: (B, 3, 128, 128)
        return self.to_mu(h), self.to_logvar(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.from_latent(z))  # (B, 3, 128, 128)

    def forward(self, x: torch.Tensor):
        mu, logvar = self.encode(x)
        return self.decode(reparameterise(mu, logvar)), mu, logvar


def train_vae(model: nn.Module, data: np.ndarray, epochs: int, batch_size: int, learning_rate: float,
              beta: float, seed: int, device: str = "cpu", log=None, on_epoch=None) -> list[dict]:
    """Train on `data` (N, ...) float32 with the ELBO; returns per-epoch mean losses. Pure torch, so it runs
    in-process or inside a Ray Train worker alike (`on_epoch(history)` is called after every epoch)."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model.to(device).train()
    optimiser = torch.optim.Adam(model.parameters(), lr=learning_rate)
    tensor = torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32))
    history = []
    for epoch in range(epochs):
        order = torch.randperm(len(tensor), generator=generator)
        totals = np.zeros(3)
        for start in range(0, len(tensor), batch_size):
            x = tensor[order[start : start + batch_size]].to(device)
            if len(x) < 2 and any(isinstance(m, nn.BatchNorm2d) for m in model.modules()):
                continue  # BatchNorm needs two examples
            reconstruction, mu, logvar = model(x)
            loss, reconstruction_term, kl = elbo_loss(x, reconstruction, mu, logvar, beta)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            totals += np.array([loss.item(), reconstruction_term.item(), kl.item()]) * len(x)
        mean = totals / len(tensor)
        history.append({"epoch": epoch, "loss": float(mean[0]), "reconstruction": float(mean[1]), "kl": float(mean[2])})
        if log:
            log(f"epoch {epoch + 1}/{epochs}: loss {mean[0]:.4f} (reconstruction {mean[1]:.4f}, KL {mean[2]:.4f})")
        if on_epoch:
            on_epoch(history)
    return history


@torch.no_grad()
def embed_with_vae(model: nn.Module, data: np.ndarray, batch_size: int = 512, sample: bool = False,
                   seed: int = 0, device: str = "cpu") -> np.ndarray:
    """Posterior means (or one sample each) in eval mode, without gradients: (N, latent_dim) float32."""
    model.to(device).eval()
    torch.manual_seed(seed)
    out = []
    for start in range(0, len(data), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(data[start : start + batch_size], dtype=np.float32)).to(device)
        mu, logvar = model.encode(x)
        out.append((reparameterise(mu, logvar) if sample else mu).cpu().numpy())
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, model.to_mu.out_features), np.float32)
