"""The lifecycle every local fake shares: start(), stop(), and `with` for both."""

from types import TracebackType
from typing import Self


class Startable:
    """A local server used as `with Server(...) as server:`, started on entry and stopped on
    exit; start() returns the server, so `Server(...).start()` works as well."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
