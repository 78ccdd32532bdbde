"""What an attacker sends, against a live server: every answer is the SPEC's error body, never a 500.

Forged and tampered tokens, requests too large or malformed for the HTTP parser, ids in other
scripts' digits, encoded slashes and dot segments, repeated parameters, wrong methods. Where
httptools itself rejects a request, the server still answers in the same JSON shape (400).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from pinsights.server.keys import kid_of
from pinsights.server.protocol import DEFAULT_MAX_REQUEST_HEAD
from pinsights.server.web import MAX_FORM_BYTES
from tests.conftest import TEST_SECRET, RunningServer, mint
from tests.test_server_auth import add_client
from tests.test_server_errors import assert_error

INSIGHTS = "/v5/ad_accounts/{account}/audience_insights?audience_insight_type=YOUR_TOTAL_AUDIENCE"
DEFINITIONS = "/v5/ad_accounts/{account}/insights/audiences"
CATEGORY = "/v5/ad_accounts/{account}/insights/audiences/PARTNER/ENGAGEMENT/{category}"
KEY = TEST_SECRET.encode()
KID = kid_of(KEY)


# --- crafting tokens by hand (PyJWT refuses to make most of these) --------------------------------


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def craft(
    header: dict[str, Any],
    payload: Any,
    *,
    digest: Callable[[], Any] | None = hashlib.sha256,
    key: bytes = KEY,
) -> str:
    """A JWT with any header and payload, HMAC-signed with ``digest`` (None: no signature)."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    signature = b"" if digest is None else hmac.new(key, signing_input.encode(), digest).digest()
    return f"{signing_input}.{b64(signature)}"


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    payload = {"iss": "pinsights", "sub": "attacker", "scope": "ads:read", "ad_accounts": "*"}
    payload |= {"iat": now, "exp": now + 3600, "jti": "x"}
    payload.update(changes)
    return {name: value for name, value in payload.items() if value is not None}


def hs256(**changes: Any) -> dict[str, Any]:
    return {"alg": "HS256", "typ": "JWT", "kid": KID, **changes}


def tampered_payload() -> str:
    """A real token for account 1002, its payload rewritten to every account, signature kept."""
    header, _, signature = mint(["1002"]).split(".")
    return f"{header}.{b64(json.dumps(claims()).encode())}.{signature}"


def tampered_header() -> str:
    """A real token whose header now claims HS512 (and no kid), signature kept."""
    _, payload, signature = mint().split(".")
    return f"{b64(json.dumps({'alg': 'HS512', 'typ': 'JWT'}).encode())}.{payload}.{signature}"


