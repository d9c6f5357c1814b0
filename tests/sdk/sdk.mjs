// Every call a user of the official OpenAI client library (npm `openai`) makes, against
// `eta route` in front of `eta vllm-sim --api-key` (tests/integration/test_sdk.py starts them).
// Prints one JSON object: {check: result} for each call, where a result is what the Python test
// asserts on; an exception becomes {"error": "..."} for that check.
//
//   ETA_BASE_URL   the router's /v1 URL        ETA_API_KEY   the router's client key
//   ETA_MODEL      the model                   ETA_LIMITED_KEY  a key with 1 request per minute
import OpenAI from "openai";

const baseURL = process.env.ETA_BASE_URL;
const model = process.env.ETA_MODEL;
const client = new OpenAI({ baseURL, apiKey: process.env.ETA_API_KEY, maxRetries: 0 });
const out = {};

async function check(name, fn) {
  try {
    out[name] = await fn();
  } catch (e) {
    out[name] = { error: String(e && e.stack ? e.stack : e) };
  }
}

// The typed error an SDK call raised: its class, status and Retry-After.
async function raised(fn) {
  try {
    await fn();
    return { raised: null };
  } catch (e) {
    return {
      raised: e.constructor.name,
      status: e.status ?? null,
      retryAfter: e.headers ? e.headers.get("retry-after") : null,
      type: e.type ?? e.error?.type ?? null,
      param: e.param ?? null,
    };
  }
}

await check("models", async () => {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  return { ids };
});

await check("completion_n2", async () => {
  const { data, response } = await client.completions
    .create({ model, prompt: "one two three", max_tokens: 5, n: 2 })
    .withResponse();
  return {
    choices: data.choices.map((c) => c.index),
    replica: response.headers.get("x-eta-replica"),
    usage: data.usage,
  };
});

await check("completion_batch", async () => {
  const r = await client.completions.create({
    model,
    prompt: ["first prompt here", "and a second one"],
    max_tokens: 4,
  });
  return { choices: r.choices.map((c) => c.index) };
});

await check("chat_stream_usage", async () => {
  const stream = await client.chat.completions.create({
    model,
    messages: [{ role: "user", content: "say something" }],
    max_tokens: 12,
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = "";
  let usage = null;
  let chunks = 0;
  for await (const chunk of stream) {
    chunks += 1;
    if (chunk.choices.length > 0) text += chunk.choices[0].delta?.content ?? "";
    if (chunk.usage) usage = chunk.usage;
  }
  return { chunks, text, usage };
});

await check("chat_stream_helper", async () => {
  const stream = client.chat.completions.stream({
    model,
    messages: [{ role: "user", content: "hello" }],
    max_tokens: 8,
  });
  let deltas = 0;
  stream.on("content", () => {
    deltas += 1;
  });
  const final = await stream.finalChatCompletion();
  return {
    deltas,
    finish_reason: final.choices[0].finish_reason,
    content: final.choices[0].message.content,
  };
});

await check("chat_abort", async () => {
  const controller = new AbortController();
  const stream = await client.chat.completions.create(
    {
      model,
      messages: [{ role: "user", content: "a long answer please" }],
      max_tokens: 2000,
      ignore_eos: true,
      stream: true,
    },
    { signal: controller.signal },
  );
  // The SDK ends the iteration quietly once aborted (or raises APIUserAbortError).
  let seen = 0;
  let raisedAbort = false;
  try {
    for await (const chunk of stream) {
      seen += chunk.choices.length;
      if (seen >= 3) controller.abort();
    }
  } catch (e) {
    raisedAbort = e instanceof OpenAI.APIUserAbortError || e.name === "AbortError";
    if (!raisedAbort) throw e;
  }
  return { aborted: controller.signal.aborted, raisedAbort, seen };
});

await check("responses", async () => {
  const { data: created, response } = await client.responses
    .create({ model, input: "remember this", max_output_tokens: 8, store: true })
    .withResponse();
  const replica = response.headers.get("x-eta-replica");
  const { data: got, response: r2 } = await client.responses.retrieve(created.id).withResponse();
  const cancel = await raised(() => client.responses.cancel(created.id));
  let cancelReplica = null;
  try {
    const { response: r3 } = await client.responses.cancel(created.id).withResponse();
    cancelReplica = r3.headers.get("x-eta-replica");
  } catch (e) {
    cancelReplica = e.headers ? e.headers.get("x-eta-replica") : null;
  }
  return {
    id: created.id,
    status: created.status,
    text: created.output_text,
    replica,
    retrieved_id: got.id,
    retrieved_replica: r2.headers.get("x-eta-replica"),
    cancel,
    cancel_replica: cancelReplica,
  };
});

await check("embeddings", async () => {
  const r = await client.embeddings.create({ model, input: ["alpha beta", "gamma"] });
  return { n: r.data.length, dims: r.data[0].embedding.length, usage: r.usage };
});

await check("not_found", () =>
  raised(() => client.completions.create({ model: "no-such-model", prompt: "x" })),
);
await check("bad_request", () =>
  raised(() => client.chat.completions.create({ model, messages: "not a list" })),
);
await check("authentication", () =>
  raised(() =>
    new OpenAI({ baseURL, apiKey: "sk-wrong", maxRetries: 0 }).models.list(),
  ),
);
await check("rate_limit", async () => {
  const limited = new OpenAI({ baseURL, apiKey: process.env.ETA_LIMITED_KEY, maxRetries: 0 });
  const first = await limited.completions.create({ model, prompt: "x", max_tokens: 2 });
  const second = await raised(() =>
    limited.completions.create({ model, prompt: "x", max_tokens: 2 }),
  );
  return { first_ok: first.choices.length === 1, second };
});

process.stdout.write(JSON.stringify(out) + "\n");
