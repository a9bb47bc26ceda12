"""The IPAM state on disk: one JSON file in the kubelet's state directory, changed under a lock.

Every change is read-modify-write under a thread lock and an flock on a lock file (a second
kubelet started by mistake on the same directory waits instead of handing out the same address),
and written to a temporary file that is fsync'd and renamed over the old one, so a crash leaves
either the old state or the new one, never half of each.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from netproxy.podnet.errors import CorruptState, InvalidNetworkConfig, PodNetworkError
from netproxy.podnet.ipam import IpamState, from_document, to_document

T = TypeVar("T")
STATE_FILE = "ipam.json"
LOCK_FILE = "ipam.lock"


class StateFile:
    def __init__(self, state_dir: Path, cidr: str) -> None:
        self.dir = Path(state_dir)
        self.path = self.dir / STATE_FILE
        self.cidr = cidr
        self._lock = threading.Lock()

    @contextmanager
    def _locked(self):
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            handle = open(self.dir / LOCK_FILE, "a")
        except OSError as err:
            raise PodNetworkError(f"cannot use state directory {self.dir}: {err}") from None
        with self._lock, handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def _read(self, *, any_cidr: bool = False) -> IpamState:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return IpamState(self.cidr)
        except OSError as err:
            raise CorruptState(f"cannot read {self.path}: {err}") from None
        try:
            document = json.loads(text)
        except ValueError as err:
            raise CorruptState(f"{self.path} is not JSON ({err})") from None
        state = from_document(document, str(self.path))
        if state.cidr != self.cidr and not any_cidr:
            raise InvalidNetworkConfig(f"{self.path} holds addresses of pod CIDR {state.cidr}, not {self.cidr}: "
                                       "the node's pod CIDR changed; remove the node's pods first (cleanup_node)")
        return state

    def _write(self, state: IpamState) -> None:
        temporary = self.path.with_suffix(".tmp")
        try:
            with open(temporary, "w") as handle:
                json.dump(to_document(state), handle, indent=1)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.path)
            directory = os.open(self.dir, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        except OSError as err:
            raise PodNetworkError(f"cannot write {self.path}: {err}") from None

    def read(self, *, any_cidr: bool = False) -> IpamState:
        with self._locked():
            return self._read(any_cidr=any_cidr)

    def update(self, change: Callable[[IpamState], tuple[IpamState, T]]) -> T:
        """Apply change(state) -> (new state, result) atomically and return the result."""
        with self._locked():
            state = self._read()
            new_state, result = change(state)
            if new_state != state:
                self._write(new_state)
            return result

    def remove(self) -> None:
        with self._locked():
            self.path.unlink(missing_ok=True)
