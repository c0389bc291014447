"""Lazy registries of interchangeable implementations (shot detectors, editors), as PySceneDetect does it.

A registry maps a name to (module, class, config class); the module is imported only when that name is
built, so choosing the fast shot detector never pays for importing torch.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any, ClassVar, Protocol

Registry = dict[str, tuple[str, str, str]]


class FrozenConfig(Protocol):
    """The config of a registered implementation: a frozen dataclass, whose fields a job config's options set."""

    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]


def build(registry: Registry, kind: str, name: str, config: FrozenConfig | None, error: type[Exception]) -> Any:
    """Build implementation `name` with `config` (its module's default config when None)."""
    if name not in registry:
        raise error(f"unknown {kind} {name!r}; known: {', '.join(registry)}")
    module_name, cls_name, config_name = registry[name]
    module = importlib.import_module(module_name)
    return getattr(module, cls_name)(config if config is not None else getattr(module, config_name)())
