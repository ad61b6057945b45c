"""What a run is built from its composed config: the datamodule, the LightningModule, the
targets each model learns, and where the run's checkpoints, lock and outputs go.

Every kind of run (Lightning, scikit-learn) builds its data and folders here, so a config means
the same thing to each of them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning import Callback

from muse.data.datamodule import MuseDataModule
from muse.errors import MuseError
from muse.module import MuseModule
from muse.tasks import TASKS

# Keys of the data node that say where the store is (muse.store.prepare.store_for reads them),
# not how the datamodule reads it.
STORE_LOCATION = ("dir", "package")


def build_datamodule(cfg: DictConfig, store: Path,
                     targets: list[str] | None = None) -> MuseDataModule:
    """The run's data, instantiated from `cfg.data`; `targets`: the labels one model learns
    (default: every run target).

    The facts only the run knows are filled in here: the store file, the task, the feature
    sets, the targets and the seed of the training shuffle.
    """
    node = {key: value for key, value in OmegaConf.to_container(cfg.data, resolve=True).items()
            if key not in STORE_LOCATION}
    # Plain containers: the datamodule saves its arguments in every checkpoint.
    return instantiate(node, store_path=str(store), task=cfg.task.name,
                       features=list(cfg.features.names), targets=targets or run_targets(cfg),
                       seed=cfg.seed, _convert_="all")


def class_weights(datamodule: MuseDataModule, target: str, classes: int) -> list[float]:
    """Balanced weights n / (classes * count) from the train segments (absent classes: 1)."""
    store = datamodule.store
    labels = store.read(f"segments/labels/{target}")
    train = np.isin(store.segment_videos(), store.videos("train"))
    counts = np.bincount(labels[train & (labels >= 0)], minlength=classes).astype(float)
    weights = np.where(counts > 0, counts.sum() / (classes * np.maximum(counts, 1)), 1.0)
    return weights.tolist()


def run_targets(cfg: DictConfig) -> list[str]:
    """The targets this run learns: the model's own choice (`model.targets`) or the task's."""
    tasks = cfg.model.get("tasks")  # a model made for some sub-challenges only
    if tasks and cfg.task.name not in tasks:
        raise MuseError(f"model={cfg.model.name} is made for task={' or '.join(tasks)} only, "
                        f"not task={cfg.task.name}")
    chosen = cfg.model.get("targets") or cfg.task.targets
    available = TASKS[cfg.task.name].targets
    unknown = [name for name in chosen if name not in available]
    if unknown:
        raise MuseError(f"model {cfg.model.name} learns {', '.join(unknown)}, which "
                        f"task={cfg.task.name} has no labels for (it has: {', '.join(available)})")
    return [str(name) for name in chosen]


def target_groups(cfg: DictConfig) -> list[list[str]]:
    """The targets of each model the run trains: all in one, or one model per target."""
    targets = run_targets(cfg)
    return [[name] for name in targets] if cfg.model.get("per_target") else [targets]


def encoder_node(node: dict, datamodule: MuseDataModule) -> dict:
    """The module's encoder node, with the data facts it leaves open (`null`) filled in.

    `feature_dims` ({feature set: width}) and `audio_samples` (samples per label step) are
    known only once the store is open; filled in here, they are saved with the checkpoint.
    """
    node = dict(node)
    facts = {"feature_dims": lambda: datamodule.feature_dims,
             "audio_samples": lambda: datamodule.audio_samples_per_step}
    for key, fact in facts.items():
        if key in node and node[key] is None:
            node[key] = fact()
    return node


def build_module(cfg: DictConfig, datamodule: MuseDataModule) -> MuseModule:
    """The LightningModule, instantiated from `cfg.model.module`, with what the data decides
    filled in: the fused input width, the task and its scored targets, each target's kind and
    classes (balanced class weights from the train segments where asked for), and the
    encoder's open data facts (`encoder_node`)."""
    targets = []
    # A model may set its own (ALBERT trains with balanced weights); otherwise the task decides.
    balanced = cfg.model.get("balanced_class_weights", cfg.task.balanced_class_weights)
    for name in datamodule.targets:
        classes = datamodule.num_classes.get(name)
        if classes is None:
            targets.append({"name": name, "kind": "continuous"})
        else:
            weights = class_weights(datamodule, name, classes) if balanced else None
            targets.append({"name": name, "kind": "classes", "num_classes": classes,
                            "class_weights": weights})
    node = OmegaConf.to_container(cfg.model.module, resolve=True)
    node["encoder"] = encoder_node(node["encoder"], datamodule)
    # Not recursive: the module builds its encoder from the node, which its checkpoints keep;
    # plain containers: it saves its arguments in every checkpoint as hyperparameters.
    return instantiate(node, input_dim=datamodule.feature_dim, task=cfg.task.name,
                       targets=targets, scored=list(cfg.task.scored),
                       _recursive_=False, _convert_="all")


def build_callbacks(cfg: DictConfig, ckpt_dir: Path) -> dict[str, Callback]:
    """Every callback of `cfg.callbacks` (one config file each), by name; the data fact they
    leave open, `dirpath`, is the run's checkpoint folder."""
    built = {}
    for name, node in cfg.callbacks.items():
        facts = {"dirpath": str(ckpt_dir)} if "dirpath" in node else {}
        built[str(name)] = instantiate(node, **facts)
    return built


def checkpoint_dir(cfg: DictConfig, run_id: str) -> Path:
    return Path(cfg.paths.log_dir) / "checkpoints" / run_id


def run_lock(cfg: DictConfig, run_id: str) -> Path:
    """The lock the process training a run holds (`logs/locks/<run id>.lock`): not in the
    checkpoint folder, which Lightning wants empty."""
    return Path(cfg.paths.log_dir) / "locks" / f"{run_id}.lock"


def output_dir(cfg: DictConfig) -> Path:
    path = Path(cfg.paths.output_dir)
    path.mkdir(parents=True, exist_ok=True)
    return path
