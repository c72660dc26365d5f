"""Run every workload for every client kind in one go and print a markdown table.

    python benchmarks/run.py            # full sizes, 3 rounds
    python benchmarks/run.py --quick    # small sizes, 1 round (smoke test)

Starts nginx (server.py) with the canned answers, then, for each round, runs
each workload once per client kind, each in a fresh subprocess of that
client's own interpreter (both clients are imported as `aleph_alpha_client`).
The client order rotates from round to round so that none always runs first
or last. Reports the median, min and max over rounds, and the per-round
ratios ours/official and ours/raw (median and range). nginx is pinned to CPU 0
and the clients to CPU 1 when `taskset` exists and there are >= 2 CPUs.

Stdlib only. Run benchmarks/setup.sh once before.
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import server

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work"
REPO = HERE.parent
CLIENTS = ("ours", "official", "raw")

FULL = {
    "rounds": 3,
    "chat_n": 2000,
    "async_n": 10_000,
    "concurrency": 100,
    "stream_events": 20_000,
    "stream_repeat": 5,
    "embed_n": 1000,
    "complete_n": 2000,
    "import_n": 20,
}
QUICK = {
    "rounds": 1,
    "chat_n": 200,
    "async_n": 1000,
    "concurrency": 100,
    "stream_events": 2000,
    "stream_repeat": 1,
    "embed_n": 100,
    "complete_n": 200,
    "import_n": 5,
}

# workload -> (row label template, unit, True if higher is better)
ROWS: dict[str, tuple[str, str, bool]] = {
    "sync_chat": ("sync chat, {chat_n:,} sequential calls", "req/s", True),
    "async_chat": ("async chat, {async_n:,} calls at {concurrency} concurrent", "req/s", True),
    "async_stream": (
        "async streaming chat, {stream_events:,}-chunk stream x {stream_repeat}",
        "chunks/s",
        True,
    ),
    "sync_stream": (
        "sync streaming chat, {stream_events:,}-chunk stream x {stream_repeat}",
        "chunks/s",
        True,
    ),
    "sync_embed": ("sync embed, 5120-float vector, {embed_n:,} calls", "req/s", True),
    "cold_import": (
        "cold `import aleph_alpha_client`, median of {import_n} processes",
        "ms",
        False,
    ),
    "import_clients": (
        "(extra) same, then `Client` and `AsyncClient` fetched from it",
        "ms",
        False,
    ),
    "peak_rss": ("peak RSS, async chat workload", "MB", False),
    "sync_complete": ("(extra) sync complete, {complete_n:,} sequential calls", "req/s", True),
    "async_stream_cl": ("(extra) async streaming chat, one Content-Length body", "chunks/s", True),
    "sync_stream_cl": ("(extra) sync streaming chat, one Content-Length body", "chunks/s", True),
}
# rows computed from another job's result line
DERIVED = {"peak_rss": "async_chat", "import_clients": "cold_import"}
# job -> (workloads.py --workload, extra arguments)
JOBS: dict[str, tuple[str, list[str]]] = {
    "sync_chat": ("sync_chat", []),
    "async_chat": ("async_chat", []),
    "async_stream": ("async_stream", ["--framing", "chunked"]),
    "sync_stream": ("sync_stream", ["--framing", "chunked"]),
    "sync_embed": ("sync_embed", []),
    "cold_import": ("cold_import", []),
    "sync_complete": ("sync_complete", []),
    "async_stream_cl": ("async_stream", ["--framing", "length"]),
    "sync_stream_cl": ("sync_stream", ["--framing", "length"]),
}
DEFAULT_WORKLOADS = tuple(JOBS)
# table order: the rows first, then the extras
ROW_ORDER = (
    "sync_chat",
    "async_chat",
    "async_stream",
    "sync_stream",
    "sync_embed",
    "cold_import",
    "peak_rss",
    "import_clients",
    "sync_complete",
    "async_stream_cl",
    "sync_stream_cl",
)


def default_python(kind: str) -> Path:
    """The interpreter for a client kind: its venv made by setup.sh."""
    if kind == "official":
        return WORK / "venv-official" / "bin" / "python"
    own = WORK / "venv-ours" / "bin" / "python"
    return own if own.exists() else Path("/work/venv/bin/python")


def child_env(pythonpath: Path | None = None) -> dict[str, str]:
    """Environment for the workloads: no proxies; PYTHONPATH only if given."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "pythonpath")
    }
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return env


