/**
 * A scripted model provider on 127.0.0.1 (node:http, port 0) that real agent
 * CLIs can talk to offline. It speaks the documented wire shapes of:
 *   - Anthropic Messages: POST /v1/messages (SSE or JSON, `tool_use` blocks),
 *     POST /v1/messages/count_tokens;
 *   - OpenAI Responses: POST /v1/responses (SSE `response.*` or JSON,
 *     `function_call` items, Codex's `namespace` tools);
 *   - OpenAI Chat Completions: POST /v1/chat/completions (chunks or JSON,
 *     `tool_calls`); POST /v1/embeddings; GET /v1/models.
 * Paths are matched on their tail, so `/v1/messages?beta=true` and a base URL
 * without `/v1` both work.
 *
 * The script, per request: when the conversation holds no tool result yet and
 * a listed tool matches `tool`, call it with `{ message: token }`; when a tool
 * result is there, answer with text that quotes it; otherwise (titles,
 * classifiers, routers) answer "ok". Every request is recorded; `misbehave`
 * queues faults for the next matching requests.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface SimRequest {
  method: string;
  /** Path and query as received. */
  url: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  /** The parsed JSON body (undefined for none or non-JSON). */
  body: unknown;
  /** Which wire API answered it. */
  api: 'anthropic' | 'openai-responses' | 'openai-chat' | 'openai-embeddings' | 'models' | 'count-tokens' | 'unknown';
  /** What the script decided. */
  reply: 'tool-call' | 'final' | 'plain' | 'fault' | 'none';
}

export type Fault =
  /** Answer with this status (and body, default an API-shaped error) and an optional Retry-After. */
  | { kind: 'status'; status: number; body?: string | object; retryAfter?: string }
  /** Hold the response (headers included) back this long, then answer normally. */
  | { kind: 'slow-first-byte'; delayMs: number }
  /** Stream normally, but destroy the socket after this many SSE events. */
  | { kind: 'cut-mid-stream'; afterEvents: number }
  /** 200 text/event-stream with lines that are not SSE, then close. */
  | { kind: 'garbage-sse' }
  /** Stream `chunks` SSE comments, `gapMs` apart, before the normal answer (bytes flow, no event does). */
  | { kind: 'drip'; chunks: number; gapMs: number }
  /** Stream the normal answer with `gapMs` between its events. */
  | { kind: 'slow-events'; gapMs: number };

export interface MisbehaveOptions {
  /** How many matching requests get the fault (default 1). */
  times?: number;
  /** Only requests whose path matches (default: every model call, i.e. not /models). */
  path?: RegExp;
}

export interface ModelSimOptions {
  /** Matches the name of the tool to call, as the CLI lists it (e.g. /everything__echo$/). */
  tool?: RegExp;
  /** The `message` argument of the tool call (default: a random token). */
  token?: string;
  /** Model ids listed by GET /v1/models and echoed in answers (default ['sim-model']). */
  models?: string[];
  /** Input/output token counts reported in `usage` (default 21 / 7). */
  usage?: { input: number; output: number };
}

export interface ModelSim {
  url: string;
  port: number;
  token: string;
  /** Every request, in arrival order. */
  requests: SimRequest[];
  misbehave(fault: Fault, opts?: MisbehaveOptions): void;
  close(): Promise<void>;
}

type Json = Record<string, unknown>;

const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const id = (prefix: string) => `${prefix}${randomBytes(12).toString('hex')}`;

/** The text of a tool result in any of the shapes the APIs allow: a string, or parts with `text`. */
function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  return arr(content)
    .map((p) => (isObj(p) ? (typeof p.text === 'string' ? p.text : textOf(p.content)) : ''))
    .join('');
}

/** A tool as the script sees it: the name to match, and where it lives (Codex namespaces). */
interface ToolRef {
  full: string;
  name: string;
  namespace?: string;
}

/** What the script needs from a request, whatever its API. */
interface Conversation {
  tools: ToolRef[];
  /** The text of the last tool result, or undefined when there is none yet. */
  toolResult: string | undefined;
}

