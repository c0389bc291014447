"""Suite-wide settings. Test modules keep their own fixtures; this file only fixes the environment."""

import os

# Ray must not phone home (loopback is curation/ray_runtime.py's job, tested from a plain environment).
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
# Ultralytics and friends must never try the network from tests.
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
