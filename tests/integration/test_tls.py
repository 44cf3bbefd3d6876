"""TLS on the public listener."""

import http.client
import json
import socket
import ssl

import pytest

from conftest import IO_TIMEOUT, Raw, free_port, run_recd, scaled


@pytest.fixture(scope="module")
def d(module_factory, tls_cert):
    return module_factory(tls=tls_cert, name="tls")


def client_ctx(cert, version=None):
    ctx = ssl.create_default_context(cafile=cert)
    if version is not None:
        ctx.minimum_version = version
        ctx.maximum_version = version
    return ctx


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3],
                         ids=["tls1.2", "tls1.3"])
def test_modern_tls_works(d, tls_cert, version):
    ctx = client_ctx(tls_cert[0], version)
    conn = http.client.HTTPSConnection("127.0.0.1", d.port, timeout=IO_TIMEOUT, context=ctx)
    try:
        conn.request("GET", "/healthz")
        r = conn.getresponse()
        body = r.read()
        assert r.status == 200
        assert json.loads(body) == {"status": "ok"}
        assert conn.sock.version() == {ssl.TLSVersion.TLSv1_2: "TLSv1.2",
                                       ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version]
        # keep-alive over TLS
        conn.request("GET", "/stats")
        r = conn.getresponse()
        assert r.status == 200
        assert json.loads(r.read())["version"] == "0.1.0"
    finally:
        conn.close()


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1],
                         ids=["tls1.0", "tls1.1"])
def test_old_tls_refused(d, version):
    try:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.minimum_version = version
        ctx.maximum_version = version
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    except (ssl.SSLError, ValueError) as e:
        pytest.skip("local OpenSSL cannot build a %s client context: %s" % (version.name, e))
    s = socket.create_connection(("127.0.0.1", d.port), timeout=IO_TIMEOUT)
    try:
        try:
            t = ctx.wrap_socket(s, server_hostname="localhost")
        except ssl.SSLError as e:
            msg = str(e).lower()
            if "no protocols available" in msg or "no_protocols_available" in msg:
                pytest.skip("local OpenSSL refuses to offer %s itself: %s" % (version.name, e))
            return  # refused by the server: good
        except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError):
            return
        negotiated = t.version()
        t.close()
        pytest.fail("handshake with max %s succeeded (%s)" % (version.name, negotiated))
    finally:
        s.close()


def test_plain_http_on_tls_port_not_served(d):
    with Raw(d.port, timeout=scaled(5)) as c:
        c.send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        data = b""
        try:
            while True:
                c.sock.settimeout(scaled(3))
                chunk = c.sock.recv(4096)
                if not chunk:
                    break
                data += chunk
        except (ConnectionResetError, socket.timeout):
            pass
    assert not data.startswith(b"HTTP/1.1 2") and not data.startswith(b"HTTP/1.0 2"), data
    assert b'{"status":"ok"}' not in data.replace(b" ", b"")
    # the daemon survives it
    assert d.get("/healthz").status == 200


def test_admin_listener_is_plain_http(d):
    r = d.request("GET", "/healthz", admin=True)
    assert r.status == 200


def test_bad_cert_path_exits_1(tmp_path, tls_cert):
    (tmp_path / "data").mkdir()
    (tmp_path / "models").mkdir()
    missing = str(tmp_path / "no-such-cert.pem")
    cfg = {"http": {"listen": "127.0.0.1:%d" % free_port()},
           "admin": {"listen": "127.0.0.1:%d" % free_port()},
           "tls": {"cert": missing, "key": tls_cert[1]},
           "data_dir": str(tmp_path / "data"), "models_dir": str(tmp_path / "models")}
    p = tmp_path / "c.json"
    p.write_text(json.dumps(cfg))
    r = run_recd(["-c", str(p)])
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "no-such-cert.pem" in r.stderr, r.stderr


def test_cert_key_mismatch_exits_1(tmp_path, tls_cert):
    (tmp_path / "data").mkdir()
    (tmp_path / "models").mkdir()
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    cfg = {"http": {"listen": "127.0.0.1:%d" % free_port()},
           "admin": {"listen": "127.0.0.1:%d" % free_port()},
           "tls": {"cert": tls_cert[0], "key": str(garbage)},
           "data_dir": str(tmp_path / "data"), "models_dir": str(tmp_path / "models")}
    p = tmp_path / "c.json"
    p.write_text(json.dumps(cfg))
    r = run_recd(["-c", str(p)])
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert r.stderr.strip()


def test_cert_without_key_rejected(tmp_path, tls_cert):
    (tmp_path / "data").mkdir()
    (tmp_path / "models").mkdir()
    cfg = {"http": {"listen": "127.0.0.1:%d" % free_port()},
           "tls": {"cert": tls_cert[0]},
           "data_dir": str(tmp_path / "data"), "models_dir": str(tmp_path / "models")}
    p = tmp_path / "c.json"
    p.write_text(json.dumps(cfg))
    r = run_recd(["-c", str(p), "--check-config"])
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "tls.key" in r.stderr or "tls.cert" in r.stderr, r.stderr


def test_slow_handshake_cut_at_header_deadline(recd_factory, tls_cert):
    """A client trickling a TLS handshake one byte at a time never completes
    it; the header deadline, armed at accept for TLS, closes the connection
    although bytes keep arriving."""
    import time
    d = recd_factory(tls=tls_cert, name="tls-slow",
                     config={"http": {"header_deadline_ms": 500}})
    # the start of a TLS 1.2 ClientHello record, then one byte per 100 ms
    head = bytes([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03])
    s = socket.create_connection(("127.0.0.1", d.port), timeout=scaled(5))
    t0 = time.monotonic()
    closed_at = None
    try:
        s.sendall(head[:5])
        for b in head[5:] + bytes(200):
            time.sleep(0.1)
            try:
                s.sendall(bytes([b]))
            except (BrokenPipeError, ConnectionResetError):
                closed_at = time.monotonic() - t0
                break
            s.settimeout(0.01)
            try:
                if s.recv(1) == b"":
                    closed_at = time.monotonic() - t0
                    break
            except socket.timeout:
                pass
            except ConnectionResetError:
                closed_at = time.monotonic() - t0
                break
    finally:
        s.close()
    assert closed_at is not None, "connection still open after 20 s of trickling"
    assert closed_at < scaled(3.0), closed_at
    assert d.get("/healthz").status == 200  # and the daemon still serves
