"""The `ztgate` command line.

Every subcommand has its own ``--help``. Failures print one line,
``ztgate: <reason>``, and exit non-zero (2 for bad input or configuration; 70
for an internal error, whose traceback is shown only with ``ZTGATE_DEBUG=1``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from crypto.errors import CryptoError
from ztgate import (
    __version__,
    authn_cli,
    config,
    crypto_cli,
    demo,
    logs,
    nodes_cli,
    partner_cli,
    policy_cli,
    up,
)

log = logging.getLogger("ztgate.cli")


def cmd_config_check(args: argparse.Namespace) -> int:
    cfg = config.load(args.file)
    print(json.dumps({"ok": True, "file": str(args.file), "crypto": cfg.crypto.signing_algorithm}))
    return 0


def cmd_config_schema(args: argparse.Namespace) -> int:
    print(json.dumps(config.json_schema(), indent=2))
    return 0


def cmd_version(args: argparse.Namespace) -> int:
    print(f"ztgate {__version__}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ztgate",
        description="Edge authentication and zero-trust gateway (SM-series cryptography "
        "by default).",
    )
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        default=os.environ.get("ZTGATE_CONFIG") or None,
        help="configuration file (TOML; default: embedded defaults, or $ZTGATE_CONFIG)",
    )
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up.register(sub)
    demo.register(sub)
    partner_cli.register(sub)
    crypto_cli.register(sub)
    authn_cli.register(sub)
    policy_cli.register(sub)
    nodes_cli.register(sub)

    cfg = sub.add_parser("config", help="validate the configuration file or print its schema")
    cfg_cmds = cfg.add_subparsers(dest="config_command", required=True, metavar="COMMAND")
    p = cfg_cmds.add_parser("check", help="validate FILE; errors name the offending key")
    p.add_argument("file", type=Path, metavar="FILE")
    p.set_defaults(func=cmd_config_check)
    p = cfg_cmds.add_parser("schema", help="print the JSON Schema of the configuration file")
    p.set_defaults(func=cmd_config_schema)

    p = sub.add_parser("version", help="print the version")
    p.set_defaults(func=cmd_version)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        cfg = config.load(args.config)
        args.cfg = cfg
        logs.configure(args.log_level or cfg.log.level)
        return func(args)
    except (crypto_cli.CliError, CryptoError, config.ConfigError, OSError) as exc:
        print(f"ztgate: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if os.environ.get("ZTGATE_DEBUG") == "1":
            raise
        print(f"ztgate: internal error: {type(exc).__name__}", file=sys.stderr)
        return 70


if __name__ == "__main__":
    sys.exit(main())
