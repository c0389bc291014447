"""Media I/O: the one place that reads and writes the files dataset rows point to.

`probe` (stream metadata), `decode` (frames by index or in batches: decord, PyAV fallback), `encode` (the
H.264 writer), `masks` (the pair mask npz, written and read) and `atomic` (temp file, fsync, rename: how every
file a row names, and every sheet, appears). It lives on the ground floor, inside `manifests/` (the dataset
is tables plus the media they point to), so curation, the model and the sample sheets share one decoder,
one encoder and one mask format, and nothing here imports them.
"""
