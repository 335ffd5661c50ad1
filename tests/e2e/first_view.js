// The first view of bag 1 in Debian's Chromium on a landscape tablet (benches/web.rs): logs in
// as the demonstration customs officer, opens the bag page and times, from navigation, the
// first and the last tile of the first view (no tile asked for 1.5 s after it: the view is whole).
// Usage: node first_view.js BASE_URL. Prints one line.
"use strict";
const { chromium } = require("playwright-core");

const [base] = process.argv.slice(2);
const ARGS = [
  "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
  "--disable-component-update", "--disable-sync",
];

(async () => {
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args: ARGS });
  try {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await ctx.newPage();
    await page.goto(base + "/login");
    await page.fill("input[name=id]", "c001");
    await page.fill("input[name=pin]", "1111");
    await page.selectOption("select[name=agency]", "customs");
    await Promise.all([page.waitForURL("**/openings"), page.click("form.login button")]);
    const tiles = [];
    let t0 = 0;
    page.on("response", (r) => {
      const m = r.url().match(/\/dzi\/standard_files\/(\d+)\/\d+_\d+\.png$/);
      if (m) tiles.push({ level: +m[1], at: Date.now() - t0 });
    });
    t0 = Date.now();
    await page.goto(base + "/bag/1");
    await page.waitForResponse((r) => r.url().includes("/dzi/standard_files/"), { timeout: 120000 });
    let n = -1;
    while (n !== tiles.length) {
      n = tiles.length;
      await page.waitForTimeout(1500);
    }
    const levels = [...new Set(tiles.map((t) => t.level))].sort((a, b) => a - b);
    const last = Math.max(...tiles.map((t) => t.at));
    console.log(`${tiles.length} tiles (levels ${levels.join(", ")}), first at ${tiles[0].at} ms, last at ${last} ms after navigation`);
  } finally {
    await browser.close();
  }
})().catch((e) => { console.error(e); process.exit(1); });