HOSTILE_TOKENS: dict[str, Callable[[], str]] = {
    "alg none": lambda: craft(hs256(alg="none"), claims(), digest=None),
    "alg NONE": lambda: craft(hs256(alg="NONE"), claims(), digest=None),
    "alg none with a signature": lambda: craft(hs256(alg="none"), claims()),
    "HS512 with the real key": lambda: craft(hs256(alg="HS512"), claims(), digest=hashlib.sha512),
    "HS384 with the real key": lambda: craft(hs256(alg="HS384"), claims(), digest=hashlib.sha384),
    "RS256 header, HMAC signature (key confusion)": lambda: craft(hs256(alg="RS256"), claims()),
    "ES256 header": lambda: craft(hs256(alg="ES256"), claims()),
    "no kid": lambda: craft({"alg": "HS256", "typ": "JWT"}, claims()),
    "unknown kid": lambda: craft(hs256(kid="2026-retired"), claims()),
    "kid is a number": lambda: craft(hs256(kid=7), claims()),
    "kid is a list": lambda: craft(hs256(kid=[KID]), claims()),
    "kid is an object": lambda: craft(hs256(kid={"kid": KID}), claims()),
    "kid is null": lambda: craft(hs256(kid=None), claims()),
    "kid is a path": lambda: craft(hs256(kid="../../../../etc/passwd"), claims()),
    "kid is huge": lambda: craft(hs256(kid="k" * 4000), claims()),
    "jku and jwk headers": lambda: craft(
        hs256(jku="http://127.0.0.1:1/keys", jwk={"kty": "oct", "k": b64(b"x" * 32)}),
        claims(),
        key=b"x" * 32,
    ),
    "signed with another key": lambda: craft(hs256(), claims(), key=b"k" * 40),
    "tampered payload": tampered_payload,
    "tampered header": tampered_header,
    "signature stripped": lambda: mint().rsplit(".", 1)[0] + ".",
    "expired": lambda: craft(
        hs256(), claims(iat=int(time.time()) - 7200, exp=int(time.time()) - 1)
    ),
    "not valid before an hour from now": lambda: craft(
        hs256(), claims(nbf=int(time.time()) + 3600)
    ),
    "issued an hour from now": lambda: craft(hs256(), claims(iat=int(time.time()) + 3600)),
    "no exp": lambda: craft(hs256(), claims(exp=None)),
    "exp is a string": lambda: craft(hs256(), claims(exp="99999999999")),
    "exp is true": lambda: craft(hs256(), claims(exp=True)),
    "exp is infinite": lambda: craft(hs256(), {**claims(), "exp": float("inf")}),
    "wrong issuer": lambda: craft(hs256(), claims(iss="pinterest")),
    "sub is a number": lambda: craft(hs256(), claims(sub=12)),
    "scope is a list": lambda: craft(hs256(), claims(scope=["ads:read"])),
    "ad_accounts is a number": lambda: craft(hs256(), claims(ad_accounts=1001)),
    "ad_accounts holds numbers": lambda: craft(hs256(), claims(ad_accounts=[1001])),
    "payload is a list": lambda: craft(hs256(), [claims()]),
    "payload is not JSON": lambda: f"{b64(json.dumps(hs256()).encode())}.{b64(b'{oops')}.sig",
    "header is not JSON": lambda: f"{b64(b'nope')}.{b64(b'{}')}.sig",
    "four segments": lambda: mint() + ".extra",
    "not base64": lambda: "!!!.???.***",
    "empty segments": lambda: "..",
    "eight kilobytes of garbage": lambda: "a" * 8192,
}


@pytest.mark.parametrize("make", HOSTILE_TOKENS.values(), ids=HOSTILE_TOKENS.keys())
def test_hostile_token_is_401_2(server: RunningServer, make: Callable[[], str]) -> None:
    token = make()
    for path in (INSIGHTS.format(account="1001"), CATEGORY.format(account="1001", category="10")):
        response = server.get(path, token)
        assert_error(response, 401, 2)
        assert response.headers["www-authenticate"] == "Bearer"
    assert server.get(INSIGHTS.format(account="1001"), mint()).status_code == 200


def test_token_header_with_bytes_outside_ascii_is_401_2(server: RunningServer) -> None:
    response = exchange(
        server, request_head(INSIGHTS.format(account="1001"), b"Bearer \xff\xfe\xd9\xa1")
    )
    assert response.status == 401 and response.json()["code"] == 2


# --- raw HTTP, for what httpx refuses to send -----------------------------------------------------


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def request_head(target: str, authorization: bytes | None = None, *extra: bytes) -> bytes:
    lines = [f"GET {target} HTTP/1.1".encode(), b"Host: 127.0.0.1"]
    if authorization is not None:
        lines.append(b"Authorization: " + authorization)
    return b"\r\n".join([*lines, *extra]) + b"\r\n\r\n"


def exchange(server: RunningServer, data: bytes | Iterable[bytes]) -> RawResponse:
    """Send raw bytes (in the chunks given), stopping early if the server answers; read one response.

    A server that refuses a request closes the connection while the rest is still being sent: the
    send then fails, and what it answered is still in the socket to read.
    """
    host, port = server.base_url.removeprefix("http://").split(":")
    chunks = [data] if isinstance(data, bytes) else data
    received = b""
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        for chunk in chunks:
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
        while True:
            try:
                part = sock.recv(65536)
            except ConnectionResetError:
                break
            received += part
            if not part or _complete(received):
                break
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return RawResponse(int(status_line.split()[1]), headers, body)


