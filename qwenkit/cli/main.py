"""The `qwenkit` command: one verb per user task, like Ollama and litgpt."""
import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Run, serve and customize Qwen-family models on your own machine.")


def _register() -> None:
    from qwenkit.cli import adapters, bench, car, inference, serve, store, tune
    from qwenkit.cli import eval as eval_cli
    inference.register(app)
    serve.register(app)
    store.register(app)
    bench.register(app)
    tune.register(app)
    adapters.register(app)
    car.register(app)
    eval_cli.register(app)


_register()

if __name__ == "__main__":
    app()
