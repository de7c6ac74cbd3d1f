"""The run config schema: run settings plus the model (inputs, layers, wiring, expectations).

Layer specs come from the layer registry (built-ins and plugins alike), joined into one
union discriminated on ``type``. ``run_spec_class()`` builds the top-level model for the
layers registered right now and caches it until the registry changes.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    Discriminator,
    Field,
    NonNegativeInt,
    PositiveInt,
    StringConstraints,
    Tag,
    create_model,
    model_validator,
)

from layers import registry
from layers.base import ConfigModel, FileRef, InlineArray, Name
from runner.config.fit_schema import CheckpointSpec, Monitor, Schedule

Strict = ConfigModel  # unknown keys fail, frozen, booleans are not numbers

LossName = Literal[  # the losses of runner.train.losses (a test keeps the two lists equal)
    "mse",
    "mae",
    "binary_crossentropy",
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
]

ModuleName = Annotated[
    str,
    StringConstraints(
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$", max_length=200
    ),
]


class DatasetSpec(Strict):
    name: Literal["digits", "blobs"] = Field(
        description="digits (scikit-learn's bundled 8x8 digits) or blobs (seeded synthetic)."
    )
    part: Literal["x", "images", "labels", "onehot"] = Field(
        default="x",
        description="x: feature rows; images: (8, 8) digits; labels: integer "
        "classes; onehot: 0/1 class rows.",
    )
    rows: PositiveInt | None = Field(
        default=None, description="Keep the first rows only (blobs: how many to draw, default 600)."
    )
    start: NonNegativeInt = Field(
        default=0,
        description="Skip this many rows first (after shuffle, before rows): with rows, a "
        "window, so two configs can take disjoint parts of one dataset.",
    )
    keep_classes: list[NonNegativeInt] | None = Field(
        default=None,
        description="Keep only the rows of these classes (applied last, after start and rows), "
        "e.g. train an AutoEncoder on some digits and score the others.",
    )
    drop_classes: list[NonNegativeInt] | None = Field(
        default=None, description="Leave out the rows of these classes (like keep_classes)."
    )
    features: PositiveInt = Field(default=2, description="blobs: features per sample.")
    classes: PositiveInt = Field(default=3, description="blobs: number of clusters.")
    spread: float = Field(default=1.0, gt=0, description="blobs: std of each cluster.")
    shuffle: bool = Field(
        default=False,
        description="Reorder the rows by a permutation "
        "drawn from `seed` (the same for every part), so that the last rows "
        "a validation_split holds out are a random sample.",
    )
    seed: int = Field(
        default=0, description="The data's own seed (blobs draws, shuffle); not the run's."
    )

    @model_validator(mode="after")
    def _fits(self) -> DatasetSpec:
        if self.name == "blobs" and self.part == "images":
            raise ValueError("part 'images' is for digits only; blobs has x, labels, onehot")
        return self


class DatasetSource(Strict):
    dataset: DatasetSpec


class RandomSpec(Strict):
    distribution: Literal["uniform", "normal", "integers", "bernoulli"] = "uniform"
    rows: PositiveInt = Field(description="Number of samples (batch rows) to draw.")
    low: float = 0.0
    high: float = 1.0
    mean: float = 0.0
    std: float = Field(default=1.0, ge=0)
    p: float = Field(default=0.5, ge=0, le=1, description="Probability of 1 (bernoulli).")
    seed: NonNegativeInt | None = Field(
        default=None, description="Own seed; default: the run's seed."
    )

    @model_validator(mode="after")
    def _range(self) -> RandomSpec:
        if self.distribution in ("uniform", "integers") and not self.low < self.high:
            raise ValueError(f"low must be below high, got low={self.low}, high={self.high}")
        return self


class RandomSource(Strict):
    random: RandomSpec


def _source_kind(value: Any) -> str:
    # Called on raw config data when validating and on the models when serializing.
    if isinstance(value, RandomSource) or (isinstance(value, dict) and "random" in value):
        return "random"
    if isinstance(value, DatasetSource) or (isinstance(value, dict) and "dataset" in value):
        return "dataset"
    if isinstance(value, (dict, FileRef)):
        return "file"
    return "inline"


DataSource = Annotated[
    Annotated[InlineArray, Tag("inline")]
    | Annotated[FileRef, Tag("file")]
    | Annotated[RandomSource, Tag("random")]
    | Annotated[DatasetSource, Tag("dataset")],
    Discriminator(_source_kind),
]


class InputSpec(Strict):
    shape: list[PositiveInt] | None = Field(
        default=None, description="Per-sample shape (batch axis excluded); default: from data."
    )
    data: DataSource = Field(description="Inline rows, {path, key}, or {random: {...}}.")

    @model_validator(mode="after")
    def _random_needs_shape(self) -> InputSpec:
        if isinstance(self.data, RandomSource) and self.shape is None:
            raise ValueError("random data needs a 'shape' (per-sample, batch axis excluded)")
        return self


class Approx(Strict):
    value: float
    atol: float = Field(default=0.0, ge=0)
    rtol: float = Field(default=1e-6, ge=0)


class ExpectSpec(Strict):
    """Checks on one layer's (or input's) computed values; a failed check fails the run."""

    values: InlineArray | None = Field(default=None, description="Expected array.")
    rtol: float = Field(default=1e-6, ge=0)
    atol: float = Field(default=1e-7, ge=0)
    shape: list[NonNegativeInt] | None = Field(default=None, description="Full shape, batch first.")
    mask: InlineArray | None = Field(default=None, description="Expected mask (1 keep, 0 masked).")
    one_of: list[InlineArray] | None = Field(
        default=None, description="Each element equals the same element of one of these arrays."
    )
    mean: Approx | None = None
    zero_fraction: Approx | None = Field(default=None, description="Fraction of exact zeros.")
    penalty: Approx | None = Field(default=None, description="This layer's activity penalty.")


class ModelWeights(Strict):
    path: str = Field(description=".npz keyed 'layer/param' (the weights.npz of a run folder).")
    strict: bool = Field(default=True, description="Every parameter must be in the file.")


class OptimizerSpec(Strict):
    """An optimizer and its settings; null = the legacy Keras default
    (see runner/train/optim.py)."""

    name: Literal["sgd", "rmsprop", "adagrad", "adam"] | None = Field(
        default=None, description="sgd | rmsprop | adagrad | adam (default adam)."
    )
    lr: float | None = Field(
        default=None,
        gt=0,
        description="Learning rate (sgd 0.01, rmsprop 0.001, adagrad 0.01, adam 0.001).",
    )
    momentum: float | None = Field(default=None, ge=0, description="sgd: momentum (0).")
    nesterov: bool | None = Field(default=None, description="sgd: Nesterov momentum (false).")
    decay: float | None = Field(default=None, ge=0, description="sgd: lr decay per update (0).")
    rho: float | None = Field(default=None, ge=0, lt=1, description="rmsprop: decay (0.9).")
    beta_1: float | None = Field(default=None, ge=0, lt=1, description="adam: beta_1 (0.9).")
    beta_2: float | None = Field(default=None, ge=0, lt=1, description="adam: beta_2 (0.999).")
    epsilon: float | None = Field(
        default=None, gt=0, description="Fuzz factor (rmsprop, adagrad 1e-6; adam 1e-8)."
    )
    clipnorm: float | None = Field(
        default=None, gt=0, description="Rescale gradients whose global L2 norm exceeds this."
    )
    clipvalue: float | None = Field(
        default=None, gt=0, description="Clip gradient elements to +-clipvalue."
    )


class ValidationData(Strict):
    inputs: dict[str, DataSource] = Field(min_length=1, description="Every model input.")
    targets: dict[str, DataSource] = Field(
        default_factory=dict, description="By output name (an AutoEncoder's default: its input)."
    )


FitMetric = Literal["loss", "accuracy"]


class FitSpec(Strict):
    """Training settings. Every null inherits: top-level ``fit`` > the model's ``fit`` >
    the default named in each description (resolved in runner/train/fit.py)."""

    epochs: PositiveInt | None = Field(default=None, description="Passes over the data (10).")
    batch_size: PositiveInt | None = Field(default=None, description="Rows per step (32).")
    shuffle: bool | None = Field(
        default=None, description="Reshuffle rows every epoch, seeded by the run's seed (true)."
    )
    shuffle_block: PositiveInt | None = Field(
        default=None,
        description="Shuffle blocks of this many consecutive rows, then the rows inside each "
        "block, so a memory-mapped file is read one region at a time (null: shuffle rows).",
    )
    validation_split: float | None = Field(
        default=None, ge=0, lt=1, description="Fraction of rows, taken from the end, held out (0)."
    )
    validation_data: ValidationData | None = Field(
        default=None, description="Separate validation inputs and targets."
    )
    loss: LossName | dict[str, LossName] | None = Field(
        default=None, description="One loss for every output, or one per output (mse)."
    )
    optimizer: OptimizerSpec | None = Field(default=None, description="Optimizer (adam).")
    metrics: list[FitMetric] | None = Field(default=None, description="loss, accuracy ([loss]).")
    monitor: Monitor | None = Field(
        default=None,
        description="Score for early stopping, "
        "restore_best and sweepers (val_loss with validation "
        "data, else loss); accuracy is maximised, loss minimised.",
    )
    patience: NonNegativeInt | None = Field(
        default=None,
        description="Early stopping: stop "
        "after this many epochs without improvement "
        "(null: never stop early).",
    )
    min_delta: float | None = Field(
        default=None, ge=0, description="Smallest change that counts as an improvement (0)."
    )
    restore_best: bool | None = Field(
        default=None,
        description="End with the weights of the best monitored epoch (false: the last epoch's).",
    )
    schedule: Schedule | None = Field(
        default=None, description="Learning-rate schedule: step, exponential, cosine, plateau."
    )
    checkpoint: CheckpointSpec | None = Field(
        default=None, description="Checkpoints every N epochs and of the best epoch (off)."
    )
    resume_from: str | None = Field(  # a run folder: confined as files are (names_file)
        default=None,
        description="A run folder whose latest checkpoint this fit continues (command line).",
        json_schema_extra={"names_file": True},
    )


EvaluateKind = Literal["classifier", "regression", "reconstruction"]


def run_folder_field(description: str) -> Any:
    """A config field naming a run folder: confined like every file a config names
    (runner.config.file_access finds it by this marker)."""
    return Field(default=None, description=description, json_schema_extra={"names_file": True})


class EvaluateSpec(Strict):
    """``task=evaluate`` settings (docs/training.md): what is scored, and how."""

    run: str | None = run_folder_field(
        "A finished run folder whose weights.npz is scored "
        "(the same as model.weights.path=RUN/weights.npz)."
    )
    split: Literal["all", "train", "validation"] = Field(
        default="all",
        description="The rows scored: all, or the train / validation rows that the fit "
        "settings (validation_split, validation_data) define.",
    )
    kind: EvaluateKind | dict[str, EvaluateKind] | None = Field(
        default=None,
        description="classifier | regression | reconstruction, for every output or by "
        "output name; null = from the loss, the targets and the model.",
    )
    class_names: list[str] | None = Field(
        default=None, description="Classifier: a name per class (default 0, 1, ...)."
    )
    threshold: float | None = Field(
        default=None, description="Reconstruction: rows whose error is above this are anomalies."
    )
    threshold_quantile: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Reconstruction: the threshold is this quantile of the reference run's "
        "errors (of these rows' own errors without a reference).",
    )
    reference: str | None = run_folder_field(
        "Reconstruction: an evaluate run folder whose reconstruction errors set "
        "threshold_quantile's threshold (typically normal data)."
    )
    top_k: NonNegativeInt = Field(
        default=10, description="Reconstruction: list the k rows with the largest errors."
    )
    anomaly_labels: DataSource | None = Field(
        default=None,
        description="Reconstruction: a label per scored row; the AUROC of the error as an "
        "anomaly detector is reported.",
    )
    anomaly_classes: list[int] | None = Field(
        default=None,
        description="Which anomaly_labels values are anomalies (default: labels are 0/1 and 1 "
        "is an anomaly).",
    )
    normal_classes: list[int] | None = Field(
        default=None,
        description="Or: which anomaly_labels values are normal (the classes a model was "
        "trained on); every other value is an anomaly.",
    )

    @model_validator(mode="after")
    def _threshold(self) -> EvaluateSpec:
        if self.threshold is not None and self.threshold_quantile is not None:
            raise ValueError("give threshold or threshold_quantile, not both")
        if self.anomaly_classes is not None and self.normal_classes is not None:
            raise ValueError("give anomaly_classes or normal_classes, not both")
        if self.reference is not None and self.threshold_quantile is None:
            raise ValueError(
                "reference sets the threshold from a quantile of its errors: "
                "also give threshold_quantile (e.g. 0.99)"
            )
        return self


def model_spec_class(layer_union: Any) -> type[BaseModel]:
    """The schema of ``model:`` (inputs, layers, outputs, ...) over ``layer_union``: the run
    schema's model with every registered layer, or the JSON schema export's with the
    built-in layers alone (runner.config.schema_export)."""
    registry.resolve_composites(layer_union)  # layers inside AutoEncoder/Siamese: same union
    return create_model(
        "ModelSpec",
        __base__=ConfigModel,
        inputs=(dict[Name, InputSpec], Field(min_length=1, description="Model inputs by name.")),
        layers=(
            dict[Name, layer_union],
            Field(min_length=1, description="Layers by name, in order."),
        ),
        outputs=(list[str] | None, Field(default=None, description="Default: the last layer.")),
        training=(bool | None, Field(default=None, description="Default phase of this model.")),
        plugins=(
            list[str],
            Field(default_factory=list, description="Modules that register layers."),
        ),
        weights=(ModelWeights | None, Field(default=None, description="Weights for every layer.")),
        expect=(dict[str, ExpectSpec], Field(default_factory=dict)),
        targets=(
            dict[str, DataSource],
            Field(default_factory=dict, description="Data each output is fitted to."),
        ),
        fit=(
            FitSpec | None,
            Field(
                default=None,
                description="This model's fit settings; top-level fit settings override them.",
            ),
        ),
        vars=(
            dict[Name, Any],
            Field(
                default_factory=dict,
                description="This model's own variables, named once and used through "
                "interpolation (${model.vars.hidden}); sweep them from the command line "
                "(-m model.vars.hidden=32,64). The runner reads nothing else from them.",
            ),
        ),
    )


_cache: dict[tuple[int, frozenset[str] | None], type[BaseModel]] = {}


def run_spec_class(layer_types: Collection[str] | None = None) -> type[BaseModel]:
    """The top-level schema for the layers registered right now. With ``layer_types`` (the
    ``type`` tags of a config's layers) its layer union may hold only those specs: the same
    validation of that config, and a schema that builds in a fraction of the time."""
    key = (registry.version(), None if layer_types is None else frozenset(layer_types))
    if key not in _cache:
        layer_union = registry.spec_union() if layer_types is None else registry.union_for(key[1])
        model_spec = model_spec_class(layer_union)
        _cache[key] = create_model(
            "RunSpec",
            __base__=ConfigModel,
            task=(Literal["predict", "validate", "fit", "evaluate"], "predict"),
            training=(
                bool | None,
                Field(default=None, description="Forward phase; null = model's."),
            ),
            seed=(NonNegativeInt, Field(default=0, description="Seeds weights, dropout, data.")),
            floatx=(Literal["float32", "float64"], "float32"),
            batch_size=(PositiveInt | None, None),
            max_memory_mb=(float, Field(default=4096, gt=0, description="Plan-time memory limit.")),
            max_disk_mb=(
                float,
                Field(default=10240, gt=0, description="What a predict may write, planned."),
            ),
            progress=(
                bool | None,
                Field(default=None, description="Progress bar; null = on a tty."),
            ),
            outputs_to_disk=(
                bool | None,
                Field(
                    default=None,
                    description="Write outputs as memory-mapped .npy files in the run "
                    "folder's outputs/ instead of RAM; null = when batch_size is set and they "
                    "exceed 64 MiB.",
                ),
            ),
            shard=(
                NonNegativeInt | None,
                Field(
                    default=None,
                    description="Read only shard I (from 0, in sorted order) of every sharded "
                    "input ({path: 'data/part-*.npy'}): one job per shard, merged with "
                    "python -m runner.sweep.merge.",
                ),
            ),
            fit=(FitSpec, Field(default_factory=FitSpec, description="task=fit settings.")),
            evaluate=(
                EvaluateSpec,
                Field(default_factory=EvaluateSpec, description="task=evaluate settings."),
            ),
            save_csv=(
                bool,
                Field(
                    default=False,
                    description="predict, evaluate: also write each output with one or two "
                    "axes as outputs/NAME.csv, one row per sample, led by its row index.",
                ),
            ),
            allow_plugins=(
                list[ModuleName],
                Field(
                    default_factory=list,
                    description="Plugin modules a model may import (besides "
                    "installed runner.layers entry points). Command line only.",
                ),
            ),
            allow_resolvers=(
                list[str],
                Field(
                    default_factory=list,
                    description="Interpolation resolvers a model file may "
                    "call besides oc.select and oc.dict.*. Command line only.",
                ),
            ),
            data_dirs=(
                list[str],
                Field(
                    default_factory=list,
                    description="Directories data and weight files may come "
                    "from, besides where the command ran and the model file's own.",
                ),
            ),
            tracking=(
                Literal["mlflow"] | None,
                Field(
                    default=None,
                    description="mlflow: log the run (a sweep: one parent run, a child per "
                    "job) to MLflow (runner/tracking). Command line only.",
                ),
            ),
            tracking_uri=(
                str | None,
                Field(
                    default=None,
                    description="The MLflow tracking URI; null = $MLFLOW_TRACKING_URI, else "
                    "mlruns/ where the command runs. Command line only.",
                ),
            ),
            model=(model_spec, ...),
        )
    return _cache[key]
