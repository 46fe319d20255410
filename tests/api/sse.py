"""Reading a Server-Sent Events stream the way a browser's EventSource does."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

import httpx2


@dataclass
class Event:
    event: str
    id: str | None
    data: dict[str, Any]


@dataclass
class StreamReader:
    """Reads a job's event stream on a thread until it ends; `events`, `comments` and `ended` say what came."""

    client: httpx2.Client
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    comments: int = 0
    status_code: int | None = None
    ended: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None

    def start(self) -> StreamReader:
        threading.Thread(target=self._read, daemon=True).start()
        return self

    def _read(self) -> None:
        try:
            with self.client.stream("GET", self.path, headers=self.headers, timeout=60) as response:
                self.status_code = response.status_code
                current: dict[str, str] = {}
                for line in response.iter_lines():
                    if line.startswith(":"):
                        self.comments += 1
                    elif line == "":
                        if "data" in current:
                            self.events.append(Event(current.get("event", "message"), current.get("id"), json.loads(current["data"])))
                        current = {}
                    else:
                        name, _, value = line.partition(":")
                        current[name] = value.removeprefix(" ")
        except BaseException as error:  # noqa: BLE001 (reported to the test)
            self.error = error
        finally:
            self.ended.set()

    def wait(self, timeout: float = 60) -> StreamReader:
        assert self.ended.wait(timeout), f"the event stream did not end within {timeout} s; got {self.events}"
        assert self.error is None, self.error
        return self
