"""Stage 1, ingest/probe: hash each input, read its header, reject what cannot or must not be decoded.

Order matters for bad inputs: first the path itself (a folder, a dangling link or a link out of the
input root fails here, before anything is opened), then what the plan knows of it (a later byte-identical
copy of an earlier input fails here: see curation/inputs.py), then size and hash (a zero-length file, or
one changed since planning, fails here), then the container header through PyAV without decoding a frame
(text or image files fail here, and a huge resolution is rejected by the max-resolution threshold before
any pixel is decoded), then the full probe (decord, PyAV where decord fails) for frames, fps and how the
pixels are stored. Unreadable inputs become `errors` rows; readable inputs rejected by a threshold, or
HDR ones, become `videos` rows with status "rejected" and the reason.

Pixels (issue 20): the row holds the stored SAR and the square-pixel display size clips are cut at, the
pixel format, bit depth, transfer, interlacing and VFR, and `conversion`, what extraction will do to the
pixels (`manifests.media.pixels.conversion`: 10-bit to 8-bit, deinterlacing, SAR to square pixels). HDR
(PQ, HLG) is rejected: a real tone map needs FFmpeg's zscale (to linear light before `tonemap`), which
PyAV's bundled FFmpeg lacks, and squeezing PQ or HLG code values into 8 bits is not SDR.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av

from curation.inputs import DuplicateInput, InputError, InputPlan, check_unchanged, input_problem, sha256_of
from curation.remote_inputs import local_input
from curation.stage import Resources, Stage, StageOutput, WorkUnit
from curation.stage_config import JobSettings
from filters.thresholds import FilterThresholds, reject_reasons
from manifests.media.pixels import conversion, display_size, hdr_kind, sar_text
from manifests.media.probe import VideoError, VideoInfo, probe
from manifests.schema import PROVENANCE_FIELDS, SCHEMAS

_COLUMNS = [f.name for f in SCHEMAS["videos"] if f.name not in {p.name for p in PROVENANCE_FIELDS}]


def header_size(path: Path) -> tuple[int, int]:
    """Width and height from the container header, without decoding; non-videos raise VideoError."""
    try:
        with av.open(str(path)) as container:
            fmt = container.format.name
            if fmt == "image2" or fmt.endswith("_pipe"):  # e.g. png_pipe: a still image, whatever its name
                raise VideoError(f"{path}: a still image ({fmt}), not a video")
            if not container.streams.video:
                raise VideoError(f"{path}: no video stream")
            ctx = container.streams.video[0].codec_context
            return int(ctx.width), int(ctx.height)
    except av.FFmpegError as exc:
        raise VideoError(f"{path}: not a readable video ({type(exc).__name__}: {exc})") from None


class IngestStage(Stage):
    """Inputs (paths) in, `videos` rows out; one per readable input, `errors` rows for the rest.

    It has no section of its own: it reads the job's input root, its symlink rule and the filter thresholds.
    """

    name = "ingest"
    version = "2"  # 2: the pixel columns (schema 1.3), HDR rejected
    resources = Resources(num_cpus=0.5)
    writes = ("videos", "errors")

    def __init__(self, thresholds: FilterThresholds, input_root: Path, follow_symlinks_outside_input: bool) -> None:
        super().__init__()
        self.thresholds = thresholds
        self.input_root = input_root.absolute()
        self.follow_symlinks_outside_input = follow_symlinks_outside_input

    @classmethod
    def from_job(cls, job: JobSettings) -> IngestStage:
        return cls(job.filter_thresholds, Path(job.input), job.follow_symlinks_outside_input)

    def process(self, unit: WorkUnit) -> StageOutput:
        def row(uri: str) -> dict[str, Any]:
            planned = unit.planned.get(uri)
            return self.video_row(uri, InputPlan.from_json(planned) if planned else None)

        rows, errors = self.isolate(unit.inputs, row, str, unit.attempt)
        return StageOutput({"videos": rows, "errors": errors})

    def video_row(self, uri: str, planned: InputPlan | None = None) -> dict[str, Any]:
        local = local_input(uri)  # an s3:// input is staged locally first (curation.remote_inputs)
        try:
            return self._video_row(uri, Path(local), planned)
        except (InputError, DuplicateInput, VideoError) as exc:
            if local == uri:
                raise
            raise type(exc)(str(exc).replace(local, uri)) from None  # errors rows name the object, not its copy

    def _video_row(self, uri: str, path: Path, planned: InputPlan | None) -> dict[str, Any]:
        problem = input_problem(path, self.input_root, self.follow_symlinks_outside_input)
        if problem:
            raise InputError(problem)
        if planned is not None and planned.duplicate_of is not None:
            raise DuplicateInput(f"{path}: same content as {planned.duplicate_of} (kept: first in plan order)")
        size = path.stat().st_size
        if size == 0:
            raise VideoError(f"{path}: empty file (0 bytes)")
        sha = sha256_of(path)
        check_unchanged(path, size, sha, planned)
        row: dict[str, Any] = {
            **dict.fromkeys(_COLUMNS),  # every column a rejection before the probe leaves null
            "video_id": sha[:16], "uri": uri, "sha256": sha, "size_bytes": size, "status": "ok",
        }
        width, height = header_size(path)
        row.update(width=width, height=height)
        reasons = reject_reasons({"width": width, "height": height}, self.thresholds)
        if reasons:
            return self.stamp({**row, "status": "rejected", "reject_reason": "; ".join(reasons)})
        info = probe(path)
        if info.frames < 2:
            raise VideoError(f"{path}: {info.frames} frame(s): not a video")
        row.update(duration_s=info.duration_s, fps=info.fps, frames=info.frames, codec=info.codec,
                   width=info.width, height=info.height, **pixel_columns(info))
        hdr = hdr_kind(info.color_transfer)
        if hdr:
            reason = f"HDR source ({hdr.upper()}, transfer {info.color_transfer}): no tone mapping to SDR available"
            return self.stamp({**row, "status": "rejected", "reject_reason": reason, "conversion": None})
        return self.stamp(row)


def pixel_columns(info: VideoInfo) -> dict[str, Any]:
    """The `videos` columns of how a source's pixels are stored, and what extraction will do to them."""
    display_width, display_height = display_size(info.width, info.height, info.sar, info.rotation)
    return {
        "sar": sar_text(info.sar), "display_width": display_width, "display_height": display_height,
        "pix_fmt": info.pix_fmt, "bit_depth": info.bit_depth, "color_transfer": info.color_transfer,
        "interlaced": info.interlaced, "vfr": info.vfr,
        "conversion": conversion(info.bit_depth, info.interlaced, info.sar),
    }
