"""An S3 API server on 127.0.0.1 for the object-storage tests: moto's server mode, started and stopped by the
test, with throwaway credentials set for that test only (the code under test finds them through the standard
AWS variables, as a user's run would). The server runs in its own process: in-process, its request threads
would share the GIL with the writers under test."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow.fs as pafs
import pytest

NO_AUTH_ACTIONS = 3
"""The server checks signatures after this many requests: the three that make the test's IAM user and key."""


@dataclass
class S3Server:
    endpoint: str
    process: subprocess.Popen[bytes]
    access_key: str = ""
    secret_key: str = ""

    def bucket(self, name: str | None = None) -> str:
        """Create a fresh bucket (unique per call: moto keeps state per process) and return its name."""
        name = name or f"b-{uuid.uuid4().hex[:12]}"
        host, port = self.endpoint.removeprefix("http://").split(":")
        fs = pafs.S3FileSystem(endpoint_override=f"{host}:{port}", scheme="http", region="us-east-1",
                               access_key=self.access_key, secret_key=self.secret_key, allow_bucket_creation=True)
        fs.create_dir(name)
        return name

    def stop(self) -> None:
        """Stop the server (a test may do it mid-run to drop the connection); idempotent."""
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


def closed_port() -> int:
    """A 127.0.0.1 port where nothing listens (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _make_user(server: S3Server) -> None:
    """An IAM user with full access and its key pair (so a wrong key is refused, as AWS would)."""
    import boto3  # moto's own dependency: a test-side client, used to set the server up

    iam = boto3.client("iam", endpoint_url=server.endpoint, region_name="us-east-1",
                       aws_access_key_id="setup", aws_secret_access_key="setup")
    iam.create_user(UserName="liveditor")
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    iam.put_user_policy(UserName="liveditor", PolicyName="all", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName="liveditor")["AccessKey"]
    server.access_key, server.secret_key = key["AccessKeyId"], key["SecretAccessKey"]


def set_credentials(monkeypatch: pytest.MonkeyPatch, server: S3Server) -> None:
    for name, value in {"AWS_ACCESS_KEY_ID": server.access_key, "AWS_SECRET_ACCESS_KEY": server.secret_key,
                        "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
                        "AWS_ENDPOINT_URL": server.endpoint}.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)


def _wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    """Poll until the server accepts connections (it imports for a few seconds), or fail if it exited."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto server exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("moto server did not start listening")


@pytest.fixture(name="s3")
def s3_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Server]:
    """A running S3 API server on 127.0.0.1 and the standard AWS variables pointing at it."""
    port = closed_port()
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": str(NO_AUTH_ACTIONS)}
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    server = S3Server(f"http://127.0.0.1:{port}", process)
    try:
        _wait_listening(port, process)
        _make_user(server)
        set_credentials(monkeypatch, server)
        yield server
    finally:
        server.stop()
