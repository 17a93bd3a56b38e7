"""The GAUSS variational autoencoder (Khatibi et al. 2026, Methods) with property heads.

Architecture (``B`` molecules, ``L = vocab.max_len`` tokens, ``V = len(vocab)`` tokens):

* **Encoder.** One-hot input ``x`` ``(B, L, V)`` -> three bidirectional GRU layers with
  hidden sizes 128, 96 and 32 (each layer reads the ``2 h`` features of the one before) ->
  the final forward and backward hidden states of the last layer, concatenated ``(B, 64)`` ->
  two parallel dense layers giving ``mu`` and ``logvar = log sigma^2`` of a 32-dimensional
  diagonal Gaussian ``q(z|x) = N(mu, diag(sigma^2))``.
* **Reparameterisation.** ``z = mu + exp(logvar / 2) * eps``, ``eps ~ N(0, 1)`` (training);
  ``z = mu`` when not sampling (evaluation, encoding).
* **Decoder.** ``z`` is *repeated* at every one of the ``L`` time steps (the input sequence of
  the decoder is ``L`` copies of ``z``) -> bidirectional GRU (hidden 128) -> bidirectional
  GRU (hidden ``V``, "the number of characters") -> dense layer ``2V -> V`` giving per-token
  logits ``(B, L, V)``; softmax of the logits is ``p(x_t | z)``. Decoding is non-autoregressive
  (no teacher forcing), so training and greedy (argmax) decoding see the same inputs.
* **Property head** (optional, ``n_properties > 0``): a dense network on ``z`` concatenated with
  ``n_extra`` standardised extra features. GAUSS-I (:meth:`VAEConfig.gauss1`): ``z (+ structural
  features of the relaxed Dy complex) -> 32 -> 8 -> 7`` Kramers-doublet gaps, Leaky ReLU then
  SiLU, dropout 0.005 after each hidden layer. GAUSS-II (:meth:`VAEConfig.gauss2`):
  ``z -> 32 -> 4`` LoProp proxies, Leaky ReLU, dropout 0.2. The head reads the sampled ``z``
  while training (so that a neighbourhood of ``mu`` is ordered by property, which is what
  local-perturbation sampling relies on) and ``mu`` otherwise.

Loss (per batch; :func:`vae_loss`)::

    Loss = Loss_recon + alpha * Loss_KL + beta * Loss_DNN

* ``Loss_recon = 1/(B L) sum_{b,t} -log p(x_{b,t} | z_b)``: cross-entropy per token (nats),
  averaged over every position including the pad positions (padding is part of the string);
* ``Loss_KL = 1/(B d) sum_{b,k} -1/2 (1 + logvar_{bk} - mu_{bk}^2 - exp(logvar_{bk}))``: the
  KL divergence KL(q(z|x) || N(0, I)) in nats, *normalised* by averaging over the batch and the
  ``d`` latent dimensions (per latent dimension, as the reconstruction term is per token);
  ``alpha = 0.01``;
* ``Loss_DNN``: mean squared error over the *labelled* entries only, in standardised units
  ``(y - mean) / std`` (mean and std of the labelled training targets, stored in the model);
  entries with NaN targets (unlabelled molecules, semi-supervised training) contribute nothing,
  and a batch with no labels gives 0; ``beta = 1``.

Property values come back from :meth:`MoleculeVAE.predict_properties` in the units of the
training targets (e.g. cm-1 for Kramers-doublet gaps).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from .vocab import Vocabulary

DECODERS = ("autoregressive", "gauss")
_ACTIVATIONS = {"leaky_relu": nn.LeakyReLU, "silu": nn.SiLU, "relu": nn.ReLU, "tanh": nn.Tanh}


@dataclass
class VAEConfig:
    """Hyperparameters of :class:`MoleculeVAE` (the paper's values by default, no head)."""

    latent_dim: int = 32
    encoder_hidden: tuple[int, ...] = (128, 96, 32)
    #: ``"autoregressive"`` (default: teacher-forced GRU, :class:`AutoregressiveDecoder`) or
    #: ``"gauss"`` (the paper's non-autoregressive decoder: z repeated into bidirectional GRUs)
    decoder: str = "autoregressive"
    #: GAUSS decoder GRU hidden sizes; ``None`` means the number of tokens (the paper's last
    #: layer); unused by the autoregressive decoder
    decoder_hidden: tuple[int | None, ...] = (128, None)
    #: autoregressive decoder: GRU hidden size, number of layers (1-3), token embedding size
    ar_hidden: int = 256
    ar_layers: int = 2
    embed_dim: int = 32
    #: autoregressive decoder, training only: probability that a teacher-forced input token is
    #: replaced by the unknown token (word dropout, Bowman et al. 2016)
    word_dropout: float = 0.0
    #: free bits (Kingma et al. 2016): nats per latent dimension below which the KL of that
    #: dimension (batch mean) is not penalised; 0 = plain KL
    free_bits: float = 0.0
    n_properties: int = 0
    n_extra: int = 0
    head_hidden: tuple[int, ...] = (32,)
    head_activations: tuple[str, ...] = ("leaky_relu",)
    head_dropout: float = 0.2
    kl_weight: float = 0.01
    property_weight: float = 1.0
    property_names: list[str] = field(default_factory=list)
    extra_names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.encoder_hidden = tuple(int(h) for h in self.encoder_hidden)
        self.decoder_hidden = tuple(None if h is None else int(h) for h in self.decoder_hidden)
        self.head_hidden = tuple(int(h) for h in self.head_hidden)
        self.head_activations = tuple(self.head_activations)
        if not self.encoder_hidden or not self.decoder_hidden:
            raise ValueError("the encoder and the decoder need at least one GRU layer each")
        if self.decoder not in DECODERS:
            raise ValueError(f"unknown decoder {self.decoder!r}; use one of {DECODERS}")
        if not 1 <= int(self.ar_layers) <= 3:
            raise ValueError(f"ar_layers must be 1, 2 or 3, not {self.ar_layers}")
        if not 0.0 <= float(self.word_dropout) < 1.0:
            raise ValueError(f"word_dropout must be in [0, 1), not {self.word_dropout}")
        if float(self.free_bits) < 0:
            raise ValueError(f"free_bits must be >= 0, not {self.free_bits}")
        if len(self.head_activations) != len(self.head_hidden):
            raise ValueError("head_activations needs one activation per hidden head layer")
        for a in self.head_activations:
            if a not in _ACTIVATIONS:
                raise ValueError(f"unknown activation {a!r}; use one of {sorted(_ACTIVATIONS)}")
        if self.property_names and len(self.property_names) != self.n_properties:
            raise ValueError("property_names must have n_properties entries")
        if self.extra_names and len(self.extra_names) != self.n_extra:
            raise ValueError("extra_names must have n_extra entries")

    @classmethod
    def gauss1(cls, n_extra: int, n_properties: int = 7, **kw: Any) -> VAEConfig:
        """GAUSS-I: latent + ``n_extra`` structural features -> 32 -> 8 -> 7 KD gaps."""
        return cls(n_properties=n_properties, n_extra=n_extra, head_hidden=(32, 8),
                   head_activations=("leaky_relu", "silu"), head_dropout=0.005, **kw)

    @classmethod
    def gauss2(cls, n_properties: int = 4, **kw: Any) -> VAEConfig:
        """GAUSS-II: latent -> 32 -> 4 LoProp proxies."""
        return cls(n_properties=n_properties, n_extra=0, head_hidden=(32,),
                   head_activations=("leaky_relu",), head_dropout=0.2, **kw)

    def to_dict(self) -> dict:
        d = asdict(self)
        for k in ("encoder_hidden", "decoder_hidden", "head_hidden", "head_activations"):
            d[k] = list(d[k])
        return d

    @classmethod
    def from_dict(cls, d: dict) -> VAEConfig:
        """From :meth:`to_dict`; a configuration written before the decoder was recorded
        (model format 1) is the paper's non-autoregressive ``gauss`` decoder."""
        d = dict(d)
        d.setdefault("decoder", "gauss")
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown VAE configuration keys {sorted(unknown)} (a model file "
                             "of a newer molmag?)")
        return cls(**d)


class PropertyHead(nn.Module):
    """Dense network ``in_dim -> hidden... -> n_out`` (activation, then dropout, after each
    hidden layer; linear output)."""

    def __init__(self, in_dim: int, hidden: Sequence[int], activations: Sequence[str],
                 n_out: int, dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        d = in_dim
        for h, a in zip(hidden, activations):
            layers += [nn.Linear(d, h), _ACTIVATIONS[a]()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            d = h
        layers.append(nn.Linear(d, n_out))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def token_lengths(idx: torch.Tensor) -> torch.Tensor:
    """Number of non-pad tokens of each padded index row ``(B, L)`` (strings never hold a
    pad in the middle: :meth:`Vocabulary.indices`)."""
    return (idx != 0).sum(dim=-1)


def decoding_mask(idx: torch.Tensor) -> torch.Tensor:
    """``(B, L)`` bool: the positions an autoregressive decoder is scored on, i.e. every
    token and the end token (the first pad), nothing after it."""
    pos = torch.arange(idx.shape[1], device=idx.device)
    return pos.unsqueeze(0) <= token_lengths(idx).unsqueeze(1)


class AutoregressiveDecoder(nn.Module):
    """GRU language model conditioned on ``z`` (chemical_vae's / MOSES's VAE decoder).

    ``h_0 = tanh(W_h z + b_h)`` (one state per layer); the input at step ``t`` is
    ``[e(x_{t-1}); z]`` with ``e`` a learned token embedding, ``x_{-1}`` the start token
    (index ``V``) and, in training, word dropout replacing ``x_{t-1}`` by the unknown token
    (index ``V + 1``) with probability ``word_dropout``; ``p(x_t | x_<t, z) =
    softmax(W_o h_t + b_o)``. Training is teacher-forced (:meth:`forward` reads the true
    previous tokens); generation (:meth:`generate`) feeds back its own choices, greedy
    (argmax) or multinomial at a temperature. The pad ``' '`` (index 0) is the end token.
    """

    def __init__(self, n_tokens: int, latent_dim: int, hidden: int, layers: int,
                 embed_dim: int) -> None:
        super().__init__()
        self.n_tokens, self.hidden, self.layers = n_tokens, hidden, layers
        self.start, self.unknown = n_tokens, n_tokens + 1
        self.embed = nn.Embedding(n_tokens + 2, embed_dim)
        self.init_h = nn.Linear(latent_dim, hidden * layers)
        self.gru = nn.GRU(embed_dim + latent_dim, hidden, num_layers=layers, batch_first=True)
        self.out = nn.Linear(hidden, n_tokens)

    def initial_state(self, z: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.init_h(z))
        return h.view(z.shape[0], self.layers, self.hidden).transpose(0, 1).contiguous()

    def forward(self, z: torch.Tensor, target_idx: torch.Tensor, word_dropout: float = 0.0,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """Teacher-forced logits ``(B, T, V)`` for the targets ``(B, T)``."""
        B, T = target_idx.shape
        prev = torch.cat([torch.full((B, 1), self.start, dtype=target_idx.dtype,
                                     device=target_idx.device), target_idx[:, :-1]], dim=1)
        if word_dropout > 0 and T > 1:
            drop = torch.rand(prev.shape, generator=generator, device=prev.device) < word_dropout
            drop[:, 0] = False
            prev = torch.where(drop, torch.full_like(prev, self.unknown), prev)
        inp = torch.cat([self.embed(prev), z.unsqueeze(1).expand(-1, T, -1)], dim=-1)
        h, _ = self.gru(inp, self.initial_state(z))
        return self.out(h)

    @torch.no_grad()
    def generate(self, z: torch.Tensor, max_len: int, temperature: float = 0.0,
                 generator: torch.Generator | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """Token indices ``(B, max_len)`` (0 after the end token) and the log-likelihood
        ``sum_t log p(x_t | x_<t, z)`` (nats, at temperature 1) of each generated string,
        end token included. ``temperature = 0``: greedy; ``> 0``: multinomial from
        ``softmax(logits / temperature)``."""
        B = z.shape[0]
        h = self.initial_state(z)
        prev = torch.full((B,), self.start, dtype=torch.long, device=z.device)
        out = torch.zeros((B, max_len), dtype=torch.long, device=z.device)
        logp = torch.zeros(B, dtype=z.dtype, device=z.device)
        alive = torch.ones(B, dtype=torch.bool, device=z.device)
        for t in range(max_len):
            inp = torch.cat([self.embed(prev), z], dim=-1).unsqueeze(1)
            o, h = self.gru(inp, h)
            logits = self.out(o[:, 0])
            lp = torch.log_softmax(logits, dim=-1)
            if temperature > 0:
                probs = torch.softmax(logits / temperature, dim=-1)
                tok = torch.multinomial(probs, 1, generator=generator)[:, 0]
            else:
                tok = logits.argmax(-1)
            tok = torch.where(alive, tok, torch.zeros_like(tok))
            logp = logp + torch.where(alive, lp.gather(1, tok[:, None])[:, 0],
                                      torch.zeros_like(logp))
            out[:, t] = tok
            alive = alive & (tok != 0)
            prev = tok
            if not bool(alive.any()):
                break
        return out, logp


class MoleculeVAE(nn.Module):
    """SMILES/SELFIES VAE (see the module docstring for the equations).

    ``forward`` takes one-hot ``x`` ``(B, L, V)`` (and standardised ``extras`` ``(B, n_extra)``)
    and returns a dict with ``logits`` ``(B, L, V)``, ``mu``, ``logvar``, ``z`` ``(B, d)`` and
    ``properties`` ``(B, n_properties)`` (standardised units) where there is a head; the
    autoregressive decoder also returns ``mask`` ``(B, L)`` (the scored positions:
    :func:`decoding_mask`). Its encoder reads only the tokens of each string (packed
    sequences), so trailing pads change nothing; the ``gauss`` model's encoder reads all
    ``L`` positions, as in the paper.
    """

    # buffers registered in __init__ (declared here for the type checker)
    prop_mean: torch.Tensor
    prop_std: torch.Tensor
    extra_mean: torch.Tensor
    extra_std: torch.Tensor
    #: canonical SMILES of the training strings, set by load_vae / training_canonical()
    training_canonical: set[str]

    def __init__(self, vocab: Vocabulary, config: VAEConfig | None = None) -> None:
        super().__init__()
        self.vocab = vocab
        self.config = cfg = config or VAEConfig()
        V, L = len(vocab), vocab.max_len
        self.encoder_grus = nn.ModuleList()
        d = V
        for h in cfg.encoder_hidden:
            self.encoder_grus.append(nn.GRU(d, h, batch_first=True, bidirectional=True))
            d = 2 * h
        self.fc_mu = nn.Linear(2 * cfg.encoder_hidden[-1], cfg.latent_dim)
        self.fc_logvar = nn.Linear(2 * cfg.encoder_hidden[-1], cfg.latent_dim)
        self.autoregressive = cfg.decoder == "autoregressive"
        self.decoder_grus = nn.ModuleList()
        if self.autoregressive:
            self.ar_decoder = AutoregressiveDecoder(V, cfg.latent_dim, cfg.ar_hidden,
                                                    cfg.ar_layers, cfg.embed_dim)
        else:
            d = cfg.latent_dim
            for hid in cfg.decoder_hidden:
                h = V if hid is None else hid
                self.decoder_grus.append(nn.GRU(d, h, batch_first=True, bidirectional=True))
                d = 2 * h
            self.fc_out = nn.Linear(d, V)
        self.head = (PropertyHead(cfg.latent_dim + cfg.n_extra, cfg.head_hidden,
                                  cfg.head_activations, cfg.n_properties, cfg.head_dropout)
                     if cfg.n_properties > 0 else None)
        # standardisation of property targets and extra features (set by train_vae)
        self.register_buffer("prop_mean", torch.zeros(cfg.n_properties))
        self.register_buffer("prop_std", torch.ones(cfg.n_properties))
        self.register_buffer("extra_mean", torch.zeros(cfg.n_extra))
        self.register_buffer("extra_std", torch.ones(cfg.n_extra))
        self.seq_len = L
        self.history: list[dict] = []
        self.best_epoch: int | None = None
        self.header: dict = {}
        self.training_strings: list[str] = []
        self.held_out_strings: list[str] = []

    # -- pieces ---------------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One-hot ``(B, L, V)`` -> ``(mu, logvar)``, each ``(B, latent_dim)``."""
        h_n = None
        if self.autoregressive:
            lengths = token_lengths(x.argmax(-1)).clamp(min=1).cpu()
            h = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True,
                                                  enforce_sorted=False)
            for gru in self.encoder_grus:
                h, h_n = gru(h)
        else:
            for gru in self.encoder_grus:
                x, h_n = gru(x)
        assert h_n is not None  # there is at least one encoder GRU
        last = torch.cat([h_n[0], h_n[1]], dim=-1)
        return self.fc_mu(last), self.fc_logvar(last)

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor,
                       generator: torch.Generator | None = None) -> torch.Tensor:
        """``z = mu + exp(logvar/2) * eps``, ``eps ~ N(0, 1)``."""
        eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
        return mu + torch.exp(0.5 * logvar) * eps

    def decode(self, z: torch.Tensor, target_idx: torch.Tensor | None = None) -> torch.Tensor:
        """Latent ``(B, d)`` -> per-token logits ``(B, L, V)``: the ``gauss`` decoder (z
        repeated L times; ``target_idx`` unused); the autoregressive decoder teacher-forced on
        ``target_idx`` ``(B, T)`` (needed; use :meth:`generate` to decode without one)."""
        if self.autoregressive:
            if target_idx is None:
                raise ValueError("the autoregressive decoder needs target tokens for teacher "
                                 "forcing; use generate() to decode a latent vector")
            return self.ar_decoder(z, target_idx)
        h = z.unsqueeze(1).expand(-1, self.seq_len, -1)
        for gru in self.decoder_grus:
            h, _ = gru(h)
        return self.fc_out(h)

    @torch.no_grad()
    def generate(self, z: torch.Tensor, temperature: float = 0.0,
                 generator: torch.Generator | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """Token indices ``(B, L)`` decoded from ``z`` and their log-likelihood (nats):
        greedy for ``temperature = 0``, multinomial otherwise. The ``gauss`` decoder picks
        every position independently (argmax, or a draw from ``softmax(logits/T)``)."""
        if self.autoregressive:
            return self.ar_decoder.generate(z, self.seq_len, temperature, generator)
        logits = self.decode(z)
        lp = torch.log_softmax(logits, dim=-1)
        if temperature > 0:
            probs = torch.softmax(logits / temperature, dim=-1).reshape(-1, logits.shape[-1])
            tok = torch.multinomial(probs, 1, generator=generator).view(logits.shape[:2])
        else:
            tok = logits.argmax(-1)
        return tok, lp.gather(2, tok[..., None])[..., 0].sum(1)

    def head_input(self, z: torch.Tensor, extras: torch.Tensor | None) -> torch.Tensor:
        if self.config.n_extra == 0:
            return z
        if extras is None:
            raise ValueError(f"this model's property head needs {self.config.n_extra} extra "
                             "features per molecule")
        return torch.cat([z, extras], dim=-1)

    def forward(self, x: torch.Tensor, extras: torch.Tensor | None = None,
                sample: bool | None = None,
                generator: torch.Generator | None = None,
                target_idx: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """``sample`` defaults to ``self.training``; ``extras`` are standardised;
        ``target_idx`` ``(B, T)``: what the autoregressive decoder is teacher-forced on and
        scored against (default: the input's tokens; a randomised-SMILES input is decoded to
        its corpus form this way). Word dropout acts only in training mode."""
        mu, logvar = self.encode(x)
        if sample is None:
            sample = self.training
        z = self.reparameterize(mu, logvar, generator) if sample else mu
        out = {"mu": mu, "logvar": logvar, "z": z}
        if self.autoregressive:
            tgt = x.argmax(-1) if target_idx is None else target_idx
            wd = self.config.word_dropout if self.training else 0.0
            out["logits"] = self.ar_decoder(z, tgt, wd, generator)
            out["mask"] = decoding_mask(tgt)
        else:
            out["logits"] = self.decode(z)
        if self.head is not None:
            out["properties"] = self.head(self.head_input(z, extras))
        return out

    # -- conveniences ---------------------------------------------------------------------
    def standardise_extras(self, extras: np.ndarray | None) -> torch.Tensor | None:
        if self.config.n_extra == 0 or extras is None:
            return None
        e = torch.as_tensor(np.asarray(extras, dtype=np.float32).reshape(-1, self.config.n_extra))
        return torch.nan_to_num((e - self.extra_mean) / self.extra_std)

    def standardise_properties(self, y: np.ndarray) -> torch.Tensor:
        t = torch.as_tensor(np.asarray(y, dtype=np.float32).reshape(-1, self.config.n_properties))
        return (t - self.prop_mean) / self.prop_std

    @torch.no_grad()
    def predict_properties(self, z: np.ndarray | torch.Tensor,
                           extras: np.ndarray | None = None) -> np.ndarray:
        """Property predictions ``(n, n_properties)`` in the training targets' units from
        latent vectors ``z`` (and raw extra features)."""
        if self.head is None:
            raise ValueError("this VAE has no property head")
        was = self.training
        self.eval()
        z = torch.as_tensor(np.asarray(z, dtype=np.float32)).reshape(-1, self.config.latent_dim)
        p = self.head(self.head_input(z, self.standardise_extras(extras)))
        self.train(was)
        return (p * self.prop_std + self.prop_mean).numpy()


# -- loss ------------------------------------------------------------------------------------
def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor, free_bits: float = 0.0
                  ) -> torch.Tensor:
    """Normalised KL(N(mu, sigma^2) || N(0, 1)) in nats, averaged over batch and latent
    dimensions: ``mean(-1/2 (1 + logvar - mu^2 - exp(logvar)))``; 0 at mu = 0, logvar = 0.
    With ``free_bits = lambda > 0`` each dimension's batch-mean KL counts as
    ``max(lambda, KL_k)`` (Kingma et al. 2016, eq. 15), so dimensions below lambda nats are
    not pushed further towards the prior."""
    per = -0.5 * (1.0 + logvar - mu.pow(2) - logvar.exp())
    if free_bits > 0:
        return torch.clamp(per.mean(0), min=free_bits).mean()
    return torch.mean(per)


def reconstruction_loss(logits: torch.Tensor, target_idx: torch.Tensor,
                        mask: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy per token (nats), averaged over batch and all ``L`` positions, or,
    with ``mask`` (autoregressive decoder), over the masked positions only (tokens and the
    end token): ``sum_{masked} -log p(x_t | x_<t, z) / n_masked``."""
    T = logits.shape[1]
    target_idx = target_idx[:, :T]
    if mask is None:
        return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                           target_idx.reshape(-1))
    nll = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                      target_idx.reshape(-1), reduction="none")
    m = mask[:, :T].reshape(-1).to(nll.dtype)
    return (nll * m).sum() / m.sum().clamp(min=1.0)


def sequence_log_likelihood(logits: torch.Tensor, target_idx: torch.Tensor) -> torch.Tensor:
    """``sum_t log p(x_t | x_<t, z)`` (nats) of each row of teacher-forced ``logits``
    ``(B, T, V)`` over its tokens and its end token (:func:`decoding_mask`)."""
    lp = torch.log_softmax(logits, dim=-1).gather(2, target_idx[..., None])[..., 0]
    return (lp * decoding_mask(target_idx).to(lp.dtype)).sum(1)


def masked_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the entries where ``target`` is not NaN (0 if there are
    none): ``sum_{labelled} (pred - y)^2 / n_labelled``."""
    mask = ~torch.isnan(target)
    n = mask.sum()
    if int(n) == 0:
        return pred.sum() * 0.0
    diff = torch.where(mask, pred - torch.nan_to_num(target), torch.zeros_like(pred))
    return diff.pow(2).sum() / n


def vae_loss(out: dict[str, torch.Tensor], target_idx: torch.Tensor,
             prop_target: torch.Tensor | None = None, kl_weight: float = 0.01,
             property_weight: float = 1.0, free_bits: float = 0.0) -> dict[str, torch.Tensor]:
    """``total = recon + kl_weight * kl + property_weight * prop`` (see the module docstring);
    ``prop_target`` in standardised units with NaN for missing labels; ``kl`` is reported
    without free bits, the total uses them."""
    recon = reconstruction_loss(out["logits"], target_idx, out.get("mask"))
    kl = kl_divergence(out["mu"], out["logvar"])
    kl_pen = kl_divergence(out["mu"], out["logvar"], free_bits) if free_bits > 0 else kl
    total = recon + kl_weight * kl_pen
    res = {"recon": recon, "kl": kl}
    if "properties" in out and prop_target is not None:
        prop = masked_mse(out["properties"], prop_target)
        total = total + property_weight * prop
        res["prop"] = prop
    res["total"] = total
    return res


def n_parameters(model: nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))


__all__ = ["VAEConfig", "MoleculeVAE", "PropertyHead", "AutoregressiveDecoder", "DECODERS",
           "kl_divergence", "reconstruction_loss", "sequence_log_likelihood", "masked_mse",
           "vae_loss", "n_parameters", "token_lengths", "decoding_mask"]