function anthropicConversation(body: Json): Conversation {
  const tools = arr(body.tools).flatMap((t) => (isObj(t) && typeof t.name === 'string' ? [{ full: t.name, name: t.name }] : []));
  let toolResult: string | undefined;
  for (const m of arr(body.messages)) {
    if (!isObj(m)) continue;
    for (const b of arr(m.content)) if (isObj(b) && b.type === 'tool_result') toolResult = textOf(b.content);
  }
  return { tools, toolResult };
}

function chatConversation(body: Json): Conversation {
  const tools = arr(body.tools).flatMap((t) => {
    const f = isObj(t) && isObj(t.function) ? t.function : undefined;
    return f && typeof f.name === 'string' ? [{ full: f.name, name: f.name }] : [];
  });
  let toolResult: string | undefined;
  for (const m of arr(body.messages)) if (isObj(m) && m.role === 'tool') toolResult = textOf(m.content);
  return { tools, toolResult };
}

function responsesTools(list: unknown, namespace?: string): ToolRef[] {
  return arr(list).flatMap((t): ToolRef[] => {
    if (!isObj(t)) return [];
    if (t.type === 'namespace' && typeof t.name === 'string') return responsesTools(t.tools, t.name);
    const name = str(t.name) || (isObj(t.function) ? str(t.function.name) : '');
    if (!name) return [];
    return [namespace !== undefined ? { full: `${namespace}__${name}`, name, namespace } : { full: name, name }];
  });
}

function responsesConversation(body: Json): Conversation {
  let toolResult: string | undefined;
  for (const item of arr(body.input)) {
    if (isObj(item) && (item.type === 'function_call_output' || item.type === 'custom_tool_call_output' || item.type === 'mcp_call_output')) {
      toolResult = textOf(item.output);
    }
  }
  return { tools: responsesTools(body.tools), toolResult };
}

type Decision = { kind: 'tool-call'; tool: ToolRef; args: string } | { kind: 'final' | 'plain'; text: string };

function decide(conv: Conversation, opts: { tool: RegExp; token: string }): Decision {
  if (conv.toolResult !== undefined) return { kind: 'final', text: `Done. The tool answered: ${conv.toolResult}` };
  const tool = conv.tools.find((t) => opts.tool.test(t.full) || opts.tool.test(t.name));
  if (tool) return { kind: 'tool-call', tool, args: JSON.stringify({ message: opts.token }) };
  return { kind: 'plain', text: 'ok' };
}

/** An answer before it is written: a JSON body, or SSE events (`event` name optional, data a JSON value or a raw string). */
type Answer = { json: unknown } | { events: Array<[string | undefined, unknown]> };

/** Splits a string into a few pieces, so that deltas really are deltas. */
function pieces(s: string, n = 3): string[] {
  if (s.length === 0) return [''];
  const size = Math.ceil(s.length / n);
  const out: string[] = [];
  for (let i = 0; i < s.length; i += size) out.push(s.slice(i, i + size));
  return out;
}

// ---------------------------------------------------------------- Anthropic

