"""Prints Pipfile.lock's default packages as a pip requirements file: exact versions, markers and hashes.

The Docker image installs from this with ``pip install --no-deps --require-hashes``, so it gets exactly the locked
packages without pipenv and without a resolver. Usage: ``python locked_requirements.py [Pipfile.lock]``.
"""

import json
import sys


def requirement_lines(lock: dict) -> list[str]:
    lines = []
    for name, entry in sorted(lock["default"].items()):
        if "version" not in entry:  # the project itself (an editable path), installed separately
            continue
        marker = f" ; {entry['markers']}" if "markers" in entry else ""
        hashes = " ".join(f"--hash={digest}" for digest in entry["hashes"])
        lines.append(f"{name}{entry['version']}{marker} {hashes}")
    return lines


if __name__ == "__main__":
    with open(sys.argv[1] if len(sys.argv) > 1 else "Pipfile.lock", encoding="utf-8") as file:
        print("\n".join(requirement_lines(json.load(file))))
