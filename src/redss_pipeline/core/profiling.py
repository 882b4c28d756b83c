"""``--profile-cpu FILE``: a statistical CPU profile of a stage, taken from outside the process.

The 2019 pipeline ran stage 3 under Pyflame and wrote "collapsed stacks" (one line per distinct stack: frames
joined by ``;``, a space, a sample count), the text format Brendan Gregg's FlameGraph reads. Here py-spy
samples the stage (``py-spy record --format raw`` writes the same format) and an SVG flame graph is rendered
from it to ``FILE.svg``.

Profiling wraps the stage instead of changing it: the entry point that sees ``--profile-cpu FILE`` calls
``rerun_profiled``, which starts the same script (or module) with the same arguments minus that option under
py-spy and returns the child's exit status. The profiled run executes exactly the code an unprofiled run
executes, so it writes the same outputs. Because py-spy does not pass on its child's exit status, the child
runs through a small runner (this module's ``__main__``) that records the status in a temporary file and gives
the program this process's standard output and error; the runner's frames are removed from the profile.

py-spy reads the child's memory (``process_vm_readv``/``ptrace``). Inside Docker that needs the container to
be started with ``--cap-add SYS_PTRACE``; when py-spy cannot attach, ``ProfilingError`` says so.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

from redss_pipeline.core.errors import PipelineError

__all__ = [
    "ProfilingError",
    "find_py_spy",
    "parse_collapsed",
    "profile_command",
    "render_flame_graph_svg",
    "rerun_profiled",
    "without_option",
]

_RUNNER_MODULE = "redss_pipeline.core.profiling"
_STATUS_FLAG = "--exit-status-file"
_STDOUT_FLAG = "--stdout-fd"
_STDERR_FLAG = "--stderr-fd"
_PERMISSION_PATTERNS = re.compile(
    r"Permission Denied|Permission denied|Operation not permitted|SYS_PTRACE|os error 1\)|os error 13\)|EPERM"
)
# Frames of the runner (this module run as __main__) and of runpy, which starts the program inside it.
_RUNNER_FRAME = re.compile(r"\(redss_pipeline[/\\]core[/\\]profiling\.py:\d+\)$")
_RUNPY_FRAME = re.compile(r"\((?:<frozen runpy>|[^()]*runpy\.py):\d+\)$")
# Root frames of samples taken while the interpreter was starting the runner.
_START_UP_ROOT = re.compile(r"\(<frozen (?:runpy|importlib\._bootstrap(?:_external)?)>(?::\d+)?\)$")
_LINE = re.compile(r"^(?P<stack>.*\S) (?P<count>\d+)$")
# The root frame py-spy gives every stack when it samples subprocesses too: the process id and command line.
_PROCESS_FRAME = re.compile(r'^process \d+:".*"$')


class ProfilingError(PipelineError):
    """The CPU profile could not be taken or written."""


def find_py_spy() -> str:
    """The py-spy executable: next to this Python (a virtual environment's ``bin``), else on ``PATH``."""
    beside = Path(sys.executable).parent / ("py-spy.exe" if os.name == "nt" else "py-spy")
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("py-spy")
    if found is None:
        raise ProfilingError("--profile-cpu needs py-spy, which is not installed (pip install py-spy)")
    return found


def without_option(argv: Sequence[str], option: str, *, values: int = 1) -> list[str]:
    """``argv`` without ``option`` and its ``values`` arguments (also ``option=value``), up to a ``--``."""
    kept: list[str] = []
    index = 0
    while index < len(argv):
        argument = argv[index]
        if argument == "--":
            kept.extend(argv[index:])
            break
        if argument == option:
            index += 1 + values
            continue
        if values == 1 and argument.startswith(option + "="):
            index += 1
            continue
        kept.append(argument)
        index += 1
    return kept


def rerun_profiled(
    *,
    argv: Sequence[str],
    output_file: str | os.PathLike[str],
    module: str | None = None,
    script: str | os.PathLike[str] | None = None,
    option: str = "--profile-cpu",
    py_spy: str | None = None,
    rate: int = 100,
) -> int:
    """Re-runs the current stage without ``option FILE`` under py-spy; returns the stage's exit status.

    For the stage entry points: ``argv`` is the stage's own argument list (``sys.argv[1:]``). The stage is
    started again as ``python -m module`` when ``module`` is given, else as ``python script`` (by default
    ``sys.argv[0]``, the entry-point script that is running). Writes ``output_file`` and ``output_file.svg``.
    """
    if module is not None and script is not None:
        raise ValueError("give module or script, not both")
    target = ["-m", module] if module is not None else [os.fspath(script if script is not None else sys.argv[0])]
    command = [sys.executable, *target, *without_option(argv, option)]
    return profile_command(command, output_file, py_spy=py_spy, rate=rate)


def profile_command(
    argv: Sequence[str],
    output_file: str | os.PathLike[str],
    *,
    py_spy: str | None = None,
    rate: int = 100,
    env: dict[str, str] | None = None,
) -> int:
    """Runs a Python command under py-spy and returns the command's own exit status.

    ``argv`` is ``[python, "-m", module, ...]``, ``[python, "-c", code, ...]`` or ``[python, script, ...]``;
    that interpreter must be able to import ``redss_pipeline``. Standard output, error and input are the
    command's own. Writes the collapsed stacks to ``output_file`` and a flame graph to ``output_file.svg``.
    """
    output = Path(output_file)
    svg = Path(f"{output}.svg")
    if len(argv) < 2 or argv[1].startswith("-") and (argv[1] not in ("-m", "-c") or len(argv) < 3):
        raise ProfilingError(f"cannot profile {list(argv)!r}: expected python -m <module>, -c <code> or <script>")
    if not output.parent.is_dir():
        raise ProfilingError("the folder for the CPU profile does not exist", path=output)
    executable = py_spy if py_spy is not None else find_py_spy()
    with tempfile.TemporaryDirectory(prefix="redss-profile-") as work:
        status_file = Path(work) / "exit-status"
        raw_file = Path(work) / "profile.txt"
        spy_status, messages = _run_under_py_spy(executable, rate, raw_file, status_file, argv, env)
        status = int(status_file.read_text()) if status_file.is_file() else None
        if spy_status != 0 and _PERMISSION_PATTERNS.search(messages):
            finished = "" if status is None else f" (the stage itself finished with status {status})"
            raise ProfilingError(
                "py-spy is not allowed to read the stage's process, so no CPU profile was taken"
                f"{finished}. Inside Docker, start the container with '--cap-add SYS_PTRACE' "
                "(docker run --cap-add SYS_PTRACE ..., or cap_add: [SYS_PTRACE] in docker-compose); "
                "elsewhere allow ptrace (kernel.yama.ptrace_scope) or run without --profile-cpu",
                path=output,
            )
        if status is None:
            raise ProfilingError(
                f"py-spy did not run the command (py-spy exit status {spy_status}): {_last_error(messages)}",
                path=output,
            )
        text = raw_file.read_text(encoding="utf-8") if raw_file.is_file() else ""
        stacks = [(_strip_runner_frames(frames), count) for frames, count in parse_collapsed(text, path=raw_file)]
        stacks = [(frames, count) for frames, count in stacks if frames]
        _write_atomically(output, _format_collapsed(stacks))
        _write_atomically(svg, render_flame_graph_svg(stacks, title=f"CPU profile: {output.name}"))
    samples = sum(count for _, count in stacks)
    note = "" if samples else f" (py-spy: {_last_error(messages)})"
    print(f"profiling: {samples} samples written to {output} and {svg.name}{note}", file=sys.stderr)
    return status


def parse_collapsed(text: str, *, path: object = None) -> list[tuple[tuple[str, ...], int]]:
    """Reads collapsed stacks (``frame;frame;... count`` per line); lines without frames are skipped.

    py-spy writes such lines for samples taken while the interpreter had no Python frame.
    """
    stacks: list[tuple[tuple[str, ...], int]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        match = _LINE.match(line.rstrip())
        if match is None:
            if re.fullmatch(r"\s*\d+", line):
                continue  # no frames at all
            raise ProfilingError(f"line {number} is not 'frames count': {line[:80]!r}", path=path)
        frames = tuple(frame for frame in match.group("stack").split(";") if frame)
        if frames:
            stacks.append((frames, int(match.group("count"))))
    return stacks


def render_flame_graph_svg(
    stacks: Iterable[tuple[Sequence[str], int]], *, title: str = "CPU profile", width: int = 1200
) -> str:
    """A static SVG flame graph: callers below callees, widths proportional to samples, a tooltip per frame."""
    root = _Node("all")
    for frames, count in stacks:
        root.add(frames, count)
    frame_height, top, bottom, side = 16, 36, 8, 10
    depth = root.depth()
    height = top + (depth + 1) * frame_height + bottom
    scale = (width - 2 * side) / root.count if root.count else 0.0
    parts = [
        '<?xml version="1.0" encoding="UTF-8" standalone="no"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="Verdana, sans-serif" font-size="12">',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#f8f8f0"/>',
        f'<text x="{width / 2:.1f}" y="22" text-anchor="middle" font-size="16">{escape(title)}</text>',
    ]
    if not root.count:
        parts.append(f'<text x="{width / 2:.1f}" y="{top + 14}" text-anchor="middle">no samples</text>')
    pending = [(root, 0, 0.0)]
    while pending:
        node, level, offset = pending.pop()
        box_width = node.count * scale
        if box_width < 0.1:
            continue
        x = side + offset * scale
        y = height - bottom - (level + 1) * frame_height
        share = 100.0 * node.count / root.count
        label = _fit(node.name, box_width)
        parts.append(
            f"<g><title>{escape(node.name)} ({node.count} samples, {share:.2f}%)</title>"
            f'<rect x="{x:.2f}" y="{y}" width="{box_width:.2f}" height="{frame_height - 1}" '
            f'fill="{_colour(node.name)}" rx="2" ry="2"/>'
            + (f'<text x="{x + 3:.2f}" y="{y + frame_height - 4}">{escape(label)}</text>' if label else "")
            + "</g>"
        )
        child_offset = offset
        for name in sorted(node.children):
            child = node.children[name]
            pending.append((child, level + 1, child_offset))
            child_offset += child.count
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


# --------------------------------------------------------------------------------------------- internals
@dataclass
class _Node:
    name: str
    count: int = 0
    children: dict[str, "_Node"] = field(default_factory=dict)

    def add(self, frames: Sequence[str], count: int) -> None:
        self.count += count
        node = self
        for frame in frames:
            node = node.children.setdefault(frame, _Node(frame))
            node.count += count

    def depth(self) -> int:
        deepest, pending = 0, [(self, 0)]
        while pending:
            node, level = pending.pop()
            deepest = max(deepest, level)
            pending.extend((child, level + 1) for child in node.children.values())
        return deepest


def _fit(name: str, box_width: float) -> str:
    """The frame name cut to the box (about 7 px a character), or nothing if not even 3 characters fit."""
    room = int((box_width - 6) / 7)
    if room < 3:
        return ""
    return name if len(name) <= room else name[: room - 2] + ".."


def _colour(name: str) -> str:
    """A warm colour derived from the function name, stable from run to run (FlameGraph's 'hot' palette)."""
    function = name.split(" (", 1)[0]
    digest = zlib.crc32(function.encode("utf-8"))
    v1, v2, v3 = (digest & 0xFF) / 255, ((digest >> 8) & 0xFF) / 255, ((digest >> 16) & 0xFF) / 255
    return f"rgb({205 + int(50 * v3)},{int(230 * v1)},{int(55 * v2)})"


def _format_collapsed(stacks: Iterable[tuple[Sequence[str], int]]) -> str:
    merged: dict[str, int] = {}
    for frames, count in stacks:
        key = ";".join(frames)
        merged[key] = merged.get(key, 0) + count
    return "".join(f"{key} {count}\n" for key, count in sorted(merged.items()))


def _strip_runner_frames(frames: Sequence[str]) -> tuple[str, ...]:
    """The program's part of a stack: without the interpreter's and the runner's frames below it.

    Samples taken while the runner itself was starting (before the program's first line) become empty.
    Stacks of threads the program starts contain no runner frame and are kept whole. The process frame
    (sampling subprocesses) goes too, so the stacks of the stage's worker processes add up with its own.
    """
    if frames and _PROCESS_FRAME.match(frames[0]):
        frames = frames[1:]
    runner = [index for index, frame in enumerate(frames) if _RUNNER_FRAME.search(frame)]
    if not runner:
        return () if frames and _START_UP_ROOT.search(frames[0]) else tuple(frames)
    if not frames[runner[-1]].startswith(f"{_run_target.__name__} "):
        return ()
    rest = runner[-1] + 1
    while rest < len(frames) and _RUNPY_FRAME.search(frames[rest]):
        rest += 1
    return tuple(frames[rest:])


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def _last_error(stderr_tail: str) -> str:
    lines = [line.strip() for line in stderr_tail.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith(("Error:", "py-spy>")):
            return line
    return lines[-1] if lines else "no message"


def _run_under_py_spy(
    executable: str, rate: int, raw_file: Path, status_file: Path, argv: Sequence[str], env: dict[str, str] | None
) -> tuple[int, str]:
    """Runs ``argv`` under ``py-spy record``; returns py-spy's exit status and its messages.

    py-spy starts the command with py-spy's own standard output and error, where py-spy also writes its
    progress messages. So py-spy's are captured here, and the command gets this process's standard output and
    error back by file descriptor (the runner puts them in place before the program starts): a terminal stays
    a terminal and the program's output is not mixed with py-spy's.
    """
    stdout_fd, stderr_fd = os.dup(1), os.dup(2)
    try:
        command = [
            # --subprocesses: stage 3's worker processes are sampled too, their stacks summed with the main one's.
            executable, "record", "--subprocesses", "--format", "raw", "--rate", str(rate), "--output", str(raw_file),
            "--",
            argv[0], "-m", _RUNNER_MODULE, _STATUS_FLAG, str(status_file),
            _STDOUT_FLAG, str(stdout_fd), _STDERR_FLAG, str(stderr_fd), *argv[1:],
        ]  # fmt: skip
        try:
            process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, pass_fds=(stdout_fd, stderr_fd), env=env
            )
        except OSError as error:
            raise ProfilingError(f"cannot start py-spy ({executable}): {error.strerror}") from None
        try:
            messages, _ = process.communicate()
        except KeyboardInterrupt:
            # Control-C reaches py-spy and the program too: let py-spy write what it sampled before stopping.
            messages, _ = process.communicate()
        return process.returncode, messages.decode("utf-8", "replace")
    finally:
        os.close(stdout_fd)
        os.close(stderr_fd)


def _run_target(status_file: str, target: list[str]) -> None:
    """Runs ``target`` (``-m module ...``, ``-c code ...`` or ``script ...``) as ``python`` would."""
    import runpy

    status = 1
    try:
        if target[0] == "-m":
            sys.argv = [target[1], *target[2:]]
            runpy.run_module(target[1], run_name="__main__", alter_sys=True)
        elif target[0] == "-c":
            sys.argv = ["-c", *target[2:]]
            exec(compile(target[1], "<string>", "exec"), {"__name__": "__main__", "__builtins__": __builtins__})
        else:
            sys.argv = list(target)
            sys.path[0] = os.path.dirname(os.path.abspath(target[0]))
            runpy.run_path(target[0], run_name="__main__")
        status = 0
    except SystemExit as exit_request:
        code = exit_request.code
        status = 0 if code is None else code if isinstance(code, int) else 1
        raise
    except KeyboardInterrupt:
        status = 130
        raise
    finally:
        Path(status_file).write_text(str(status & 0xFF), encoding="ascii")


def _restore_stdio(stdout_fd: int, stderr_fd: int) -> None:
    """Puts the profiling process's own standard output and error back in place of py-spy's."""
    for stream, fd, target in ((sys.stdout, stdout_fd, 1), (sys.stderr, stderr_fd, 2)):
        stream.flush()
        os.dup2(fd, target)
        os.close(fd)
        stream.reconfigure(line_buffering=os.isatty(target) or stream is sys.stderr)  # type: ignore[union-attr]


if __name__ == "__main__":
    _flags = sys.argv[1:7:2]
    if len(sys.argv) < 8 or _flags != [_STATUS_FLAG, _STDOUT_FLAG, _STDERR_FLAG]:
        sys.exit(
            f"usage: python -m {_RUNNER_MODULE} {_STATUS_FLAG} FILE {_STDOUT_FLAG} FD {_STDERR_FLAG} FD "
            "(-m MODULE | -c CODE | SCRIPT) [ARGS]"
        )
    _restore_stdio(int(sys.argv[4]), int(sys.argv[6]))
    _run_target(sys.argv[2], sys.argv[7:])
