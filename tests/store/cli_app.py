"""The qwenkit CLI as tests run it: the full app once it imports, else the store commands alone."""
import typer

try:
    from qwenkit.cli.main import app
except ImportError:
    from qwenkit.cli import store

    app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
    store.register(app)


def commands() -> set[str]:
    return set(typer.main.get_command(app).commands)


if __name__ == "__main__":
    app()
