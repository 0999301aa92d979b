"""`ztgate policy …`: the security team's Rego tooling (issue 4, "Security-team CLI").

``--bundle`` takes a bundle directory or a ``.tar.gz`` (OPA bundle format) and
defaults to the zero-trust bundle shipped with ztgate. Exit 0 on success; 1 when
the answer is "no" (failing tests, compile errors, a bad signature, decisions
that would change); 2 for bad input, with a one-line ``ztgate: <reason>``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crypto import keys
from crypto.errors import CryptoError
from policy.bundle import MANIFEST, SIGNATURES, Bundle, BundleError, read_tree
from policy.decision import Decision, deny
from ztgate.crypto_cli import CliError

if TYPE_CHECKING:
    from policy.embedded import EmbeddedEngine

# The engine, checker and test runner (and regorus) are imported by the commands that
# use them, so other `ztgate` commands do not pay for loading them.

MAX_BUNDLE = 64 * 1024 * 1024
MAX_RECORDED = 10_000
"""At most this many recorded inputs per `diff` run."""


def _read(path: Path, limit: int) -> bytes:
    try:
        with path.open("rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from None
    if len(data) > limit:
        raise CliError(f"{path}: larger than {limit} bytes")
    return data


def _read_input(path: Path) -> bytes:
    """At most one byte over the input limit, so `parse_input_json` can refuse it."""
    from policy.contract import MAX_INPUT_BYTES

    if str(path) == "-":
        return sys.stdin.buffer.read(MAX_INPUT_BYTES + 1)
    try:
        with path.open("rb") as fh:
            return fh.read(MAX_INPUT_BYTES + 1)
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from None


def _read_tree(root: Traversable, prefix: str = "") -> Iterator[tuple[str, bytes]]:
    for entry in sorted(root.iterdir(), key=lambda t: t.name):
        rel = f"{prefix}{entry.name}"
        if entry.name.startswith(".") and rel not in (MANIFEST, SIGNATURES):
            continue
        if entry.is_dir():
            yield from _read_tree(entry, rel + "/")
        elif entry.is_file():
            yield rel, entry.read_bytes()


def default_bundle() -> Bundle:
    """The bundle shipped in the package (``policy/bundles/default``), zip-safe."""
    root = resources.files("policy").joinpath("bundles").joinpath("default")
    if not root.is_dir():
        raise CliError("the default policy bundle is not installed (policy/bundles/default)")
    return Bundle.from_files(dict(_read_tree(root)))


def load_bundle(path: Path | None) -> Bundle:
    """A bundle directory, a ``.tar.gz`` bundle, or (None) the default bundle."""
    try:
        if path is None:
            return default_bundle()
        if path.is_dir():
            return Bundle.from_dir(path)
        return Bundle.from_tarball(_read(path, MAX_BUNDLE))
    except BundleError as exc:
        raise CliError(f"{path or 'default bundle'}: {exc}") from None


def _source_files(directory: Path) -> dict[str, bytes]:
    """A bundle source tree's files (no manifest needed: `build` writes one)."""
    try:
        return read_tree(directory)
    except BundleError as exc:
        raise CliError(str(exc)) from None


def _engine(bundle: Bundle) -> EmbeddedEngine:
    from policy.embedded import EmbeddedEngine, PolicyCompileError

    try:
        return EmbeddedEngine(bundle)
    except PolicyCompileError as exc:
        raise CliError(f"bundle {bundle.revision} does not compile: {exc}") from None


def _where(args: argparse.Namespace) -> str:
    """Prefix that turns bundle paths into paths the operator can open."""
    bundle_arg: Path | None = args.bundle
    return f"{bundle_arg}/" if bundle_arg is not None and bundle_arg.is_dir() else ""


