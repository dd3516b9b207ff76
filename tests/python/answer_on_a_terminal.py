"""Runs a command on a pseudo-terminal, answers its confirmation prompt, and passes on what it
printed and its exit code: `apply` asks only on a terminal.

    python3 answer_on_a_terminal.py ANSWER PROGRAM [ARG...]
"""

import os
import pty
import select
import sys

PROMPT = b"Only 'yes' will be accepted"


def read_some(fd, timeout):
    ready, _, _ = select.select([fd], [], [], timeout)
    if not ready:
        sys.exit("timed out waiting for the program")
    try:
        return os.read(fd, 4096)
    except OSError:  # the program closed the terminal
        return b""


def main(answer, program):
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(program[0], program)
    seen = b""
    while PROMPT not in seen:
        chunk = read_some(fd, 60)
        if not chunk:
            sys.exit("the program ended without asking:\n" + seen.decode(errors="replace"))
        seen += chunk
    os.write(fd, answer.encode() + b"\n")
    while chunk := read_some(fd, 60):
        seen += chunk
    _, status = os.waitpid(pid, 0)
    sys.stdout.write(seen.decode(errors="replace"))
    sys.exit(os.waitstatus_to_exitcode(status))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
