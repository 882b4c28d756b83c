"""--profile-cpu: py-spy collapsed stacks and an SVG flame graph, without changing what the profiled run does."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ElementTree

import pytest

from redss_pipeline.core.profiling import (
    ProfilingError,
    parse_collapsed,
    profile_command,
    render_flame_graph_svg,
    rerun_profiled,
    without_option,
)

# A small stand-in for a stage: deterministic outputs, a given exit status, and about 0.4 s of CPU work in a
# function whose name must show up in the profile.
WORKLOAD = textwrap.dedent(
    """
    import sys, time

    def busy_counting(seconds):
        total, end = 0, time.perf_counter() + seconds
        while time.perf_counter() < end:
            total += sum(range(500))
        return total

    def main(args):
        output, status = args[0], int(args[1])
        busy_counting(0.4)
        with open(output, "w", encoding="utf-8") as handle:
            handle.write("squares," + ",".join(str(n * n) for n in range(10)) + "\\n")
            handle.write("args," + "|".join(args) + "\\n")
        print("stage output line")
        print("stage warning line", file=sys.stderr)
        return status

    if __name__ == "__main__":
        sys.exit(main(sys.argv[1:]))
    """
)
_LINE = re.compile(r"^[^;\s][^\n]* \d+$")


@pytest.fixture
def workload(tmp_path):
    path = tmp_path / "workload.py"
    path.write_text(WORKLOAD, encoding="utf-8")
    return path


def test_profile_is_collapsed_stacks_and_an_svg_flame_graph(tmp_path, workload):
    """The profile file holds 'frames count' lines naming the busy function; the .svg beside it is valid XML."""
    profile = tmp_path / "stage3.prof"
    status = profile_command([sys.executable, str(workload), str(tmp_path / "out.csv"), "0"], profile)
    assert status == 0
    lines = profile.read_text(encoding="utf-8").splitlines()
    assert lines, "the profile is empty"
    assert all(_LINE.match(line) for line in lines), lines[:5]
    stacks = parse_collapsed("\n".join(lines))
    assert sum(count for _, count in stacks) >= 5
    assert any(frame.startswith("busy_counting (") for frames, _ in stacks for frame in frames)
    assert not any("profiling.py" in frame or "runpy" in frame for frames, _ in stacks for frame in frames)
    svg = ElementTree.parse(f"{profile}.svg").getroot()
    assert svg.tag == "{http://www.w3.org/2000/svg}svg"
    titles = [element.text or "" for element in svg.iter("{http://www.w3.org/2000/svg}title")]
    assert any(title.startswith("busy_counting (") for title in titles)


def test_outputs_and_exit_status_are_the_same_with_and_without_profiling(tmp_path, workload):
    """A profiled run writes the same files, prints the same lines and exits with the same status."""
    plain_out, profiled_out = tmp_path / "plain.csv", tmp_path / "profiled.csv"
    plain = subprocess.run(
        [sys.executable, str(workload), str(plain_out), "3"], capture_output=True, text=True, check=False
    )
    script = (
        "import sys\n"
        "from redss_pipeline.core.profiling import profile_command\n"
        f"sys.exit(profile_command([sys.executable, {str(workload)!r}, {str(profiled_out)!r}, '3'], "
        f"{str(tmp_path / 'p.prof')!r}))\n"
    )
    profiled = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert profiled.returncode == plain.returncode == 3
    assert profiled_out.read_text().splitlines()[0] == plain_out.read_text().splitlines()[0]
    assert profiled.stdout == plain.stdout == "stage output line\n"
    assert "stage warning line" in profiled.stderr


def test_rerun_profiled_drops_only_the_profile_option(tmp_path, workload):
    """The stage is re-run with its own arguments, minus --profile-cpu FILE."""
    profile = tmp_path / "run.prof"
    out = tmp_path / "out.csv"
    argv = ["--profile-cpu", str(profile), str(out), "0"]
    assert rerun_profiled(argv=argv, output_file=profile, script=workload) == 0
    assert out.read_text().splitlines()[1] == f"args,{out}|0"
    assert profile.stat().st_size > 0


def test_without_option_keeps_everything_else():
    """--profile-cpu FILE and --profile-cpu=FILE are removed; arguments after -- are kept as they are."""
    argv = ["--drive-upload", "gs://b/k.json", "CSAP", "--profile-cpu", "p.txt", "user", "root"]
    assert without_option(argv, "--profile-cpu") == ["--drive-upload", "gs://b/k.json", "CSAP", "user", "root"]
    assert without_option(["--profile-cpu=p", "u", "r"], "--profile-cpu") == ["u", "r"]
    assert without_option(["u", "--", "--profile-cpu", "x"], "--profile-cpu") == ["u", "--", "--profile-cpu", "x"]


def test_attach_failure_says_to_add_sys_ptrace(tmp_path, workload):
    """When py-spy is refused access to the process, the error explains the SYS_PTRACE capability."""
    fake = tmp_path / "py-spy"
    fake.write_text(
        "#!/bin/sh\n"
        "echo 'Permission Denied' >&2\n"
        "echo 'It looks like you are running in a docker container. Please make sure you started your "
        "container with the SYS_PTRACE capability.' >&2\n"
        "exit 1\n"
    )
    fake.chmod(0o755)
    with pytest.raises(ProfilingError, match=r"not allowed to read the stage's process.*--cap-add SYS_PTRACE"):
        profile_command(
            [sys.executable, str(workload), str(tmp_path / "o.csv"), "0"], tmp_path / "p.prof", py_spy=str(fake)
        )
    assert not (tmp_path / "p.prof").exists()


def test_missing_py_spy_is_a_clear_error(tmp_path, workload):
    """A py-spy that cannot be started is reported as such."""
    with pytest.raises(ProfilingError, match="cannot start py-spy"):
        profile_command([sys.executable, str(workload)], tmp_path / "p.prof", py_spy=str(tmp_path / "absent"))


def test_profile_folder_must_exist(tmp_path, workload):
    """A profile path in a missing folder is refused before the stage runs."""
    with pytest.raises(ProfilingError, match="folder for the CPU profile does not exist"):
        profile_command([sys.executable, str(workload)], tmp_path / "missing" / "p.prof")


def test_flame_graph_of_known_stacks():
    """Frames become boxes as wide as their share of samples, names are escaped, and the SVG is valid XML."""
    stacks = parse_collapsed(
        "<module> (a.py:1);main (a.py:5);slow (a.py:9) 30\n<module> (a.py:1);fast (a.py:2) 10\n 4\n"
    )
    assert stacks == [
        (("<module> (a.py:1)", "main (a.py:5)", "slow (a.py:9)"), 30),
        (("<module> (a.py:1)", "fast (a.py:2)"), 10),
    ]
    svg = ElementTree.fromstring(render_flame_graph_svg(stacks, width=420))
    namespace = "{http://www.w3.org/2000/svg}"
    boxes = {
        group.find(f"{namespace}title").text.split(" (")[0]: float(group.find(f"{namespace}rect").get("width"))
        for group in svg.iter(f"{namespace}g")
    }
    assert boxes["all"] == pytest.approx(400.0)
    assert boxes["slow"] == pytest.approx(300.0)
    assert boxes["fast"] == pytest.approx(100.0)


def test_malformed_profile_line_is_reported():
    """A line that is not 'frames count' is an error naming the line."""
    with pytest.raises(ProfilingError, match="line 2 is not 'frames count'"):
        parse_collapsed("a;b 3\na;b three\n")