def snapshot_ours(mode: str) -> tuple[Path | None, str]:
    """Freeze the code of ours for the whole run; return (PYTHONPATH, revision).

    Others may edit the checkout while the benchmark runs; an editable install
    would pick up every half-finished edit. `worktree` measures a copy of the
    working tree taken now, `head` the committed HEAD (git archive), `live` the
    editable install as it is at each moment.
    """

    def git(*argv: str) -> str:
        return subprocess.run(
            ["git", "-C", str(REPO), *argv], capture_output=True, text=True, check=False
        ).stdout.strip()

    if mode == "live":
        return None, git("describe", "--always", "--dirty") + " (live tree)"
    target = WORK / "ours-snapshot"
    if target.exists():
        shutil.rmtree(target)
    package = Path("src") / "aleph_alpha_client"
    if mode == "head":
        archive = subprocess.run(
            ["git", "-C", str(REPO), "archive", "--format=tar", "HEAD", str(package)],
            capture_output=True,
            check=True,
        ).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(target, filter="data")
        return target / "src", git("rev-parse", "--short", "HEAD") + " (HEAD)"
    shutil.copytree(REPO / package, target / package, ignore=shutil.ignore_patterns("__pycache__"))
    changed = git("status", "--porcelain", "--", str(package))
    state = "with uncommitted changes in src/" if changed else "clean src/"
    return target / "src", f"{git('rev-parse', '--short', 'HEAD')} (copy of the work tree, {state})"


def workload_args(job: str, sizes: dict[str, int]) -> list[str]:
    """Command-line arguments for one job."""
    workload, extra = JOBS[job]
    n = {
        "sync_chat": sizes["chat_n"],
        "async_chat": sizes["async_n"],
        "sync_embed": sizes["embed_n"],
        "sync_complete": sizes["complete_n"],
        "cold_import": sizes["import_n"],
    }.get(workload, 1)
    return [
        "--n",
        str(n),
        "--concurrency",
        str(sizes["concurrency"]),
        "--events",
        str(sizes["stream_events"]),
        "--repeat",
        str(sizes["stream_repeat"]),
        *extra,
    ]


def run_one(
    python: Path,
    kind: str,
    workload: str,
    base_url: str,
    sizes: dict[str, int],
    pin: list[str],
    log_dir: Path,
    tag: str,
    pythonpath: Path | None = None,
) -> dict[str, Any]:
    """Run one workload for one client kind in a fresh process; return its JSON line."""
    cmd = [
        *pin,
        str(python),
        str(HERE / "workloads.py"),
        "--client",
        kind,
        "--workload",
        JOBS[workload][0],
        "--base-url",
        base_url,
        *workload_args(workload, sizes),
    ]
    try:
        proc = subprocess.run(
            cmd,
            env=child_env(pythonpath),
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"client": kind, "workload": workload, "value": None, "error": "timeout"}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.stderr.strip():
        (log_dir / f"{tag}-{workload}-{kind}.stderr").write_text(proc.stderr)
    if not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {
            "client": kind,
            "workload": workload,
            "value": None,
            "error": f"exit {proc.returncode}: {tail}"[:500],
        }
    return dict(json.loads(lines[-1]))


