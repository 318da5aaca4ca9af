"""Loading and unloading LoRA adapters while the server runs, with vLLM's endpoints and bodies."""
from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse
from starlette.exceptions import HTTPException

from qwenkit.errors import InvalidRequestError, ModelLoadError
from qwenkit.server.protocol import LoadAdapterRequest, UnloadAdapterRequest

router = APIRouter(prefix="/v1", tags=["LoRA adapters"])


@router.post("/load_lora_adapter", response_class=PlainTextResponse)
async def load_lora_adapter(body: LoadAdapterRequest, request: Request):
    _allowed(request)
    try:
        served = await request.app.state.pool.load_adapter(body.lora_name, body.lora_path, body.model)
    except ModelLoadError as e:
        raise InvalidRequestError("lora_path", str(e)) from None
    return f"Success: LoRA adapter '{body.lora_name}' added successfully to {served.name}."


@router.post("/unload_lora_adapter", response_class=PlainTextResponse)
async def unload_lora_adapter(body: UnloadAdapterRequest, request: Request):
    _allowed(request)
    await request.app.state.pool.unload_adapter(body.lora_name)
    return f"Success: LoRA adapter '{body.lora_name}' removed successfully."


def _allowed(request: Request) -> None:
    if not request.app.state.settings.adapter_loading:
        raise HTTPException(403, "loading adapters at runtime is off: the server listens beyond this machine "
                                 "without --api-key; start it with --adapter NAME=DIR instead")
