"""Command line: ``python -m imr_analysis <command> ...``.

Commands
--------
synth   write synthetic raw exports (EFESO, Sister, IMR summary form)
clean   validate and clean raw exports into the analysis cohort
run     execute the numbered notebooks in order through papermill
scan    scan data files and notebook outputs for direct identifiers
"""

from __future__ import annotations

import sys


# Each command imports its module only when it runs (``run`` does not pay for the generator's imports).
def _synth(argv):
    from imr_synth.cli import main
    return main(argv)


def _clean(argv):
    from imr_workflow.clean import main
    return main(argv)


def _run(argv):
    from imr_workflow.runner import main
    return main(argv)


def _scan(argv):
    from imr_workflow.scan import main
    return main(argv)


#: command -> (function taking the remaining arguments, help line)
COMMANDS = {
    "synth": (_synth, "write synthetic raw exports"),
    "clean": (_clean, "validate and clean raw exports into the cohort"),
    "run": (_run, "execute the numbered notebooks in order"),
    "scan": (_scan, "scan files for direct identifiers"),
}


def _usage() -> str:
    lines = ["usage: python -m imr_analysis <command> [options]", "", "commands:"]
    lines += [f"  {name:<7} {help_}" for name, (_, help_) in COMMANDS.items()]
    lines.append("\n'python -m imr_analysis <command> --help' describes a command's options.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"error: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    return int(COMMANDS[name][0](rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
