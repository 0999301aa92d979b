"""The JA4 family table against real clients, fingerprinted by a real Envoy.

Envoy's ``tls_inspector`` computes JA4 (the value the edge hands the assessor);
its access log records it per request path. Each client on this machine makes
one HTTPS request and `device_fingerprint.ja4` must name its family — the
"measured here" rows of the table.
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from string import Template

import pytest

from device_fingerprint.ja4 import parse_ja4
from tests.conftest import Run

pytestmark = [pytest.mark.interop, pytest.mark.browser, pytest.mark.timeout(180)]

ENVOY_CONFIG = Path(__file__).parent / "data" / "envoy-ja4.yaml"
JAVA_CLIENT = """
import java.net.URI;
import java.net.http.*;
import java.security.cert.X509Certificate;
import javax.net.ssl.*;
public class Get {
  public static void main(String[] args) throws Exception {
    TrustManager[] all = {new X509TrustManager() {
      public void checkClientTrusted(X509Certificate[] c, String a) {}
      public void checkServerTrusted(X509Certificate[] c, String a) {}
      public X509Certificate[] getAcceptedIssuers() { return new X509Certificate[0]; }}};
    SSLContext tls = SSLContext.getInstance("TLS");
    tls.init(null, all, null);
    HttpClient client = HttpClient.newBuilder().sslContext(tls).build();
    System.out.println(client.send(HttpRequest.newBuilder(URI.create(args[0])).build(),
        HttpResponse.BodyHandlers.ofString()).statusCode());
  }
}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def tool(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path=os.path.dirname(sys.executable))
    if path is None:
        pytest.fail(f"{name} is required for this measurement", pytrace=False)
    return path


@pytest.fixture
def envoy(tmp_path: Path, ossl: Run) -> Iterator[tuple[str, Path]]:
    """(base URL, access log) of an Envoy that fingerprints every TLS client."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-subj", "/CN=localhost", "-days", "1", "-keyout", key, "-out", cert)  # fmt: skip
    port, log = free_port(), tmp_path / "access.log"
    config = tmp_path / "envoy.yaml"
    template = Template(ENVOY_CONFIG.read_text())
    config.write_text(
        template.substitute(admin=free_port(), port=port, cert=cert, key=key, log=log)
    )
    process = subprocess.Popen(
        [tool("envoy"), "-c", str(config), "-l", "error", "--base-id", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    err = process.stderr.read().decode() if process.stderr else ""
                    pytest.fail(f"envoy did not start: {err[-2000:]}")
                time.sleep(0.1)
        yield f"https://localhost:{port}", log
    finally:
        process.terminate()
        process.wait(timeout=10)


def run(*argv: str, env: dict[str, str] | None = None) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=90, env=env)


def test_real_clients_fall_in_their_families(envoy: tuple[str, Path], tmp_path: Path) -> None:
    base, log = envoy
    insecure = ssl.create_default_context()
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE
    with urllib.request.urlopen(f"{base}/python", context=insecure, timeout=30) as response:
        assert response.status == 200
    run(tool("curl"), "-sk", f"{base}/openssl")
    run(tool("wget"), "-q", "--no-check-certificate", "-O", "/dev/null", f"{base}/gnutls")
    script = f"require('https').get('{base}/node', r => r.resume())"
    run(tool("node"), "-e", script, env={**os.environ, "NODE_TLS_REJECT_UNAUTHORIZED": "0"})
    (tmp_path / "Get.java").write_text(JAVA_CLIENT)
    run(tool("java"), str(tmp_path / "Get.java"), f"{base}/java")
    run(
        tool("chromium"),
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--ignore-certificate-errors",
        f"--user-data-dir={tmp_path / 'chromium'}",
        "--dump-dom",
        f"{base}/chromium",
    )
    expected = {p: p for p in ("python", "openssl", "gnutls", "node", "java", "chromium")}
    seen: dict[str, str] = {}
    deadline = time.monotonic() + 10  # the file logger flushes on its own schedule
    while set(seen) < set(expected) and time.monotonic() < deadline:
        for line in log.read_text().splitlines() if log.exists() else ():
            path, _, ja4 = line.partition(" ")
            seen.setdefault(path.strip("/"), ja4)
        time.sleep(0.2)
    families = {path: getattr(parse_ja4(seen.get(path)), "family", None) for path in expected}
    assert families == expected, seen