def machine_info(pythons: dict[str, Path]) -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    nginx = subprocess.run(
        [server.nginx_binary(), "-v"], capture_output=True, text=True, check=False
    ).stderr.strip()
    versions = {}
    deps = {}
    probe = (
        "import sys, importlib.metadata as m\n"
        "print(sys.version.split()[0])\n"
        "for name in ('aiohttp', 'urllib3', 'requests', 'orjson'):\n"
        "    try: print(name + '==' + m.version(name))\n"
        "    except m.PackageNotFoundError: pass\n"
    )
    for kind, python in pythons.items():
        out = subprocess.run(
            [str(python), "-c", probe], capture_output=True, text=True, check=False
        ).stdout.split()
        versions[kind] = out[0] if out else "?"
        if kind != "raw":
            deps[kind] = " ".join(out[1:])
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "kernel": platform.release(),
        "python": versions,
        "dependencies": deps,
        "nginx": nginx.replace("nginx version: ", ""),
        "loadavg_start": os.getloadavg(),
    }


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.1f}"


def cell(values: list[float]) -> str:
    if not values:
        return "-"
    median = statistics.median(values)
    if len(values) == 1:
        return fmt(median)
    return f"{fmt(median)} ({fmt(min(values))}-{fmt(max(values))})"


def fmt_ratio(value: float) -> str:
    return f"{value:.2f}" if value >= 0.1 else f"{value:.2g}"


def ratio_cell(ratios: list[float]) -> str:
    if not ratios:
        return "-"
    median = statistics.median(ratios)
    if len(ratios) == 1:
        return f"{fmt_ratio(median)}x"
    return f"{fmt_ratio(median)}x ({fmt_ratio(min(ratios))}-{fmt_ratio(max(ratios))})"


def metric(line: dict[str, Any] | None, row: str) -> float | None:
    if line is None:
        return None
    if row == "peak_rss":
        value = line.get("peak_rss_mb")
    elif row == "import_clients":
        value = line.get("clients_ms")
    else:
        value = line.get("value")
    return None if value is None else float(value)


def cpu_metric(line: dict[str, Any] | None, row: str) -> float | None:
    """Client CPU microseconds per call or chunk, from a result line."""
    if not line or line.get("value") is None or not line.get("cpu_s"):
        return None
    count = float(line["value"]) * float(line["elapsed"])
    return float(line["cpu_s"]) / count * 1e6


def build_table(
    results: dict[str, dict[str, list[dict[str, Any]]]],
    sizes: dict[str, int],
    rows: list[str],
    versions: dict[str, str],
    cpu: bool = False,
) -> tuple[str, list[str]]:
    """Markdown table plus footnotes (errors, n/a reasons, item-count notes).

    With `cpu`, the cells are the client's CPU microseconds per call or chunk
    (user+sys of the workload process over the timed part, divided by the count)
    for the throughput rows: less sensitive than wall-clock rates to other load
    on the machine, and blind to time spent waiting for the server.
    """
    get = cpu_metric if cpu else metric
    if cpu:
        rows = [r for r in rows if r not in DERIVED and ROWS[r][1].endswith("/s")]
    heads = {
        "ours": f"ours ({versions.get('ours', '?')})",
        "official": f"official ({versions.get('official', '?')})",
        "raw": "raw stdlib baseline",
    }
    extra_head = " on CPU, % of wall time (ours / official / raw) |" if cpu else ""
    out = [
        "| workload | unit | "
        + " | ".join(heads[c] for c in CLIENTS)
        + " | ours/official | ours/raw |"
        + extra_head,
        "|---|---|" + "---:|" * (len(CLIENTS) + 2) + ("---:|" if cpu else ""),
    ]
    notes: list[str] = []
    for row in rows:
        source = DERIVED.get(row, row)
        label_tpl, unit, higher = ROWS[row]
        per_client = results.get(source, {})
        cells = []
        shares: list[str] = []
        for kind in CLIENTS:
            lines = per_client.get(kind, [])
            values = [v for v in (get(line, row) for line in lines) if v is not None]
            text = cell(values)
            problems = {line.get("error") or line.get("na") for line in lines} - {None}
            if not values and problems:
                text = "n/a" if all("na" in line for line in lines) else "error"
            for problem in sorted(p for p in problems if p):
                notes.append(f"{source}, {kind}: {problem}")
            busy = [
                line["cpu_s"] / line["elapsed"]
                for line in lines
                if line.get("cpu_s") is not None and line.get("elapsed")
            ]
            shares.append(f"{statistics.median(busy):.0%}" if busy else "-")
            for line in lines:
                if "items" in line and line["items"] != line.get("events"):
                    notes.append(
                        f"{source}, {kind}: yielded {line['items']} items for "
                        f"{line['events']} events (rate counts events)"
                    )
            cells.append(text)
        ratios = {}
        for other in ("official", "raw"):
            pairs = zip(per_client.get("ours", []), per_client.get(other, []))
            ratios[other] = [
                a / b
                for a, b in ((get(x, row), get(y, row)) for x, y in pairs)
                if a is not None and b is not None and b > 0
            ]
        arrow = "higher is better" if higher and not cpu else "lower is better"
        if cpu:
            unit = "µs CPU/" + ("chunk" if unit == "chunks/s" else "call")
        out.append(
            f"| {label_tpl.format(**sizes)} | {unit} ({arrow}) | "
            + " | ".join(cells)
            + f" | {ratio_cell(ratios['official'])} | {ratio_cell(ratios['raw'])} |"
            + (f" {' / '.join(shares)} |" if cpu else "")
        )
    return "\n".join(out), sorted(set(notes))


