"""The weights resolver: local path, weights folder (config or env), library download, random-init, refusal."""

from __future__ import annotations

import functools
import http.server
import logging
import threading
from pathlib import Path

import pytest
import torch

from curation.models.weights import (
    OFFLINE_ENV,
    WEIGHTS_DIR_ENV,
    Family,
    WeightsConfig,
    WeightsError,
    file_weights_id,
    load_state_dict,
    resolve_weights,
    url_downloader,
)

NO_DOWNLOAD = Family("tiny", download=None)


@pytest.fixture()
def checkpoint(tmp_path) -> Path:
    path = tmp_path / "ckpt" / "tiny.pt"
    path.parent.mkdir()
    torch.save({"w": torch.arange(6.0).reshape(2, 3)}, path)
    return path


def test_local_path_wins_and_id_is_the_file_hash(checkpoint):
    got = resolve_weights(WeightsConfig(weights=str(checkpoint)), NO_DOWNLOAD, env={})
    assert (got.path, got.how, got.random_init) == (checkpoint, "path", False)
    assert got.weights_id == file_weights_id(checkpoint) and len(got.weights_id) == 16
    assert torch.equal(load_state_dict(got.path)["w"], torch.arange(6.0).reshape(2, 3))


def test_weights_folder_from_env_and_from_config(checkpoint, tmp_path):
    from_env = resolve_weights(WeightsConfig(weights="tiny.pt"), NO_DOWNLOAD, env={WEIGHTS_DIR_ENV: str(checkpoint.parent)})
    assert (from_env.path, from_env.how) == (checkpoint, "weights_dir")
    # the config's folder overrides the environment's
    other = tmp_path / "other"
    other.mkdir()
    (other / "tiny.pt").write_bytes(b"different bytes")
    cfg = WeightsConfig(weights="tiny.pt", weights_dir=str(other))
    from_cfg = resolve_weights(cfg, NO_DOWNLOAD, env={WEIGHTS_DIR_ENV: str(checkpoint.parent)})
    assert from_cfg.path == other / "tiny.pt" and from_cfg.weights_id != from_env.weights_id


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def test_library_download_into_the_weights_folder(checkpoint, tmp_path):
    handler = functools.partial(_Quiet, directory=str(checkpoint.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        family = Family("sam", url_downloader({"tiny": f"http://127.0.0.1:{server.server_port}/tiny.pt"}))
        folder = tmp_path / "cache"
        got = resolve_weights(WeightsConfig(weights="tiny"), family, env={WEIGHTS_DIR_ENV: str(folder)})
    finally:
        server.shutdown()
        server.server_close()
    assert got.how == "library" and got.path == folder / "tiny.pt"
    assert got.weights_id == file_weights_id(checkpoint)
    assert not list(folder.glob(".*")), "no half-written download left behind"


def test_refusal_is_one_line_that_says_how_to_provide_weights(tmp_path):
    family = Family("yolo", url_downloader({"yolo11n.pt": "http://127.0.0.1:9/never"}))
    env = {WEIGHTS_DIR_ENV: str(tmp_path), OFFLINE_ENV: "1"}
    with pytest.raises(WeightsError) as err:
        resolve_weights(WeightsConfig(weights="yolo11n.pt"), family, env=env)
    msg = str(err.value)
    assert "\n" not in msg and "yolo11n.pt" in msg and WEIGHTS_DIR_ENV in msg and "allow_random_init" in msg
    assert "download off (LIVEDITOR_OFFLINE)" in msg
    # a failing download (nothing listens on port 9) is reported, not raised as a traceback
    with pytest.raises(WeightsError, match="library download failed"):
        resolve_weights(WeightsConfig(weights="yolo11n.pt"), family, env={WEIGHTS_DIR_ENV: str(tmp_path)})


def test_random_init_when_allowed_warns_once(caplog):
    cfg = WeightsConfig(weights="nowhere-unique-name.pt", allow_random_init=True)
    with caplog.at_level(logging.WARNING, logger="curation.models"):
        first = resolve_weights(cfg, NO_DOWNLOAD, env={})
        second = resolve_weights(cfg, NO_DOWNLOAD, env={})
    assert first == second and first.random_init and first.weights_id == "random-init" and first.how == "random-init"
    loud = [r for r in caplog.records if "RANDOM-INIT" in r.getMessage()]
    assert len(loud) == 1


def test_checkpoints_never_run_pickled_code(tmp_path):
    bad = tmp_path / "evil.pt"
    torch.save({"obj": Path("x")}, bad)  # a pickled Python object, not tensors
    with pytest.raises(Exception, match="(?i)weights_only|unsupported|global"):
        load_state_dict(bad)


def test_ultralytics_import_leaves_home_alone(tmp_path):
    """In a fresh interpreter with an empty $HOME: nothing written there, settings in our folder, sync off."""
    import json
    import os
    import subprocess
    import sys

    home, ours = tmp_path / "home", tmp_path / "ours"
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
           "LIVEDITOR_ULTRALYTICS_DIR": str(ours), "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    env.pop("YOLO_CONFIG_DIR", None)
    code = ("from curation.models.ultralytics_env import import_ultralytics; import os; u = import_ultralytics(); "
            "print(os.environ['YOLO_OFFLINE'], os.environ['YOLO_AUTOINSTALL'], u.utils.AUTOINSTALL, u.utils.is_online())")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1", "False", "False", "False"]
    assert not any(home.rglob("*")), f"ultralytics wrote into $HOME: {list(home.rglob('*'))}"
    settings = json.loads((ours / "Ultralytics" / "settings.json").read_text())
    assert settings["sync"] is False
