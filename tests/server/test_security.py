"""Loopback means loopback: raw requests against the real server with a foreign Host, a foreign Origin, no token,
an oversized body; and the security headers on every response."""

from __future__ import annotations

import base64
import json
import os
import re
import socket

import pytest

from loralens.app import security
from loralens.app.settings import is_loopback

from .conftest import LIMIT, Server

SOCKET_IO = "/_nicegui_ws/socket.io/?EIO=4&transport=polling"


@pytest.mark.parametrize("host", ["evil.example", "evil.example:{port}", "127.0.0.1:1", "localhost", "",
                                  "127.0.0.1.evil.example:{port}", "0.0.0.0:{port}", "[::2]:{port}"])
def test_a_foreign_host_is_refused(server: Server, host: str) -> None:
    status, headers, body = server.request("GET", "/", host=host.format(port=server.port))
    assert status == 403
    assert b"Host header refused" in body
    assert headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("name", ["127.0.0.1", "localhost", "LOCALHOST", "[::1]"])
def test_loopback_names_with_the_port_are_answered(server: Server, name: str) -> None:
    status, _, body = server.request("GET", "/", host=f"{name}:{server.port}")
    assert status == 200
    assert b"<html" in body.lower()


@pytest.mark.parametrize("origin", ["http://evil.example", "http://evil.example:{port}", "null",
                                    "https://127.0.0.1:{port}", "http://127.0.0.1:1"])
def test_socket_io_refuses_a_foreign_origin(server: Server, origin: str) -> None:
    status, headers, _ = server.request("GET", SOCKET_IO, headers={"Origin": origin.format(port=server.port)})
    assert status == 403
    assert "access-control-allow-origin" not in headers
    assert "access-control-allow-credentials" not in headers


def test_socket_io_answers_its_own_origin(server: Server) -> None:
    status, headers, body = server.request("GET", SOCKET_IO, headers={"Origin": f"http://{server.netloc}"})
    assert status == 200
    assert body.startswith(b"0{")  # engine.io's open packet
    assert headers.get("access-control-allow-origin") in {None, f"http://{server.netloc}"}


def websocket_status(server: Server, origin: str) -> bytes:
    """The status line of a raw websocket upgrade to socket.io with ``origin``."""
    key = base64.b64encode(os.urandom(16)).decode()
    request = (f"GET /_nicegui_ws/socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {server.netloc}\r\n"
               f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               f"Sec-WebSocket-Version: 13\r\nOrigin: {origin}\r\n\r\n")
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(request.encode())
        return sock.recv(4096).split(b"\r\n", 1)[0]


def test_a_websocket_from_a_foreign_origin_is_refused(server: Server) -> None:
    assert b" 101 " not in websocket_status(server, "http://evil.example")
    assert b" 403 " in websocket_status(server, "http://evil.example")
    assert b" 101 " in websocket_status(server, f"http://{server.netloc}")


def test_a_post_from_a_foreign_origin_is_refused(server: Server) -> None:
    status, _, body = server.request("POST", "/_nicegui/client/x/upload/1", body=b"x",
                                     headers={"Origin": "http://evil.example"})
    assert (status, body) == (403, b"cross-origin request refused\n")


def test_the_token_sets_a_strict_cookie_and_leaves_the_url(server: Server) -> None:
    status, headers, _ = server.request("GET", f"/inspector?module=a&token={server.token}")
    assert status == 303
    assert headers["location"] == "/inspector?module=a"
    cookie = next(c for c in headers["set-cookie"].split("\n") if c.startswith("loralens"))
    assert cookie.startswith(f"{security.cookie_name(server.port)}={server.token};")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie


@pytest.mark.parametrize("token", ["", "wrong", "x" * 200])
def test_a_wrong_token_sets_no_cookie(server: Server, token: str) -> None:
    status, headers, _ = server.request("GET", f"/?token={token}")
    assert (status, headers["location"]) == (303, "/")
    assert "loralens" not in headers.get("set-cookie", "")


