"""Import ultralytics so that it never writes into $HOME, phones home or pip-installs at run time.

Ultralytics reads these variables once, at import: YOLO_CONFIG_DIR (its settings file), YOLO_OFFLINE
(no online checks, no telemetry), YOLO_AUTOINSTALL (no pip at run time) and ULTRALYTICS_SAFE_LOAD
(checkpoints through torch.load(weights_only=True)). `import_ultralytics` sets them first, and turns
the settings' `sync` (event reporting) off in the file it then writes under our folder.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

CONFIG_DIR_ENV = "LIVEDITOR_ULTRALYTICS_DIR"


def ultralytics_config_dir() -> Path:
    """Our folder for ultralytics' settings: LIVEDITOR_ULTRALYTICS_DIR, else a per-user temp folder."""
    chosen = os.environ.get(CONFIG_DIR_ENV)
    return Path(chosen) if chosen else Path(tempfile.gettempdir()) / f"liveditor-ultralytics-{os.getuid()}"


def import_ultralytics() -> ModuleType:
    """The ultralytics module, imported with the offline, no-install, no-$HOME environment."""
    if "ultralytics" not in sys.modules:
        folder = ultralytics_config_dir()
        folder.mkdir(parents=True, exist_ok=True)
        os.environ["YOLO_CONFIG_DIR"] = str(folder)
        os.environ["YOLO_OFFLINE"] = "1"
        os.environ["YOLO_AUTOINSTALL"] = "False"
        os.environ["ULTRALYTICS_SAFE_LOAD"] = "1"
        os.environ.setdefault("YOLO_VERBOSE", "False")
    import ultralytics
    from ultralytics.utils import SETTINGS

    if SETTINGS.get("sync"):
        SETTINGS.update(sync=False)
    return ultralytics


@contextlib.contextmanager
def online() -> Iterator[None]:
    """Let ultralytics' downloader see the network for the duration (its check reads YOLO_OFFLINE per call)."""
    before = os.environ.pop("YOLO_OFFLINE", None)
    try:
        yield
    finally:
        if before is not None:
            os.environ["YOLO_OFFLINE"] = before


def download_ultralytics_asset(name: str, folder: Path) -> Path:
    """The library path for YOLO/SAM names: ultralytics fetches its release asset into `folder`."""
    import_ultralytics()
    from ultralytics.utils.downloads import attempt_download_asset

    with online():
        got = Path(attempt_download_asset(str(folder / Path(name).name)))
    if not got.is_file():
        raise FileNotFoundError(f"ultralytics has no release asset named {name!r}")
    return got
