"""A small ttRPC client written from the wire description, independent of
husk's C client, so a framing bug shared by both sides cannot hide.

Frame: 10-byte header (u32 BE length, u32 BE stream id, u8 type, u8 flags)
then `length` bytes.  Type 1 request, 2 response, 3 data.  Client stream
ids are odd and increase.  Requests and responses carry ttrpc.Request /
ttrpc.Response envelopes.
"""
import socket
import struct
import threading

HEADER = struct.Struct(">IIBB")
TYPE_REQUEST = 1
TYPE_RESPONSE = 2
MAX_FRAME = 4 << 20

OK = 0
UNKNOWN = 2
INVALID_ARGUMENT = 3
DEADLINE_EXCEEDED = 4
NOT_FOUND = 5
ALREADY_EXISTS = 6
FAILED_PRECONDITION = 9
UNIMPLEMENTED = 12
INTERNAL = 13


class RpcError(Exception):
    def __init__(self, code, message):
        super().__init__(f"rpc error {code}: {message}")
        self.code = code
        self.message = message


class Pending:
    """One call in flight; result() waits for its response."""

    def __init__(self, client, stream_id, resp_cls):
        self.client = client
        self.stream_id = stream_id
        self.resp_cls = resp_cls
        self.event = threading.Event()
        self.response = None

    def done(self):
        return self.event.is_set()

    def result(self, timeout=30):
        if not self.event.wait(timeout):
            raise TimeoutError(f"stream {self.stream_id}: no response in {timeout}s")
        if self.response is None:
            raise ConnectionError(f"stream {self.stream_id}: connection closed")
        status = self.response.status
        if status.code != OK:
            raise RpcError(status.code, status.message)
        out = self.resp_cls()
        out.ParseFromString(self.response.payload)
        return out


class Client:
    def __init__(self, path, pb):
        self.pb = pb
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.lock = threading.Lock()
        self.next_id = 1
        self.pending = {}
        self.closed = False
        self.reader = threading.Thread(target=self._read_loop, daemon=True)
        self.reader.start()

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.reader.join(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _recv_exact(self, n):
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return bytes(buf)

    def _read_loop(self):
        try:
            while True:
                hdr = self._recv_exact(HEADER.size)
                if hdr is None:
                    break
                length, sid, ftype, _flags = HEADER.unpack(hdr)
                body = self._recv_exact(length)
                if body is None:
                    break
                if ftype != TYPE_RESPONSE:
                    continue
                resp = self.pb.ttrpc.Response()
                resp.ParseFromString(body)
                with self.lock:
                    call = self.pending.pop(sid, None)
                if call is not None:
                    call.response = resp
                    call.event.set()
        except OSError:
            pass
        with self.lock:
            self.closed = True
            calls = list(self.pending.values())
            self.pending.clear()
        for call in calls:
            call.event.set()

    def send_raw(self, stream_id, ftype, body, flags=0, length=None):
        """Write one frame as given (tests use it for malformed input)."""
        if length is None:
            length = len(body)
        self.sock.sendall(HEADER.pack(length, stream_id, ftype, flags) + body)

    def raw_call(self, stream_id, body, resp_cls, length=None):
        """Send a hand-made request frame and return its Pending."""
        call = Pending(self, stream_id, resp_cls)
        with self.lock:
            self.pending[stream_id] = call
            self.send_raw(stream_id, TYPE_REQUEST, body, length=length)
        return call

    def _alloc_id(self):
        sid = self.next_id
        self.next_id += 2
        return sid

    def start_raw(self, service, method, payload, resp_cls):
        req = self.pb.ttrpc.Request(service=service, method=method, payload=payload)
        body = req.SerializeToString()
        with self.lock:
            sid = self._alloc_id()
            call = Pending(self, sid, resp_cls)
            self.pending[sid] = call
            self.send_raw(sid, TYPE_REQUEST, body)
        return call

    def start(self, method, req, resp_cls=None, service="grpc.AgentService"):
        """Send a call and return its Pending without waiting."""
        if resp_cls is None:
            resp_cls = self.pb.RESPONSES[method]
        return self.start_raw(service, method, req.SerializeToString(), resp_cls)

    def call(self, method, req, resp_cls=None, service="grpc.AgentService", timeout=30):
        return self.start(method, req, resp_cls, service).result(timeout)
