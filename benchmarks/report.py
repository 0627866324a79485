"""The embedding benchmark's report: the markdown table, ember's ratios to torch, the plot."""

from __future__ import annotations

from dataclasses import dataclass

from embedding_tables import HIDDEN, THREADS, VOCAB


@dataclass
class Row:
    """One line of the report; ``seconds`` is None when the contender failed (see ``note``)."""

    tokens: int
    dtype: str
    contender: str
    seconds: float | None
    out_bytes: int
    moved_bytes: int
    note: str = ""
    ids: str = "fresh"


def report(rows: list[Row], copy_gbps: float) -> str:
    """The markdown table: per-call time, output GB/s, speed relative to MAX, % of roofline."""
    lines = [
        "| tokens | dtype | ids | contender | median per call | output GB/s | × MAX speed "
        "| % of roofline | note |",
        "|---:|---|---|---|---:|---:|---:|---:|---|",
    ]
    max_time = {
        (r.tokens, r.dtype, r.ids): r.seconds
        for r in rows
        if r.contender.startswith("MAX") and r.seconds is not None and not r.note
    }
    for r in rows:
        if r.seconds is None:
            cells = ["—", "—", "—", "—"]
        else:
            per_call = (
                f"{r.seconds * 1e6:.1f} µs" if r.tokens <= 64 else f"{r.seconds * 1e3:.2f} ms"
            )
            base = max_time.get((r.tokens, r.dtype, r.ids))
            cells = [
                per_call,
                f"{r.out_bytes / r.seconds / 1e9:.2f}",
                f"{base / r.seconds:.2f}" if base else "—",
                f"{100 * r.moved_bytes / r.seconds / 1e9 / (2 * copy_gbps):.0f}%",
            ]
        lines.append(
            f"| {r.tokens} | {r.dtype} | {r.ids} | {r.contender} | "
            + " | ".join(cells)
            + f" | {r.note} |"
        )
    return "\n".join(lines)


def torch_ratios(rows: list[Row]) -> str:
    """ember's time over torch's, per token count, dtype and ids (below 1: ember faster):
    ``execute`` and ``execute(torch ids)`` against ``F.embedding``, ``execute(out=)`` against
    ``index_select(out=)``."""
    times = {(r.tokens, r.dtype, r.ids, r.contender): r.seconds for r in rows if r.seconds}
    pairs = [
        ("ember", "torch embedding"),
        ("ember execute(torch ids)", "torch embedding"),
        ("ember execute(out=)", "torch index_select(out=)"),
    ]
    lines = [
        "| tokens | dtype | ids | " + " | ".join(f"{a} / {b}" for a, b in pairs) + " |",
        "|---:|---|---|" + "---:|" * len(pairs),
    ]
    for key in dict.fromkeys((r.tokens, r.dtype, r.ids) for r in rows):
        cells = [
            f"{times[(*key, a)] / times[(*key, b)]:.2f}"
            if (*key, a) in times and (*key, b) in times
            else "—"
            for a, b in pairs
        ]
        if any(c != "—" for c in cells):
            lines.append(f"| {key[0]} | {key[1]} | {key[2]} | " + " | ".join(cells) + " |")
    return "\n".join(lines) if len(lines) > 2 else ""


def plot(rows: list[Row], copy_gbps: float, path: str) -> None:
    """Output GB/s against tokens per call: dense tables left, quantized right (MAX dashed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (dense, quant) = plt.subplots(1, 2, figsize=(13, 5.5), sharey=True)
    series: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for r in rows:
        if (
            r.seconds is not None
            and not r.note
            and r.contender != "ember float32"
            and (r.ids == "fresh")
        ):
            series.setdefault((r.dtype, r.contender), []).append(
                (r.tokens, r.out_bytes / r.seconds / 1e9)
            )
    names = sorted({c for d, c in series if d in ("float32", "bfloat16")})
    formats = sorted({d for d, _ in series if d not in ("float32", "bfloat16")})
    colors = plt.get_cmap("tab10").colors
    for (dtype, name), points in series.items():
        xs, ys = zip(*sorted(points), strict=True)
        if dtype in ("float32", "bfloat16"):
            style = {
                "color": colors[names.index(name) % 10],
                "ls": "-" if dtype == "float32" else ":",
            }
            dense.plot(xs, ys, marker="o", label=f"{name} {dtype}", **style)
        else:
            style = {
                "color": colors[formats.index(dtype) % 10],
                "ls": "--" if "MAX" in name else "-",
            }
            quant.plot(xs, ys, marker="o", label=name, **style)
    for ax, title in ((dense, "dense tables"), (quant, "quantized tables (float32 out)")):
        ax.axhline(copy_gbps, color="k", ls="--", lw=0.8, label=f"copy {copy_gbps:.1f} GB/s")
        ax.set(xscale="log", yscale="log", xlabel="tokens per call", title=title)
        ax.legend(fontsize=7)
    dense.set_ylabel("output GB/s")
    fig.suptitle(f"Embedding lookup, {VOCAB} x {HIDDEN} table, {THREADS} threads")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