def _complete(received: bytes) -> bool:
    head, separator, body = received.partition(b"\r\n\r\n")
    if not separator:
        return False
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return False


def assert_raw_error(response: RawResponse, status: int) -> None:
    assert response.status == status, response.body
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"code", "message"} and body["code"] == status and body["message"]


def in_pieces(data: bytes, size: int = 16384) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


# --- too large ------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [DEFAULT_MAX_REQUEST_HEAD + 1, 1 << 20, 8 << 20])
def test_oversized_header_is_431_and_the_server_keeps_serving(
    server: RunningServer, size: int
) -> None:
    head = request_head("/healthz", None, b"X-Filler: " + b"a" * size)
    response = exchange(server, in_pieces(head))
    assert_raw_error(response, 431)
    assert server.get(INSIGHTS.format(account="1001"), mint()).status_code == 200


def test_many_small_headers_adding_up_are_431(server: RunningServer) -> None:
    lines = [b"X-H%d: %s" % (i, b"v" * 20) for i in range(2000)]
    assert_raw_error(exchange(server, in_pieces(request_head("/healthz", None, *lines))), 431)


@pytest.mark.parametrize("size", [DEFAULT_MAX_REQUEST_HEAD + 1, 1 << 20])
def test_oversized_query_string_is_414(server: RunningServer, size: int) -> None:
    target = INSIGHTS.format(account="1001") + "&junk=" + "a" * size
    assert_raw_error(exchange(server, in_pieces(request_head(target))), 414)


def test_large_but_allowed_head_is_served(server: RunningServer) -> None:
    """Big cookies and long queries under the limit are ordinary requests."""
    cookie = {"Cookie": "c=" + "x" * 8000}
    query = INSIGHTS.format(account="1001") + "&utm=" + "y" * 4000
    assert server.get(query, mint(), headers=cookie).status_code == 200


def test_a_head_sent_too_slowly_is_408_and_others_are_served(
    handmade_store: Path, server_factory
) -> None:
    patient = server_factory(handmade_store, env={"PINSIGHTS_HEAD_TIMEOUT": "1"})
    host, port = patient.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as slow:
        slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: a")  # and never the rest
        assert patient.get(INSIGHTS.format(account="1001"), mint()).status_code == 200
        answer = b""
        while chunk := slow.recv(65536):  # the server closes the connection after answering
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["code"] == 408
    with socket.create_connection((host, int(port)), timeout=30) as silent:
        assert silent.recv(1) == b""  # a connection that sends nothing is closed, unanswered


def test_a_body_sent_too_slowly_is_408_and_others_are_served(
    handmade_store: Path, server_factory
) -> None:
    """A token request whose form never arrives whole: 408, not a connection (and a waiting
    endpoint) held for ever."""
    patient = server_factory(handmade_store, env={"PINSIGHTS_HEAD_TIMEOUT": "1"})
    client_id, secret = add_client(patient.store)
    host, port = patient.base_url.removeprefix("http://").split(":")
    head = (
        b"POST /v5/oauth/token HTTP/1.1\r\nHost: x\r\n"
        b"Authorization: Basic %s\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 40\r\n\r\n"
    ) % base64.b64encode(f"{client_id}:{secret}".encode())
    with socket.create_connection((host, int(port)), timeout=30) as slow:
        slow.sendall(head + b"grant_type=client_")  # and never the rest
        assert patient.get(INSIGHTS.format(account="1001"), mint()).status_code == 200
        answer = b""
        while chunk := slow.recv(65536):  # the server closes the connection after answering
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert answer.count(b"HTTP/1.1 ") == 1  # the endpoint, told of the disconnect, adds nothing
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["code"] == 408
    # the same request sent whole at once is served
    with socket.create_connection((host, int(port)), timeout=30) as whole:
        body = b"grant_type=client_credentials"
        whole.sendall(head.replace(b"Content-Length: 40", b"Content-Length: %d" % len(body)) + body)
        assert whole.recv(65536).startswith(b"HTTP/1.1 200 ")
    tokens = [e["status"] for e in patient.access_log() if e["path"] == "/v5/oauth/token"]
    assert tokens == [408, 200]  # recorded as what the client was answered
    assert "Traceback" not in patient.log_path.read_text()