def inspector_html(server: Server, cookie: str | None) -> str:
    headers = {"Cookie": cookie} if cookie else {}
    status, _, body = server.request("GET", "/inspector", headers=headers)
    assert status == 200
    return body.decode()


def test_reading_the_disk_needs_the_token(server: Server) -> None:
    without = inspector_html(server, None)
    assert "needs the link with the token" in without
    assert "path-input" not in without
    wrong = inspector_html(server, f"{security.cookie_name(server.port)}=wrong")
    assert "needs the link with the token" in wrong
    other_port = inspector_html(server, f"{security.cookie_name(server.port + 1)}={server.token}")
    assert "needs the link with the token" in other_port
    right = inspector_html(server, f"{security.cookie_name(server.port)}={server.token}")
    assert "needs the link with the token" not in right
    assert "path-input" in right


@pytest.mark.parametrize("path", ["/", "/models", "/labs", "/lessons", "/inspector", "/no-such-page",
                                  "/_nicegui/no-such-asset.js", "/?token=x"])
def test_every_response_has_the_security_headers(server: Server, path: str) -> None:
    _, headers, _ = server.request("GET", path)
    assert headers["x-content-type-options"] == "nosniff"
    csp = headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "frame-ancestors * file:" in csp  # the documented iframe embedding, from a site or from disk
    assert "x-frame-options" not in headers


def upload_url(server: Server) -> str:
    html = inspector_html(server, None)
    match = re.search(r"/_nicegui/client/[\w-]+/upload/\d+", html)
    assert match, "no upload URL in the Inspector page"
    return match.group(0)


def test_a_body_claiming_100_gb_is_refused_up_front(server: Server) -> None:
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall((f"POST {upload_url(server)} HTTP/1.1\r\nHost: {server.netloc}\r\n"
                      f"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: {100 * 2**30}\r\n\r\n")
                     .encode())
        assert sock.recv(4096).startswith(b"HTTP/1.1 413 ")


def test_a_streamed_body_over_the_cap_is_cut_off(server: Server) -> None:
    cap = LIMIT + security.BODY_ALLOWANCE
    chunk = b"--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"w.safetensors\"\r\n\r\n" + b"x" * 2**20
    sent = 0
    with socket.create_connection((server.host, server.port), timeout=30) as sock:
        sock.sendall((f"POST {upload_url(server)} HTTP/1.1\r\nHost: {server.netloc}\r\n"
                      "Content-Type: multipart/form-data; boundary=b\r\nTransfer-Encoding: chunked\r\n\r\n").encode())
        try:
            while sent < 4 * cap:
                sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                sent += len(chunk)
                chunk = b"x" * 2**20
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert sent < 4 * cap  # the server stopped reading


def test_a_small_upload_from_the_page_itself_is_accepted(server: Server) -> None:
    body = (b"--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"adapter_config.json\"\r\n\r\n{}\r\n--b--\r\n")
    status, _, answer = server.request("POST", upload_url(server), body=body, headers={
        "Content-Type": "multipart/form-data; boundary=b", "Origin": f"http://{server.netloc}"})
    assert status == 200
    assert json.loads(answer) == {"upload": "success"}


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.8.9.1", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("0.0.0.0", False), ("::", False), ("", False), ("127.example.com", False), ("127.0.0.1.nip.io", False),
    ("192.168.1.2", False),
])
def test_loopback_is_an_address_not_a_prefix(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_a_page_cannot_write_lines_into_the_server_log(caplog: pytest.LogCaptureFixture) -> None:
    from loralens.app.main import _on_client_log

    with caplog.at_level("DEBUG", logger="loralens.app.main"):
        _on_client_log("sid", {"client_id": "x", "level": "error", "message": "line one\nERROR forged line\n" * 50})
        _on_client_log("sid", ["not", "a", "dict"])
    assert all("\n" not in record.getMessage() for record in caplog.records)
    assert all(record.levelname == "DEBUG" and len(record.getMessage()) < 260 for record in caplog.records)


def test_an_empty_host_is_refused_with_one_line() -> None:
    from loralens.cli import main

    assert main(["serve", "--host", "", "--no-browser"]) == 1
