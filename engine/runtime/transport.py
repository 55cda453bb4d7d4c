"""ZeroMQ transport between the hub and its workers: one ROUTER (hub) and DEALERs (workers), zero-copy.

The hub binds one ROUTER socket; every worker connects one DEALER whose routing id is its name, so
the hub addresses a worker by name and a restarted worker takes over its old routing id
(ROUTER_HANDOVER). Messages are `engine.messages.encode` frames (msgpack header + raw buffers) sent
with `copy=False`; never pickled. High-water marks bound every pipe; linger is 0 so closing never
blocks. Over tcp the sockets use CURVE: the hub is the server and only admits the configured client
public key (ZAP via pyzmq's authenticator); ipc and inproc stay on one host and skip encryption.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq
import zmq.asyncio

from engine.config import RuntimeConfig
from engine.errors import InputError
from engine.messages import Message, decode, encode

log = logging.getLogger(__name__)

TRANSPORTS: tuple[str, ...] = ("ipc", "tcp", "inproc")

# Every socket this module opens, so tests can fail on leaks (see `open_sockets`).
_SOCKETS: "weakref.WeakSet[zmq.Socket[Any]]" = weakref.WeakSet()


@dataclass(frozen=True, slots=True)
class CurveKeys:
    """Z85 CURVE keys: the hub's (server) keypair and the one client keypair it admits."""

    server_public: str
    server_secret: str
    client_public: str
    client_secret: str

    @classmethod
    def from_config(cls, cfg: RuntimeConfig) -> CurveKeys | None:
        """Keys from the runtime config; None when none are set; InputError when only some are."""
        keys = (cfg.curve_server_public, cfg.curve_server_secret, cfg.curve_client_public, cfg.curve_client_secret)
        if not any(keys):
            return None
        if not all(keys):
            raise InputError("runtime.curve_*: set all four CURVE keys (server and client keypairs) or none")
        for k in keys:
            if len(k) != 40:
                raise InputError("runtime.curve_*: CURVE keys are 40-character Z85 strings (zmq.curve_keypair())")
        if not zmq.has("curve"):
            raise InputError("this libzmq was built without CURVE; tcp transport cannot be encrypted")
        return cls(*keys)


def _track(sock: zmq.Socket[Any], hwm: int) -> zmq.Socket[Any]:
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, hwm)
    sock.setsockopt(zmq.RCVHWM, hwm)
    _SOCKETS.add(sock)
    return sock


def open_sockets() -> list[zmq.Socket[Any]]:
    """Sockets opened here and not closed yet (for leak checks)."""
    return [s for s in list(_SOCKETS) if not s.closed]


def bind_hub(
    ctx: zmq.Context[Any],
    cfg: RuntimeConfig,
    ipc_dir: Path | None,
    keys: CurveKeys | None,
    name: str = "hub",
) -> tuple[zmq.Socket[Any], str]:
    """Bind the hub's ROUTER; returns it and the endpoint workers connect to (random tcp port)."""
    if cfg.transport not in TRANSPORTS:
        raise InputError(f"runtime.transport must be one of {', '.join(TRANSPORTS)}, got {cfg.transport!r}")
    sock = _track(ctx.socket(zmq.ROUTER), cfg.high_water_mark)
    sock.setsockopt(zmq.ROUTER_HANDOVER, 1)
    # A full pipe (or an absent peer) fails the send instead of dropping the message silently: the hub
    # keeps what a worker cannot take yet in that worker's outbox (engine.py) and loses nothing.
    sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
    try:
        if cfg.transport == "tcp":
            if keys is not None:
                sock.curve_server = True
                sock.curve_secretkey = keys.server_secret.encode()
                sock.curve_publickey = keys.server_public.encode()
            port = sock.bind_to_random_port(f"tcp://{cfg.host}")
            endpoint = f"tcp://{cfg.host}:{port}"
        elif cfg.transport == "ipc":
            if ipc_dir is None:
                raise InputError("ipc transport needs a directory for its socket files")
            endpoint = f"ipc://{ipc_dir / (name + '.sock')}"
            sock.bind(endpoint)
        else:
            endpoint = f"inproc://{name}-{id(sock):x}"
            sock.bind(endpoint)
    except BaseException:
        sock.close(0)
        raise
    return sock, endpoint


