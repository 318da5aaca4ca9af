"""Errors as each API's clients expect them: OpenAI's {"error": {...}} under /v1, Ollama's {"error": "..."}
elsewhere; the field at fault is named."""
import logging

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from qwenkit.engine.adapters import AdapterNotFoundError
from qwenkit.errors import InvalidRequestError, QwenkitError
from qwenkit.server.pool import ModelNotServedError
from qwenkit.server.worker import QueueFullError

log = logging.getLogger("qwenkit.server")


class BodyTooLarge(Exception):
    def __init__(self, limit: int):
        super().__init__(f"the request body is over the {limit} byte limit")


TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
         413: "invalid_request_error", 429: "rate_limit_exceeded", 500: "server_error", 503: "server_error"}


def error_response(path: str, status: int, message: str, param: str | None = None, code: str | None = None,
                   headers: dict | None = None) -> JSONResponse:
    if path.startswith("/api/"):
        body = {"error": message}
    else:
        body = {"error": {"message": message, "type": TYPES.get(status, "invalid_request_error"),
                          "param": param, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


def install(app) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_body(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        loc = [str(p) for p in first.get("loc", ()) if p != "body"]
        param = ".".join(loc) or "body"
        if first.get("type") == "json_invalid":
            return error_response(request.url.path, 400, "the request body is not valid JSON", "body", "json_invalid")
        return error_response(request.url.path, 400, f"{param}: {first.get('msg', 'invalid')}", param)

    @app.exception_handler(InvalidRequestError)
    async def invalid_request(request: Request, exc: InvalidRequestError):
        code = "context_length_exceeded" if "context limit" in str(exc) else None
        return error_response(request.url.path, 400, str(exc), exc.field, code)

    @app.exception_handler(AdapterNotFoundError)
    async def adapter_not_loaded(request: Request, exc: AdapterNotFoundError):
        return error_response(request.url.path, 404, str(exc), "model", "model_not_found")

    @app.exception_handler(ModelNotServedError)
    async def not_served(request: Request, exc: ModelNotServedError):
        return error_response(request.url.path, 404, str(exc), "model", "model_not_found")

    @app.exception_handler(QueueFullError)
    async def queue_full(request: Request, exc: QueueFullError):
        return error_response(request.url.path, 429, str(exc), None, "queue_full",
                              {"Retry-After": str(exc.retry_after)})

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        return error_response(request.url.path, exc.status_code, str(exc.detail), None, None, exc.headers)

    @app.exception_handler(QwenkitError)
    async def qwenkit_error(request: Request, exc: QwenkitError):
        log.error("request failed: %s", exc)
        return error_response(request.url.path, 500, str(exc))

    @app.exception_handler(BodyTooLarge)
    async def too_large(request: Request, exc: BodyTooLarge):
        return error_response(request.url.path, 413, str(exc), "body")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        log.exception("request failed")
        return error_response(request.url.path, 500, f"internal error: {type(exc).__name__}: {exc}")

    @app.exception_handler(MemoryError)
    async def out_of_memory(request: Request, exc: MemoryError):
        return error_response(request.url.path, 503, f"out of memory: {exc}")
