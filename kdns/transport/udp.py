"""UDP listener: a drain loop on a non-blocking socket, with bounded in-flight work.

asyncio's datagram transport reads one datagram per loop turn into a fresh 256 KiB buffer; a
reader callback that drains the socket until it would block costs a fraction of that. Each
datagram is first offered to `fast` (synchronous: a reply served from bytes is sent at once); with
batched I/O the rest wait in a bounded queue of cold work, answered in short slices between reads,
queries asked before first and then newest first (stored replies never wait behind a flood of
names asked once, nor does an ordinary name asked for the first time; beyond MAX_COLD the oldest
are shed and counted). The full path runs at once (`kdns.eager`), and only a query that has to wait
(forwarded upstream) becomes a task. When `max_inflight` such tasks are already running the
datagram is dropped (the client retries), so overload never grows an unbounded queue.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import socket
import time
from collections.abc import Callable, Coroutine
from typing import Any

from kdns import eager
from kdns.transport import mmsg

log = logging.getLogger("kdns.udp")

Serve = Callable[[bytes, str, str, int], Coroutine[Any, Any, bytes | None]]
Fast = Callable[[bytes], bytes | None]
Known = Callable[[bytes], bool]
MAX_INFLIGHT = 2048
DRAIN_BATCH = 64  # datagrams read per wake-up before yielding to other work
# Batched reads per wake-up: the socket's whole queue (a few hundred datagrams at most) is read
# and its stored replies sent before the next slice of cold work, so an ordinary query waits
# behind at most one slice, never behind the cold work of the datagrams queued ahead of it.
BATCHES_PER_READ = 8
RECV_SIZE = 4096  # queries are small; anything longer is not a sane query
USE_MMSG = True  # recvmmsg/sendmmsg where available (Linux)
RCVBUF = 128 * 1024
# Cold (full-path) work is done in slices of this many seconds, so that datagrams arriving
# meanwhile are read, and those answered from bytes sent, at least this often.
COLD_SLICE = 0.0005
# At most this many queries wait for the full path (~5-10 ms of work); beyond it the oldest
# are shed and counted (kdns_udp_shed_total).
MAX_COLD = 256
PEERS = 4096  # client addresses kept in text form (raw sockaddr -> address, IP, port)


def client_ip(host: str) -> str:
    # A dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d; use the IPv4 form.
    return host[7:] if host.startswith("::ffff:") and "." in host else host


def _no_reply(data: bytes) -> None:
    return None


class UdpServer:
    def __init__(
        self,
        sock: socket.socket,
        serve: Serve,
        fast: Fast | None = None,
        max_inflight: int | None = None,
    ) -> None:
        self.sock = sock
        self.serve = serve
        self.fast = fast
        self.known: Known | None = None  # asked before? (those go ahead of new names)
        self.max_inflight = MAX_INFLIGHT if max_inflight is None else max_inflight
        self.inflight = 0
        self.peak_inflight = 0
        self.dropped = 0
        self.accepting = True  # cleared at shutdown: accepted queries finish, new ones drop
        self._tasks: set[asyncio.Task[bytes | None]] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._loop = asyncio.get_running_loop()
        # Batched system calls where the platform has them; the portable loop otherwise.
        self._io = mmsg.BatchIO(sock) if USE_MMSG and mmsg.available() else None
        # Full-path work taken off the socket, answered in slices between reads (batched I/O).
        self._cold: collections.deque[tuple[bytes, bytes]] = collections.deque()
        # Cold queries asked before (a hot name whose stored reply just ended) go first: a
        # flood of new names never holds back the names the cluster asks all day.
        self._warm: collections.deque[tuple[bytes, bytes]] = collections.deque()
        self.max_cold = MAX_COLD
        self._peers: dict[bytes, tuple[tuple[str | int, ...], str, int]] = {}
        self.shed = 0  # queries dropped because more cold work waited than MAX_COLD
        self._scheduled: asyncio.Handle | None = None
        self._cold_idle = asyncio.Event()
        self._cold_idle.set()
        reader = self._readable_batched if self._io is not None else self._readable
        self._loop.add_reader(sock.fileno(), reader)
        self._closed = False

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def _readable_batched(self) -> None:
        io = self._io
        assert io is not None
        fast = self.fast or _no_reply
        cold = self._cold
        for _ in range(BATCHES_PER_READ):
            try:
                n = io.receive()
            except OSError as exc:
                log.debug("udp: %s", exc)
                break
            if n == 0:
                break
            if not self.accepting:
                self.dropped += n
                continue
            missed = io.serve(n, fast)
            if missed:
                known = self.known
                if known is None:
                    cold.extend(missed)
                else:
                    for item in missed:
                        (self._warm if known(item[0]) else cold).append(item)
            if n < mmsg.BATCH:
                break
        if len(self._warm) > self.max_cold:
            self.shed += len(self._warm) - self.max_cold
            while len(self._warm) > self.max_cold:
                self._warm.popleft()
        over = len(cold) - self.max_cold
        if over > 0:
            # More cold work waits than the core does in a few milliseconds: the oldest
            # queries go unanswered (their clients have likely retried already), so the
            # queue, and what an ordinary query waits behind, stays bounded.
            for _ in range(over):
                cold.popleft()
            self.shed += over
        if (cold or self._warm) and self._scheduled is None:  # else the due slice runs soon
            self._cold_idle.clear()
            self._work_cold()

    def _work_cold(self) -> None:
        """Answer queued full-path queries for up to COLD_SLICE seconds, then give the loop
        back (the reader answers what arrived meanwhile from bytes first) and go on later."""
        self._scheduled = None
        io = self._io
        assert io is not None
        cold, warm = self._cold, self._warm
        clock = time.perf_counter
        until = clock() + COLD_SLICE
        replies: list[tuple[bytes, bytes]] = []
        oldest = True
        while warm or cold:
            # Newest first: under overload the queue holds a flood's backlog, and a query that
            # just arrived (an ordinary name asked for the first time) is answered in the next
            # slice instead of after all of it; the oldest, whose clients have likely retried
            # already, are the ones shed (adaptive LIFO, as CoDel-style servers do). One query
            # a slice is taken from the old end, so none waits for ever under steady load.
            if warm:
                data, name = warm.pop()
            elif oldest:
                data, name = cold.popleft()
                oldest = False
            else:
                data, name = cold.pop()
            out = self._full_path_raw(data, name)
            if out is not None:
                replies.append((name, out))
                if len(replies) == mmsg.BATCH:
                    io.reply(replies)
                    replies = []
            if clock() > until:
                break
        io.reply(replies)
        if not (cold or warm) or self._closed:
            self._cold_idle.set()
        elif self._scheduled is None:
            self._scheduled = self._loop.call_soon(self._work_cold)

    def _full_path_raw(self, data: bytes, name: bytes) -> bytes | None:
        peer = self._peers.get(name)
        if peer is None:
            # A client sends many queries from one address: its text form is made once.
            addr = mmsg.address(name)
            peer = (addr, client_ip(str(addr[0])), int(addr[1]))
            if len(self._peers) >= PEERS:
                self._peers.clear()
            self._peers[name] = peer
        out = self._full_path(data, peer[0], peer[1], peer[2])
        if out is not None and len(out) > mmsg.SLOT:
            self._send(out, peer[0])  # too big for a batch slot
            return None
        return out

    def _full_path(
        self,
        data: bytes,
        addr: tuple[str | int, ...],
        client: str | None = None,
        port: int = 0,
    ) -> bytes | None:
        """Answer `data` now if nothing has to wait (the reply is returned for the caller to
        send), else leave a task to finish and send it (None). Only those tasks count
        against `max_inflight`: queries answered at once hold nothing, so they are answered
        even while waiting work is at its bound (and a query that would wait is dropped)."""
        if client is None:
            client, port = client_ip(str(addr[0])), int(addr[1])
        coro = self.serve(data, "udp", client, port)
        try:
            result = eager.start(
                coro, self._loop, "udp query", may_wait=self.inflight < self.max_inflight
            )
        except eager.WouldWait:
            self.dropped += 1
            return None
        except Exception:
            log.exception("udp: failed to answer a datagram")
            return None
        if not isinstance(result, asyncio.Task):
            return result
        self.inflight += 1
        if self.inflight > self.peak_inflight:
            self.peak_inflight = self.inflight
        self._idle.clear()
        self._tasks.add(result)
        result.add_done_callback(lambda task: self._finished(task, addr))
        return None

    def _finished(self, task: asyncio.Task[bytes | None], addr: tuple[str | int, ...]) -> None:
        self._tasks.discard(task)
        self.inflight -= 1
        if self.inflight == 0:
            self._idle.set()
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("udp: failed to answer a datagram", exc_info=exc)
            return
        out = task.result()
        if out is not None:
            self._send(out, addr)

    def _send(self, out: bytes, addr: tuple[str | int, ...]) -> None:
        if not self._closed:
            with contextlib.suppress(OSError):  # a full send buffer drops it; clients retry
                self.sock.sendto(out, addr)

    def _readable(self) -> None:
        sock = self.sock
        recv = sock.recvfrom
        fast = self.fast
        for _ in range(DRAIN_BATCH):
            try:
                data, addr = recv(RECV_SIZE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. ICMP errors surfacing on the socket
                log.debug("udp: %s", exc)
                return
            if not self.accepting:
                self.dropped += 1
                continue
            out = fast(data) if fast is not None else None
            if out is None:
                out = self._full_path(data, addr)
            if out is not None:
                # A full send buffer drops the reply (the client retries). Not suppress():
                # entering a context manager costs as much as the rest of a fast answer.
                try:  # noqa: SIM105
                    sock.sendto(out, addr)
                except OSError:
                    pass

    async def drain(self) -> None:
        """Wait until every accepted query has been answered."""
        await self._cold_idle.wait()  # queued cold work is answered in slices by the loop
        await self._idle.wait()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self._scheduled is not None:
                self._scheduled.cancel()
            self._cold.clear()
            self._warm.clear()
            self._cold_idle.set()
            self._loop.remove_reader(self.sock.fileno())
            self.sock.close()


def open_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        if family == socket.AF_INET6 and host == "::":
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # The receive buffer is the queue in front of the server: a bigger one rides out bursts
        # but, beyond capacity, makes every answered query wait for the whole backlog (2 MiB
        # held about a second of full-path queries). 128 KiB (256 KiB as the kernel counts it,
        # near Linux's default) is a few milliseconds of fast-path answers and keeps the wait
        # bounded when overloaded; what does not fit is dropped and the client retries.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        sock.bind((host, port))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def listen(host: str, port: int, serve: Serve, fast: Fast | None = None) -> UdpServer:
    return UdpServer(open_socket(host, port), serve, fast)
