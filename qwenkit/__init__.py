"""qwenkit: run, serve and customize Qwen-family models on your own machine."""
from qwenkit.errors import InvalidRequestError, ModelLoadError, QwenkitError
from qwenkit.outputs import CompletionOutput, RequestOutput, StreamDelta
from qwenkit.sampling_params import SamplingParams

__version__ = "0.1.0"
__all__ = ["LLM", "SamplingParams", "RequestOutput", "CompletionOutput", "StreamDelta",
           "QwenkitError", "ModelLoadError", "InvalidRequestError"]


def __getattr__(name: str):
    if name == "LLM":  # imported lazily so `import qwenkit` stays light
        from qwenkit.llm import LLM
        return LLM
    raise AttributeError(name)
