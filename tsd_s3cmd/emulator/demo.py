"""A full round trip with the real ``tsd-s3cmd`` against a local emulator.

``python -m tsd_s3cmd.emulator.demo`` starts ``tsd-s3cmd-emulator`` on a free
port, gives tsd-s3cmd a throw-away home, and runs the guide's steps as a
researcher would type them: set up the project (its S3 keys, and the
registration), upload (one login), list, download from the export-bucket (one
more login), show the session. The project's S3 keys and the emulator's demo
credentials are fed on stdin; every command and its output is shown.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

BIN = Path(sys.executable).parent
CREDENTIALS = "p11-demo\ndemo-password\n123456\n"


def step(
    env: dict[str, str], cwd: Path, *args: str, login: bool = False, keys: str = ""
) -> str:
    """Run one tsd-s3cmd command, echoing it and its output; stop the demo if it fails."""
    given = " and ".join(what for what, on in (("S3 keys", keys), ("credentials", login)) if on)
    print(f"\n$ tsd-s3cmd {shlex.join(args)}" + (f"   # {given} on stdin" if given else ""))
    result = subprocess.run(
        [str(BIN / "tsd-s3cmd"), *args],
        input=keys + (CREDENTIALS if login else ""),
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
    )
    sys.stdout.write(result.stdout + result.stderr)
    if result.returncode != 0:
        raise SystemExit(f"demo failed: tsd-s3cmd exited with {result.returncode}")
    return result.stdout


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="tsd-s3cmd-demo-") as tmp:
        root = Path(tmp)
        home, export = root / "home", root / "export"
        home.mkdir()
        export.mkdir()
        (export / "results.csv").write_text("sample,value\nA,0.42\nB,0.17\n")
        env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}
        emulator = subprocess.Popen(
            [str(BIN / "tsd-s3cmd-emulator"), "--port", "0", "--export-dir", str(export)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            assert emulator.stdout is not None
            line = emulator.stdout.readline().strip()
            if not line.startswith("TSD emulator listening on "):
                raise SystemExit("demo failed: the emulator did not start")
            url = line.rsplit(" ", 1)[1]
            print(f"{line}\n(TSD_API_URL={url} sends tsd-s3cmd there instead of TSD)")
            env["TSD_API_URL"] = url
            data = root / "my data.txt"
            data.write_text("measurements from the lab\n" * 1000)

            # Inside TSD the keys are in /tsd/p11/data/durable/s3-api-access-keys.
            with urllib.request.urlopen(f"{url}/_emulator/projects/p11", timeout=30) as answer:
                project = json.load(answer)
            keys = f"{project['access_key']}\n{project['secret_key']}\n"
            step(env, root, "--setup", "--project", "p11", keys=keys, login=True)
            step(env, root, "mb", "s3://demo-bucket", login=True)
            step(env, root, "put", data.name, "s3://demo-bucket/")
            step(env, root, "ls", "s3://demo-bucket", login=True)
            step(env, root, "get", "s3://export-bucket/results.csv", "downloaded.csv")
            step(env, root, "--status")

            with urllib.request.urlopen(
                f"{url}/_emulator/objects/demo-bucket/my%20data.txt", timeout=30
            ) as stored:
                uploaded_ok = stored.read() == data.read_bytes()
            downloaded_ok = (root / "downloaded.csv").read_bytes() == (
                export / "results.csv"
            ).read_bytes()
            if not (uploaded_ok and downloaded_ok):
                raise SystemExit("demo failed: the bytes that came back differ")
            print("\nRound trip OK: the upload and the download are byte-identical.")
        finally:
            emulator.terminate()
            emulator.wait(30)


if __name__ == "__main__":
    main()
