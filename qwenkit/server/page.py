"""The web chat page at GET /: one self-contained HTML document (no external assets, works offline)."""

HTML = r"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>qwenkit chat</title>
<style>
  body { font: 15px/1.45 system-ui, sans-serif; margin: 0; display: flex; flex-direction: column; height: 100vh; background: #f6f7f9; }
  header { display: flex; gap: .5rem; align-items: center; padding: .5rem 1rem; background: #1f2937; color: #fff; }
  header h1 { font-size: 1rem; margin: 0 1rem 0 0; }
  header input, header select { font: inherit; padding: .2rem .4rem; }
  #log { flex: 1; overflow-y: auto; padding: 1rem; }
  .msg { max-width: 52rem; margin: 0 auto .8rem; padding: .6rem .9rem; border-radius: .5rem; white-space: pre-wrap; }
  .user { background: #dbeafe; }
  .assistant { background: #fff; border: 1px solid #e5e7eb; }
  .error { background: #fee2e2; }
  details.thinking { color: #6b7280; font-size: .9em; margin-bottom: .4rem; }
  pre.tool { background: #f3f4f6; padding: .4rem; margin: .3rem 0 0; font-size: .85em; }
  form { display: flex; gap: .5rem; padding: .8rem 1rem; background: #fff; border-top: 1px solid #e5e7eb; }
  textarea { flex: 1; font: inherit; resize: none; height: 3rem; padding: .4rem; }
  button { font: inherit; padding: 0 1.2rem; }
</style>
</head>
<body>
<header>
  <h1>qwenkit chat</h1>
  <label>model <select id="model"></select></label>
  <label><input type="checkbox" id="think" checked> thinking</label>
  <input id="key" type="password" placeholder="API key (if set)" size="16">
</header>
<div id="log"></div>
<form id="form">
  <textarea id="input" placeholder="Send a message (Enter to send, Shift+Enter for a new line)"></textarea>
  <button id="send" type="submit">Send</button>
</form>
<script>
const $ = (id) => document.getElementById(id);
const history = [];
$("key").value = localStorage.getItem("qwenkit-key") || "";
$("key").onchange = () => { localStorage.setItem("qwenkit-key", $("key").value); loadModels(); };

function headers() {
  const h = {"Content-Type": "application/json"};
  if ($("key").value) h["Authorization"] = "Bearer " + $("key").value;
  return h;
}

async function loadModels() {
  const r = await fetch("/v1/models", {headers: headers()});
  if (!r.ok) return;
  const data = (await r.json()).data;
  $("model").innerHTML = "";
  for (const m of data) $("model").append(new Option(m.id, m.id));
}

function bubble(role) {
  const div = document.createElement("div");
  div.className = "msg " + role;
  $("log").append(div);
  return div;
}

async function send(text) {
  history.push({role: "user", content: text});
  bubble("user").textContent = text;
  const box = bubble("assistant");
  const thinking = document.createElement("details");
  thinking.className = "thinking";
  thinking.innerHTML = "<summary>thinking</summary>";
  const thought = document.createElement("div");
  thinking.append(thought);
  const answer = document.createElement("div");
  answer.className = "answer";
  box.append(answer);
  const calls = {};
  let content = "";
  $("send").disabled = true;
  try {
    const r = await fetch("/v1/chat/completions", {method: "POST", headers: headers(), body: JSON.stringify({
      model: $("model").value, messages: history, stream: true, max_tokens: 1024,
      chat_template_kwargs: {enable_thinking: $("think").checked}})});
    if (!r.ok) throw new Error((await r.json()).error.message);
    const reader = r.body.getReader(), decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const {value, done} = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, {stream: true});
      const events = buffer.split("\n\n");
      buffer = events.pop();
      for (const event of events) {
        const data = event.replace(/^data: /, "");
        if (data === "[DONE]") continue;
        const delta = JSON.parse(data).choices[0]?.delta || {};
        if (delta.reasoning_content) {
          if (!thinking.parentNode) box.prepend(thinking);
          thought.textContent += delta.reasoning_content;
        }
        if (delta.content) { content += delta.content; answer.textContent = content; }
        for (const c of delta.tool_calls || []) {
          const call = calls[c.index] ||= {name: "", arguments: "", el: box.appendChild(document.createElement("pre"))};
          call.el.className = "tool";
          if (c.function?.name) call.name = c.function.name;
          call.arguments += c.function?.arguments || "";
          call.el.textContent = "tool call: " + call.name + "(" + call.arguments + ")";
        }
        $("log").scrollTop = $("log").scrollHeight;
      }
    }
    history.push({role: "assistant", content});
  } catch (e) {
    box.className = "msg error";
    box.textContent = String(e.message || e);
  } finally {
    $("send").disabled = false;
  }
}

$("form").onsubmit = (e) => {
  e.preventDefault();
  const text = $("input").value.trim();
  if (!text) return;
  $("input").value = "";
  send(text);
};
$("input").onkeydown = (e) => {
  if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("form").requestSubmit(); }
};
loadModels();
</script>
</body>
</html>
"""
