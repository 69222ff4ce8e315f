"""Fixtures of the captioning tests: the tiny LLaVA, `transformers serve`, the fault server."""

from support.servers import _fault_server_session, fault_server, tiny_llava_server  # noqa: F401
from support.tiny_llava import tiny_llava_dir  # noqa: F401
