// Opens each report.html given on the command line in headless Debian
// chromium (through playwright-core) and fails on any console error, page
// error or network request other than the file itself; keeps screenshots.
// Usage: node check_html.mjs SCREENSHOT_DIR REPORT.html...
import { chromium } from 'playwright-core';
import { pathToFileURL } from 'node:url';
import { basename, dirname, join } from 'node:path';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';

const [shotDir, ...files] = process.argv.slice(2);
mkdirSync(shotDir, { recursive: true });
const args = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const browser = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'rackpong-chromium-')), {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true, args,
  viewport: { width: 1500, height: 1000 },
});
let failures = 0;
for (const file of files) {
  const url = pathToFileURL(file).href;
  const problems = [];
  const page = await browser.newPage();
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console error: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  await page.route('**/*', (route) => {
    const u = route.request().url();
    if (u === url) return route.continue();
    problems.push(`network request: ${u}`);
    return route.abort();
  });
  page.on('requestfailed', (r) => { if (r.url() === url) problems.push(`failed to load ${url}`); });
  await page.goto(url, { waitUntil: 'load' });
  const svgs = await page.locator('svg').count();
  const title = await page.locator('h1').innerText();
  if (svgs < 6) problems.push(`expected at least 6 SVG charts, found ${svgs}`);
  if (!/PASSED|FAILED/.test(title)) problems.push(`no verdict in the heading: ${title}`);
  const name = basename(dirname(file));
  // Very long pages (hundreds of faults) are cut to their first 16000 px.
  const height = await page.evaluate(() => document.documentElement.scrollHeight);
  await page.screenshot({ path: join(shotDir, `${name}.png`), fullPage: true,
    clip: height > 16000 ? { x: 0, y: 0, width: 1500, height: 16000 } : undefined });
  await page.screenshot({ path: join(shotDir, `${name}-top.png`) });
  await page.close();
  for (const p of problems) console.error(`${file}: ${p}`);
  console.log(`${problems.length ? "FAIL" : "ok  "} ${file}: ${svgs} charts, ${problems.length} problems`);
  failures += problems.length ? 1 : 0;
}
await browser.close();
process.exit(failures ? 1 : 0);
