"""MAX's ``ops.qmatmul`` (its quantized matmul, activations quantized to 8 bits) in a child
process: MAX's load and any crash stay out of the parent, and the child's own peak resident
memory is MAX's side of the memory comparison.

The parent starts ``python -m contenders.max_qmatmul FMT NPY`` with benchmarks/ on
``PYTHONPATH``; the child loads one graph with a symbolic batch, then answers one JSON line per
request on stdin, prefixed ``@@ ``: ``{"op": "time", "batch": B}`` runs one call and returns its
seconds; ``{"op": "rss"}`` returns the peak resident bytes so far.

Between requests the child is stopped (``SIGSTOP``, resumed by ``SIGCONT`` for each request):
MAX's runtime keeps working while idle (about a tenth of a core, measured on an idle child),
and on two cores that slowed ember's two-thread calls in the parent by a quarter (13.4 to
17.8 ms, Q4_K head at batch 1), which is MAX's idle runtime, not ember, being measured.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
from harness import first_line

from contenders.max_peer import max_session
from contenders.max_worker import child_env


def _status_bytes(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def peak_rss() -> int:
    """This process's peak resident bytes: VmHWM, which starts afresh at exec (getrusage's
    ru_maxrss would carry the parent's peak over the fork)."""
    return _status_bytes("VmHWM:")


def rss_now() -> int:
    """This process's resident bytes now."""
    return _status_bytes("VmRSS:")


def states(batch: int, hidden: int) -> np.ndarray:
    """The hidden states every contender multiplies at ``batch`` (the same seed on each side)."""
    return np.random.default_rng(batch).standard_normal((batch, hidden)).astype(np.float32)


class MaxQmatmul:
    """The parent's handle on a child running MAX's qmatmul over one table.

    ``died`` holds why the child is gone (or never loaded), else None; ``load_s`` MAX's load.
    """

    def __init__(self, fmt: str, table: np.ndarray):
        self.died: str | None = None
        self.file = tempfile.NamedTemporaryFile(suffix=".npy")  # noqa: SIM115 (close())
        np.save(self.file, table)
        self.file.flush()
        self.stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (close())
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "contenders.max_qmatmul", fmt, self.file.name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
            env=child_env(),
        )
        hello = self._receive()
        self.load_s = hello.get("load_s")
        self.base_rss = hello.get("base_rss")
        if self.died is None:
            self._signal(signal.SIGSTOP)

    def request(self, **message) -> dict:
        """Sends one command and returns the reply ({} once the child is gone); the child runs
        only while it answers."""
        if self.died is None:
            self._signal(signal.SIGCONT)
            try:
                self.proc.stdin.write(json.dumps(message) + "\n")
                self.proc.stdin.flush()
            except BrokenPipeError:
                pass
        reply = {} if self.died else self._receive()
        if self.died is None:
            self._signal(signal.SIGSTOP)
        return reply

    def _signal(self, number: int) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(number)

    def seconds(self, batch: int) -> float:
        """One call's seconds at ``batch``, timed in the child (NaN once it is gone)."""
        return self.request(op="time", batch=batch).get("t", float("nan"))

    def _receive(self) -> dict:
        for line in self.proc.stdout:
            if line.startswith("@@ "):
                reply = json.loads(line[3:])
                self.died = reply.get("error")
                return reply
        code = self.proc.wait()
        self.stderr.seek(0)
        lines = [x for x in self.stderr.read().splitlines() if x.strip()]
        self.died = f"exited {code}: {lines[-1] if lines else ''}"
        return {}

    def close(self) -> None:
        """Ends the child (if still alive, stopped or not) and removes its table file."""
        if self.proc.poll() is None:
            self._signal(signal.SIGCONT)
            self.proc.stdin.close()
            self.proc.wait()
        self.stderr.close()
        self.file.close()


def child_main(fmt: str, table_path: str) -> None:
    """Child side: load ``qmatmul(FMT, None, x, w)`` over the table, then answer requests."""

    def send(**reply):
        print("@@ " + json.dumps(reply), flush=True)

    from max.dtype import DType
    from max.graph import DeviceRef, Graph, TensorType, Weight, ops
    from max.graph.quantization import QuantizationEncoding

    table = np.load(table_path)
    base_rss = rss_now()  # MAX imported and the table in memory, as on ember's side
    try:
        encoding = QuantizationEncoding[fmt.upper()]
        hidden = encoding.elements_per_block * (table.shape[1] // encoding.block_size)
        cpu = DeviceRef.CPU()
        weight = Weight("w", DType.uint8, table.shape, cpu, quantization_encoding=encoding)
        with Graph("qmatmul", input_types=[TensorType(DType.float32, ["batch", hidden], cpu)]) as g:
            g.output(ops.qmatmul(encoding, None, g.inputs[0], weight))
        start = time.perf_counter()
        model = max_session().load(g, weights_registry={"w": table})
    except Exception as exc:
        send(error=first_line(exc))
        return
    send(load_s=time.perf_counter() - start, base_rss=base_rss)
    for line in sys.stdin:
        message = json.loads(line)
        if message["op"] == "rss":
            send(peak=peak_rss())
            continue
        x = states(message["batch"], hidden)
        start = time.perf_counter()
        model.execute(x)
        send(t=time.perf_counter() - start)


if __name__ == "__main__":
    child_main(*sys.argv[1:3])
