"""Batched UDP I/O with Linux's recvmmsg(2) and sendmmsg(2), through ctypes.

Python's `recvfrom`/`sendto` cost two system calls per query plus, each time, an address
parsed to and from text. For answers served from bytes that is most of the CPU a query costs.
Here one `recvmmsg` takes up to BATCH datagrams into preallocated buffers, senders' addresses
stay raw `sockaddr` bytes, and one `sendmmsg` sends every reply of the batch back to them.

Everything lives in fixed ctypes arrays allocated once per socket; per datagram, Python only
slices the query out, and copies the reply and its length into the slot of that datagram.
Where the calls are missing (not Linux, no libc), `available()` is False and the listener keeps
its portable loop.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import socket
import struct
import sys
from collections.abc import Callable

BATCH = 64
SLOT = 4096  # bytes per datagram slot: queries, and replies sent from bytes, are smaller
NAME = 28  # sizeof(struct sockaddr_in6), room for either family
MSG_DONTWAIT = getattr(socket, "MSG_DONTWAIT", 0x40)


class _Iovec(ctypes.Structure):
    _fields_ = (("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t))


class _Msghdr(ctypes.Structure):
    _fields_ = (
        ("msg_name", ctypes.c_void_p),
        ("msg_namelen", ctypes.c_uint32),
        ("msg_iov", ctypes.POINTER(_Iovec)),
        ("msg_iovlen", ctypes.c_size_t),
        ("msg_control", ctypes.c_void_p),
        ("msg_controllen", ctypes.c_size_t),
        ("msg_flags", ctypes.c_int),
    )


class _Mmsghdr(ctypes.Structure):
    _fields_ = (("msg_hdr", _Msghdr), ("msg_len", ctypes.c_uint))


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.recvmmsg.argtypes = (
            ctypes.c_int,
            ctypes.c_void_p,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_void_p,
        )
        libc.sendmmsg.argtypes = (ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int)
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _libc()


def available() -> bool:
    return _LIBC is not None


class BatchIO:
    """recvmmsg/sendmmsg on one socket, with buffers for BATCH datagrams each way."""

    def __init__(self, sock: socket.socket) -> None:
        assert _LIBC is not None
        self._recvmmsg = _LIBC.recvmmsg
        self._sendmmsg = _LIBC.sendmmsg
        self.fd = sock.fileno()
        self.namelen = 28 if sock.family == socket.AF_INET6 else 16
        self._rbuf = ctypes.create_string_buffer(BATCH * SLOT)
        self._sbuf = ctypes.create_string_buffer(BATCH * SLOT)
        self._names = ctypes.create_string_buffer(BATCH * NAME)
        self._riov = (_Iovec * BATCH)()
        self._siov = (_Iovec * BATCH)()
        self._rmsgs = (_Mmsghdr * BATCH)()
        self._smsgs = (_Mmsghdr * BATCH)()
        rbase = ctypes.addressof(self._rbuf)
        sbase = ctypes.addressof(self._sbuf)
        nbase = ctypes.addressof(self._names)
        for i in range(BATCH):
            self._riov[i].iov_base = rbase + i * SLOT
            self._riov[i].iov_len = SLOT
            self._siov[i].iov_base = sbase + i * SLOT
            for msgs, iov in ((self._rmsgs, self._riov), (self._smsgs, self._siov)):
                hdr = msgs[i].msg_hdr
                hdr.msg_name = nbase + i * NAME  # a reply goes back to where its query came from
                hdr.msg_namelen = self.namelen
                hdr.msg_iov = ctypes.pointer(iov[i])
                hdr.msg_iovlen = 1
        self._rview = memoryview(self._rbuf).cast("B")
        self._sview = memoryview(self._sbuf).cast("B")
        self._nview = memoryview(self._names).cast("B")
        # Received lengths (msg_len) and send lengths (iov_len), read and written in place.
        self._mview = memoryview(self._rmsgs).cast("B")
        self._siov_view = memoryview(self._siov).cast("B")
        size = ctypes.sizeof(_Mmsghdr)
        len_at = _Mmsghdr.msg_len.offset
        self._lens = struct.Struct(f"{len_at}xI{size - len_at - 4}x")
        self._iov_size = ctypes.sizeof(_Iovec)
        self._iov_len_at = _Iovec.iov_len.offset
        self._size_t = struct.Struct("N")
        self._msg_size = size

    def receive(self) -> int:
        """Take up to BATCH waiting datagrams; the count (0 when none are waiting)."""
        n: int = self._recvmmsg(self.fd, self._rmsgs, BATCH, MSG_DONTWAIT, None)
        if n < 0:
            err = ctypes.get_errno()
            if err in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR):
                return 0
            if err in (errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH):
                return 0  # an ICMP error from an earlier reply, reported on this socket
            raise OSError(err, "recvmmsg failed")
        return n

    def serve(self, n: int, fast: Callable[[bytes], bytes | None]) -> list[tuple[bytes, bytes]]:
        """Answer from `fast` what it can of the first `n` received datagrams, send those
        replies at once, and return the rest as (query, raw sockaddr) for the full path.

        Stored replies go out before any cold work starts: a query the server answers from
        bytes never waits behind the full path of the datagrams received with it. This loop is
        the hot path of the whole server: it is written out flat, with everything it touches
        in local variables (no per-datagram method calls besides `fast`)."""
        rview, sview, siov, nview = self._rview, self._sview, self._siov_view, self._nview
        pack_len = self._size_t.pack_into
        iov_size, iov_len_at = self._iov_size, self._iov_len_at
        namelen = self.namelen
        cold: list[tuple[bytes, bytes]] = []
        k = 0  # replies are packed into slots 0..k-1, each with its client's address
        lengths = self._lens.iter_unpack(self._mview[: n * self._msg_size])
        for i, (length,) in enumerate(lengths):
            base = i * SLOT
            data = rview[base : base + length].tobytes()
            out = fast(data)
            if out is None or len(out) > SLOT:
                cold.append((data, nview[i * NAME : i * NAME + namelen].tobytes()))
                continue
            if k != i:
                at = k * NAME
                nview[at : at + namelen] = nview[i * NAME : i * NAME + namelen]
            at = k * SLOT
            sview[at : at + len(out)] = out
            pack_len(siov, k * iov_size + iov_len_at, len(out))
            k += 1
        if k:
            self.send(0, k)
        return cold

    def reply(self, replies: list[tuple[bytes, bytes]]) -> None:
        """Send (raw sockaddr, reply of at most SLOT bytes) pairs, at most BATCH of them, in
        one batch through the send slots (free between receive batches)."""
        sview, siov, nview = self._sview, self._siov_view, self._nview
        pack_len = self._size_t.pack_into
        iov_size, iov_len_at = self._iov_size, self._iov_len_at
        for k, (name, out) in enumerate(replies):
            nview[k * NAME : k * NAME + len(name)] = name
            sview[k * SLOT : k * SLOT + len(out)] = out
            pack_len(siov, k * iov_size + iov_len_at, len(out))
        if replies:
            self.send(0, len(replies))

    def name(self, slot: int) -> bytes:
        """The raw sockaddr a datagram came from."""
        return self._nview[slot * NAME : slot * NAME + self.namelen].tobytes()

    def send(self, first: int, count: int) -> None:
        """Send the queued replies of slots first..first+count-1 (a full buffer drops them)."""
        sent = 0
        while sent < count:
            start = ctypes.byref(self._smsgs, (first + sent) * self._msg_size)
            m: int = self._sendmmsg(self.fd, start, count - sent, MSG_DONTWAIT)
            if m <= 0:
                return  # EAGAIN or an error: these clients retry
            sent += m


def address(raw: bytes) -> tuple[str, int] | tuple[str, int, int, int]:
    """A raw sockaddr as the tuple `socket.sendto` takes."""
    port = int.from_bytes(raw[2:4], "big")
    if len(raw) >= 24 and int.from_bytes(raw[0:2], sys.byteorder) == socket.AF_INET6:
        scope = int.from_bytes(raw[24:28], sys.byteorder) if len(raw) >= 28 else 0
        return socket.inet_ntop(socket.AF_INET6, raw[8:24]), port, 0, scope
    return socket.inet_ntop(socket.AF_INET, raw[4:8]), port