def test_oversized_token_request_body_is_413(server: RunningServer) -> None:
    client_id, secret = add_client(server.store)
    body = {"grant_type": "client_credentials", "padding": "p" * (MAX_FORM_BYTES + 1)}
    response = server.client.post("/v5/oauth/token", data=body, auth=(client_id, secret))
    assert_error(response, 413, 413)

    def chunks() -> Iterable[bytes]:  # no Content-Length: read until the limit, no further
        yield b"grant_type=client_credentials&padding="
        for _ in range(64):
            yield b"p" * 4096

    streamed = server.client.post(
        "/v5/oauth/token",
        content=chunks(),
        auth=(client_id, secret),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_error(streamed, 413, 413)


# --- malformed for the HTTP parser ------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"G(T /healthz HTTP/1.1\r\nHost: x\r\n\r\n",  # method is not a token
        b"GET /healthz HTTP/1.1\r\nBad Header: x\r\n\r\n",  # space in a header name
        b"GET /healthz HTTP/1.1\r\nX-Nul: a\x00b\r\n\r\n",  # NUL in a header value
        b"GET /hea\x01lthz HTTP/1.1\r\nHost: x\r\n\r\n",  # control byte in the target
        b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n",  # no such HTTP version
        b"POST /v5/oauth/token HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"POST /v5/oauth/token HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    ],
    ids=[
        "bad method token",
        "space in header name",
        "NUL in header value",
        "control byte in target",
        "HTTP/9.9",
        "bad chunk size",
        "two content lengths",
    ],
)
def test_request_the_parser_rejects_is_400_in_json(server: RunningServer, data: bytes) -> None:
    assert_raw_error(exchange(server, data), 400)


def test_bytes_outside_ascii_in_the_path_are_not_a_500(server: RunningServer) -> None:
    response = exchange(server, request_head("/v5/ad_accounts/\xd9\xa1/insights/audiences"))
    assert response.status in (400, 404) and response.json()["code"] in (400, 404)


# --- parameters ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "parameter"),
    [
        (
            INSIGHTS.format(account="1001") + "&audience_insight_type=YOUR_TOTAL_AUDIENCE",
            "audience_insight_type",
        ),
        (INSIGHTS.format(account="1001") + "&date=2026-10-31&date=2026-10-31", "date"),
        (CATEGORY.format(account="1001", category="10") + "?sort=RATIO&sort=RATIO", "sort"),
        (
            INSIGHTS.format(account="1001") + "&%61udience_insight_type=YOUR_TOTAL_AUDIENCE",
            "audience_insight_type",
        ),
        (INSIGHTS.format(account="1001") + "&date=2026-10-3%31&date=2026-10-31", "date"),
    ],
    ids=[
        "type twice",
        "date twice",
        "sort twice",
        "type twice, once encoded",
        "date twice, once encoded",
    ],
)
def test_repeated_parameter_is_400_1(server: RunningServer, path: str, parameter: str) -> None:
    body = assert_error(server.get(path, mint()), 400, 1)
    assert f"'{parameter}'" in str(body["message"])


