// The opening bench in Debian's Chromium, as two officers use it on tablets: customs (landscape,
// Chinese) logs in, opens bag 1 from the openings, zooms until deeper tiles come, hides and shows
// its marks and records a knife; quarantine (portrait, English) records nothing found and sees
// the opening close. Prints one JSON object of what it saw; tests/browser.rs judges it.
// Usage: node opening.js BASE_URL SHOTS_DIR PHOTO_JPEG
"use strict";
const { chromium } = require("playwright-core");

const [base, shots, photo] = process.argv.slice(2);
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
// No connection may leave the machine: Chromium's own background traffic is switched off.
const ARGS = [
  "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
  "--disable-component-update", "--disable-sync",
];

// Deep Zoom tile responses seen by a page: function, level, column, row, status and type.
function watchTiles(page) {
  const tiles = [];
  page.on("response", (r) => {
    const m = r.url().match(/\/dzi\/(\w+)_files\/(\d+)\/(\d+)_(\d+)\.png$/);
    if (m) {
      tiles.push({ fn: m[1], level: +m[2], col: +m[3], row: +m[4], status: r.status(), type: r.headers()["content-type"] });
    }
  });
  return tiles;
}

async function login(page, id, pin, agency) {
  await page.goto(base + "/login");
  await page.fill("input[name=id]", id);
  await page.fill("input[name=pin]", pin);
  await page.selectOption("select[name=agency]", agency);
  await Promise.all([page.waitForURL("**/openings"), page.click("form.login button")]);
}

// The first tile of image function `fn` to arrive.
function tileOf(page, fn) {
  return page.waitForResponse((r) => r.url().includes(`/dzi/${fn}_files/`), { timeout: 60000 });
}

// Waits until no tile has been requested for `quiet` ms (OpenSeadragon loads in bursts).
async function settle(page, tiles, quiet = 800) {
  let n = -1;
  while (n !== tiles.length) {
    n = tiles.length;
    await page.waitForTimeout(quiet);
  }
}

(async () => {
  const out = {};
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  try {
    // Customs, a landscape tablet; the page in Chinese (the default).
    const c = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const cp = await c.newPage();
    const errors = [];
    cp.on("pageerror", (e) => errors.push(String(e)));
    cp.on("console", (m) => { if (m.type() === "error") errors.push(`${m.text()} (${m.location().url})`); });
    await login(cp, "c001", "1111", "customs");
    out.openings = await cp.$$eval("a[href^='/bag/']", (as) => as.map((a) => a.getAttribute("href")));
    await cp.screenshot({ path: `${shots}/openings-1280x800.png` });
    const tiles = watchTiles(cp);
    // The first tile of a function waits for the server to render that bag's pyramid (seconds on
    // a busy machine): wait for it before counting what the view fetched.
    await Promise.all([
      cp.waitForURL("**/bag/1"),
      tileOf(cp, "standard"),
      cp.click("a[href='/bag/1']"),
    ]);
    await cp.waitForSelector("#viewer canvas");
    await settle(cp, tiles);
    out.first_view = tiles.slice();
    // Zoom in with the page's own button until a deeper level than the first view is fetched.
    const firstMax = Math.max(...tiles.map((t) => t.level));
    for (let i = 0; i < 6 && !tiles.some((t) => t.level > firstMax); i++) {
      await cp.click("button[data-zoom=in]");
      await settle(cp, tiles, 500);
    }
    out.after_zoom = tiles.slice(out.first_view.length);
    await cp.click("button[data-zoom=home]");
    await settle(cp, tiles, 500);
    // The marks: customs' rectangle shown, hidden by its box, shown again.
    const shown = () => cp.$eval("#marks g[data-agency=customs]", (g) => getComputedStyle(g).display !== "none");
    out.mark_rects = await cp.$$eval("#marks g[data-agency=customs] rect", (r) => r.length);
    out.marks_shown = await shown();
    await cp.uncheck("input[data-marks=customs]");
    await cp.evaluate(() => window.scrollTo(0, 0));
    out.marks_after_uncheck = await shown();
    await cp.screenshot({ path: `${shots}/bag-marks-hidden-1280x800.png` });
    await cp.check("input[data-marks=customs]");
    out.marks_after_check = await shown();
    // Another image function: the same bag's tiles under that function's name.
    const before = tiles.length;
    await Promise.all([tileOf(cp, "negative"), cp.click("button[data-fn=negative]")]);
    await settle(cp, tiles, 500);
    out.negative_tiles = tiles.slice(before).filter((t) => t.fn === "negative" && t.status === 200).length;
    await cp.click("button[data-fn=standard]");
    await settle(cp, tiles, 500);
    // Customs' findings: one knife with a note, through htmx (the panel is replaced in place).
    await cp.selectOption("select[name=cat0]", { index: 1 });
    await cp.fill("input[name=note0]", "菜刀 cleaver");
    await cp.click("form.findings button");
    await cp.waitForSelector("#opening .item");
    out.customs_panel = await cp.$eval("#opening", (e) => e.innerText);
    out.customs_url = cp.url();
    // The form now holds what was recorded, to correct it.
    out.customs_form = await cp.$eval("form.findings", (f) => ({
      cat0: f.cat0.value, note0: f.note0.value, cat1: f.cat1.value, button: f.querySelector("button").innerText,
    }));
    await cp.evaluate(() => window.scrollTo(0, 0));
    await cp.screenshot({ path: `${shots}/bag-1280x800.png` });

    // Quarantine, a portrait tablet, in English.
    const q = await browser.newContext({ viewport: { width: 800, height: 1280 } });
    const qp = await q.newPage();
    qp.on("pageerror", (e) => errors.push(String(e)));
    await login(qp, "q001", "2222", "quarantine");
    await qp.goto(base + "/lang/en");
    await qp.goto(base + "/bag/1");
    await qp.waitForSelector("#viewer canvas");
    // A photo from the tablet's camera (here a file), through htmx: its thumbnail loads.
    await qp.setInputFiles("input[name=photo]", photo);
    await qp.click("form.photo button");
    await qp.waitForSelector(".photos img");
    await qp.waitForFunction(() => document.querySelector(".photos img").complete);
    out.photo_size = await qp.$eval(".photos img", (i) => [i.naturalWidth, i.naturalHeight]);
    await qp.fill("input[name=treatment]", "none needed");
    await qp.click("form.findings button");
    await qp.waitForSelector("#opening p.state.closed");
    out.closed_text = await qp.$eval("#opening p.state.closed", (e) => e.innerText);
    out.quarantine_panel = await qp.$eval("#opening", (e) => e.innerText);
    await qp.locator("#opening").screenshot({ path: `${shots}/opening-panel-800x1280.png` });
    await qp.evaluate(() => window.scrollTo(0, 0));
    await qp.waitForTimeout(1000);
    await qp.screenshot({ path: `${shots}/bag-800x1280.png` });
    // Customs' list of openings no longer holds bag 1.
    await cp.goto(base + "/openings");
    out.openings_after = await cp.$$eval("a[href^='/bag/']", (as) => as.map((a) => a.getAttribute("href")));
    out.errors = errors;
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(out));
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
