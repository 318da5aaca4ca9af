"""Prometheus text exposition, by hand: request counts, tokens, queue depth, KV cache use, latency histograms."""
import time
from collections import Counter

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Histogram:
    def __init__(self, buckets=LATENCY_BUCKETS):
        self.buckets, self.counts, self.sum, self.count = buckets, [0] * len(buckets), 0.0, 0

    def observe(self, value: float) -> None:
        self.sum += value
        self.count += 1
        for i, edge in enumerate(self.buckets):
            if value <= edge:
                self.counts[i] += 1

    def lines(self, name: str) -> list[str]:
        out = [f'{name}_bucket{{le="{edge}"}} {n}' for edge, n in zip(self.buckets, self.counts)]
        return out + [f'{name}_bucket{{le="+Inf"}} {self.count}', f"{name}_sum {self.sum:.6f}",
                      f"{name}_count {self.count}"]


class Metrics:
    def __init__(self):
        self.requests: Counter = Counter()       # (path, status) -> count
        self.prompt_tokens = self.generation_tokens = 0
        self.latency, self.first_token = Histogram(), Histogram()

    def request_done(self, path: str, status: int, seconds: float) -> None:
        self.requests[(path, status)] += 1
        self.latency.observe(seconds)

    def finished(self, ticket, num_prompt: int, generated: int) -> None:
        self.prompt_tokens += num_prompt
        self.generation_tokens += generated
        if ticket.first_token is not None:
            self.first_token.observe(ticket.first_token - ticket.started)

    def render(self, pool) -> str:
        lines = ["# HELP qwenkit_requests_total HTTP requests by path and status.",
                 "# TYPE qwenkit_requests_total counter"]
        lines += [f'qwenkit_requests_total{{path="{p}",status="{s}"}} {n}'
                  for (p, s), n in sorted(self.requests.items())]
        lines += ["# TYPE qwenkit_prompt_tokens_total counter", f"qwenkit_prompt_tokens_total {self.prompt_tokens}",
                  "# TYPE qwenkit_generation_tokens_total counter",
                  f"qwenkit_generation_tokens_total {self.generation_tokens}"]
        for metric, help_text, value in [
                ("qwenkit_queue_depth", "Sequences waiting for the engine.",
                 lambda w: len(w.engine.scheduler.waiting)),
                ("qwenkit_running_sequences", "Sequences in the running batch.",
                 lambda w: len(w.engine.scheduler.running)),
                ("qwenkit_requests_in_flight", "Requests accepted and not finished.", lambda w: w.in_flight),
                ("qwenkit_kv_cache_usage_ratio", "Fraction of KV cache blocks in use.", lambda w: w.kv_usage())]:
            lines += [f"# HELP {metric} {help_text}", f"# TYPE {metric} gauge"]
            lines += [f'{metric}{{model="{m.name}"}} {value(m.worker)}' for m in pool.loaded()]
        lines += ["# HELP qwenkit_request_latency_seconds Time to the whole response.",
                  "# TYPE qwenkit_request_latency_seconds histogram",
                  *self.latency.lines("qwenkit_request_latency_seconds"),
                  "# HELP qwenkit_time_to_first_token_seconds Time from queueing to the first token.",
                  "# TYPE qwenkit_time_to_first_token_seconds histogram",
                  *self.first_token.lines("qwenkit_time_to_first_token_seconds"),
                  "# TYPE qwenkit_uptime_seconds gauge", f"qwenkit_uptime_seconds {time.time() - pool.started:.1f}"]
        return "\n".join(lines) + "\n"
