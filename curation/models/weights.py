"""One weights resolver for every model stage: a local path, a file in a weights folder, or a library name.

Order: `weights` as an existing file path; then a file of that name in the weights folder (config
`weights_dir`, else the `LIVEDITOR_WEIGHTS_DIR` environment variable); then, where the network is
allowed (config `download` and no `LIVEDITOR_OFFLINE`), the model family's own library downloads
the name into the weights folder. When none works the resolver stops with one line that says how to
provide weights, unless the config allows `random-init`: then one loud warning, and every row the
model writes carries `random-init` as its weights id.

The weights id is the first 16 hex digits of the file's sha256, so two runs name the same weights
the same way whatever the path.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from manifests.media.atomic import atomic_output
from manifests.schema import RANDOM_INIT

WEIGHTS_DIR_ENV = "LIVEDITOR_WEIGHTS_DIR"
OFFLINE_ENV = "LIVEDITOR_OFFLINE"
LOG = logging.getLogger("curation.models")
_WARNED: set[tuple[str, str]] = set()


class WeightsError(Exception):
    """No usable weights for a model; the message is one line that says how to provide them."""


class WeightsConfig(BaseModel):
    """Where one model's weights come from (a section of a model stage's config)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    weights: str = Field(min_length=1)  # a local path, a file name in the weights folder, or a library name
    weights_dir: str | None = None  # overrides LIVEDITOR_WEIGHTS_DIR
    download: bool = True  # let the library fetch a name where the network allows
    allow_random_init: bool = False


Downloader = Callable[[str, Path], Path]
"""(library name, weights folder) -> the downloaded file; raises when the name cannot be fetched."""


@dataclass(frozen=True)
class Family:
    """A kind of model (yolo, sam, clip): its name in messages and how its library downloads a name."""

    name: str
    download: Downloader | None


@dataclass(frozen=True)
class ResolvedWeights:
    """The weights a model loads: a file, or none for random-init; `how` names the path taken."""

    path: Path | None
    weights_id: str
    how: str  # "path" | "weights_dir" | "library" | "random-init"

    @property
    def random_init(self) -> bool:
        return self.path is None


def file_weights_id(path: Path) -> str:
    """First 16 hex digits of the file's sha256 (read in 1 MiB blocks, so large checkpoints stay cheap)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def _truthy(value: str | None) -> bool:
    return value is not None and value.strip().lower() in {"1", "true", "yes", "on"}


def weights_folder(config: WeightsConfig, env: Mapping[str, str]) -> Path | None:
    folder = config.weights_dir or env.get(WEIGHTS_DIR_ENV)
    return Path(folder).expanduser() if folder else None


def resolve_weights(config: WeightsConfig, family: Family, env: Mapping[str, str] | None = None) -> ResolvedWeights:
    """The weights to load for `family`, or random-init when allowed; else a WeightsError (one line)."""
    env = os.environ if env is None else env
    tried: list[str] = []
    path = Path(config.weights).expanduser()
    if path.is_file():
        return ResolvedWeights(path, file_weights_id(path), "path")
    tried.append(f"not a file at {config.weights}")
    folder = weights_folder(config, env)
    if folder is not None and (folder / path.name).is_file():
        found = folder / path.name
        return ResolvedWeights(found, file_weights_id(found), "weights_dir")
    tried.append(f"not in weights folder {folder}" if folder else f"no weights folder ({WEIGHTS_DIR_ENV} unset)")
    if family.download is None:
        tried.append(f"{family.name} has no library download")
    elif not config.download or _truthy(env.get(OFFLINE_ENV)):
        tried.append(f"download off ({'config' if not config.download else OFFLINE_ENV})")
    elif folder is None:
        tried.append("download needs a weights folder to write into")
    else:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            got = family.download(config.weights, folder)
            return ResolvedWeights(got, file_weights_id(got), "library")
        except Exception as exc:  # noqa: BLE001 - any download failure means "not available here"
            tried.append(f"library download failed ({type(exc).__name__}: {' '.join(str(exc).split())[:120]})")
    if config.allow_random_init:
        warn_random_init(family.name, config.weights)
        return ResolvedWeights(None, RANDOM_INIT, "random-init")
    raise WeightsError(
        f"no weights for {family.name} {config.weights!r}: {'; '.join(tried)}. Provide them: set weights to a "
        f"checkpoint path, put the file in {WEIGHTS_DIR_ENV} (or weights_dir), or allow_random_init: true for a "
        f"test run (rows then say {RANDOM_INIT})"
    )


RANDOM_INIT_SEED = 0


@contextmanager
def seeded_init() -> Iterator[None]:
    """Build models inside this: random-init weights are then the same in every process and run (so a resumed
    unit makes the rows an uninterrupted run made), and the caller's RNG state is left as it was."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_INIT_SEED)
        yield


def warn_random_init(family: str, name: str) -> None:
    """One loud warning per model per process: its outputs are noise and are labelled random-init."""
    if (family, name) in _WARNED:
        return
    _WARNED.add((family, name))
    LOG.warning(
        "!!! %s %r runs with RANDOM-INIT weights: its outputs are meaningless, every row says weights_id=%s "
        "and no filter may act on them !!!", family.upper(), name, RANDOM_INIT,
    )


def load_state_dict(path: Path) -> dict[str, Any]:
    """A checkpoint's tensors without running pickled code: safetensors, or torch.load(weights_only=True)."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    import torch

    state = torch.load(str(path), map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise WeightsError(f"{path}: not a state dict (got {type(state).__name__})")
    return state


def url_downloader(urls: Mapping[str, str]) -> Downloader:
    """A downloader for libraries that publish checkpoints by URL (segment-anything): torch.hub fetches them."""

    def download(name: str, folder: Path) -> Path:
        if name not in urls:
            raise WeightsError(f"unknown name {name!r}; known: {', '.join(sorted(urls))}")
        import torch.hub

        target = folder / Path(urls[name]).name
        if not target.is_file():
            with atomic_output(target) as tmp:
                torch.hub.download_url_to_file(urls[name], str(tmp), progress=False)
        return target

    return download
