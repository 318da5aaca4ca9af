"""What long store operations tell their user; the CLI draws it with rich, library callers may ignore it."""


class Reporter:
    def info(self, message: str) -> None:
        pass

    def warn(self, message: str) -> None:
        pass

    def start(self, label: str, total: int | None, done: int = 0) -> None:
        pass

    def advance(self, n: int) -> None:
        pass

    def finish(self) -> None:
        pass


class HubBar:
    """Stands in for the tqdm bar huggingface_hub's http_get opens, forwarding bytes to a Reporter."""

    def __init__(self, reporter: Reporter, **_tqdm_kwargs):
        self.reporter = reporter

    def __enter__(self) -> "HubBar":
        return self

    def __exit__(self, *exc) -> None:
        pass

    def update(self, n: int) -> None:
        self.reporter.advance(n)

    def close(self) -> None:
        pass