def cmd_test(args: argparse.Namespace) -> int:
    from policy.testing import run_tests

    report = run_tests(load_bundle(args.bundle))
    if args.json:
        print(json.dumps(report.as_json(), indent=2))
        return 0 if report.ok else 1
    for name in report.passed if args.verbose else ():
        print(f"PASS {name}")
    for name, why in report.failed:
        print(f"FAIL {name}: {why}")
    total = len(report.passed) + len(report.failed)
    print(
        f"PASS: {len(report.passed)}/{total}"
        + ("" if report.ok else f", FAIL: {len(report.failed)}")
    )
    if report.coverage is not None:
        print(f"coverage: {report.coverage * 100:.1f}% of policy lines")
    if args.coverage:
        for f in report.files:
            print(
                f"  {_where(args)}{f.file}: {f.fraction * 100:.1f}% ({f.covered}/{f.total} lines)"
            )
            if f.not_covered:
                print(f"    lines not covered: {', '.join(map(str, f.not_covered))}")
            if f.uncovered_rules:
                print(f"    rules not covered: {', '.join(f.uncovered_rules)}")
    if not report.ok:
        print(f"ztgate: {len(report.failed)} policy test(s) failed", file=sys.stderr)
        return 1
    if not total:
        print("ztgate: no test_ rules found; an untested bundle does not pass", file=sys.stderr)
        return 1
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from policy.check import check_bundle

    bundle = load_bundle(args.bundle)
    errors = check_bundle(bundle)
    prefix = _where(args)
    for err in errors:
        print(f"{prefix}{err}" if err.file else str(err))
    if errors:
        print(f"ztgate: {len(errors)} error(s) in bundle {bundle.revision}", file=sys.stderr)
        return 1
    print(f"ok: revision {bundle.revision}, {len(bundle.modules)} module(s)", file=sys.stderr)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from policy.contract import parse_input_json

    engine = _engine(load_bundle(args.bundle))
    doc = parse_input_json(_read_input(args.input))
    decision = deny(doc, engine.revision) if isinstance(doc, str) else engine.evaluate(doc)
    print(json.dumps(decision.as_json(), indent=2))
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    from policy.check import check_bundle

    files = _source_files(args.bundle)
    roots: tuple[str, ...] = tuple(args.root) if args.root else ("",)
    if not args.root and MANIFEST in files:
        try:
            manifest = json.loads(files[MANIFEST])
            roots = tuple(manifest.get("roots", [""]))
        except (ValueError, AttributeError, TypeError):
            raise CliError(f"{args.bundle}/{MANIFEST}: not a JSON object") from None
    try:
        bundle = Bundle.build(files, revision=args.revision, roots=roots)
    except BundleError as exc:
        raise CliError(str(exc)) from None
    errors = check_bundle(bundle)
    for err in errors:
        print(f"{args.bundle}/{err}" if err.file else str(err))
    if errors:
        print(f"ztgate: {len(errors)} error(s); bundle not built", file=sys.stderr)
        return 1
    _write(args.out, bundle.to_tarball())
    print(
        json.dumps(
            {
                "revision": bundle.revision,
                "roots": list(bundle.roots),
                "files": len(bundle.files),
                "out": str(args.out),
            }
        )
    )
    return 0


def _write(path: Path, data: bytes) -> None:
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror}") from None


def cmd_sign(args: argparse.Namespace) -> int:
    from policy.signing import sign_bundle

    bundle = load_bundle(args.bundle)
    try:
        key = keys.load_private(_read(args.key, 1024 * 1024))
        signed = sign_bundle(bundle, key, kid=args.kid)
    except (BundleError, CryptoError) as exc:
        raise CliError(str(exc)) from None
    _write(args.out, signed.to_tarball())
    print(json.dumps({"revision": signed.revision, "kid": args.kid, "out": str(args.out)}))
    return 0


def _public_key(path: Path) -> keys.PublicKey:
    data = _read(path, 1024 * 1024)
    try:
        return keys.load_public(data)
    except CryptoError:
        return keys.load_private(data).public_key()