def report(
    info: dict[str, Any],
    sizes: dict[str, int],
    versions: dict[str, str],
    results: dict[str, dict[str, list[dict[str, Any]]]],
) -> None:
    """Print the machine, the command and both tables in markdown."""
    rows = [r for r in ROW_ORDER if DERIVED.get(r, r) in results]
    table, notes = build_table(results, sizes, rows, versions)
    cpu_table, _ = build_table(results, sizes, rows, versions, cpu=True)
    pyver = ", ".join(sorted(set(info["python"].values())))
    print(
        f"Machine: {info['nproc']} CPUs, {info['cpu']}, kernel {info['kernel']}, "
        f"Python {pyver}, nginx {info['nginx']}, pinning: {info['pinning']}; "
        f"{sizes['rounds']} round(s), {info['seconds']} s, load average "
        f"{info['loadavg_start'][0]:.2f} -> {info['loadavg_end'][0]:.2f}; {info['date']}; "
        f"ours at {info['ours_revision']}."
    )
    for kind, dep in info["dependencies"].items():
        print(f"Dependencies of {kind}: {dep or 'none found'}.")
    print(f"Command: `{info['command']}`\n")
    print("Cells: median over rounds (min-max). Ratios: per-round ours/other, median (min-max).\n")
    print(table)
    for note in notes:
        print(f"\n- {note}", end="")
    print(
        "\n\nClient CPU time per call or chunk (user+sys of the client process over the "
        "timed part, divided by the calls or chunks), and the share of the wall time the "
        "client was on a CPU (the rest: waiting for nginx, or preempted by other load):\n"
    )
    print(cpu_table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, 1 round")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--clients", default=",".join(CLIENTS))
    parser.add_argument(
        "--workloads", default=",".join(DEFAULT_WORKLOADS), help="comma-separated jobs"
    )
    for key in FULL:
        if key != "rounds":
            parser.add_argument("--" + key.replace("_", "-"), type=int, dest=key)
    parser.add_argument("--ours-python", type=Path, default=default_python("ours"))
    parser.add_argument("--official-python", type=Path, default=default_python("official"))
    parser.add_argument(
        "--raw-python", type=Path, default=None, help="default: the ours interpreter"
    )
    parser.add_argument("--no-pin", action="store_true", help="do not use taskset")
    parser.add_argument(
        "--ours-tree",
        choices=["head", "worktree", "live"],
        default="worktree",
        help="code of ours to measure: a copy of the work tree taken at the start "
        "(default), the committed HEAD, or the live editable install",
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=WORK / "results.json",
        help="where to save the results (a time-stamped copy also goes to .work/)",
    )
    parser.add_argument(
        "--render", type=Path, metavar="JSON", help="only print the tables of a saved run"
    )
    args = parser.parse_args()
    if args.render:
        saved = json.loads(args.render.read_text())
        report(saved["info"], saved["sizes"], saved["versions"], saved["results"])
        return

    sizes = dict(QUICK if args.quick else FULL)
    for key in FULL:
        if getattr(args, key, None) is not None:
            sizes[key] = getattr(args, key)
    clients = [c for c in args.clients.split(",") if c]
    workloads = [w for w in args.workloads.split(",") if w]
    for w in workloads:
        if w not in DEFAULT_WORKLOADS:
            raise SystemExit(f"unknown workload {w!r}; choose from {DEFAULT_WORKLOADS}")
    pythons = {
        "ours": args.ours_python,
        "official": args.official_python,
        "raw": args.raw_python or args.ours_python,
    }
    for kind in clients:
        if not pythons[kind].exists():
            raise SystemExit(f"{pythons[kind]} missing: run benchmarks/setup.sh first")

    ncpu = os.cpu_count() or 1
    pin_ok = not args.no_pin and ncpu >= 2 and shutil.which("taskset") is not None
    client_pin = ["taskset", "-c", "1"] if pin_ok else []
    WORK.mkdir(exist_ok=True)
    log_dir = WORK / "logs"
    if log_dir.exists():
        shutil.rmtree(log_dir)
    log_dir.mkdir()

    ours_path, revision = snapshot_ours(args.ours_tree) if "ours" in clients else (None, "-")
    info = machine_info({k: pythons[k] for k in clients})
    info["ours_revision"] = revision
    info["pinning"] = "nginx on CPU 0, clients on CPU 1" if pin_ok else "none"
    info["command"] = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    print(f"# machine: {json.dumps(info)}", file=sys.stderr)

    base_url = server.start(sizes["stream_events"], 0 if pin_ok else None)
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    versions: dict[str, str] = {}
    started = time.monotonic()
    try:
        for rnd in range(sizes["rounds"]):
            order = clients[rnd % len(clients) :] + clients[: rnd % len(clients)]
            for workload in workloads:
                for kind in order:
                    line = run_one(
                        pythons[kind],
                        kind,
                        workload,
                        base_url,
                        sizes,
                        client_pin,
                        log_dir,
                        f"r{rnd}",
                        ours_path if kind == "ours" else None,
                    )
                    if "version" in line:
                        versions[kind] = line["version"]
                    results.setdefault(workload, {}).setdefault(kind, []).append(line)
                    shown = line.get("value")
                    status = (
                        fmt(shown)
                        if shown is not None
                        else ("n/a" if "na" in line else "ERROR " + str(line.get("error")))
                    )
                    print(
                        f"round {rnd + 1}/{sizes['rounds']} {workload:<14} {kind:<9}"
                        f" {status} {line.get('unit', '')}",
                        file=sys.stderr,
                        flush=True,
                    )
    finally:
        server.stop()
    info["loadavg_end"] = os.getloadavg()
    info["seconds"] = round(time.monotonic() - started)

    report(info, sizes, versions, results)
    saved = json.dumps(
        {"info": info, "sizes": sizes, "versions": versions, "results": results}, indent=1
    )
    args.json.write_text(saved)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    (WORK / f"results-{stamp}.json").write_text(saved)
    print(f"\n(raw results: {args.json}, and {WORK}/results-{stamp}.json)", file=sys.stderr)


if __name__ == "__main__":
    main()
