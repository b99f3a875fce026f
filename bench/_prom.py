"""Debian's Prometheus and promtool for the benches: backfill, start on 127.0.0.1, query, stop.

Prometheus runs on a free loopback port with an empty scrape config, so the only data it
holds is what a bench gave it (backfilled blocks or remote-written samples). Queries go
over HTTP with urllib (no extra dependency); ``stop()`` ends the process it started.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dir_bytes(path: str | os.PathLike[str], only_blocks: bool = False) -> int:
    """Bytes of files under ``path``; with ``only_blocks``, only ULID-named block folders."""
    total = 0
    for root, _dirs, files in os.walk(path):
        rel = Path(root).relative_to(path)
        if only_blocks and (not rel.parts or len(rel.parts[0]) != 26):
            continue
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total


def promtool_backfill(
    om_file: str | os.PathLike[str], out_dir: str | os.PathLike[str], max_block_duration: str | None = None
) -> float:
    """``promtool tsdb create-blocks-from openmetrics``; returns wall seconds."""
    cmd = [PROMTOOL, "tsdb", "create-blocks-from", "openmetrics", "-q"]
    if max_block_duration:
        cmd.append(f"--max-block-duration={max_block_duration}")
    cmd += [str(om_file), str(out_dir)]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - t0


class Prometheus:
    """One Prometheus process on a data folder; use as a context manager."""

    def __init__(self, data_dir: str | os.PathLike[str], *extra: str, no_compaction: bool = True) -> None:
        self.data_dir = Path(data_dir)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._tmp = tempfile.mkdtemp(prefix="sf-prom-")
        self.config = Path(self._tmp) / "prometheus.yml"
        self.config.write_text("global:\n  scrape_interval: 15s\nscrape_configs: []\n")
        self.extra = list(extra)
        if no_compaction:
            # Equal min and max block durations switch compaction off, so background
            # compaction does not run during timed queries (blocks stay as backfilled).
            self.extra += ["--storage.tsdb.min-block-duration=2h", "--storage.tsdb.max-block-duration=2h"]
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = Path(self._tmp) / "prometheus.log"

    def start(self, timeout: float = 120.0) -> Prometheus:
        cmd = [
            PROMETHEUS,
            f"--config.file={self.config}",
            f"--storage.tsdb.path={self.data_dir}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--storage.tsdb.retention.time=3650d",
            "--query.max-samples=500000000",
            *self.extra,
        ]
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited: {self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("prometheus did not become ready in time")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> Prometheus:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        assert self.proc is not None, "BUG: prometheus not started"
        return self.proc.pid

    def _get(self, path: str, params: dict[str, str], timeout: float = 300.0) -> tuple[Any, float]:
        """(data, seconds from request to the last byte of the body); the client's own JSON
        decoding is not timed, as it is no part of Prometheus's work."""
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        t0 = time.perf_counter()
        with urllib.request.urlopen(url, timeout=timeout) as r:
            body = r.read()
        elapsed = time.perf_counter() - t0
        doc = json.loads(body)
        if doc.get("status") != "success":
            raise RuntimeError(f"prometheus: {doc.get('error')}")
        return doc["data"], elapsed

    def query(self, expr: str, t_s: float, stats: bool = False) -> tuple[Any, float]:
        """Instant query; returns (data, seconds). ``stats``: ask for Prometheus's query
        statistics too (``data["stats"]["timings"]``, its own engine times)."""
        params = {"query": expr, "time": f"{t_s:.3f}"}
        return self._get("/api/v1/query", {**params, "stats": "all"} if stats else params)

    def query_range(
        self, expr: str, start_s: float, end_s: float, step_s: float, stats: bool = False
    ) -> tuple[Any, float]:
        params = {"query": expr, "start": f"{start_s:.3f}", "end": f"{end_s:.3f}", "step": f"{step_s:g}"}
        return self._get("/api/v1/query_range", {**params, "stats": "all"} if stats else params)

    def use_rules(self, rule_files: list[Path], interval_s: int, timeout: float = 60.0) -> None:
        """Load ``rule_files`` (evaluated every ``interval_s``) into the running process: the
        config is rewritten and reloaded by SIGHUP, as an operator would, so the data already
        in the head stays where it is."""
        files = "".join(f"  - {Path(f).resolve()}\n" for f in rule_files)
        self.config.write_text(
            f"global:\n  scrape_interval: 15s\n  evaluation_interval: {interval_s}s\n"
            f"rule_files:\n{files}scrape_configs: []\n"
        )
        time.sleep(1.1)  # the reload timestamp has whole seconds: make the new one differ
        before = self.metric_sum("prometheus_config_last_reload_success_timestamp_seconds")
        assert self.proc is not None, "BUG: prometheus not started"
        self.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while self.metric_sum("prometheus_config_last_reload_success_timestamp_seconds") <= before:
            if time.monotonic() > deadline or not self.metric_sum("prometheus_config_last_reload_successful"):
                raise RuntimeError(f"prometheus did not load the rules: {self.log.read_text()[-2000:]}")
            time.sleep(0.2)

    def metric_samples(self, name: str) -> list[float]:
        """The values of every series of one of Prometheus's own metrics (labelled or not)."""
        with urllib.request.urlopen(self.url + "/metrics", timeout=30) as r:
            text = r.read().decode()
        return [
            float(line.rpartition(" ")[2])
            for line in text.splitlines()
            if line.startswith(name) and line[len(name) : len(name) + 1] in ("{", " ")
        ]

    def metric_sum(self, name: str) -> float:
        return sum(self.metric_samples(name))

    def self_metrics(self, *names: str) -> dict[str, float]:
        """Values of Prometheus's own metrics (unlabelled ones) from its ``/metrics`` page."""
        with urllib.request.urlopen(self.url + "/metrics", timeout=30) as r:
            text = r.read().decode()
        out: dict[str, float] = {}
        for line in text.splitlines():
            if line.startswith("#"):
                continue
            key, _, value = line.partition(" ")
            if key in names:
                out[key] = float(value.split()[0])
        return out
