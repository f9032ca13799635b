"""``tsd-s3cmd-emulator``: start the local TSD stand-in on one port."""

from __future__ import annotations

import os
import signal
import ssl
import sys
import tempfile
import threading
from pathlib import Path

import click

from .identity import BUILT_IN_USERS, Identity, Settings, parse_user

LISTEN_QUEUE = 1024
LISTENING = "TSD emulator listening on {url}"


def s3cfg_text(host: str, port: int, access_key: str, secret_key: str, ca: Path | None) -> str:
    """An s3cmd config for p11 that points at this emulator."""
    lines = [
        "[default]",
        f"host_base = {host}:{port}",
        f"host_bucket = {host}:{port}",
        f"access_key = {access_key}",
        f"secret_key = {secret_key}",
        f"use_https = {ca is not None}",
        "signature_v2 = False",
        "bucket_location = us-east-1",
    ]
    if ca is not None:
        lines += [f"ca_certs_file = {ca}", "check_ssl_certificate = True"]
    return "\n".join(lines) + "\n"


def write_private(path: Path, text: str) -> None:
    """Write a file that holds a secret key: 0600, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def tls_context(host: str, ca_out: Path) -> ssl.SSLContext:
    """A server certificate for ``host`` from a fresh test CA, whose certificate goes to ca_out."""
    import trustme

    ca = trustme.CA()
    names = sorted({host, "127.0.0.1", "localhost"})
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(context)
    ca_out.parent.mkdir(parents=True, exist_ok=True)
    ca.cert_pem.write_to_path(str(ca_out))
    return context


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8123, show_default=True, help="Port; 0 picks a free one.")
@click.option("--token-lifetime", type=float, default=3600, show_default=True,
              help="Seconds an access token lives.")
@click.option("--refresh-count", type=int, default=10, show_default=True,
              help="Refreshes one login allows.")
@click.option("--api-key-lifetime", type=float, default=365 * 24 * 3600, show_default=True,
              help="Seconds an API key lives.")
@click.option("--read-timeout", type=click.FloatRange(min=0), default=0, metavar="SECONDS",
              help="Under load: answer nginx's 504 when the store takes longer (0: off).")
@click.option("--complete-delay", type=click.FloatRange(min=0), default=0, metavar="SECONDS",
              help="Under load: seconds the store takes to answer a completed multipart upload.")
@click.option("--complete-errors", type=click.IntRange(min=0), default=0, metavar="N",
              help="Under load: answer the next N multipart completes 200 with an S3 error.")
@click.option("--slow-down-above", type=click.IntRange(min=0), default=0, metavar="N",
              help="Under load: answer 503 SlowDown to a request that finds N in flight (0: off).")
@click.option("--write-s3cfg", type=click.Path(path_type=Path),
              help="Write an s3cmd config for p11 pointing here.")
@click.option("--export-dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Files that appear in p11's export-bucket.")
@click.option("--user", "users", multiple=True, metavar="pNN-name:password:otp[:export]",
              help="Add a user (repeatable); :export adds them to pNN-export-group.")
@click.option("--no-token-check", is_flag=True,
              help="Serve S3 without TSD's headers (benchmarks only).")
@click.option("--tls", is_flag=True, help="Serve https with a certificate from a test CA.")
@click.option("--ca-out", type=click.Path(path_type=Path), help="With --tls: write the CA here.")
def main(
    host: str,
    port: int,
    token_lifetime: float,
    refresh_count: int,
    api_key_lifetime: float,
    read_timeout: float,
    complete_delay: float,
    complete_errors: int,
    slow_down_above: int,
    write_s3cfg: Path | None,
    export_dir: Path | None,
    users: tuple[str, ...],
    no_token_check: bool,
    tls: bool,
    ca_out: Path | None,
) -> None:
    """A local TSD: the auth API under /v1/ and an S3 gateway, on one port."""
    if tls and ca_out is None:
        raise click.UsageError("--tls needs --ca-out PATH, where clients find the CA to trust")
    settings = Settings(
        token_lifetime=token_lifetime,
        refresh_count=refresh_count,
        api_key_lifetime=api_key_lifetime,
        read_timeout=read_timeout,
        complete_delay=complete_delay,
        complete_errors=complete_errors,
        slow_down_above=slow_down_above,
    )
    identity = Identity(settings)
    try:
        for user in (*BUILT_IN_USERS, *(parse_user(spec) for spec in users)):
            identity.add_user(user)
    except ValueError as err:
        raise click.UsageError(str(err)) from None

    from werkzeug.serving import WSGIRequestHandler, make_server

    from .app import EmulatorApp, export_files
    from .gateway import Storage

    storage = Storage()
    export_files(storage, identity, export_dir)
    app = EmulatorApp(identity, storage, token_check=not no_token_check)

    class QuietHandler(WSGIRequestHandler):
        def log_request(self, *args: object) -> None:  # the request log is /_emulator/requests
            pass

    context = tls_context(host, ca_out) if tls and ca_out else None
    server = make_server(
        host, port, app, threaded=True, request_handler=QuietHandler, ssl_context=context
    )
    # werkzeug listens with a queue of 128 connections; a client that opens hundreds at
    # once (s5cmd: 256) would find the rest refused and wait a second or more before each
    # try again. nginx, which TSD's gateway is, queues 511; the kernel caps it (somaxconn).
    server.socket.listen(LISTEN_QUEUE)
    port = server.server_port
    client_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    if write_s3cfg:
        project = identity.projects["p11"]
        write_private(
            write_s3cfg,
            s3cfg_text(client_host, port, project.access_key, project.secret_key,
                       ca_out.resolve() if context and ca_out else None),
        )
    if no_token_check:
        click.echo(
            "WARNING: --no-token-check: S3 requests are served WITHOUT checking TSD tokens. "
            "Use this for benchmarks only.",
            err=True,
        )
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    thread = threading.Thread(target=server.serve_forever, name="emulator", daemon=True)
    thread.start()
    scheme = "https" if context else "http"
    click.echo(LISTENING.format(url=f"{scheme}://{client_host}:{port}"))
    sys.stdout.flush()
    stop.wait()
    server.shutdown()
    server.server_close()