@pytest.mark.parametrize(
    "value",
    [
        "%ZZ",
        "%FF",
        "%00",
        "YOUR_TOTAL_AUDIENCE%00",
        "your_total_audience",
        "YOUR_TOTAL_AUDIENCE%20",
    ],
)
def test_mangled_parameter_value_is_400_1(server: RunningServer, value: str) -> None:
    path = f"/v5/ad_accounts/1001/audience_insights?audience_insight_type={value}"
    body = assert_error(server.get(path, mint()), 400, 1)
    assert "'audience_insight_type'" in str(body["message"])


DIGITS = {
    "Arabic-Indic": "١٠٠١",  # noqa: RUF001
    "Extended Arabic-Indic": "۱۰۰۱",  # noqa: RUF001
    "Devanagari": "१००१",
    "fullwidth": "１００１",  # noqa: RUF001
    "Bengali": "১০০১",
    "superscript": "¹⁰⁰¹",
    "mixed": "10٠1",  # noqa: RUF001
}


@pytest.mark.parametrize("digits", DIGITS.values(), ids=DIGITS.keys())
def test_digits_of_other_scripts_are_400_1(server: RunningServer, digits: str) -> None:
    cases = [
        (INSIGHTS.format(account=digits), "ad_account_id"),
        (DEFINITIONS.format(account=digits), "ad_account_id"),
        (CATEGORY.format(account="1001", category=digits), "category_id"),
        (INSIGHTS.format(account="1001") + f"&date=2026-10-{digits[-2:]}", "date"),
    ]
    for path, parameter in cases:
        body = assert_error(server.get(path, mint()), 400, 1)
        assert f"'{parameter}'" in str(body["message"])


# --- paths ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "/v5/ad_accounts/1001%2Finsights/audiences",
        "/v5/ad_accounts%2F1001/insights/audiences",
        "/v5/ad_accounts/1001/insights%2Faudiences",
        "/v5/ad_accounts/1002/../1001/insights/audiences",
        "/v5/ad_accounts/../ad_accounts/1001/insights/audiences",
        "/v5/ad_accounts/%2e%2e/1001/insights/audiences",
        "/v5/ad_accounts/1001/insights/audiences/.",
        "/v5/ad_accounts/1001/insights/audiences/",
        "/v5/ad_accounts//1001/insights/audiences",
        "/v5/oauth/../openapi.json",
        "/v5/%2e%2e/v5/openapi.json",
        "/v5/docs/../../etc/passwd",
        "/..%2f..%2fetc%2fpasswd",
        "/static/dashboard/..%2f..%2f..%2fpyproject.toml",
        "/static/dashboard/../../pyproject.toml",
        "/static/swagger-ui/%2e%2e/%2e%2e/pyproject.toml",
    ],
)
def test_encoded_slashes_and_dot_segments_name_no_route(server: RunningServer, target: str) -> None:
    response = exchange(server, request_head(target, b"Bearer " + mint().encode()))
    assert_raw_error(response, 404)


@pytest.mark.parametrize(
    "path",
    [
        "/v5/ad_accounts/..%2F..%2Fetc/audience_insights?audience_insight_type=YOUR_TOTAL_AUDIENCE",
        # one segment, so ad_accounts/get's path, whose id is not one
        "/v5/ad_accounts/1001%2finsights%2faudiences",
        "/v5/ad_accounts/..%2F..%2Fetc%2Fpasswd",
    ],
)
def test_dot_segments_inside_an_id_are_an_invalid_id(server: RunningServer, path: str) -> None:
    response = exchange(server, request_head(path, b"Bearer " + mint().encode()))
    assert response.status == 400 and "'ad_account_id'" in response.json()["message"]


