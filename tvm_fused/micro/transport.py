"""Byte-stream transports for the RPC: TCP (QEMU's serial chardev) and a real UART.

Both expose the same three calls (write, read with a timeout, close) so the RPC
client and Session do not care what is on the other end."""
from __future__ import annotations

import socket
import time

from .errors import DeviceDisconnectedError, DeviceError


class Transport:
    url = "?"

    def write(self, data: bytes) -> None:
        raise NotImplementedError

    def read(self, timeout: float) -> bytes:
        """Whatever arrived within `timeout` seconds (b"" if nothing).
        Raises DeviceDisconnectedError if the other end is gone."""
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class TcpTransport(Transport):
    def __init__(self, host: str, port: int, connect_timeout: float = 10.0, alive=None):
        """Connect, retrying until `connect_timeout`; `alive()` (e.g. QEMU still
        running) aborts the wait early when it returns False."""
        self.url = f"tcp://{host}:{port}"
        deadline = time.monotonic() + connect_timeout
        last = None
        while True:
            try:
                self.sock = socket.create_connection((host, port), timeout=1.0)
                break
            except OSError as e:
                last = e
            if alive is not None and not alive():
                raise DeviceDisconnectedError(f"{self.url}: the device process exited before accepting a connection")
            if time.monotonic() > deadline:
                raise DeviceError(f"could not connect to {self.url} within {connect_timeout:.0f}s: {last}")
            time.sleep(0.05)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def write(self, data: bytes) -> None:
        try:
            self.sock.settimeout(10.0)
            self.sock.sendall(data)
        except OSError as e:
            raise DeviceDisconnectedError(f"{self.url}: connection lost while sending ({e})") from e

    def read(self, timeout: float) -> bytes:
        self.sock.settimeout(max(timeout, 1e-3))
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return b""
        except OSError as e:
            raise DeviceDisconnectedError(f"{self.url}: connection lost ({e})") from e
        if not data:
            raise DeviceDisconnectedError(f"{self.url}: connection closed by the device side")
        return data

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


class SerialTransport(Transport):
    """A board's UART (e.g. the ST-LINK virtual COM port) through pyserial."""

    def __init__(self, port: str, baudrate: int = 115200):
        import serial  # imported here so QEMU-only users do not need pyserial

        self.url = f"serial://{port}@{baudrate}"
        try:
            self.ser = serial.Serial(port, baudrate=baudrate, timeout=0.1, write_timeout=10.0)
        except serial.SerialException as e:
            raise DeviceError(f"cannot open {port}: {e}") from e
        self.ser.reset_input_buffer()

    def write(self, data: bytes) -> None:
        import serial

        try:
            self.ser.write(data)
        except serial.SerialException as e:
            raise DeviceDisconnectedError(f"{self.url}: {e}") from e

    def read(self, timeout: float) -> bytes:
        import serial

        try:
            self.ser.timeout = max(timeout, 1e-3)
            first = self.ser.read(1)
            return first + self.ser.read(self.ser.in_waiting) if first else b""
        except serial.SerialException as e:
            raise DeviceDisconnectedError(f"{self.url}: {e}") from e

    def close(self) -> None:
        self.ser.close()
