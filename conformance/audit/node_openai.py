"""The `openai` npm package (the TypeScript/JavaScript client) driven through node, for the client matrix.

The package is looked for in a cache folder (`SGP_NODE_MODULES`, default ~/.cache/sgp-conformance/node),
where `npm install --prefix <folder> openai` puts it; nothing is installed at run time. The script runs the
four capabilities against a base URL the matrix gives it (its recording forwarder) and prints one JSON
object: per capability, `ok`, a `detail` line and what the client built.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

# a hang guard far above a normal run of the script (about a second against a local server)
SCRIPT_TIMEOUT_S = 120

SCRIPT = r"""
const OpenAI = require('openai');
const cfg = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const out = {};
function fail(e) {
  return (e && e.constructor ? e.constructor.name : 'Error') + ': ' + String(e && e.message || e).slice(0, 300);
}
async function main() {
  const client = new OpenAI({ apiKey: cfg.apiKey, baseURL: cfg.baseURL, maxRetries: cfg.retries,
                              timeout: cfg.timeoutMs, defaultHeaders: cfg.headers || {} });
  const base = { model: cfg.model, messages: [{ role: 'user', content: cfg.prompt }], max_tokens: cfg.maxTokens };
  try {
    const c = await client.chat.completions.create(base);
    out.parse = { ok: true, detail: '', built: c };
  } catch (e) { out.parse = { ok: false, detail: fail(e) }; }
  try {
    const s = await client.chat.completions.create({ ...base, stream: true, stream_options: { include_usage: true } });
    const chunks = [];
    for await (const chunk of s) chunks.push(chunk);
    out.stream = { ok: true, detail: '', built: chunks };
  } catch (e) { out.stream = { ok: false, detail: fail(e) }; }
  try {
    const runner = client.chat.completions.stream({ ...base, messages: [{ role: 'user', content: cfg.toolPrompt }],
      tools: [cfg.tool], tool_choice: { type: 'function', function: { name: cfg.tool.function.name } },
      max_tokens: Math.max(cfg.maxTokens, 32) });
    const final = await runner.finalChatCompletion();
    out.tools = { ok: true, detail: '', built: final };
  } catch (e) { out.tools = { ok: false, detail: fail(e) }; }
  try {
    const wrong = new OpenAI({ apiKey: cfg.wrongKey, baseURL: cfg.baseURL, maxRetries: cfg.retries,
                             timeout: cfg.timeoutMs, defaultHeaders: cfg.headers || {} });
    await wrong.chat.completions.create(base);
    out.error = { ok: false, detail: 'no error raised', typed: false };
  } catch (e) {
    out.error = { ok: e instanceof OpenAI.APIError && typeof e.status === 'number', detail: fail(e),
                  status: e && e.status, typed: e instanceof OpenAI.APIError };
  }
  process.stdout.write(JSON.stringify(out));
}
main().catch(e => { process.stdout.write(JSON.stringify({ crash: fail(e) })); });
"""


def folder() -> Path:
    """Where the npm package is looked for: $SGP_NODE_MODULES, else ~/.cache/sgp-conformance/node. Read at each
    call, so that a run gets its own environment's folder, not the one of the process that imported this."""
    return Path(os.environ.get("SGP_NODE_MODULES") or Path.home() / ".cache" / "sgp-conformance" / "node")


def install_line() -> str:
    return f"npm install --prefix {folder()} openai (with node >= 18 on the PATH)"


def version() -> str | None:
    """The installed npm package's version, or None when node or the package is missing."""
    if shutil.which("node") is None:
        return None
    try:
        manifest = json.loads((folder() / "node_modules" / "openai" / "package.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    found = manifest.get("version")
    return str(found) if found else None


def run(config: dict[str, Any]) -> dict[str, Any]:
    """Run the script with `config` (baseURL, apiKey, wrongKey, model, prompt, toolPrompt, tool, maxTokens,
    timeoutMs, retries, headers: the run's extra headers); its JSON output, or {"crash": reason} when node
    fails or prints no JSON."""
    with tempfile.TemporaryDirectory(prefix="sgp-node-") as tmp:
        script = Path(tmp) / "drive.js"
        script.write_text(SCRIPT, encoding="utf-8")
        env = {**os.environ, "NODE_PATH": str(folder() / "node_modules")}
        try:
            # the configuration (the key in it) goes through stdin: never on a command line others can read
            done = subprocess.run(["node", str(script)], input=json.dumps(config), capture_output=True, text=True,
                                  timeout=SCRIPT_TIMEOUT_S, env=env)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return {"crash": f"node did not finish: {exc}"}
    try:
        result = json.loads(done.stdout)
    except ValueError:
        return {"crash": f"node exited {done.returncode}: {(done.stderr or done.stdout).strip()[-300:]}"}
    return result if isinstance(result, dict) else {"crash": "node printed no JSON object"}
