// Node settings: several nodes, kept in localStorage across reloads; the status shows the
// first one that answers, so a dead node listed first does not cut the app off.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { gatewayAndBrowser } from './harness.mjs';

const env = gatewayAndBrowser();

/** A loopback port nothing listens on (bound, then released). */
async function deadPort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

test('nodes are added, checked, reordered, kept across reloads, and fallen back from', async () => {
  const page = await env.browser.newPage();
  await page.goto(`${env.gateway.url}nodes`);
  const dead = `http://127.0.0.1:${await deadPort()}/`;

  await page.getByLabel('Add a node').fill('not a url');
  await page.getByRole('button', { name: 'Add', exact: true }).click();
  await page.locator('#node-url-error', { hasText: 'https://' }).waitFor();

  await page.getByLabel('Add a node').fill(dead);
  await page.getByRole('button', { name: 'Add', exact: true }).click();
  const items = page.locator('.node-list li');
  await items.nth(1).locator('.status-error').waitFor({ timeout: 15000 });
  assert.match(await items.nth(0).textContent(), /answers: meterkast-gateway/);

  // The dead node first: the status still reaches the gateway through the second.
  await page.getByRole('button', { name: `Move ${dead} up` }).click();
  assert.equal(await page.locator('.node-list li .mono').first().textContent(), dead);
  await page.reload();
  assert.equal(await page.locator('.node-list li .mono').first().textContent(), dead, 'kept in localStorage');
  const status = page.locator('#node-status.status-ok');
  await status.waitFor({ timeout: 15000 });
  assert.equal(await status.textContent(), 'Connected to meterkast-gateway');

  await page.getByRole('button', { name: `Remove ${dead}` }).click();
  assert.equal(await page.locator('.node-list li').count(), 1);
  const stored = JSON.parse(await page.evaluate(() => localStorage.getItem('meterkast.nodes')));
  assert.deepEqual(stored, [env.gateway.url]);
});