def connect_worker(
    ctx: zmq.Context[Any], endpoint: str, identity: str, hwm: int, keys: CurveKeys | None
) -> zmq.Socket[Any]:
    """A worker's DEALER, routing id `identity`, connected to the hub (CURVE client over tcp)."""
    sock = _track(ctx.socket(zmq.DEALER), hwm)
    sock.setsockopt(zmq.ROUTING_ID, identity.encode())
    if endpoint.startswith("tcp://") and keys is not None:
        sock.curve_serverkey = keys.server_public.encode()
        sock.curve_publickey = keys.client_public.encode()
        sock.curve_secretkey = keys.client_secret.encode()
    sock.connect(endpoint)
    return sock


class _OneKey:
    """ZAP credentials provider admitting exactly one client public key."""

    def __init__(self, client_public: str) -> None:
        self._key = client_public.encode()

    def callback(self, domain: str, key: bytes) -> bool:
        ok = zmq.utils.z85.encode(key) == self._key if len(key) == 32 else key == self._key
        if not ok:
            log.warning("refused a CURVE client with an unknown public key")
        return ok


def start_authenticator(ctx: zmq.asyncio.Context, keys: CurveKeys) -> tuple[Any, set[asyncio.Task[Any]]]:
    """Start a ZAP authenticator on the hub's context admitting only the configured client key.

    Returns it and the asyncio task(s) it started, which the caller awaits after `auth.stop()`.
    """
    from zmq.auth.asyncio import AsyncioAuthenticator

    before = asyncio.all_tasks()
    auth = AsyncioAuthenticator(ctx)
    auth.start()
    auth.configure_curve_callback("*", _OneKey(keys.client_public))
    if auth.zap_socket is not None:
        _SOCKETS.add(auth.zap_socket)
    return auth, asyncio.all_tasks() - before


def send_sync(sock: zmq.Socket[Any], msg: Message, to: bytes | None = None) -> None:
    """Send `msg` (optionally to routing id `to` on a ROUTER) without copying its buffers."""
    frames = encode(msg)
    sock.send_multipart([to, *frames] if to is not None else frames, copy=False)


async def send_async(sock: zmq.asyncio.Socket, msg: Message, to: bytes | None = None) -> None:
    frames = encode(msg)
    await sock.send_multipart([to, *frames] if to is not None else frames, copy=False)


def send_nowait(sock: zmq.Socket[Any], msg: Message, to: bytes | None = None) -> bool:
    """Non-blocking send from sync or asyncio code; False when it could not go out at once.

    The hub's ROUTER is ROUTER_MANDATORY: at the high-water mark or for an absent peer the send fails
    (False) rather than dropping silently; on an asyncio socket the already-done future is checked.
    """
    frames = encode(msg)
    try:
        res = sock.send_multipart([to, *frames] if to is not None else frames, copy=False, flags=zmq.NOBLOCK)
    except zmq.Again:
        return False
    except zmq.ZMQError as e:
        if e.errno != zmq.EHOSTUNREACH:
            raise
        return False
    if isinstance(res, asyncio.Future):
        if not res.done():
            res.cancel()
            return False
        if res.cancelled() or res.exception() is not None:
            return False
    return True


def decode_routed(frames: list[Any]) -> tuple[str, Message]:
    """Split a ROUTER receive into (sender routing id, decoded message)."""
    if len(frames) < 2:
        raise ValueError("routed message without a body")
    sender = bytes(frames[0].buffer if hasattr(frames[0], "buffer") else frames[0]).decode()
    return sender, decode(frames[1:])
