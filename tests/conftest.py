"""Suite-wide settings. Test modules keep their own fixtures; this file only fixes the environment."""

import os

# A single-node Ray must stay wholly on loopback and must not phone home (see docs/RAY.md).
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
# Ultralytics and friends must never try the network from tests.
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
