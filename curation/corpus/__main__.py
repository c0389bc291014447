"""`python -m curation.corpus OUT_DIR [--seed 0] [--videos N] [--with-bad-inputs] [--quick]`."""

from __future__ import annotations

import sys
import time

from curation.corpus.build import CorpusError, build_corpus
from curation.corpus.photos import PhotoError
from manifests.cli_args import OneLineParser, int_in
from manifests.media.probe import VideoError


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m curation.corpus", description=__doc__)
    parser.add_argument("out_dir")
    parser.add_argument("--seed", type=int_in(0, 2**32 - 1), default=0)
    parser.add_argument("--videos", type=int_in(0, 1000), default=None,
                        help="number of synthetic videos (default 10, 3 with --quick)")
    parser.add_argument("--quick", action="store_true", help="smaller, shorter videos for tests")
    parser.add_argument("--with-bad-inputs", action="store_true",
                        help="also write bad/ (truncated, empty, text, PNG, 8K)")
    parser.add_argument("--no-real", action="store_true", help="skip copying the real TransNetV2 test clip")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    try:
        paths = build_corpus(args.out_dir, seed=args.seed, videos=args.videos, quick=args.quick,
                             with_bad_inputs=args.with_bad_inputs, with_real=not args.no_real)
    except (CorpusError, PhotoError, VideoError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {len(paths)} videos under {args.out_dir} in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
