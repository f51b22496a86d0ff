"""Helpers for the control API's tests: find a node's gRPC endpoint from its data dir, open a
channel to it, and call it with the bearer token when one is needed.

Needs Python's grpc and protobuf (Debian: python3-grpcio, python3-protobuf) and the modules
generated from proto/agentnetwork/v1/node.proto on PYTHONPATH (CTest sets it to the build's
proto/python directory).
"""

import json
import os
import threading
import time

import grpc

from agentnetwork.v1 import node_pb2, node_pb2_grpc  # noqa: F401  (re-exported for the tests)

from harness import wait_until

# Deadline of one call made by a test: generous, a loaded machine must not make tests flaky.
CALL_TIMEOUT = 20.0
# How long a started node may take to answer on its endpoint.
ENDPOINT_TIMEOUT = 10.0


def read_node_status(data_dir):
    """The node.status of a data dir as a dict, or None while it is missing or unreadable."""
    try:
        with open(os.path.join(data_dir, "node.status"), "rb") as f:
            status = json.loads(f.read().decode("utf-8"))
    except (OSError, ValueError):
        return None
    return status if isinstance(status, dict) else None


def endpoint_of(data_dir):
    """The "grpc" key of node.status (a gRPC target as written), or None."""
    status = read_node_status(data_dir)
    endpoint = status.get("grpc") if status else None
    return endpoint or None


def read_token(data_dir):
    """The content of DIR/api.token without its trailing newline, or None when absent."""
    try:
        with open(os.path.join(data_dir, "api.token"), "rb") as f:
            return f.read().decode("ascii").rstrip("\r\n")
    except FileNotFoundError:
        return None


def bearer(token):
    """Call metadata carrying a bearer token (an empty tuple for no token)."""
    return (("authorization", "Bearer " + token),) if token is not None else ()


class Client:
    """A channel and a stub for one endpoint, with default metadata and deadline.

    `client.GetStatus()` calls with an empty request; `client.Ping(peer_id=..., count=3)` builds
    the request from keyword arguments; `client.call("Ping", request, metadata=...)` is the
    general form. Errors surface as grpc.RpcError (code(), details()).
    """

    def __init__(self, target, token=None, timeout=CALL_TIMEOUT):
        self.target = target
        self.timeout = timeout
        self.metadata = bearer(token)
        self.channel = grpc.insecure_channel(target)
        self.stub = node_pb2_grpc.NodeStub(self.channel)

    def close(self):
        self.channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def wait_ready(self, timeout=ENDPOINT_TIMEOUT):
        """Waits until the channel is connected; raises AssertionError after `timeout`."""
        try:
            grpc.channel_ready_future(self.channel).result(timeout=timeout)
        except grpc.FutureTimeoutError:
            raise AssertionError("the gRPC endpoint %s did not become ready within %ss"
                                 % (self.target, timeout))
        return self

    def call(self, method, request=None, metadata=None, timeout=None):
        """Calls a unary method by name; `metadata` replaces the default (token) metadata."""
        if request is None:
            request = getattr(node_pb2, method + "Request")()
        return getattr(self.stub, method)(
            request, metadata=self.metadata if metadata is None else metadata,
            timeout=self.timeout if timeout is None else timeout)

    def watch(self, include_current=False, metadata=None, timeout=None):
        """Opens WatchPeers; returns the call (an iterator of PeerEvent, cancel() to end it)."""
        return self.stub.WatchPeers(
            node_pb2.WatchPeersRequest(include_current=include_current),
            metadata=self.metadata if metadata is None else metadata, timeout=timeout)

    def __getattr__(self, method):
        if method.startswith("_") or method == "WatchPeers" \
                or not hasattr(node_pb2, method + "Request"):
            raise AttributeError(method)

        def unary(request=None, metadata=None, timeout=None, **fields):
            if request is None:
                request = getattr(node_pb2, method + "Request")(**fields)
            return self.call(method, request, metadata=metadata, timeout=timeout)

        return unary


def wait_endpoint(data_dir, timeout=ENDPOINT_TIMEOUT):
    """Waits until node.status names an endpoint; returns it."""
    return wait_until(lambda: endpoint_of(data_dir), timeout,
                      message="a \"grpc\" endpoint in %s/node.status" % data_dir)


def connect(data_dir, token="auto", timeout=ENDPOINT_TIMEOUT):
    """A ready Client for the node of data_dir. token: "auto" reads DIR/api.token when it
    exists; None sends none; a string is sent as it is."""
    target = wait_endpoint(data_dir, timeout)
    if token == "auto":
        token = read_token(data_dir)
    return Client(target, token=token).wait_ready(timeout)


class EventCollector:
    """Reads a WatchPeers stream on a thread; the events land in a list as they arrive.

    `wait_for(predicate)` waits (bounded) for an event that matches; `finished` is set when
    the stream ends, with `error` holding the RpcError if it ended with one (None for OK).
    """

    def __init__(self, call):
        self.call = call
        self.events = []
        self.error = None
        self.started = threading.Event()
        self.finished = threading.Event()
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self):
        try:
            # The node sends the headers once it has registered the watch.
            self.call.initial_metadata()
            self.started.set()
            for event in self.call:
                with self._cond:
                    self.events.append(event)
                    self._cond.notify_all()
        except grpc.RpcError as e:
            self.error = e
        finally:
            with self._cond:
                self.finished.set()
                self._cond.notify_all()

    def wait_started(self, timeout=ENDPOINT_TIMEOUT):
        """Waits until the node has registered the watch: it then sends the stream's headers,
        and every later event reaches the client. A stream that ended (refused) counts too."""
        self.started.wait(timeout)
        if not self.started.is_set() and not self.finished.is_set():
            raise AssertionError("WatchPeers: no response headers within %ss (the node sends "
                                 "them once the watch is registered)" % timeout)
        return self

    def snapshot(self):
        with self._cond:
            return list(self.events)

    def wait_for(self, predicate, timeout, what):
        """Returns the first event matching predicate, waiting at most `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for event in self.events:
                    if predicate(event):
                        return event
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.finished.is_set():
                    raise AssertionError(
                        "no WatchPeers event: %s within %.1fs (stream %s; events so far: %s)" % (
                            what, timeout,
                            "ended: %s" % describe_error(self.error) if self.finished.is_set()
                            else "open", [describe_event(e) for e in self.events]))
                self._cond.wait(remaining)

    def wait_finished(self, timeout):
        if not self.finished.wait(timeout):
            raise AssertionError("the WatchPeers stream did not end within %ss" % timeout)
        self._thread.join(timeout)

    def cancel(self):
        self.call.cancel()
        self.finished.wait(5)


def describe_event(event):
    return "%s %s%s" % (node_pb2.PeerEvent.Type.Name(event.type), event.peer.peer_id,
                        (" (%s)" % event.reason) if event.reason else "")


def describe_error(error):
    if error is None:
        return "OK"
    return "%s: %s" % (error.code().name, error.details())
