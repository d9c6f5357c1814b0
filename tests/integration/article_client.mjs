// The article's client, with the official OpenAI SDK (npm `openai`): asks the router for the
// public model and prints what came back as one JSON line. Run by test_article.py:
//   node article_client.mjs SDK_DIR BASE_URL MODEL
// SDK_DIR: the npm folder whose node_modules holds `openai` (the SDK tests' folder).
import { createRequire } from "node:module";
import path from "node:path";

const [sdkDir, baseURL, model] = process.argv.slice(2);
const sdk = createRequire(path.join(sdkDir, "package.json"))("openai");
const OpenAI = sdk.OpenAI ?? sdk.default ?? sdk;
const client = new OpenAI({ baseURL, apiKey: "EMPTY" });
const answers = [];
for (let i = 0; i < 4; i++) {
  const { data, response } = await client.chat.completions
    .create({
      model,
      messages: [{ role: "user", content: "What is the capital of France?" }],
      max_tokens: 16,
    })
    .withResponse();
  answers.push({
    model: data.model,
    content: data.choices[0].message.content,
    replica: response.headers.get("x-eta-replica"),
  });
}
const stream = await client.chat.completions.create({
  model,
  messages: [{ role: "user", content: "What is the capital of France?" }],
  max_tokens: 16,
  stream: true,
});
const streamModels = new Set();
let text = "";
for await (const chunk of stream) {
  streamModels.add(chunk.model);
  text += chunk.choices[0]?.delta?.content ?? "";
}
const models = await client.models.list();
console.log(
  JSON.stringify({
    answers,
    stream: { models: [...streamModels], text },
    models: models.data.map((m) => m.id),
  }),
);
