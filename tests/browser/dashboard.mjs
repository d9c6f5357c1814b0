// Loads eta route's /dashboard in Debian's Chromium (headless, through playwright-core), watches
// it for a few seconds and saves a screenshot. Prints one JSON line with what it saw; the
// assertions are in tests/integration/test_dashboard.py, which starts the processes.
//
//   node dashboard.mjs DASHBOARD_URL SCREENSHOT.png [WATCH_MS]
import { chromium } from "playwright-core";

const [url, screenshot, watchArg] = process.argv.slice(2);
if (!url || !screenshot) {
  console.error("usage: node dashboard.mjs DASHBOARD_URL SCREENSHOT.png [WATCH_MS]");
  process.exit(2);
}
const watchMs = Number(watchArg || 3000);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu"],
});
const out = { errors: [], requests: [] };
try {
  const page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
  page.on("pageerror", (e) => out.errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") out.errors.push(m.text()); });
  page.on("request", (r) => out.requests.push(r.url()));

  const rows = () => page.$$eval("#replicas tbody tr[data-url]", (trs) => trs.map((tr) => ({
    url: tr.dataset.url,
    text: tr.innerText,
    rps: tr.querySelector(".rps").innerText,
    tps: tr.querySelector(".tps").innerText,
    ttft: tr.querySelector(".ttft").innerText,
    inflight: tr.querySelector(".inflight").innerText,
  })));
  const updates = () => page.evaluate(() => Number(document.body.dataset.updates || 0));

  const response = await page.goto(url);
  out.status = response.status();
  await page.waitForSelector("#replicas tbody tr[data-url]", { timeout: 15000 });
  out.first = await rows();
  out.updates_first = await updates();
  out.t_first = Date.now();
  await page.waitForTimeout(watchMs);
  out.second = await rows();
  out.updates_second = await updates();
  out.t_second = Date.now();
  await page.waitForSelector("#decisions .decision", { timeout: 15000 });
  out.decisions = await page.$$eval("#decisions .decision", (ds) => ds.map((d) => d.innerText));
  out.winners = await page.$$eval("#decisions .cands .winner", (ws) => ws.map((w) => w.innerText));
  out.live = await page.$eval("#status", (s) => s.innerText);
  out.ttft_error = await page.$eval("#f-ttft-err", (s) => s.innerText);
  await page.screenshot({ path: screenshot, fullPage: true });
  out.screenshot = screenshot;
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
