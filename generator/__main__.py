"""``python -m generator ENV [--workers N] [--out FILE] [--envs-dir DIR]``: write cfn/ENV.json if it changed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from generator.settings import load_env
from generator.template import template_path, write_template
from lambdas.errors import SettingsError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m generator", description=__doc__)
    parser.add_argument("env", help="environment name: reads envs/ENV-env.sh")
    parser.add_argument("--workers", type=int, help="override num_copy_lambda_workers")
    parser.add_argument("--out", type=Path, help="output file (default cfn/ENV.json)")
    parser.add_argument("--envs-dir", type=Path, default=Path("envs"))
    args = parser.parse_args(argv)
    try:
        settings = load_env(args.env, args.envs_dir)
        if args.workers is not None:
            settings = settings.with_workers(args.workers)
    except SettingsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    out = args.out or template_path(settings)
    changed = write_template(settings, out)
    print(f"{out}: {'written' if changed else 'unchanged'} ({settings.workers} workers)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