function anthropicAnswer(body: Json, d: Decision, usage: { input: number; output: number }): Answer {
  const model = str(body.model) || 'sim-model';
  const msgId = id('msg_sim');
  const block = d.kind === 'tool-call' ? { type: 'tool_use', id: id('toolu_sim'), name: d.tool.full, input: JSON.parse(d.args) as unknown } : { type: 'text', text: d.text };
  const stop = d.kind === 'tool-call' ? 'tool_use' : 'end_turn';
  if (body.stream !== true) {
    return {
      json: {
        id: msgId,
        type: 'message',
        role: 'assistant',
        model,
        content: [block],
        stop_reason: stop,
        stop_sequence: null,
        usage: { input_tokens: usage.input, output_tokens: usage.output, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
      },
    };
  }
  const events: Array<[string, unknown]> = [
    [
      'message_start',
      {
        type: 'message_start',
        message: {
          id: msgId,
          type: 'message',
          role: 'assistant',
          model,
          content: [],
          stop_reason: null,
          stop_sequence: null,
          usage: { input_tokens: usage.input, output_tokens: 1, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
        },
      },
    ],
  ];
  if (block.type === 'tool_use') {
    events.push(['content_block_start', { type: 'content_block_start', index: 0, content_block: { ...block, input: {} } }]);
    events.push(['ping', { type: 'ping' }]);
    for (const p of pieces(d.kind === 'tool-call' ? d.args : '')) events.push(['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'input_json_delta', partial_json: p } }]);
  } else {
    events.push(['content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }]);
    events.push(['ping', { type: 'ping' }]);
    for (const p of pieces(str(block.text))) events.push(['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: p } }]);
  }
  events.push(['content_block_stop', { type: 'content_block_stop', index: 0 }]);
  events.push(['message_delta', { type: 'message_delta', delta: { stop_reason: stop, stop_sequence: null }, usage: { output_tokens: usage.output } }]);
  events.push(['message_stop', { type: 'message_stop' }]);
  return { events };
}

// ---------------------------------------------------------- OpenAI Responses

function responsesAnswer(body: Json, d: Decision, usage: { input: number; output: number }): Answer {
  const model = str(body.model) || 'sim-model';
  const respId = id('resp_sim');
  const created = Math.floor(Date.now() / 1000);
  const item: Json =
    d.kind === 'tool-call'
      ? {
          type: 'function_call',
          id: id('fc_sim'),
          call_id: id('call_sim'),
          name: d.tool.name,
          ...(d.tool.namespace !== undefined ? { namespace: d.tool.namespace } : {}),
          arguments: d.args,
          status: 'completed',
        }
      : { type: 'message', id: id('msg_sim'), role: 'assistant', status: 'completed', content: [{ type: 'output_text', text: d.text, annotations: [] }] };
  const usageObj = {
    input_tokens: usage.input,
    input_tokens_details: { cached_tokens: 0 },
    output_tokens: usage.output,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: usage.input + usage.output,
  };
  const response = (status: string, output: Json[], withUsage: boolean) => ({
    id: respId,
    object: 'response',
    created_at: created,
    status,
    model,
    output,
    parallel_tool_calls: true,
    tool_choice: 'auto',
    tools: [],
    usage: withUsage ? usageObj : null,
    error: null,
    incomplete_details: null,
  });
  if (body.stream !== true) return { json: response('completed', [item], true) };
  let seq = 0;
  const ev = (type: string, rest: Json): [string, Json] => [type, { type, sequence_number: seq++, ...rest }];
  const events: Array<[string, Json]> = [ev('response.created', { response: response('in_progress', [], false) }), ev('response.in_progress', { response: response('in_progress', [], false) })];
  if (item.type === 'function_call') {
    events.push(ev('response.output_item.added', { output_index: 0, item: { ...item, arguments: '', status: 'in_progress' } }));
    for (const p of pieces(str(item.arguments))) events.push(ev('response.function_call_arguments.delta', { item_id: item.id, output_index: 0, delta: p }));
    events.push(ev('response.function_call_arguments.done', { item_id: item.id, output_index: 0, arguments: item.arguments }));
  } else {
    const text = d.kind === 'tool-call' ? '' : d.text;
    events.push(ev('response.output_item.added', { output_index: 0, item: { ...item, status: 'in_progress', content: [] } }));
    events.push(ev('response.content_part.added', { item_id: item.id, output_index: 0, content_index: 0, part: { type: 'output_text', text: '', annotations: [] } }));
    for (const p of pieces(text)) events.push(ev('response.output_text.delta', { item_id: item.id, output_index: 0, content_index: 0, delta: p, logprobs: [] }));
    events.push(ev('response.output_text.done', { item_id: item.id, output_index: 0, content_index: 0, text, logprobs: [] }));
    events.push(ev('response.content_part.done', { item_id: item.id, output_index: 0, content_index: 0, part: { type: 'output_text', text, annotations: [] } }));
  }
  events.push(ev('response.output_item.done', { output_index: 0, item }));
  events.push(ev('response.completed', { response: response('completed', [item], true) }));
  return { events };
}

// ----------------------------------------------------- OpenAI Chat Completions

function chatAnswer(body: Json, d: Decision, usage: { input: number; output: number }): Answer {
  const model = str(body.model) || 'sim-model';
  const cmplId = id('chatcmpl-sim');
  const created = Math.floor(Date.now() / 1000);
  const usageObj = { prompt_tokens: usage.input, completion_tokens: usage.output, total_tokens: usage.input + usage.output };
  const call = d.kind === 'tool-call' ? { id: id('call_sim'), type: 'function', function: { name: d.tool.full, arguments: d.args } } : undefined;
  const finish = call ? 'tool_calls' : 'stop';
  if (body.stream !== true) {
    return {
      json: {
        id: cmplId,
        object: 'chat.completion',
        created,
        model,
        choices: [{ index: 0, message: { role: 'assistant', content: call ? null : d.kind === 'tool-call' ? '' : d.text, ...(call ? { tool_calls: [call] } : {}) }, finish_reason: finish, logprobs: null }],
        usage: usageObj,
      },
    };
  }
  const chunk = (choices: unknown[], extra: Json = {}) => ({ id: cmplId, object: 'chat.completion.chunk', created, model, choices, ...extra });
  const chunks: unknown[] = [chunk([{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }])];
  if (call) {
    const [first = '', ...rest] = pieces(call.function.arguments);
    chunks.push(chunk([{ index: 0, delta: { tool_calls: [{ index: 0, id: call.id, type: 'function', function: { name: call.function.name, arguments: first } }] }, finish_reason: null }]));
    for (const p of rest) chunks.push(chunk([{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: p } }] }, finish_reason: null }]));
  } else if (d.kind !== 'tool-call') {
    for (const p of pieces(d.text)) chunks.push(chunk([{ index: 0, delta: { content: p }, finish_reason: null }]));
  }
  chunks.push(chunk([{ index: 0, delta: {}, finish_reason: finish }]));
  // Per the API, usage comes in a last chunk with no choices when stream_options.include_usage is set.
  const opts = isObj(body.stream_options) ? body.stream_options : {};
  if (opts.include_usage === true) chunks.push(chunk([], { usage: usageObj }));
  return { events: [...chunks.map((c): [undefined, unknown] => [undefined, c]), [undefined, '[DONE]']] };
}

// ----------------------------------------------------------------- plumbing

function errorBody(api: SimRequest['api'], status: number): object {
  if (api === 'anthropic' || api === 'count-tokens') return { type: 'error', error: { type: status === 429 ? 'rate_limit_error' : status >= 500 ? 'api_error' : 'invalid_request_error', message: `simulated ${status}` } };
  return { error: { message: `simulated ${status}`, type: status === 429 ? 'rate_limit_exceeded' : 'server_error', param: null, code: null } };
}

function apiOf(method: string, path: string): SimRequest['api'] {
  if (method === 'GET' && /\/models(\/[^/]+)?$/.test(path)) return 'models';
  if (method !== 'POST') return 'unknown';
  if (path.endsWith('/messages/count_tokens')) return 'count-tokens';
  if (path.endsWith('/messages')) return 'anthropic';
  if (path.endsWith('/responses')) return 'openai-responses';
  if (path.endsWith('/chat/completions')) return 'openai-chat';
  if (path.endsWith('/embeddings')) return 'openai-embeddings';
  return 'unknown';
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Writes an answer, applying a fault that shapes the stream (the others answer before this). */
async function write(res: ServerResponse, status: number, answer: Answer, fault: Fault | undefined): Promise<void> {
  if (fault?.kind === 'slow-first-byte') await sleep(fault.delayMs);
  if ('json' in answer) {
    const text = JSON.stringify(answer.json);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) });
    res.end(text);
    return;
  }
  res.writeHead(status, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  if (fault?.kind === 'drip') {
    for (let i = 0; i < fault.chunks; i++) {
      // An SSE comment (WHATWG HTML, "server-sent events"): bytes that are no event.
      res.write(`: drip ${i}\n\n`);
      await sleep(fault.gapMs);
    }
  }
  let sent = 0;
  for (const [event, data] of answer.events) {
    if (fault?.kind === 'cut-mid-stream' && sent >= fault.afterEvents) {
      // Once what was written has left (else the cut would come before the headers).
      await new Promise<void>((resolve) => res.write('', () => resolve()));
      await sleep(50);
      res.socket?.destroy();
      return;
    }
    if (fault?.kind === 'slow-events' && sent > 0) await sleep(fault.gapMs);
    res.write(`${event !== undefined ? `event: ${event}\n` : ''}data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
    sent++;
  }
  res.end();
}

export async function startModelSim(opts: ModelSimOptions = {}): Promise<ModelSim> {
  const token = opts.token ?? `tok-${randomBytes(6).toString('hex')}`;
  const tool = opts.tool ?? /everything__echo$/;
  const models = opts.models ?? ['sim-model'];
  const usage = opts.usage ?? { input: 21, output: 7 };
  const requests: SimRequest[] = [];
  const faults: Array<{ fault: Fault; left: number; path: RegExp | undefined }> = [];
  const sockets = new Set<Socket>();

  const takeFault = (api: SimRequest['api'], path: string): Fault | undefined => {
    const i = faults.findIndex((f) => (f.path ? f.path.test(path) : api !== 'models'));
    const f = faults[i];
    if (!f) return undefined;
    if (--f.left <= 0) faults.splice(i, 1);
    return f.fault;
  };

  /** The script's answer to one request. */
  const answerFor = (api: SimRequest['api'], body: Json, record: SimRequest): { status: number; answer: Answer } => {
    const scripted = (d: Decision) => {
      record.reply = d.kind;
      return d;
    };
    switch (api) {
      case 'models':
        return { status: 200, answer: { json: { object: 'list', data: models.map((m) => ({ id: m, object: 'model', created: 0, owned_by: 'sim', type: 'model', display_name: m })) } } };
      case 'count-tokens':
        return { status: 200, answer: { json: { input_tokens: usage.input } } };
      case 'openai-embeddings': {
        const inputs = Array.isArray(body.input) ? body.input : [body.input];
        const data = inputs.map((_, index) => ({ object: 'embedding', index, embedding: [0.1, 0.2, 0.3] }));
        return { status: 200, answer: { json: { object: 'list', data, model: str(body.model) || models[0], usage: { prompt_tokens: usage.input, total_tokens: usage.input } } } };
      }
      case 'anthropic':
        return { status: 200, answer: anthropicAnswer(body, scripted(decide(anthropicConversation(body), { tool, token })), usage) };
      case 'openai-responses':
        return { status: 200, answer: responsesAnswer(body, scripted(decide(responsesConversation(body), { tool, token })), usage) };
      case 'openai-chat':
        return { status: 200, answer: chatAnswer(body, scripted(decide(chatConversation(body), { tool, token })), usage) };
      case 'unknown':
        return { status: 404, answer: { json: errorBody(api, 404) } };
    }
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const method = req.method ?? 'GET';
    const url = req.url ?? '/';
    const path = url.split('?')[0] ?? '/';
    const raw = await readBody(req);
    let body: unknown;
    try {
      body = raw === '' ? undefined : (JSON.parse(raw) as unknown);
    } catch {
      body = undefined;
    }
    const api = apiOf(method, path);
    const record: SimRequest = { method, url, path, headers: { ...req.headers }, body, api, reply: 'none' };
    requests.push(record);

    const fault = takeFault(api, path);
    if (fault?.kind === 'status') {
      record.reply = 'fault';
      const b = fault.body ?? errorBody(api, fault.status);
      res.writeHead(fault.status, { 'content-type': typeof b === 'string' ? 'text/plain' : 'application/json', ...(fault.retryAfter !== undefined ? { 'retry-after': fault.retryAfter } : {}) });
      res.end(typeof b === 'string' ? b : JSON.stringify(b));
      return;
    }
    if (fault?.kind === 'garbage-sse') {
      record.reply = 'fault';
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end('this is not\x00 an event stream\n{"half":\n\ndata: {not json}\n\n');
      return;
    }
    const { status, answer } = answerFor(api, isObj(body) ? body : {}, record);
    if (fault) record.reply = 'fault';
    await write(res, status, answer, fault);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (res.headersSent) res.destroy();
      else res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: String(e) } }));
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    token,
    requests,
    misbehave(fault, o = {}) {
      faults.push({ fault, left: o.times ?? 1, path: o.path });
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
