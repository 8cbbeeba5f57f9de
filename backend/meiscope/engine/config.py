"""AMConfig: the one description of an activation-maximisation run (CLI, Python, HTTP and websocket).

Every number has a bound, every option a default, the whole object round-trips through JSON, and it is frozen:
nothing in the engine can change a config in place.

The defaults are the one default configuration that `run()`, `meiscope am`, the atlas, the page's first run and
the unit analysis all use: pixel AM with RMSprop at lr 0.03, jitter "auto" (2 px on 40x40), a 1/f^1.5 gradient
filter kept inside each unit's receptive field, a Gaussian blur of 0.27 px after each step, inputs kept in the
model's declared range, 200 steps. Chosen by measurement (bench/bench_defaults.py, docs/METHODS.md "The default
configuration"): on the shipped TDVAE-40's 20 z2 units of largest mean KL, every unit is driven past its 99.9th
percentile on data with at most 3x the data's share of power above 0.45 cycles/pixel.
"""

from __future__ import annotations

from typing import Annotated, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator, model_validator

from .objectives import MAX_UNIT, MAX_UNITS, Layer, Objective, Stat, Term
from .schedules import bounded

# checked by AMConfig._units (one message for every way a unit list can be wrong); the schema states the bounds.
# A unit's bound in its layer depends on the model: engine.model_check checks it against the loaded model.
_UNIT_SCHEMA = {"type": "integer", "minimum": 0, "maximum": MAX_UNIT}
Units = Annotated[Union[int, list[int]], WithJsonSchema(
    {"anyOf": [_UNIT_SCHEMA, {"type": "array", "items": _UNIT_SCHEMA, "minItems": 1, "maxItems": MAX_UNITS}]})]
METHODS = ("pixel", "distribution", "transform", "transform_distribution", "latent_z2", "latent_z1")
Method = Literal["pixel", "distribution", "transform", "transform_distribution", "latent_z2", "latent_z1"]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InitOptions(Section):
    """Starting image of pixel, distribution-mean and transform-input parameters."""

    kind: Literal["noise", "zeros"] = Field("noise", description="Gaussian noise or all zeros")
    scale: float = Field(0.1, ge=0.0, le=10.0, description="std of the starting noise")


class DistributionOptions(Section):
    family: Literal["normal", "laplace"] = Field("normal", description="distribution over images")
    sigma: float = Field(0.1, gt=0.0, le=10.0, description="initial (or fixed) sigma; Laplace: the scale b")
    learn_sigma: bool = Field(False, description="optimise sigma too (transform_distribution keeps it fixed)")
    draws: int = Field(8, ge=1, le=256, description="reparameterised samples per step")


class TransformOptions(Section):
    kind: Literal["conv", "cnn"] = Field("conv", description="one k x k convolution, or a small CNN")
    kernel_size: int = Field(9, ge=1, le=21, description="odd kernel size k")
    layers: int = Field(2, ge=2, le=6, description="CNN layers (kind cnn)")
    channels: int = Field(8, ge=1, le=32, description="CNN hidden channels (kind cnn)")

    @field_validator("kernel_size")
    @classmethod
    def _odd(cls, k: int) -> int:
        if k % 2 == 0:
            raise ValueError(f"must be odd, got {k}")
        return k


class LatentOptions(Section):
    init: Literal["prior_mean", "prior_sample", "one_hot"] = Field(
        "one_hot", description="start code: prior mean, a prior sample or scale x one-hot on the target unit")
    one_hot_scale: float = Field(5.0, ge=0.0, le=20.0, description="c in z2 = c e_i")
    z1: Literal["mean", "sample"] = Field("mean", description="latent_z2: z1 is the mean or a sample of p(z1|z2)")


class OptimizerOptions(Section):
    name: Literal["sgd", "mei", "rmsprop", "adam"] = Field("rmsprop", description="update rule")
    lr: bounded(1e-6, 100.0) = Field(0.03, description="learning rate (eps1); a schedule")
    momentum: float = Field(0.0, ge=0.0, le=0.999, description="SGD/RMSprop momentum")


AUTO_JITTER = 0.05  # "auto" jitter: this fraction of the input's larger side, rounded down


class PreOptions(Section):
    """R_pre: applied to the input before the forward pass, differentiably."""

    jitter: Union[Annotated[int, Field(ge=0, le=20)], Literal["auto"]] = Field(
        "auto", description="random circular shift by up to J pixels; auto: 5% of the input's larger side (2 px "
                            "for 40x40, 0 for 8x8), so that small inputs are not shifted by a quarter of their size")
    scale: float = Field(0.0, ge=0.0, le=0.5, description="random zoom by a factor in [1-s, 1+s]")
    normalise: bool = Field(False, description="rescale each input to zero mean, unit pixel std")

    def jitter_pixels(self, height: int, width: int) -> int:
        """The jitter in pixels for an input of this size."""
        return int(AUTO_JITTER * max(height, width)) if self.jitter == "auto" else self.jitter


class GradOptions(Section):
    """R_grad: filter of the activation's gradient."""

    gamma: bounded(0.0, 4.0) = Field(1.5, description="1/|f|^gamma low-pass of the gradient (0: off)")
    confine: bool = Field(True, description="keep the filtered gradient inside each unit's receptive field (where "
                                            "it has any gradient, grown by the jitter); off: the filter is global "
                                            "and paints where the unit cannot see")


