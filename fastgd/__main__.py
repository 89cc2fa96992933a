"""Command line of fastgd: python -m fastgd <command> [options].

Each command is a module of this package with ``add_arguments(parser)`` and
``run(args)`` (which returns the exit status); the first line of its docstring
is the command's help.  To add a command, write such a module and list it in
``COMMANDS``.
"""
import argparse
import sys

from . import bench, demo

#: command name -> module that implements it
COMMANDS = {
    "bench": bench,
    "demo": demo,
}


def main(argv=None):
    """Parse the command line, run the chosen command and return its exit status."""
    parser = argparse.ArgumentParser(prog="python -m fastgd", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", metavar="command", required=True)
    for name, module in COMMANDS.items():
        summary = module.__doc__.strip().splitlines()[0]
        sub = commands.add_parser(name, help=summary, description=module.__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
