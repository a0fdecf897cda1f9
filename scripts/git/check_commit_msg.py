"""commit-msg hook: a subject of at most 72 characters, and a blank line before any body.

pre-commit runs it with the path of the message file (``.pre-commit-config.yaml``, stage ``commit-msg``);
``python scripts/git/check_commit_msg.py FILE`` checks one message by hand. Standard library only.
"""

from __future__ import annotations

import sys
from pathlib import Path

MAX_SUBJECT = 72


def problems(message: str) -> list[str]:
    """What is wrong with a commit message; git's comment lines (``#``) are not part of it."""
    lines = [line for line in message.splitlines() if not line.startswith("#")]
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines or not lines[0].strip():
        return ["the subject line is empty"]
    found = []
    subject = lines[0]
    if len(subject) > MAX_SUBJECT:
        found.append(
            f"the subject has {len(subject)} characters (at most {MAX_SUBJECT}): say what the commit does "
            "in the imperative, and put the why and the numbers in the body"
        )
    if subject.rstrip().endswith("."):
        found.append("the subject ends with a period")
    if len(lines) > 1 and lines[1].strip():
        found.append("the second line must be blank: the body starts on the third")
    return found


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: check_commit_msg.py COMMIT_MSG_FILE", file=sys.stderr)
        return 2
    found = problems(Path(argv[1]).read_text(encoding="utf-8"))
    for problem in found:
        print(f"commit message: {problem}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
