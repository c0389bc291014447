# Sourced by the device scripts that carry .whl/: installs the wheels the device image lacks (Python 3.12, the
# pins of pyproject.toml) into a fresh folder, puts it and the repository on PYTHONPATH, and makes $OUT.
OUT="${OUT:-out}"
mkdir -p "$OUT"
SITE=$(mktemp -d)
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl || exit 1
export PYTHONPATH="$SITE:$PWD"
