"""Flame graphs from `perf script` output, with no tool beyond Python's standard library (neither
Debian 12 nor PyPI ships a renderer). Reads `perf script` text on stdin and writes, for the given
prefix: <prefix>.folded (one `frame;frame;... count` line per distinct stack, root first: the
format other flame graph tools read) and <prefix>.svg (an icicle-free flame graph: root at the
bottom, width = share of samples, hover for the frame and its share).

    perf script -i perf.data | python3 scripts/lib/flamegraph.py --title "payments-webhook" out/webhooks

Frame names are demangled with `swift demangle --simplified` when it is on PATH."""

import argparse
import collections
import html
import re
import shutil
import subprocess
import sys


def read_stacks(lines):
    """Yields each sample's frames, leaf first, from `perf script` text."""
    frames = []
    for line in lines:
        line = line.rstrip("\n")
        if not line.strip():
            if frames:
                yield frames
            frames = []
            continue
        if line[0] in " \t":
            # "\t    55d1c0a0b1c2 symbol+0x1f (/path/to/dso)"
            parts = line.strip().split(None, 1)
            if len(parts) < 2:
                continue
            symbol = re.sub(r"\+0x[0-9a-f]+$", "", parts[1].rsplit(" (", 1)[0].strip())
            if symbol == "[unknown]":
                dso = parts[1].rsplit(" (", 1)[-1].rstrip(")")
                symbol = f"[{dso.rsplit('/', 1)[-1]}]"
            frames.append(symbol)
        # a header line ("comm pid ... cycles:") starts the sample; its frames follow
    if frames:
        yield frames


def demangle(names):
    if not shutil.which("swift"):
        return {name: name for name in names}
    ordered = list(names)
    try:
        out = subprocess.run(
            ["swift", "demangle", "--simplified", "--compact"], input="\n".join(ordered), capture_output=True, text=True, timeout=120
        ).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return {name: name for name in names}
    if len(out) != len(ordered):
        return {name: name for name in names}
    return {name: (readable[:200] if readable else name) for name, readable in zip(ordered, out)}


def render(folded, title, width=1600, row=16):
    """A flame graph as SVG text: a tree of frames, each as wide as its samples."""
    total = sum(folded.values())
    root = {"name": "all", "count": 0, "children": {}}
    for stack, count in folded.items():
        node = root
        node["count"] += count
        for frame in stack:
            node = node["children"].setdefault(frame, {"name": frame, "count": 0, "children": {}})
            node["count"] += count
    boxes = []
    depth_max = 0

    def place(node, x, depth):
        nonlocal depth_max
        w = width * node["count"] / total
        if w < 0.3:
            return
        depth_max = max(depth_max, depth)
        boxes.append((x, depth, w, node))
        child_x = x
        for child in sorted(node["children"].values(), key=lambda c: c["name"]):
            place(child, child_x, depth + 1)
            child_x += width * child["count"] / total

    place(root, 0.0, 0)
    height = (depth_max + 1) * row + 40
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="monospace" font-size="11">',
        f'<text x="4" y="16" font-size="14">{html.escape(title)} ({total} samples)</text>',
    ]
    for x, depth, w, node in boxes:
        y = height - (depth + 1) * row
        share = 100 * node["count"] / total
        hue = 20 + (hash(node["name"]) % 40)
        label = html.escape(f'{node["name"]} ({share:.1f}%)')
        out.append(
            f'<g><title>{label}</title><rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{row - 1}" fill="hsl({hue},90%,60%)"/>'
        )
        chars = int(w / 7)
        if chars >= 4:
            text = node["name"] if len(node["name"]) <= chars else node["name"][: chars - 2] + ".."
            out.append(f'<text x="{x + 2:.1f}" y="{y + row - 4}">{html.escape(text)}</text>')
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("prefix")
    parser.add_argument("--title", default="flame graph")
    args = parser.parse_args()
    stacks = list(read_stacks(sys.stdin))
    if not stacks:
        print("no samples with stacks in the input", file=sys.stderr)
        return 1
    names = demangle({frame for stack in stacks for frame in stack})
    folded = collections.Counter(tuple(names[frame] for frame in reversed(stack)) for stack in stacks)
    with open(args.prefix + ".folded", "w") as out:
        for stack, count in sorted(folded.items()):
            out.write(";".join(frame.replace(";", ":") for frame in stack) + f" {count}\n")
    with open(args.prefix + ".svg", "w") as out:
        out.write(render(folded, args.title))
    # The top self costs (leaf frames), for the docs.
    leaves = collections.Counter()
    for stack, count in folded.items():
        leaves[stack[-1]] += count
    total = sum(folded.values())
    print(f"top self costs of {total} samples:")
    for name, count in leaves.most_common(15):
        print(f"  {100 * count / total:5.1f}%  {name}")
    # Inclusive: each frame counted once per sample it is in (what a call costs with its callees).
    inclusive = collections.Counter()
    for stack, count in folded.items():
        for name in set(stack):
            inclusive[name] += count
    print("top inclusive costs (frames in at least 5% of samples, the process' own threads' roots left out):")
    shown = 0
    for name, count in inclusive.most_common():
        if count < 0.05 * total or shown >= 25:
            break
        if name.startswith("[") or name in ("start_thread", "clone3", "clone", "_start", "__libc_start_main"):
            continue
        print(f"  {100 * count / total:5.1f}%  {name}")
        shown += 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
