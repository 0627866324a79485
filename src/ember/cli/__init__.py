"""The `ember` command: `demo`, `inspect`, `embed`, `logits`, `quantize`, `bench` and `launch`.

Every error a user can cause (a missing file, an unknown tensor, a corrupt checkpoint, a bad
id) is one line on stderr and exit status 1; bad arguments are argparse usage errors: the usage
text and status 2. A reader that closes the pipe ends the command quietly (status 141).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

from .arguments import gguf_format, host_port, id_list, natural, positive, threads

__all__ = ["main"]

_CLOSED_PIPE_STATUS = 128 + signal.SIGPIPE
"""The status a shell reports for a tool that SIGPIPE ended."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ember", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("demo", help="build, execute and time the seed example")
    run.add_argument("--threads", type=threads, default=None, help="kernel threads")
    run.add_argument("--repeats", type=positive, default=200, help="timed executions")
    run.set_defaults(handler="demo")

    run = commands.add_parser("inspect", help="list a checkpoint's tensors")
    run.add_argument("path", help="a .gguf or .safetensors file, an index .json or a folder")
    run.set_defaults(handler="inspect")

    run = embed_parser = commands.add_parser(
        "embed", help="look ids up in a checkpoint's embedding table"
    )
    run.add_argument("path", help="a .gguf or .safetensors file, an index .json or a folder")
    source = run.add_mutually_exclusive_group(required=True)
    source.add_argument("--ids", type=id_list, help="comma-separated token ids, e.g. 1,2,3")
    source.add_argument("--text", help="text to tokenize (a GGUF file's vocabulary or --tokenizer)")
    run.add_argument(
        "--tokenizer", help="with --text: a tokenizer.json (needs the tokenizers package)"
    )
    run.add_argument("--tensor", help="the table (default: the one embedding table found)")
    run.add_argument("--devices", type=positive, default=1, help="CPU devices to shard over")
    run.add_argument(
        "--format",
        choices=["table", "json", "npy"],
        help="table or json print the vectors (default: table; JSON writes NaN and "
        "infinities as null); npy writes them to -o",
    )
    run.add_argument(
        "-o",
        "--output",
        help="write the vectors to this .npy file (.npy added when missing) instead of "
        "printing (with --format npy or no --format)",
    )
    run.add_argument("--force", action="store_true", help="let -o overwrite an existing file")
    run.set_defaults(handler="embed")

    run = commands.add_parser("quantize", help="write a table as a quantized GGUF file")
    run.add_argument("path", help="a .gguf or .safetensors file, an index .json or a folder")
    run.add_argument("--tensor", help="the table (default: the one embedding table found)")
    run.add_argument(
        "--format", required=True, type=gguf_format, help="q4_k, q8_0, iq4_nl, mxfp4, ..."
    )
    run.add_argument("-o", "--output", required=True, help="the .gguf file to write")
    run.add_argument("--force", action="store_true", help="overwrite an existing output file")
    run.set_defaults(handler="quantize")

    run = logits_parser = commands.add_parser(
        "logits", help="run a checkpoint's LM head over hidden states"
    )
    run.add_argument("path", help="a .gguf or .safetensors file, an index .json or a folder")
    run.add_argument(
        "--hidden",
        required=True,
        help="a .npy file of float32, float16 or bfloat16 hidden states, shaped (hidden,), "
        "(tokens, hidden) or (batch, seq, hidden)",
    )
    mode = run.add_mutually_exclusive_group()
    mode.add_argument(
        "--top-k",
        type=positive,
        default=5,
        help="the k largest logits of each token, with their ids: the default output "
        "(default k: %(default)s)",
    )
    mode.add_argument("--argmax", action="store_true", help="the greedy id of each token")
    mode.add_argument("--logsumexp", action="store_true", help="each token's log-sum-exp")
    mode.add_argument(
        "--out",
        help="write the full float32 logits to this .npy file (.npy added when missing) "
        "instead of printing",
    )
    run.add_argument("--force", action="store_true", help="let --out overwrite an existing file")
    run.add_argument(
        "--tensor",
        help="the head's table (default: output.weight or lm_head.weight, else the "
        "embedding table)",
    )
    run.add_argument("--backend", choices=["native", "xla"], default="native")
    run.add_argument(
        "--format",
        choices=["table", "json"],
        help="how the output prints (default: table); JSON writes NaN and infinities as "
        "null; not with --out, which writes a file",
    )
    run.set_defaults(handler="logits")

    run = commands.add_parser("bench", help="run the lookup benchmarks and print their table")
    run.add_argument("--quick", action="store_true", help="fewer, shorter rounds")
    run.add_argument("args", nargs=argparse.REMAINDER, help="more benchmark arguments")
    run.set_defaults(handler="bench")

    run = launch_parser = commands.add_parser(
        "launch",
        help="run a script as the processes of one job",
        description="Run a Python script as this host's processes of one job (ember.distributed"
        " joins them): each is told its place through EMBER_COORDINATOR, EMBER_NUM_PROCESSES, "
        "EMBER_PROCESS_ID and EMBER_LOCAL_CPU_DEVICES.",
    )
    run.add_argument("-n", type=positive, required=True, help="processes on this host")
    run.add_argument(
        "--coordinator", type=host_port, help="host:port of process 0 (default: local)"
    )
    run.add_argument("--num-processes", type=positive, help="processes in the job")
    run.add_argument(
        "--first-id", type=natural, default=0, help="id of the first process on this host"
    )
    run.add_argument(
        "--cpu-devices",
        type=positive,
        help="CPU devices per process (a script's own local_cpu_devices= takes precedence)",
    )
    run.add_argument(
        "script", nargs=argparse.REMAINDER, metavar="script", help="script and its arguments"
    )
    run.set_defaults(handler="launch")

    args = parser.parse_args(argv)
    if args.handler == "logits":
        if args.out is not None and args.format is not None:
            logits_parser.error(
                "argument --format: not allowed with argument --out (it writes a .npy file)"
            )
        if args.force and args.out is None:
            logits_parser.error("argument --force: only with --out (the file it may overwrite)")
    if args.handler == "launch":
        _check_launch(launch_parser, args)
    if args.handler == "embed":
        if args.output is not None and args.format not in (None, "npy"):
            embed_parser.error(
                f"argument --format {args.format}: not allowed with argument -o/--output "
                "(it writes a .npy file)"
            )
        if args.force and args.output is None:
            embed_parser.error("argument --force: only with -o (the file it may overwrite)")
        if args.format == "npy" and args.output is None:
            embed_parser.error("argument --format npy: writes a file; give it with -o FILE.npy")
        if args.tokenizer is not None and args.text is None:
            embed_parser.error("argument --tokenizer: only with --text (the text it tokenizes)")
    from importlib import import_module

    from ember.errors import OutOfRangeError
    from ember.weights.errors import CheckpointError

    handler = getattr(import_module(f"ember.cli.{args.handler}"), args.handler)
    stdout = sys.stdout
    sys.stdout = _Stdout(stdout)
    try:
        status = handler(args)
        sys.stdout.flush()  # a reader gone shows here, not in the interpreter's last flush
        return status
    except BrokenPipeError:
        # The reader closed the pipe (`ember embed ... | head`): stop quietly, as Unix tools do.
        _point_at_null(stdout)
        return _CLOSED_PIPE_STATUS
    except (CheckpointError, OutOfRangeError, FileNotFoundError, UsageError) as error:
        _print_error(args.command, str(error))
        return 1
    except StdoutError as error:  # a full disk, a device that refuses writes
        _print_error(args.command, str(error))
        _point_at_null(stdout)
        return 1
    except OSError as error:  # a file the command reads or writes, which the system refuses
        named = error.filename or getattr(args, "path", None)
        where = f": {named}" if named else ""
        _print_error(args.command, f"{error.strerror or error}{where}")
        return 1
    finally:
        sys.stdout = stdout