def cmd_verify(args: argparse.Namespace) -> int:
    from policy.signing import verify_bundle

    bundle = load_bundle(args.bundle)
    try:
        public = _public_key(args.key)
    except CryptoError as exc:
        raise CliError(f"{args.key}: {exc}") from None
    try:
        verify_bundle(bundle, keys={args.kid: public})
    except BundleError as exc:
        print(f"ztgate: verification failed: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"verified": True, "revision": bundle.revision, "kid": args.kid}))
    return 0


def _recorded(directory: Path) -> Iterator[tuple[str, dict[str, Any] | str]]:
    """``(name, input or reason)`` for each recorded input in `directory`.

    ``*.json`` is one input document or one decision-log entry (its ``input``);
    ``*.jsonl`` holds decision-log entries (OPA's format, see `policy.decision_log`),
    one a line, named ``file:line``.
    """
    if not directory.is_dir():
        raise CliError(f"{directory}: not a directory")
    count = 0
    for path in sorted(directory.rglob("*")):
        if path.suffix not in (".json", ".jsonl") or not path.is_file():
            continue
        rel = path.relative_to(directory).as_posix()
        raw = _read(path, MAX_BUNDLE)
        lines = raw.splitlines() if path.suffix == ".jsonl" else [raw]
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            count += 1
            if count > MAX_RECORDED:
                raise CliError(f"{directory}: more than {MAX_RECORDED} recorded inputs")
            name = f"{rel}:{n}" if path.suffix == ".jsonl" else rel
            yield name, _recorded_input(line)


def _recorded_input(raw: bytes) -> dict[str, Any] | str:
    """The input of a decision-log entry, else the document itself (or why it is bad)."""
    from policy.contract import MAX_INPUT_BYTES, parse_input_json

    if len(raw) <= MAX_INPUT_BYTES * 2:
        try:
            entry = json.loads(raw)
        except (ValueError, RecursionError):
            entry = None
        if isinstance(entry, dict) and "decision_id" in entry and "input" in entry:
            inner: object = entry["input"]
            if not isinstance(inner, dict):
                return "input:type:input"
            return {str(k): v for k, v in inner.items()}
    return parse_input_json(raw)


def _decide(engine: EmbeddedEngine, doc: dict[str, Any] | str) -> Decision:
    return deny(doc, engine.revision) if isinstance(doc, str) else engine.evaluate(doc)


def _verdict(decision: Decision) -> dict[str, Any]:
    out = decision.as_json()
    out.pop("revision", None)
    return out


def cmd_diff(args: argparse.Namespace) -> int:
    candidate = _engine(load_bundle(args.bundle))
    baseline = _engine(load_bundle(args.against))
    total = changed = 0
    for name, doc in _recorded(args.inputs):
        total += 1
        before, after = _verdict(_decide(baseline, doc)), _verdict(_decide(candidate, doc))
        if before != after:
            changed += 1
            print(json.dumps({"input": name, "against": before, "bundle": after}))
    print(
        f"{changed} of {total} recorded input(s) change decision "
        f"({baseline.revision} -> {candidate.revision})",
        file=sys.stderr,
    )
    return 1 if changed else 0


def cmd_serve(args: argparse.Namespace) -> int:
    """OPA's REST API over the embedded engine (`policy.serve`; engineer D's addition)."""
    import asyncio

    from policy.serve import ServeError, serve_forever
    from policy.server import PolicyServerConfig

    bundle = load_bundle(args.bundle)
    verify = None
    if args.key is not None or args.kid is not None:
        if args.key is None or args.kid is None:
            raise CliError("--key and --kid go together")
        try:
            verify = {args.kid: _public_key(args.key)}
        except CryptoError as exc:
            raise CliError(f"{args.key}: {exc}") from None
    config = PolicyServerConfig(host=args.host, port=args.port)
    try:
        asyncio.run(
            serve_forever(
                bundle,
                config=config,
                bundle_path=args.bundle,
                watch_interval=args.watch,
                admin_token_file=args.admin_token_file,
                verify_keys=verify,
                decision_log_path=args.decision_log,
            )
        )
    except (ServeError, OSError) as exc:
        raise CliError(str(exc)) from None
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "policy",
        help="Rego policy tooling: test, check, eval, build/sign/verify bundles, diff, serve",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cmds = parser.add_subparsers(dest="policy_command", required=True, metavar="COMMAND")

    def add(name: str, fn: object, help_: str) -> argparse.ArgumentParser:
        p = cmds.add_parser(name, help=help_, description=help_)
        p.set_defaults(func=fn)
        return p

    def bundle_opt(p: argparse.ArgumentParser, required: bool = False, what: str = "DIR") -> None:
        p.add_argument(
            "--bundle",
            type=Path,
            required=required,
            metavar=what,
            help="bundle directory or .tar.gz" + ("" if required else " (default: ztgate's own)"),
        )

    p = add("test", cmd_test, "run the bundle's test_ rules (exit 1 if any fails)")
    bundle_opt(p)
    p.add_argument("--coverage", action="store_true", help="per-file line and rule coverage")
    p.add_argument("-v", "--verbose", action="store_true", help="list passing tests too")
    p.add_argument("--json", action="store_true", help="print the report as JSON")

    p = add("check", cmd_check, "parse and compile every module; errors as file:line:col")
    bundle_opt(p)

    p = add("eval", cmd_eval, "print the decision for one input document (JSON)")
    p.add_argument("--input", type=Path, required=True, metavar="FILE", help="'-' for stdin")
    bundle_opt(p)

    p = add("build", cmd_build, "check a bundle directory and write it as an OPA .tar.gz")
    bundle_opt(p, required=True)
    p.add_argument("--revision", required=True, metavar="REV")
    p.add_argument(
        "--root",
        action="append",
        metavar="PATH",
        help="bundle root (repeatable; default: the directory's .manifest roots, else all of data)",
    )
    p.add_argument("--out", type=Path, required=True, metavar="FILE.tar.gz")

    p = add("sign", cmd_sign, "sign a bundle (.signatures.json, OPA format)")
    bundle_opt(p, required=True, what="FILE")
    p.add_argument(
        "--key", type=Path, required=True, metavar="KEY.pem", help="private key (SM2 or EC P-256)"
    )
    p.add_argument("--kid", required=True, metavar="KID", help="key id recorded in the signature")
    p.add_argument("--out", type=Path, required=True, metavar="FILE.tar.gz")

    p = add("verify", cmd_verify, "verify a signed bundle (exit 0 valid, 1 invalid, 2 error)")
    bundle_opt(p, required=True, what="FILE")
    p.add_argument("--key", type=Path, required=True, metavar="PUB.pem")
    p.add_argument("--kid", required=True, metavar="KID")

    p = add(
        "diff",
        cmd_diff,
        "list recorded inputs whose decision the bundle would change (exit 1 if any)",
    )
    p.add_argument(
        "--against",
        type=Path,
        required=True,
        metavar="BUNDLE",
        help="the bundle to compare with (directory or .tar.gz), e.g. the active one",
    )
    p.add_argument(
        "--inputs",
        type=Path,
        required=True,
        metavar="DIR",
        help="*.json input documents or decision-log entries; *.jsonl decision logs",
    )
    bundle_opt(p)

    p = add(
        "serve", cmd_serve, "serve OPA's REST API (/v1/data, /v1/policies, /health) until Ctrl-C"
    )
    bundle_opt(p)
    p.add_argument("--host", default="127.0.0.1", help="listen address (default: loopback)")
    p.add_argument("--port", type=int, default=8181, help="listen port (default: 8181, OPA's)")
    p.add_argument(
        "--admin-token-file",
        type=Path,
        metavar="FILE",
        help="bearer token for PUT/DELETE /v1/policies (created if missing); without: read-only",
    )
    p.add_argument("--watch", type=float, metavar="SECONDS", help="reload --bundle when it changes")
    p.add_argument("--key", type=Path, metavar="PUB.pem", help="require bundles signed by this key")
    p.add_argument("--kid", metavar="KID", help="key id of --key")
    p.add_argument(
        "--decision-log", type=Path, metavar="FILE", help="OPA decision log (JSON lines)"
    )
