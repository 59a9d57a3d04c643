// Opens the page in headless Chromium with a video file as the camera and reports what it did.
//
//   node web/test/browser.mjs JOB.json
//
// JOB.json: {"chromium": path, "url": page address, "clip": .y4m file played as the camera,
//            "frames": matted frames to wait for, "timeout_s": seconds, "screenshot": PNG path,
//            "output": JSON path for {backend, frames, ratio, error, stats, records, log}}
import { readFile, writeFile } from 'node:fs/promises';
import puppeteer from 'puppeteer-core';

const job = JSON.parse(await readFile(process.argv[2], 'utf8'));
const browser = await puppeteer.launch({
  executablePath: job.chromium,
  headless: true,
  args: [
    '--no-sandbox',
    '--use-fake-ui-for-media-stream',
    '--use-fake-device-for-media-stream',
    `--use-file-for-fake-video-capture=${job.clip}`,
    // WebGL without a GPU: Chromium's software renderer.
    '--use-angle=swiftshader',
    '--enable-unsafe-swiftshader',
    '--ignore-gpu-blocklist',
  ],
});
const log = [];
try {
  const page = await browser.newPage();
  await page.setViewport({ width: 1040, height: 760 });
  page.on('console', (m) => log.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => log.push(`pageerror: ${e.message}`));
  page.on('requestfailed', (r) => log.push(`requestfailed: ${r.url()}`));
  await page.goto(job.url, { waitUntil: 'load' });
  let timedOut = false;
  try {
    await page.waitForFunction(
      (n) => window.mattecam && (window.mattecam.error || window.mattecam.frames >= n),
      { timeout: job.timeout_s * 1000, polling: 250 },
      job.frames,
    );
  } catch (e) {
    timedOut = true;
  }
  const result = await page.evaluate(() => ({
    backend: window.mattecam.backend,
    frames: window.mattecam.frames,
    ratio: window.mattecam.ratio,
    error: window.mattecam.error,
    records: window.mattecam.records,
    stats: document.getElementById('stats').textContent,
    message: document.getElementById('message').textContent,
  }));
  await page.screenshot({ path: job.screenshot });
  await writeFile(job.output, JSON.stringify({ ...result, timedOut, log }));
} finally {
  await browser.close();
}
