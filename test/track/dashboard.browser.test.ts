/**
 * The dashboard in a real browser: Debian's Chromium driven by playwright-core, against two
 * real runs trained by `kiln train` (configs/tiny-mlm.yaml at two learning rates) and served by
 * `kiln dashboard`. It loads the page, sorts the table, selects both runs, sees two curves,
 * opens the params diff (whose numbers must be the ones `kiln runs compare` prints), opens a
 * run's detail page, and saves a screenshot under test-results/.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { BIN, ENV, kiln, runDirs } from '../helpers/cli.js';
import { REPO_ROOT } from '../helpers/python.js';

const CHROMIUM = '/usr/bin/chromium';
const runs = mkdtempSync(join(tmpdir(), 'kiln-dash-runs-'));
let server: ChildProcess | null = null;
let browser: Browser | null = null;
let address = '';

beforeAll(async () => {
  for (const lr of ['1.0e-3', '3.0e-3']) {
    const r = kiln(['train', '--config', 'configs/tiny-mlm.yaml', '--runs', runs, '--quiet', '--set', `train.lr=${lr}`, '--set', 'train.log_every=2']);
    expect(r.status, r.stderr).toBe(0);
  }
  expect(runDirs(runs)).toHaveLength(2);
  server = spawn(process.execPath, [BIN, 'dashboard', '--port', '0', '--runs', runs], { cwd: REPO_ROOT, env: ENV, stdio: ['ignore', 'pipe', 'inherit'] });
  address = await new Promise<string>((resolvePromise, reject) => {
    let out = '';
    server!.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
      const match = /kiln dashboard: (http:\/\/127\.0\.0\.1:\d+)\//.exec(out);
      if (match) resolvePromise(match[1]!);
    });
    server!.on('exit', (code) => reject(new Error(`kiln dashboard exited with ${code}`)));
  });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
  });
}, 300_000);

afterAll(async () => {
  await browser?.close();
  server?.kill('SIGTERM');
});

describe('kiln dashboard in Chromium', () => {
  it('sorts, selects two runs, overlays their curves, diffs their params like kiln runs compare, and opens a run', async () => {
    const page = await browser!.newPage({ viewport: { width: 1400, height: 1000 } });
    const failed: string[] = [];
    page.on('requestfailed', (request) => failed.push(request.url()));
    page.on('pageerror', (error) => failed.push(error.message));
    await page.goto(`${address}/`);
    await page.waitForSelector('#runs tbody tr[data-run]');
    const ids = runDirs(runs);
    expect(await page.locator('#runs tbody tr').count()).toBe(2);

    // Sort by the run id, ascending then descending.
    const order = async (): Promise<string[]> => page.locator('#runs tbody tr').evaluateAll((rows) => rows.map((row) => row.getAttribute('data-run')!));
    await page.click('#runs thead th[data-key="id"]');
    expect(await order()).toEqual([...ids].sort());
    await page.click('#runs thead th[data-key="id"]');
    expect(await order()).toEqual([...ids].sort().reverse());
    await expect.poll(() => page.locator('#runs thead th[data-key="id"]').getAttribute('class')).toBe('sorted-desc');

    // Select both: two curves of train/loss.
    for (const id of ids) await page.check(`#runs tbody tr[data-run="${id}"] input.select`);
    await page.waitForSelector('#curves[data-series="2"]');
    expect(await page.locator('#curves canvas').count()).toBeGreaterThan(0);
    expect(await page.locator('#metric').inputValue()).toBe('train/loss');

    // The params diff: only differences, the same numbers the terminal prints.
    await page.click('.tabs button[data-tab="diff"]');
    await page.waitForSelector('#diff-params tbody tr[data-key="train.lr"]');
    const pageRows = async (table: string): Promise<string[][]> =>
      page.locator(`${table} tbody tr`).evaluateAll((rows) => rows.map((row) => [...row.querySelectorAll('td')].map((td) => td.textContent ?? '')));
    const header = await page.locator('#diff-params thead th').allTextContents();
    const compare = kiln(['runs', 'compare', ...header.slice(1), '--diff', '--runs', runs]);
    expect(compare.status, compare.stderr).toBe(0);
    const terminalRows = compare.stdout
      .split('\n')
      .filter((line) => /^\S/.test(line) && !/^(result|param|-)/.test(line))
      .map((line) => line.trim().split(/\s{2,}/));
    expect([...(await pageRows('#diff-results')), ...(await pageRows('#diff-params'))]).toEqual(terminalRows);
    const lrRow = (await pageRows('#diff-params')).find((row) => row[0] === 'train.lr');
    expect(new Set(lrRow?.slice(1))).toEqual(new Set(['0.001', '0.003']));

    // Parallel coordinates of the differing params against a result.
    await page.click('.tabs button[data-tab="parallel"]');
    await page.waitForSelector('#parallel canvas');

    mkdirSync(join(REPO_ROOT, 'test-results'), { recursive: true });
    const screenshot = join(REPO_ROOT, 'test-results', 'dashboard.png');
    await page.click('.tabs button[data-tab="curves"]');
    await page.waitForSelector('#curves[data-series="2"]');
    await page.screenshot({ path: screenshot, fullPage: true });
    expect(existsSync(screenshot)).toBe(true);

    // A run's detail page: its config, log and artifacts as download links.
    await page.click(`#runs tbody tr[data-run="${ids[0]}"] a`);
    await page.waitForSelector('#run-view h2');
    expect(await page.locator('#run-view h2').textContent()).toBe(ids[0]);
    expect(await page.locator('#config').textContent()).toMatch(/task: mlm/);
    expect(await page.locator('#log').textContent()).toMatch(/run .* \(mlm\)/);
    const links = await page.locator('#artifacts a').evaluateAll((anchors) => anchors.map((a) => a.getAttribute('href')));
    expect(links).toContainEqual(`/api/runs/${ids[0]}/files/model.safetensors`);
    expect(failed).toEqual([]);
    await page.close();
  }, 120_000);
});
