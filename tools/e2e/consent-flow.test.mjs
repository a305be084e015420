// The whole consent flow in two separate browser profiles — a household and a provider — with
// a gateway and a `pi-agent run --simulate` on loopback:
//   provider: create the identity, publish the card, build a request (link + QR code);
//   household: create the wallet, pair with the agent by its code, open the request link, grant;
//   provider: the grant turns active and the live chart shows verified readings, growing;
//   household: revoke; provider: "Access revoked" the moment the notice arrives, no new points.
// Every request both profiles send is captured (URL and raw body): none carries either recovery
// phrase, either passphrase, or any secret key bytes (the 32-byte secret behind each phrase and
// the ML-DSA / ML-KEM seeds derived from it, computed here independently from the phrase).
// Screenshots of every step: target/e2e/flow-NN-*.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { createHash, hkdfSync } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startGateway, launchChromium, captureRequests, anyRequestCarries, ROOT, BIN_DIR } from './harness.mjs';

const HOUSEHOLD_PASSPHRASE = 'kitchen table passphrase';
const PROVIDER_PASSPHRASE = 'provider office passphrase';
const SHOTS = join(ROOT, 'target', 'e2e');

let gateway;
let browser;
let agent;
let work;
let agentLog = '';

/** Waits until `check()` returns a truthy value (polling), or fails after `ms`. */
async function waitFor(what, ms, check) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\nagent log:\n${agentLog.slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

before(async () => {
  assert.ok(existsSync(join(BIN_DIR, 'pi-agent')), `pi-agent is missing in ${BIN_DIR}: cargo build --bins`);
  work = mkdtempSync(join(tmpdir(), 'mk-e2e-flow-'));
  mkdirSync(SHOTS, { recursive: true });
  gateway = await startGateway();
  // Checkpoints every 2 s, so readings are verified (not only provisional) within seconds.
  agent = spawn(join(BIN_DIR, 'pi-agent'), [
    'run', '--simulate', '3', '--node', gateway.url, '--state-dir', join(work, 'agent'),
    '--tiers', 'second', '--checkpoint-secs', '2', '--consent-poll-ms', '200',
  ], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, MK_AGENT_LOG: 'info' } });
  agent.stderr.on('data', (d) => { agentLog += d; });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  if (agent && agent.exitCode === null) {
    const exited = new Promise((r) => agent.once('exit', r));
    agent.kill('SIGTERM');
    await exited;
  }
  await gateway?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** The BIP-39 English word list, from the `bip39` crate the app itself is built with. */
function bip39Words() {
  const registry = join(process.env.CARGO_HOME ?? join(homedir(), '.cargo'), 'registry', 'src');
  for (const index of existsSync(registry) ? readdirSync(registry) : []) {
    for (const crate of readdirSync(join(registry, index)).filter((n) => n.startsWith('bip39-')).sort().reverse()) {
      const file = join(registry, index, crate, 'src', 'language', 'english.rs');
      if (existsSync(file)) return [...readFileSync(file, 'utf8').matchAll(/"([a-z]+)"/g)].map((m) => m[1]);
    }
  }
  throw new Error(`the bip39 crate's word list was not found under ${registry} (build the workspace first)`);
}

/** The 32-byte party secret a 24-word phrase encodes (BIP-39 entropy), checksum verified. */
function secretOf(words, list) {
  let bits = '';
  for (const word of words) {
    const index = list.indexOf(word);
    assert.ok(index >= 0, `${word} is a BIP-39 word`);
    bits += index.toString(2).padStart(11, '0');
  }
  const secret = Buffer.from(bits.slice(0, 256).match(/.{8}/g).map((b) => parseInt(b, 2)));
  const checksum = createHash('sha256').update(secret).digest()[0].toString(2).padStart(8, '0');
  assert.equal(bits.slice(256), checksum, 'the phrase decodes to its secret');
  return secret;
}

/** Every secret byte string of a party: its secret and the key seeds derived from it. */
function secretsOf(words, role, list) {
  const secret = secretOf(words, list);
  const derive = (purpose, length) => Buffer.from(hkdfSync('sha3-256', secret, Buffer.from('meterkast/v1/party-secret'),
    Buffer.from(`meterkast/v1/${role}/${purpose}`), length));
  return [secret, derive('ml-dsa-65/xi', 32), derive('ml-kem-768/d-z', 64)];
}

/** Asserts no captured request carries `bytes` raw, as hex, or as base64. */
function assertNeverSent(requests, bytes, what) {
  for (const form of [bytes, bytes.toString('hex'), bytes.toString('hex').toUpperCase(),
    bytes.toString('base64'), bytes.toString('base64url')]) {
    assert.ok(!anyRequestCarries(requests, form), `${what} was sent`);
  }
}

async function createIdentity(page, noun, passphrase) {
  await page.getByRole('button', { name: `Create a new ${noun}` }).click();
  const words = await page.locator('#recovery-phrase li').allTextContents();
  assert.equal(words.length, 24);
  await page.getByRole('button', { name: 'I have written them down' }).click();
  for (let slot = 0; slot < 3; slot += 1) {
    const label = await page.locator(`label[for="check-${slot}"]`).textContent();
    await page.locator(`#check-${slot}`).fill(words[Number(label.replace('Word ', '')) - 1]);
  }
  await page.getByRole('button', { name: 'Confirm' }).click();
  await page.getByLabel('Passphrase', { exact: true }).fill(passphrase);
  await page.getByLabel('Passphrase again').fill(passphrase);
  await page.getByRole('button', { name: 'Lock and store' }).click();
  await page.locator('#identity-unlocked').waitFor({ timeout: 60000 });
  return words;
}

async function unlock(page, passphrase) {
  await page.getByLabel('Passphrase', { exact: true }).fill(passphrase);
  await page.getByRole('button', { name: 'Unlock' }).click();
  await page.locator('#identity-unlocked').waitFor({ timeout: 60000 });
}

const points = async (page) => Number(await page.locator('#points').getAttribute('data-count'));
const shot = (page, name) => page.screenshot({ path: join(SHOTS, `flow-${name}.png`), fullPage: true });
/** One panel only, for the README's walkthrough (docs/screenshots/flow-*.png are copies). */
const panel = (page, heading, name) => page.locator(`section:has(#${heading})`).screenshot({ path: join(SHOTS, `flow-${name}.png`) });

test('provider asks, household pairs and grants, the dashboard goes live, revocation stops it', async () => {
  const provider = await browser.newContext({ viewport: { width: 1000, height: 900 }, acceptDownloads: true });
  const household = await browser.newContext({ viewport: { width: 375, height: 800 } });
  const providerRequests = captureRequests(provider);
  const householdRequests = captureRequests(household);
  const errors = [];
  const dash = await provider.newPage();
  const home = await household.newPage();
  for (const page of [dash, home]) page.on('pageerror', (e) => errors.push(e.message));
  if (process.env.MK_FLOW_DEBUG) dash.on('console', (m) => console.log('dash:', m.text()));

  // 1. The provider creates its identity.
  await dash.goto(`${gateway.url}provider`);
  const providerWords = await createIdentity(dash, 'provider identity', PROVIDER_PASSPHRASE);
  await dash.locator('#card-status', { hasText: 'Not published yet' }).waitFor({ timeout: 30000 });
  await dash.locator('#grants-empty').waitFor();
  await shot(dash, '01-provider-identity');

  // 2. It publishes its card.
  await dash.getByLabel('Name shown to households').fill('Wattt');
  await dash.getByLabel('Web address (https)').fill('https://wattt.example/');
  await dash.getByLabel('Privacy contact').fill('privacy@wattt.example');
  await dash.locator('#publish-card').click();
  await dash.locator('#card-status.published').waitFor({ timeout: 60000 });
  await shot(dash, '02-card-published');

  // 3. It builds a request: purpose, category, data, 1 s resolution, 30 days, delete within 7.
  await dash.getByLabel('Why you need the data').fill('Live advice on your heat pump and solar panels');
  await dash.locator('#req-category').selectOption({ label: 'Energy insight and advice' });
  await dash.locator('#req-data').getByLabel('Per-phase power, voltage and current').check();
  await dash.locator('#req-resolution').selectOption({ label: 'every second' });
  await dash.getByLabel('Access for (days)').fill('30');
  await dash.getByLabel('Delete the data within (days after access ends)').fill('7');
  await dash.locator('#build-request').click();
  const linkOut = dash.locator('#request-link-out');
  await linkOut.waitFor({ timeout: 60000 });
  const link = await linkOut.inputValue();
  assert.match(link, /^meterkast:request\/[a-z2-7]+$/);
  const openHref = await dash.locator('#request-open-link').getAttribute('href');
  assert.equal(openHref, `/home/request?link=${encodeURIComponent(link)}`);
  assert.equal(await dash.locator('svg#request-qr').count(), 1, 'the QR code is drawn');
  await shot(dash, '03-request-built');
  await panel(dash, 'request-heading', 'panel-request');

  // 4. The household creates its wallet and pairs with the agent by the code it shows.
  await home.goto(`${gateway.url}home`);
  const householdWords = await createIdentity(home, 'wallet', HOUSEHOLD_PASSPHRASE);
  await waitFor('the agent\'s pairing code', 60000, () => existsSync(join(work, 'agent', 'pairing-code')));
  const shown = execFileSync(join(BIN_DIR, 'pi-agent'), ['pair-code', '--state-dir', join(work, 'agent')], { encoding: 'utf8' });
  const code = shown.match(/[A-Z0-9]{5}(?:-[A-Z0-9]{5}){3,}/i)?.[0];
  assert.ok(code, `a pairing code in: ${shown}`);
  await home.getByLabel('Pairing code or link').fill(code);
  await home.locator('#pair-submit').click();
  await home.locator('#devices li.device').waitFor({ timeout: 120000 });
  await shot(home, '04-household-paired');

  // 5. It opens the provider's link (same origin), unlocks, sees the verified request, grants.
  await home.goto(new URL(openHref, gateway.url).href);
  await unlock(home, HOUSEHOLD_PASSPHRASE);
  await home.locator('#request-verdict.verified').waitFor({ timeout: 60000 });
  assert.match(await home.locator('#request-view').textContent(), /Wattt/);
  await shot(home, '05-household-request');
  await home.locator('#request-view').screenshot({ path: join(SHOTS, 'flow-panel-consent.png') });
  await home.locator('#grant').click();
  const granted = home.locator('#access li.grant[data-state="active"]');
  await granted.waitFor({ timeout: 60000 });
  await shot(home, '06-household-granted');

  // 6. The dashboard sees the grant, receives the keys, and the live chart fills with verified
  //    readings, updating while we watch.
  await dash.locator('#grants li.grant[data-state="active"]').waitFor({ timeout: 90000 });
  await waitFor('verified readings on the dashboard', 90000, async () => (await points(dash)) > 0);
  const first = await points(dash);
  // A few more, so the chart has a line to show (one a second, verified every 2 s).
  await waitFor('more readings', 60000, async () => (await points(dash)) >= first + 12);
  assert.match(await dash.locator('#live-power').textContent(), /import \d+ W, export \d+ W/);
  assert.ok((await dash.locator('#live-chart polyline.line:not(.phase)').getAttribute('points')).split(' ').length > 2);
  assert.match(await dash.locator('#live-status').getAttribute('class'), /\blive\b/);
  await shot(dash, '07-dashboard-live');
  await panel(dash, 'live-heading', 'panel-live');

  // The CSV holds what was received, one line per reading under the header.
  const [download] = await Promise.all([dash.waitForEvent('download'), dash.locator('#export-csv').click()]);
  const csv = readFileSync(await download.path(), 'utf8').trim().split('\n');
  assert.match(csv[0], /^device,tier,epoch,seq,status,timestamp,/);
  assert.ok(csv.filter((line) => line.includes(',verified,')).length >= first, 'every verified reading is in the CSV');

  // 7. The household revokes.
  await granted.locator('button.revoke').click();
  await home.locator('#access li.grant[data-state="revoked"]').waitFor({ timeout: 60000 });
  await shot(home, '08-household-revoked');

  // 8. The dashboard shows the revocation as soon as the notice arrives, and no new points.
  await dash.locator('#live-status.revoked', { hasText: 'Access revoked' }).waitFor({ timeout: 60000 });
  await dash.locator('#grants li.grant[data-state="revoked"]').waitFor();
  // Readings written before the rotation may still be verified by the device's last
  // checkpoint for a moment; after that the count must stay put.
  await dash.waitForTimeout(5000);
  const settled = await points(dash);
  const chartAtRevocation = await dash.locator('#live-chart polyline.line:not(.phase)').getAttribute('points');
  await dash.waitForTimeout(10000);
  assert.equal(await points(dash), settled, 'no new readings after the revocation');
  assert.equal(await dash.locator('#live-chart polyline.line:not(.phase)').getAttribute('points'), chartAtRevocation, 'the chart stopped');
  assert.ok(/revoked|Revoked/.test(agentLog), 'the agent handled the revocation');
  await shot(dash, '09-dashboard-revoked');
  await panel(dash, 'grants-heading', 'panel-grants-revoked');
  await panel(dash, 'live-heading', 'panel-live-revoked');

  // The dashboard works at phone width: nothing needs sideways scrolling.
  await dash.setViewportSize({ width: 375, height: 800 });
  assert.ok(await dash.evaluate(() => document.documentElement.scrollWidth <= 375), 'no horizontal scroll at 375 px');
  await shot(dash, '10-dashboard-375px');

  // Nothing secret left either browser: phrases, passphrases, secrets and derived key seeds.
  assert.ok(providerRequests.length > 0 && householdRequests.length > 0);
  const all = [...providerRequests, ...householdRequests];
  const list = bip39Words();
  for (const [words, role, passphrase] of [[providerWords, 'provider', PROVIDER_PASSPHRASE], [householdWords, 'wallet', HOUSEHOLD_PASSPHRASE]]) {
    assert.ok(!anyRequestCarries(all, words.join(' ')), `the ${role} phrase was sent`);
    assert.ok(!anyRequestCarries(all, words.slice(0, 4).join(' ')), `part of the ${role} phrase was sent`);
    assert.ok(!anyRequestCarries(all, passphrase), `the ${role} passphrase was sent`);
    assert.ok(!anyRequestCarries(all, encodeURIComponent(passphrase)), `the ${role} passphrase was sent (URL-encoded)`);
    for (const [i, bytes] of secretsOf(words, role, list).entries()) {
      assertNeverSent(all, bytes, `${role} secret #${i}`);
    }
  }
  if (process.env.MK_FLOW_DEBUG) console.log(agentLog);
  assert.deepEqual(errors, []);
  await provider.close();
  await household.close();
});