def _print_error(command: str, message: str) -> None:
    """One line on stderr; names from files in `message` cannot reach the terminal as escape
    sequences (`printable`)."""
    from .output import printable

    print(f"ember {command}: error: {printable(message)}", file=sys.stderr)


class StdoutError(Exception):
    """Writing to stdout failed for another reason than a reader gone."""


class _Stdout:
    """`sys.stdout` while a command runs: a write or flush that fails (other than a closed
    pipe) raises StdoutError, so that only stdout's own failures are reported as such; so does
    any use of a stdout the shell closed (`>&-`, where Python's is None).

    Writes go on in pieces of at most `_PIECE` characters: rich writes a whole table at once,
    and one large write to a pipe whose reader leaves midway ends short with no error, where
    the next piece meets the closed pipe (BrokenPipeError)."""

    _PIECE = 8192

    def __init__(self, stream: object) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        if self._stream is None:
            raise StdoutError("cannot write to stdout: it is closed")
        try:
            for start in range(0, len(text), self._PIECE):
                self._stream.write(text[start : start + self._PIECE])
        except BrokenPipeError:
            raise
        except OSError as error:
            raise StdoutError(f"cannot write to stdout: {error.strerror or error}") from None
        return len(text)

    def flush(self) -> None:
        if self._stream is None:
            return
        try:
            self._stream.flush()
        except BrokenPipeError:
            raise
        except OSError as error:
            raise StdoutError(f"cannot write to stdout: {error.strerror or error}") from None

    def __getattr__(self, name: str) -> object:
        if self._stream is None:
            raise StdoutError("cannot write to stdout: it is closed")
        return getattr(self._stream, name)


def _point_at_null(stream: object) -> None:
    """Point the file descriptor under `stream` at /dev/null, so that the interpreter's exit
    flush of what is left in its buffer cannot fail again (nothing for a stream without one)."""
    try:
        descriptor = stream.fileno()
    except (OSError, ValueError, AttributeError):
        return
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, descriptor)
    os.close(null)


def _check_launch(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Usage errors found before any process starts (once, not once per process)."""
    if not args.script:
        parser.error("argument script: give a script to run, e.g. ember launch -n 2 serve.py")
    last = args.first_id + args.n
    if args.num_processes is not None and last > args.num_processes:
        parser.error(
            f"argument -n: processes {args.first_id}..{last - 1} do not fit a job of "
            f"{args.num_processes} (--num-processes)"
        )
    script = args.script[0]
    if not script.startswith("-") and not os.path.isfile(script):
        hint = " (give the script itself: it runs with this Python)" if "python" in script else ""
        parser.error(f"argument script: no file at '{script}'{hint}")


class UsageError(Exception):
    """A request the command cannot carry out, explained in one line."""