class ObjOptions(Section):
    """R_obj: terms added to the objective."""

    elbo_weight: bounded(0.0, 10.0) = Field(0.0, description="weight of the input's ELBO (eps2)")
    tv: bounded(0.0, 100.0) = Field(0.0, description="weight of total variation (subtracted)")
    l1: bounded(0.0, 100.0) = Field(0.0, description="weight of the L1 norm (subtracted)")
    l2: bounded(0.0, 100.0) = Field(0.0, description="weight of the squared L2 norm (subtracted)")


class PostOptions(Section):
    """R_post: applied to the optimised parameter itself after each step (image parameters)."""

    blur_sigma: bounded(0.0, 5.0) = Field(0.27, description="Gaussian blur sigma in pixels (0: off)")
    bilateral_sigma: float = Field(0.0, ge=0.0, le=5.0, description="bilateral filter spatial sigma (0: off)")
    bilateral_color: float = Field(0.5, gt=0.0, le=10.0, description="bilateral filter value sigma")
    tv_denoise: bounded(0.0, 10.0) = Field(0.0, description="TV (Chambolle) denoising weight (0: off)")
    max_norm: Optional[float] = Field(None, gt=0.0, le=1e4, description="renormalise each input to at most this L2 norm")
    clip: Optional[float] = Field(None, gt=0.0, le=1e3, description="clip values to [-clip, clip]")
    every: int = Field(1, ge=1, le=10_000, description="apply every k steps")


class DiversityOptions(Section):
    metric: Literal["correlation", "cosine", "euclidean"] = Field("correlation", description="distance between samples")
    weight: bounded(0.0, 100.0) = Field(0.0, description="weight of the push-apart term (needs samples >= 2)")


class AMConfig(Section):
    """One activation-maximisation run; `unit` may be a list, which makes one batched run."""

    method: Method = Field("pixel", description="what is optimised (docs/ENGINE.md)")
    unit: Units = Field(0, description="target unit (TDVAE-40 z2: 0..249, z1: 0..1799), or a list of units for "
                                       "one batched run")
    layer: Layer = Field("z2", description="readout layer of the target unit (the TDVAE's z2 or z1, or a layer "
                                           "the loaded model names)")
    stat: Stat = Field("mean", description="posterior mean (the activation) or std (stochastic layers)")
    objective: Optional[Objective] = Field(None, description="a weighted sum of units; replaces unit/layer/stat")
    steps: int = Field(200, ge=1, le=100_000, description="iterations")
    samples: int = Field(1, ge=1, le=64, description="independent samples per unit (diversity acts among them)")
    seed: int = Field(0, ge=0, le=2_000_000_000, description="seed of every random choice")
    snapshot_every: int = Field(10, ge=1, le=100_000, description="keep the input (and send a frame) every k steps")
    precision: Literal["float32", "bfloat16"] = Field(
        "float32", description="precision of the model's readouts (a bfloat16 copy of the weights); the input, the "
                               "optimiser and the ELBO stay float32 (docs/BENCHMARKS.md: where it pays)")
    elbo_every: int = Field(20, ge=0, le=100_000, description="measure the ELBO every k steps: 10 points of a "
                                                              "200-step curve (1: the whole curve; 0: only when "
                                                              "weighted; the page measures it at its frames)")
    keep_in_range: bool = Field(True, description="keep every input inside the model's declared input range "
                                                  "(pixel values projected after each step, a transform's output "
                                                  "squashed by tanh, samples clipped); off: free values")
    init: InitOptions = InitOptions()
    distribution: DistributionOptions = DistributionOptions()
    transform: TransformOptions = TransformOptions()
    latent: LatentOptions = LatentOptions()
    optimizer: OptimizerOptions = OptimizerOptions()
    pre: PreOptions = PreOptions()
    grad: GradOptions = GradOptions()
    obj: ObjOptions = ObjOptions()
    post: PostOptions = PostOptions()
    diversity: DiversityOptions = DiversityOptions()

    @field_validator("unit")
    @classmethod
    def _units(cls, unit: int | list[int]) -> int | list[int]:
        units = unit if isinstance(unit, list) else [unit]
        if not units:
            raise ValueError("needs at least one unit")
        if len(set(units)) != len(units):
            raise ValueError("units must not repeat (use samples for several runs of one unit)")
        if len(units) > MAX_UNITS:
            raise ValueError(f"at most {MAX_UNITS} units in one run, got {len(units)}")
        bad = [u for u in units if not 0 <= u <= MAX_UNIT]
        if bad:
            raise ValueError(f"units must lie in 0..{MAX_UNIT}, got {bad}")
        return unit

    @model_validator(mode="after")
    def _consistent(self) -> "AMConfig":
        if self.objective is not None and isinstance(self.unit, list):
            raise ValueError("objective describes one target: leave unit a single number")
        return self

    @property
    def units(self) -> list[int]:
        return self.unit if isinstance(self.unit, list) else [self.unit]

    @property
    def objectives(self) -> list[Objective]:
        """One objective per target of the batch."""
        if self.objective is not None:
            return [self.objective]
        return [Objective(terms=[Term(layer=self.layer, stat=self.stat, unit=u)]) for u in self.units]

    def target_keys(self) -> list[int]:
        """What seeds each target's random numbers: its unit, so that a unit gets the same numbers alone
        and inside a batch."""
        if self.objective is not None:
            return [self.objective.main.unit]
        return self.units