# --- methods --------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "PURGE"])
@pytest.mark.parametrize(
    "path",
    [
        INSIGHTS.format(account="1001"),
        DEFINITIONS.format(account="1001"),
        CATEGORY.format(account="1001", category="10"),
        "/v5/ad_accounts",
        "/v5/ad_accounts/1001",
    ],
)
def test_wrong_method_on_a_data_route_is_405(server: RunningServer, method: str, path: str) -> None:
    response = server.client.request(method, path, headers={"Authorization": f"Bearer {mint()}"})
    assert_error(response, 405, 405)
    assert response.headers["allow"] == "GET, HEAD"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v5/oauth/token"),
        ("PUT", "/v5/oauth/token"),
        ("DELETE", "/v5/oauth/token"),
        ("POST", "/healthz"),
        ("DELETE", "/v5/openapi.json"),
        ("PURGE", "/healthz"),
    ],
)
def test_wrong_method_elsewhere_is_405(server: RunningServer, method: str, path: str) -> None:
    assert_error(server.client.request(method, path), 405, 405)


# --- the category route checks the account first (review finding) ---------------------------------


def test_category_of_an_unoffered_audience_is_403_29_for_a_missing_account(
    server: RunningServer,
) -> None:
    unoffered = "/v5/ad_accounts/{account}/insights/audiences/PINTEREST/ENGAGEMENT/10"
    missing = server.get(unoffered.format(account="549000000001"), mint("*"))
    forbidden = server.get(INSIGHTS.format(account="549000000001"), mint("*"))
    assert_error(missing, 403, 29)
    assert missing.content == forbidden.content
    assert_error(server.get(unoffered.format(account="1001"), mint("*")), 404, 404)


# --- the Host header and X-Forwarded-* (review finding) ---------------------------------------------


def test_openapi_urls_never_come_from_the_request(server: RunningServer) -> None:
    forged = {
        "Host": "evil.example",
        "X-Forwarded-Host": "evil.example",
        "X-Forwarded-Proto": "https",
        "Forwarded": "host=evil.example;proto=https",
    }
    response = server.client.get("/v5/openapi.json", headers=forged)
    assert response.status_code == 200
    assert "evil" not in response.text
    document = response.json()
    assert document["servers"] == [{"url": "/v5"}]


def test_public_url_is_what_openapi_names(handmade_store: Path, server_factory) -> None:
    public = server_factory(handmade_store, args=("--public-url", "https://insights.example.com/"))
    document = public.client.get("/v5/openapi.json", headers={"Host": "evil.example"}).json()
    assert document["servers"] == [{"url": "https://insights.example.com/v5"}]
    flows = document["components"]["securitySchemes"]["client_credentials"]["flows"]
    assert flows["clientCredentials"]["tokenUrl"] == "https://insights.example.com/v5/oauth/token"


def forwarded_remote(server: RunningServer) -> str:
    marker = f"/v5/marker-{time.monotonic_ns()}"
    server.client.get(
        marker, headers={"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
    )
    return next(e["remote"] for e in server.access_log() if e["path"] == marker)


def test_forwarded_for_is_ignored_unless_the_proxy_is_trusted(
    handmade_store: Path, server_factory
) -> None:
    default = server_factory(handmade_store)
    assert forwarded_remote(default) == "127.0.0.1"  # loopback is no proxy unless named
    behind_proxy = server_factory(handmade_store, args=("--forwarded-allow-ips", "127.0.0.1"))
    assert forwarded_remote(behind_proxy) == "203.0.113.9"


def test_invalid_serve_options_are_refused(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from pinsights.cli import app

    for args, message in [
        (["--public-url", "ftp://x"], "invalid public URL"),
        (["--public-url", "https://x/?q=1"], "invalid public URL"),
        (["--forwarded-allow-ips", "10.0.0.0/8,proxy.local"], "invalid address 'proxy.local'"),
    ]:
        result = CliRunner().invoke(
            app, ["serve", "--store", str(tmp_path), *args], env={"COLUMNS": "400"}
        )
        assert result.exit_code == 2 and message in result.output


def test_server_stays_healthy_after_the_whole_barrage(server: RunningServer) -> None:
    log = server.log_path.read_text()
    assert "Traceback" not in log
    assert all(entry["status"] != 500 for entry in server.access_log())
    assert httpx.get(f"{server.base_url}/healthz").status_code == 200
