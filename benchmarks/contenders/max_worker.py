"""MAX's quantized lookups and its loads in child processes, so that a crash in MAX becomes a
table row instead of ending the run.

The parent starts ``python -m contenders.max_worker worker FMT NPY`` (or ``load``) with
benchmarks/ on ``PYTHONPATH``; the child answers one JSON line per request, prefixed ``@@ ``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from embedding_tables import HIDDEN, VOCAB, check_quant, id_pool
from harness import cycling, first_line, timed_slot

from contenders.max_peer import max_graph, max_session

BENCHMARKS = Path(__file__).resolve().parents[1]


def child_command(*args: str) -> list[str]:
    """The command line of a child running this module."""
    return [sys.executable, "-m", "contenders.max_worker", *args]


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a child: ours (rebuilt: MAX's load setenv()s PYTHONEXECUTABLE, which
    ``os.environ`` lacks), with benchmarks/ on ``PYTHONPATH`` and ``extra``."""
    env = dict(os.environ, **extra)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(BENCHMARKS), env.get("PYTHONPATH")]))
    return env


class MaxWorker:
    """MAX's quantized lookup in a child process: a crash there becomes a note, not our end.

    ``died`` holds why the child is gone (a signal, or the error that ended it), else None.
    """

    def __init__(self, fmt: str, table_path: str):
        self.died: str | None = None
        self.stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (closed by close())
        self.proc = subprocess.Popen(
            child_command("worker", fmt, table_path),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
            env=child_env(),
        )
        self.hello = self._receive()

    def request(self, **message) -> dict:
        """Sends one command and returns the reply ({} once the child is gone)."""
        if self.died is None:
            try:
                self.proc.stdin.write(json.dumps(message) + "\n")
                self.proc.stdin.flush()
            except BrokenPipeError:
                self._receive()
        return {} if self.died else self._receive()

    def _receive(self) -> dict:
        for line in self.proc.stdout:
            if line.startswith("@@ "):
                reply = json.loads(line[3:])
                self.died = reply.get("error")
                return reply
        code = self.proc.wait()
        self.stderr.seek(0)
        lines = [x for x in self.stderr.read().splitlines() if x.strip()]
        if code < 0:
            self.died = f"crashed ({signal.Signals(-code).name})"
        else:
            self.died = f"exited {code}: {lines[-1] if lines else ''}"
        return {}

    def close(self) -> None:
        """Ends the child (if still alive) and waits for it."""
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait()
        self.stderr.close()


def max_worker_main(fmt: str, table_path: str) -> None:
    """Child side of MaxWorker: load, then answer "check n" and "time" commands on stdin."""

    def send(**reply):
        print("@@ " + json.dumps(reply), flush=True)

    table = np.load(table_path)
    try:
        graph = max_graph("tok", "uint8", fmt)
        start = time.perf_counter()
        model = max_session().load(graph, weights_registry={"tok": table})
    except Exception as exc:
        send(error=first_line(exc))
        return
    send(load_s=time.perf_counter() - start)
    slot = None
    for line in sys.stdin:
        message = json.loads(line)
        if message["op"] == "check":
            pool = id_pool(message["n"])
            call = cycling(lambda ids: model.execute(ids)[0], pool)
            out = call()
            note = check_quant(out.to_numpy(), table, pool[0], fmt)
            del out
            slot = timed_slot(call)
            send(note=note, cost=slot.cost)
        else:
            send(t=slot.run())


def max_load_main() -> None:
    """Child: import MAX, build the float32 embedding graph and load it; print the seconds."""
    start = time.perf_counter()
    import max.engine  # noqa: F401

    imported = time.perf_counter()
    graph = max_graph("tok", "float32")
    built = time.perf_counter()
    max_session().load(graph, weights_registry={"tok": np.empty((VOCAB, HIDDEN), np.float32)})
    loaded = time.perf_counter()
    print(
        "@@ "
        + json.dumps(
            {"import_s": imported - start, "build_s": built - imported, "load_s": loaded - built}
        ),
        flush=True,
    )


def max_load_times() -> list[str]:
    """MAX's load of the float32 graph in fresh processes: empty compile cache, then warm."""
    lines = []
    with tempfile.TemporaryDirectory() as cache:
        env = child_env(XDG_CACHE_HOME=cache)
        for label in ("cold cache", "warm cache"):
            start = time.perf_counter()
            proc = subprocess.run(child_command("load"), env=env, capture_output=True, text=True)
            wall = time.perf_counter() - start
            replies = [x for x in proc.stdout.splitlines() if x.startswith("@@ ")]
            if proc.returncode or not replies:
                lines.append(f"MAX load, fresh process, {label}: failed ({proc.returncode})")
                continue
            r = json.loads(replies[-1][3:])
            lines.append(
                f"MAX load, fresh process, {label}: load {r['load_s']:.2f} s "
                f"(import {r['import_s']:.2f} s, graph build {r['build_s']:.2f} s, "
                f"process wall {wall:.1f} s)"
            )
    return lines


if __name__ == "__main__":
    if sys.argv[1] == "worker":
        max_worker_main(*sys.argv[2:4])
    else:
        max_load_main()
