#!/usr/bin/env python3
"""Check that a tokenim cluster is one system: every node is ready, and a
message published on one node reaches a subscriber connected to another.

  deploy/check_cluster.py --dev http://127.0.0.1:18080 http://127.0.0.1:18081
  deploy/check_cluster.py --secret HEX --kid local http://127.0.0.1:18080 http://127.0.0.1:18081

With --dev the tokens come from each node's /dev/token (dev mode); otherwise
they are HS256 JWTs minted here with --secret/--kid (the key cluster.sh
prints). For every ordered pair of nodes (A, B) a subscriber on B must get
what a publisher on A sends. Needs the `websockets` package (pip install
websockets). Exit status 0 only when every check passed; the last line is
'N passed, N failed'.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import sys
import time
import urllib.error
import urllib.request

from websockets.asyncio.client import connect

TIMEOUT = 5.0
JSON = "tokenim.v1.json"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint_hs256(secret: str, kid: str | None, user: str) -> str:
    header = {"alg": "HS256", "typ": "JWT"}
    if kid:
        header["kid"] = kid
    now = int(time.time())
    # A node in production denies channels by default: the token names the
    # channels it checks.
    claims = {
        "sub": user,
        "iat": now,
        "exp": now + 300,
        "channels": ["check.*"],
        "publish": ["check.*"],
    }
    signing_input = (
        b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    )
    sig = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64url(sig)


def dev_token(base: str, user: str) -> str:
    with urllib.request.urlopen(f"{base}/dev/token?user={user}", timeout=TIMEOUT) as r:
        body = r.read().decode()
    try:
        return json.loads(body)["token"]
    except (ValueError, KeyError, TypeError):
        return body.strip()


def ready(base: str) -> int:
    try:
        with urllib.request.urlopen(f"{base}/readyz", timeout=TIMEOUT) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


async def recv_json(ws) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))


async def call(ws, frame: dict) -> dict:
    """Sends a command and returns its reply, skipping pushes on the way."""
    await ws.send(json.dumps(frame))
    while True:
        msg = await recv_json(ws)
        if msg.get("id") == frame["id"]:
            if "error" in msg:
                raise RuntimeError(f"{frame['type']} failed: {msg['error']}")
            return msg["result"]


def ws_url(base: str) -> str:
    return "ws" + base[len("http") :] + "/ws"


async def crosses(pub_base: str, sub_base: str, token) -> None:
    channel = f"check.{secrets.token_hex(4)}"
    text = f"hello from {pub_base} at {time.time()}"
    sub_auth = {"Authorization": f"Bearer {token(sub_base, 'sub')}"}
    pub_auth = {"Authorization": f"Bearer {token(pub_base, 'pub')}"}
    async with (
        connect(ws_url(sub_base), subprotocols=[JSON], additional_headers=sub_auth) as sub,
        connect(ws_url(pub_base), subprotocols=[JSON], additional_headers=pub_auth) as pub,
    ):
        await call(sub, {"id": 1, "type": "subscribe", "channel": channel})
        await call(pub, {"id": 1, "type": "publish", "channel": channel, "data": {"text": text}})
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            msg = await recv_json(sub)
            if msg.get("push") == "message" and msg.get("channel") == channel:
                if msg.get("data", {}).get("text") != text:
                    raise RuntimeError(f"wrong data: {msg}")
                return
        raise RuntimeError("no message within the timeout")


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("nodes", nargs="+", help="base URLs, e.g. http://127.0.0.1:18080")
    ap.add_argument("--dev", action="store_true", help="get tokens from /dev/token")
    ap.add_argument("--secret", help="HS256 secret to mint tokens with")
    ap.add_argument("--kid", default=None, help="kid header of minted tokens")
    args = ap.parse_args()
    if not args.dev and not args.secret:
        ap.error("give --dev or --secret")
    nodes = [n.rstrip("/") for n in args.nodes]

    def token(base: str, user: str) -> str:
        user = f"{user}-{secrets.token_hex(3)}"
        return dev_token(base, user) if args.dev else mint_hs256(args.secret, args.kid, user)

    passed = failed = 0

    def report(ok: bool, what: str, why: str = "") -> None:
        nonlocal passed, failed
        passed += ok
        failed += not ok
        print(f"{'PASS' if ok else 'FAIL'} {what}{': ' + why if why else ''}")

    for base in nodes:
        status = ready(base)
        report(status == 200, f"{base}/readyz is 200", "" if status == 200 else f"got {status}")
    for a in nodes:
        for b in nodes:
            if a == b and len(nodes) > 1:
                continue
            try:
                await crosses(a, b, token)
                report(True, f"published on {a}, received on {b}")
            except Exception as e:  # noqa: BLE001 - every failure is reported the same way
                report(False, f"published on {a}, received on {b}", repr(e))
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
