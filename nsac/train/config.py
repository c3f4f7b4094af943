"""The hyperparameters of a training run as frozen dataclasses, one per recipe section, with their checks.

A recipe (YAML, :mod:`nsac.train.recipes`) sets these fields; the section and field names below are the
keys a recipe and ``--set`` accept. Batch sizes are per process: under torchrun with N processes a step sees
N times as many examples (see ``optim.lr_scaling``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nsac.errors import ParameterError

TASKS = ("autoencoder", "postfilter")
DISCRIMINATORS = ("mpd", "msstft")
ADVERSARIAL_KINDS = ("hinge", "lsgan")
PRIORITY_DOMAINS = ("magnitude", "db")  # nsac.losses.psychoacoustic.PriorityWeightingLoss(domain=...)
NOISE_MODULATION_REDUCTIONS = ("band", "bin")  # NoiseModulationLoss(reduce=...)
PSYCHOACOUSTIC_LEVELS = ("full_scale", "frame_peak")  # the psychoacoustic model's calibration
SCHEDULES = ("constant", "cosine", "exponential")
LR_SCALINGS = ("none", "linear", "sqrt")
DEVICES = ("auto", "cpu", "cuda")


def require(condition: bool, message: str) -> None:
    """Raise ParameterError(message) unless condition holds (the recipe checks' one-liner)."""
    if not condition:
        raise ParameterError(message)


def _probability(name: str, value: float) -> None:
    require(0.0 <= value <= 1.0, f"{name}={value} must be a probability in [0, 1]")


def _range(name: str, low: float, high: float, *, positive: bool = False) -> None:
    require(low <= high, f"{name}: the minimum {low} is above the maximum {high}")
    if positive:
        require(low > 0, f"{name}: {low} must be positive")


@dataclass(frozen=True)
class DataConfig:
    """Where the audio comes from and how it is cut into training examples."""

    path: str = ""  # a folder of audio, or a manifest CSV (columns path, speaker, split)
    split: str = "train"  # manifest rows used; validation speakers are taken from these
    sample_rate_hz: int = 16000
    crop_s: float = 1.0
    batch_size: int = 16  # per process
    num_workers: int = 2  # loader processes per training process
    prefetch_factor: int = 4  # batches each loader process prepares ahead
    valid_fraction: float = 0.05  # of the speakers, held out (never trained on)
    valid_clips: int = 32
    valid_s: float = 4.0  # longest validation clip
    loudness_lufs: float | None = -26.0  # crops are brought to this loudness (BS.1770); null keeps levels
    max_gain_db: float = 20.0  # loudness normalisation never amplifies more (silent crops stay quiet)

    def __post_init__(self) -> None:
        require(self.sample_rate_hz >= 8000, f"data.sample_rate_hz={self.sample_rate_hz} must be >= 8000")
        require(self.crop_s > 0, f"data.crop_s={self.crop_s} must be positive")
        require(self.batch_size >= 1, f"data.batch_size={self.batch_size} must be >= 1")
        require(self.num_workers >= 0, f"data.num_workers={self.num_workers} must be >= 0")
        require(self.prefetch_factor >= 1, f"data.prefetch_factor={self.prefetch_factor} must be >= 1")
        require(0.0 <= self.valid_fraction < 1.0,
                f"data.valid_fraction={self.valid_fraction} must be in [0, 1)")
        require(self.valid_clips >= 0, f"data.valid_clips={self.valid_clips} must be >= 0")
        require(self.valid_s > 0, f"data.valid_s={self.valid_s} must be positive")
        require(self.max_gain_db >= 0, f"data.max_gain_db={self.max_gain_db} must be >= 0")


@dataclass(frozen=True)
class AugmentConfig:
    """Random changes to each training crop; each applies with its probability `*_p`."""

    gain_p: float = 0.5
    gain_db: float = 6.0  # uniform in +-gain_db
    eq_p: float = 0.3
    eq_bands: int = 3  # peaking filters at log-uniform frequencies
    eq_gain_db: float = 6.0  # each band's gain, uniform in +-eq_gain_db
    eq_min_hz: float = 100.0
    eq_max_hz: float = 6000.0
    speed_p: float = 0.3  # resampling: tempo and pitch change together
    speed_min: float = 0.9
    speed_max: float = 1.1
    noise_p: float = 0.3  # white, pink or brown noise
    snr_min_db: float = 15.0
    snr_max_db: float = 40.0
    reverb_p: float = 0.2  # synthetic room: exponentially decaying noise after a direct path
    rt60_min_s: float = 0.1
    rt60_max_s: float = 0.6
    drr_min_db: float = 0.0  # direct-to-reverberant energy ratio
    drr_max_db: float = 15.0

    def __post_init__(self) -> None:
        for name in ("gain_p", "eq_p", "speed_p", "noise_p", "reverb_p"):
            _probability(f"augment.{name}", getattr(self, name))
        require(self.gain_db >= 0 and self.eq_gain_db >= 0, "augment.gain_db and eq_gain_db must be >= 0")
        require(self.eq_bands >= 1, f"augment.eq_bands={self.eq_bands} must be >= 1")
        _range("augment.eq_min_hz/eq_max_hz", self.eq_min_hz, self.eq_max_hz, positive=True)
        _range("augment.speed_min/speed_max", self.speed_min, self.speed_max, positive=True)
        _range("augment.snr_min_db/snr_max_db", self.snr_min_db, self.snr_max_db)
        _range("augment.rt60_min_s/rt60_max_s", self.rt60_min_s, self.rt60_max_s, positive=True)
        _range("augment.drr_min_db/drr_max_db", self.drr_min_db, self.drr_max_db)


@dataclass(frozen=True)
class DegradeConfig:
    """For post-filters: the codec whose output the model learns to improve (cached on disk)."""

    codec: str = ""  # a registered codec name (`nsac codecs`)
    bitrates_bps: tuple[int, ...] = ()  # each example takes one of these at random
    options: dict[str, Any] = field(default_factory=dict)  # codec keywords, e.g. {application: voip}
    cache_dir: str = ""  # default: $XDG_CACHE_HOME/nsac/degrade (~/.cache/nsac/degrade)


@dataclass(frozen=True)
class DiscriminatorConfig:
    """Which discriminators a GAN recipe trains (none: no adversarial training) and their sizes."""

    kinds: tuple[str, ...] = ()  # any of mpd, msstft
    mpd_periods: tuple[int, ...] = (2, 3, 5, 7, 11)
    mpd_channels: int = 32
    mpd_layers: int = 4
    mpd_max_channels: int = 512
    msstft_n_ffts: tuple[int, ...] = (1024, 512, 256)
    msstft_channels: int = 32

    def __post_init__(self) -> None:
        unknown = [k for k in self.kinds if k not in DISCRIMINATORS]
        require(not unknown, f"discriminator.kinds has {unknown}; use any of {', '.join(DISCRIMINATORS)}")


@dataclass(frozen=True)
class LossConfig:
    """Weights of the generator's losses; a zero weight switches a loss off."""

    l1_weight: float = 0.0  # waveform L1
    stft_weight: float = 1.0  # multi-resolution STFT
    stft_resolutions: tuple[tuple[int, int, int], ...] = ((512, 128, 512), (1024, 256, 1024), (256, 64, 256))
    mel_weight: float = 1.0  # multi-scale log-mel L1
    mel_scales: tuple[tuple[int, int], ...] = ((256, 20), (512, 40), (1024, 80))
    adversarial: str = "hinge"  # hinge or lsgan
    adversarial_weight: float = 1.0
    feature_weight: float = 2.0  # feature matching
    feature_relative: bool = False  # divide by the real activations' magnitude (EnCodec)
    disc_start_step: int = 0  # adversarial training begins at this step
    # psychoacoustic terms (Zhen et al. 2020; nsac.losses.psychoacoustic), from model 1 on the reference
    priority_weight: float = 0.0  # priority weighting: spectral error weighted by the signal-to-mask ratio
    priority_domain: str = "magnitude"  # magnitude (the paper) or db (the authors' code)
    noise_modulation_weight: float = 0.0  # noise modulation: worst band's noise-to-mask excess per frame
    noise_modulation_reduce: str = "band"  # max over critical bands (the paper) or FFT bins (authors' code)
    psychoacoustic_level: str = "full_scale"  # full_scale: a full-scale sine is 96 dB SPL; frame_peak
    psychoacoustic_hop_samples: int = 0  # hop of both terms' 512-sample frames; 0: 256 (half a frame)

    def __post_init__(self) -> None:
        require(self.adversarial in ADVERSARIAL_KINDS,
                f"loss.adversarial={self.adversarial!r}; use one of {', '.join(ADVERSARIAL_KINDS)}")
        for name in ("l1_weight", "stft_weight", "mel_weight", "adversarial_weight", "feature_weight",
                     "priority_weight", "noise_modulation_weight"):
            require(getattr(self, name) >= 0, f"loss.{name}={getattr(self, name)} must be >= 0")
        require(self.disc_start_step >= 0, f"loss.disc_start_step={self.disc_start_step} must be >= 0")
        require(self.priority_domain in PRIORITY_DOMAINS,
                f"loss.priority_domain={self.priority_domain!r}; use one of {', '.join(PRIORITY_DOMAINS)}")
        require(self.noise_modulation_reduce in NOISE_MODULATION_REDUCTIONS,
                f"loss.noise_modulation_reduce={self.noise_modulation_reduce!r}; use one of "
                f"{', '.join(NOISE_MODULATION_REDUCTIONS)}")
        require(self.psychoacoustic_level in PSYCHOACOUSTIC_LEVELS,
                f"loss.psychoacoustic_level={self.psychoacoustic_level!r}; use one of "
                f"{', '.join(PSYCHOACOUSTIC_LEVELS)}")
        require(self.psychoacoustic_hop_samples >= 0,
                f"loss.psychoacoustic_hop_samples={self.psychoacoustic_hop_samples} must be >= 0 "
                "(0: half the 512-sample frame)")


@dataclass(frozen=True)
class OptimConfig:
    """AdamW for generator and discriminator, the learning-rate schedule, clipping and EMA.

    The schedule depends on the step only (never on max_steps), so a finished run can be extended.
    """

    lr: float = 3e-4
    lr_d: float = 3e-4  # discriminator
    beta1: float = 0.8
    beta2: float = 0.99
    weight_decay: float = 0.0
    schedule: str = "exponential"  # constant, cosine (to min_lr_ratio at decay_steps) or exponential
    warmup_steps: int = 0  # linear ramp from zero
    decay_steps: int = 100_000  # cosine: steps to min_lr_ratio; exponential: steps per factor min_lr_ratio
    min_lr_ratio: float = 0.1
    grad_clip_norm: float = 1.0  # 0 switches clipping off
    ema_decay: float = 0.0  # 0 switches the exponential moving average of the weights off
    lr_scaling: str = "none"  # none, linear or sqrt in (global batch / reference_batch)
    reference_batch: int = 16

    def __post_init__(self) -> None:
        require(self.lr > 0 and self.lr_d > 0, f"optim.lr={self.lr} and lr_d={self.lr_d} must be positive")
        require(0 <= self.beta1 < 1 and 0 <= self.beta2 < 1, "optim.beta1 and beta2 must be in [0, 1)")
        require(self.schedule in SCHEDULES,
                f"optim.schedule={self.schedule!r}; use one of {', '.join(SCHEDULES)}")
        require(self.warmup_steps >= 0 and self.decay_steps >= 1, "optim.warmup_steps >= 0, decay_steps >= 1")
        require(0 < self.min_lr_ratio <= 1, f"optim.min_lr_ratio={self.min_lr_ratio} must be in (0, 1]")
        require(self.grad_clip_norm >= 0, f"optim.grad_clip_norm={self.grad_clip_norm} must be >= 0")
        require(0 <= self.ema_decay < 1, f"optim.ema_decay={self.ema_decay} must be in [0, 1)")
        require(self.lr_scaling in LR_SCALINGS,
                f"optim.lr_scaling={self.lr_scaling!r}; use one of {', '.join(LR_SCALINGS)}")
        require(self.reference_batch >= 1, f"optim.reference_batch={self.reference_batch} must be >= 1")


@dataclass(frozen=True)
class TrainConfig:
    """How long to train and how often to log, validate and save."""

    max_steps: int = 100_000
    log_every: int = 50
    valid_every: int = 2000
    checkpoint_every: int = 2000
    keep_checkpoints: int = 3  # step checkpoints kept besides last.pt
    metrics: tuple[str, ...] = ("si_sdr", "mel_distance", "pesq_wb")  # nsac.eval.metrics names
    progress: bool = True  # a progress bar on the first process
    device: str = "auto"  # auto: cuda when available
    threads: int = 0  # torch threads per process; 0: the CPU cores divided among the local processes
    init_from: str = ""  # a new run starts from these weights: a checkpoint path or pretrained:NAME (warm_start.py)

    def __post_init__(self) -> None:
        require(self.max_steps >= 1, f"train.max_steps={self.max_steps} must be >= 1")
        for name in ("log_every", "valid_every", "checkpoint_every"):
            require(getattr(self, name) >= 1, f"train.{name}={getattr(self, name)} must be >= 1")
        require(self.keep_checkpoints >= 0, f"train.keep_checkpoints={self.keep_checkpoints} must be >= 0")
        require(self.device in DEVICES, f"train.device={self.device!r}; use one of {', '.join(DEVICES)}")
        require(self.threads >= 0, f"train.threads={self.threads} must be >= 0")


@dataclass(frozen=True)
class ModelSpec:
    """The model family (a name in nsac.train.models) and its own frozen hyperparameters."""

    name: str
    config: Any


#: recipe sections: name -> dataclass; `model` is separate because its fields depend on the model family
SECTIONS: dict[str, type] = {
    "data": DataConfig, "augment": AugmentConfig, "degrade": DegradeConfig,
    "discriminator": DiscriminatorConfig, "loss": LossConfig, "optim": OptimConfig, "train": TrainConfig,
}
#: top-level scalar keys and their types
TOP_LEVEL: dict[str, type] = {"task": str, "seed": int}


@dataclass(frozen=True)
class Recipe:
    """Everything a training run depends on; a checkpoint stores it and a resumed run must match it."""

    name: str
    task: str
    seed: int
    model: ModelSpec
    data: DataConfig
    augment: AugmentConfig
    degrade: DegradeConfig
    discriminator: DiscriminatorConfig
    loss: LossConfig
    optim: OptimConfig
    train: TrainConfig

    def __post_init__(self) -> None:
        require(self.task in TASKS, f"task={self.task!r}; use one of {', '.join(TASKS)}")
        if self.task == "postfilter":
            require(bool(self.degrade.codec) and bool(self.degrade.bitrates_bps),
                    "a postfilter recipe needs degrade.codec and degrade.bitrates_bps (e.g. opus, [6000])")

    @property
    def adversarial(self) -> bool:
        return bool(self.discriminator.kinds)
