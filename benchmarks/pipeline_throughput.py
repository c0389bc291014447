"""Curation pipeline throughput through Ray vs the same stages in-process, and peak RSS vs corpus size.

Each run is `python -m jobs.curate` in a fresh subprocess pinned (sched_setaffinity, inherited by
Ray's processes) to the same `--cores` CPUs, with the job's `num_cpus` set to that many. While it runs,
the process tree is sampled with psutil: peak RSS of the driver, of the largest single worker, and of
the whole tree. Throughput = clips written / wall time and source seconds / wall time / cores, wall
time measured around the whole job (Ray start-up included). Bar (DESIGN.md section 8): Ray >= 0.85x
in-process. Boundedness: the peaks at the smaller and the larger corpus should be about equal.

    python benchmarks/pipeline_throughput.py --videos 50 200 --cores 1 2   # JSON: benchmarks/results/
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from curation.corpus import build_corpus  # noqa: E402
from manifests import read_table  # noqa: E402

MiB = 1 << 20


@dataclass
class Result:
    mode: str
    videos: int
    cores: int
    wall_s: float
    clips: int
    source_s: float
    clips_per_s: float
    source_s_per_s_per_core: float
    driver_peak_rss_mib: float
    worker_peak_rss_mib: float
    tree_peak_rss_mib: float
    processes_peak: int
    cpu_s: float  # user + system seconds of the whole process tree (sampled; misses < one interval per process)
    clips_per_cpu_s: float
    load_avg_1m_before_after: tuple[float, float]
    peak_rss_mib_by_process: dict[str, float]
    cpu_s_by_process: dict[str, float]  # summed over processes of the same kind


def build_inputs(root: Path, videos: int) -> Path:
    """`videos` small synthetic videos (quick corpus: 144p-320p, a few seconds, several shots each)."""
    corpus = root / f"corpus{videos}"
    if not (corpus / "corpus.json").is_file():
        build_corpus(corpus, seed=0, videos=videos, quick=True, with_real=False)
    return corpus / "synthetic"


def write_config(path: Path, inputs: Path, output: Path, cores: int, batch_size: int) -> Path:
    data = yaml.safe_load((REPO / "jobs/configs/curate_small.yaml").read_text())
    data.update(input=str(inputs), output=str(output), num_cpus=cores, batch_size=batch_size)
    reserved = sum(r["num_cpus"] * r.get("concurrency", 1) for r in data["resources"].values())
    for res in data["resources"].values():  # the shipped shares, scaled to fill exactly `cores` CPUs
        res["num_cpus"] = res["num_cpus"] * cores / reserved
    path.write_text(yaml.safe_dump(data))
    return path


def process_label(proc: psutil.Process) -> str:
    """A stable name for a Ray process: its title (e.g. ray::MapWorker(MapBatches(ShotsStageActor))) or exe."""
    cmdline = proc.cmdline()
    title = cmdline[0].split(" ")[0] if cmdline else proc.name()
    return re.sub(r"\.[A-Za-z_]+$", "", title) if title.startswith("ray::") else proc.name()  # drop ".method"


def sample_tree(
    proc: psutil.Process, peaks: dict[str, float], by_process: dict[str, float], cpu: dict[int, float],
    labels: dict[int, str],
) -> None:
    """Fold the current RSS of the job's process tree into `peaks` and its CPU seconds into `cpu` (per pid,
    last value seen; processes may vanish mid-read)."""
    try:
        children = proc.children(recursive=True)
        driver = proc.memory_info().rss
        times = proc.cpu_times()
        cpu[proc.pid] = times.user + times.system
    except psutil.NoSuchProcess:
        return
    rss = []
    for child in children:
        try:
            value, label = child.memory_info().rss, process_label(child)
            times = child.cpu_times()
            cpu[child.pid] = times.user + times.system
            labels[child.pid] = label
        except psutil.NoSuchProcess:
            continue
        rss.append(value)
        if value:  # a process still starting reads 0 under a half-set title
            by_process[label] = max(by_process.get(label, 0.0), value)
    peaks["driver"] = max(peaks["driver"], driver)
    peaks["worker"] = max([peaks["worker"], *rss])
    peaks["tree"] = max(peaks["tree"], driver + sum(rss))
    peaks["procs"] = max(peaks["procs"], 1 + len(rss))


def run_job(
    config: Path, in_process: bool, cores: list[int], interval: float
) -> tuple[float, dict[str, float], dict[str, float], dict[str, float]]:
    cmd = [sys.executable, "-m", "jobs.curate", "--config", str(config), "--no-summary"]
    if in_process:
        cmd.append("--in-process")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    start = time.perf_counter()
    child = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                             preexec_fn=lambda: os.sched_setaffinity(0, cores))
    proc = psutil.Process(child.pid)
    peaks = {"driver": 0.0, "worker": 0.0, "tree": 0.0, "procs": 0.0}
    by_process: dict[str, float] = {}
    cpu: dict[int, float] = {}
    labels: dict[int, str] = {child.pid: "driver"}
    while child.poll() is None:
        sample_tree(proc, peaks, by_process, cpu, labels)
        time.sleep(interval)
    peaks["cpu_s"] = sum(cpu.values())
    cpu_by_process: dict[str, float] = {}
    for pid, seconds in cpu.items():
        cpu_by_process[labels[pid]] = cpu_by_process.get(labels[pid], 0.0) + seconds
    wall = time.perf_counter() - start
    if child.returncode != 0:
        raise SystemExit(f"error: job failed ({child.returncode}): {child.stderr.read().strip().splitlines()[-1:]}")
    return wall, peaks, by_process, cpu_by_process


def measure(mode: str, inputs: Path, videos: int, cores: list[int], work: Path, batch_size: int,
            interval: float) -> Result:
    out = work / f"out-{mode}-{videos}-{len(cores)}"
    shutil.rmtree(out, ignore_errors=True)  # a fresh output each time: a resume would skip the work
    config = write_config(work / f"{out.name}.yaml", inputs, out, len(cores), batch_size)
    load_before = os.getloadavg()[0]
    wall, peaks, by_process, cpu_by_process = run_job(config, mode == "in-process", cores, interval)
    load = (round(load_before, 1), round(os.getloadavg()[0], 1))  # the machine is shared: say how busy it was
    clips = read_table(out, "clips", columns=["status"]).num_rows
    source_s = sum(d or 0.0 for d in read_table(out, "videos", columns=["duration_s"]).column(0).to_pylist())
    return Result(mode, videos, len(cores), round(wall, 2), clips, round(source_s, 1), round(clips / wall, 3),
                  round(source_s / wall / len(cores), 3), round(peaks["driver"] / MiB, 1),
                  round(peaks["worker"] / MiB, 1), round(peaks["tree"] / MiB, 1), int(peaks["procs"]),
                  round(peaks["cpu_s"], 1), round(clips / peaks["cpu_s"], 3), load,
                  {k: round(v / MiB, 1) for k, v in sorted(by_process.items())},
                  {k: round(v, 1) for k, v in sorted(cpu_by_process.items())})


def print_table(results: list[Result]) -> None:
    head = (f"{'mode':<11}{'videos':>7}{'cores':>6}{'wall s':>8}{'cpu s':>8}{'clips':>7}{'clips/s':>9}"
            f"{'clips/cpu-s':>12}{'src-s/s/core':>13}{'driver MiB':>11}{'worker MiB':>11}{'tree MiB':>10}"
            f"{'procs':>6}{'load':>11}")
    print(head)
    for r in results:
        load = "/".join(f"{x:.1f}" for x in r.load_avg_1m_before_after)
        print(f"{r.mode:<11}{r.videos:>7}{r.cores:>6}{r.wall_s:>8.1f}{r.cpu_s:>8.1f}{r.clips:>7}{r.clips_per_s:>9.3f}"
              f"{r.clips_per_cpu_s:>12.3f}{r.source_s_per_s_per_core:>13.3f}{r.driver_peak_rss_mib:>11.0f}"
              f"{r.worker_peak_rss_mib:>11.0f}{r.tree_peak_rss_mib:>10.0f}{r.processes_peak:>6}{load:>11}")


def print_processes(results: list[Result]) -> None:
    """Peak RSS and CPU seconds of each kind of Ray process, per run: what grows, where the overhead goes."""
    for r in results:
        if r.peak_rss_mib_by_process:
            print(f"\n{r.mode} {r.videos} videos {r.cores} cores:{'peak RSS MiB':>36}{'cpu s':>8}")
            for label, mib in r.peak_rss_mib_by_process.items():
                print(f"  {label:<54}{mib:>8.0f}{r.cpu_s_by_process.get(label, 0.0):>8.1f}")
            print(f"  {'driver':<54}{r.driver_peak_rss_mib:>8.0f}{r.cpu_s_by_process.get('driver', 0.0):>8.1f}")


def ratios(results: list[Result], per: str) -> dict[str, float]:
    """Ray / in-process throughput (`per` = "clips_per_s" or "clips_per_cpu_s") for each (videos, cores)."""
    by = {(r.mode, r.videos, r.cores): r for r in results}
    return {
        f"{v}videos_{c}cores": round(getattr(by[("ray", v, c)], per) / getattr(by[("in-process", v, c)], per), 3)
        for (mode, v, c) in by
        if mode == "ray" and ("in-process", v, c) in by
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, nargs="+", default=[50, 200], help="corpus sizes to run")
    parser.add_argument("--cores", type=int, nargs="+", default=[1],
                        help="CPU counts both modes are pinned to (num_cpus of the job), one run each")
    parser.add_argument("--modes", nargs="+", default=["in-process", "ray"], choices=["in-process", "ray"])
    parser.add_argument("--batch-size", type=int, default=4, help="videos per unit")
    parser.add_argument("--work-dir", help="where corpora and outputs go (reused corpora); default a temp dir")
    parser.add_argument("--interval", type=float, default=0.1, help="RSS sampling period, seconds")
    parser.add_argument("--json-out", default=str(REPO / "benchmarks/results/pipeline_throughput.json"))
    args = parser.parse_args()
    available = sorted(os.sched_getaffinity(0))
    if max(args.cores) > len(available):
        raise SystemExit(f"error: --cores {max(args.cores)} but only {len(available)} CPUs are available")
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="pipeline-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    results = []
    for videos in args.videos:
        inputs = build_inputs(work, videos)
        for n_cores in args.cores:
            for mode in args.modes:
                results.append(measure(mode, inputs, videos, available[:n_cores], work, args.batch_size,
                                       args.interval))
                print_table(results[-1:])
    print()
    print_table(results)
    print_processes(results)
    summary = {per: ratios(results, per) for per in ("clips_per_s", "clips_per_cpu_s")}
    for per, values in summary.items():
        for key, value in values.items():
            verdict = "met" if value >= 0.85 else "NOT met"
            print(f"ray / in-process {per} at {key}: {value:.3f} (bar >= 0.85: {verdict})")
    report = {
        "machine": f"{platform.machine()} {psutil.cpu_count()} CPUs, {psutil.virtual_memory().total / (1 << 30):.0f} GiB",
        "date": time.strftime("%Y-%m-%d"),
        "batch_size": args.batch_size,
        "results": [asdict(r) for r in results],
        "ray_over_in_process": summary,
    }
    Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json_out).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
