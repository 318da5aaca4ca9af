"""Conversations for the Qwen chat templates: system prompts, history, tools, tool calls, thinking."""

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "e.g. Zürich"},
                                                    "unit": {"type": "string", "enum": ["c", "f"]}},
                   "required": ["city"]}}}
CLOCK = {"type": "function", "function": {
    "name": "get_time", "description": "Local time", "parameters": {"type": "object", "properties": {}}}}
TOOLS = [WEATHER, CLOCK]

SYSTEM = {"role": "system", "content": "You are a terse assistant. Answer in one line."}
ASK = {"role": "user", "content": "What's the weather in Paris and Tokyo, and the time?"}
CALLS = {"role": "assistant", "content": "", "tool_calls": [
    {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
    {"id": "c2", "type": "function", "function": {"name": "get_weather",
                                                  "arguments": '{"city": "Tokyo", "unit": "c"}'}},
    {"id": "c3", "type": "function", "function": {"name": "get_time", "arguments": {}}}]}
RESULTS = [{"role": "tool", "tool_call_id": "c1", "content": '{"temp": 18, "sky": "cloudy"}'},
           {"role": "tool", "tool_call_id": "c2", "content": '{"temp": 24, "sky": "sunny"}'},
           {"role": "tool", "tool_call_id": "c3", "content": "14:05"}]

CONVERSATIONS = {
    "user_only": [{"role": "user", "content": "Hello, who are you?"}],
    "system": [SYSTEM, {"role": "user", "content": "Name a prime."}],
    "history": [SYSTEM, {"role": "user", "content": "Hi!"}, {"role": "assistant", "content": "Hello."},
                {"role": "user", "content": "Translate 'cat' to German."},
                {"role": "assistant", "content": "Katze"},
                {"role": "user", "content": "And to Chinese? 请回答。"}],
    "tools": [ASK],
    "tools_system": [SYSTEM, ASK],
    "tool_calls": [SYSTEM, ASK, CALLS, *RESULTS,
                   {"role": "assistant", "content": "Paris 18°C cloudy, Tokyo 24°C sunny; it is 14:05."},
                   {"role": "user", "content": "Thanks! Ünïcödé 😀"}],
    "tool_call_with_text": [ASK, {**CALLS, "content": "Let me check.", "tool_calls": CALLS["tool_calls"][:1]},
                            RESULTS[0]],
    "reasoning": [{"role": "user", "content": "2+2?"},
                  {"role": "assistant", "content": "4", "reasoning_content": "Simple addition."},
                  {"role": "user", "content": "Times 3?"}],
    "reasoning_in_content": [{"role": "user", "content": "2+2?"},
                             {"role": "assistant", "content": "<think>\nAdd them.\n</think>\n\n4"},
                             {"role": "user", "content": "/no_think Times 3?"}],
    "reasoning_after_query": [ASK, {**CALLS, "reasoning_content": "I need the tools."}, *RESULTS],
}
TOOLED = {"tools", "tools_system", "tool_calls", "tool_call_with_text", "reasoning_after_query"}
