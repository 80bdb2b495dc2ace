// Webhooks seen by the administrator: created from /admin/webhooks (the secret shown once, no
// serious or critical axe violation at 1280 and 390 px), an address in plain http elsewhere
// than this machine refused in French, then disabled from the page.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { useGuichet, login, axeSource } from './harness.mjs';

const axe = readFileSync(axeSource, 'utf8');
const env = useGuichet();

async function audit(page) {
  await page.addScriptTag({ content: axe });
  const result = await page.evaluate(async () => window.axe.run(document, { resultTypes: ['violations'] }));
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}) : ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

for (const width of [1280, 390]) {
  test(`un administrateur crée puis désactive un webhook (${width} px)`, async () => {
    const context = await env.browser.newContext({ bypassCSP: true, viewport: { width, height: 900 } });
    const page = await context.newPage();
    const base = env.server.base;
    await login(page, base, 'admin@demo.guichet.test');
    await page.goto(`${base}/admin/webhooks`);
    await page.getByRole('heading', { level: 1, name: 'Webhooks' }).waitFor();
    assert.deepEqual(await audit(page), []);

    // Plain http to another machine: a French message beside the form, nothing created.
    await page.getByLabel('Service').selectOption('pref-95');
    await page.getByLabel(/^Adresse/).fill('http://instruction.exemple.fr/guichet');
    await page.getByRole('button', { name: 'Créer le webhook' }).click();
    await page.getByRole('alert').waitFor();
    assert.match(await page.getByRole('alert').textContent(), /http:\/\/ n’est accepté que vers 127\.0\.0\.1 ou localhost/);
    assert.deepEqual(await audit(page), []);

    const url = `https://instruction.exemple.fr/guichet/${width}`;
    await page.getByLabel('Service').selectOption('pref-95');
    await page.getByLabel(/^Adresse/).fill(url);
    await page.getByRole('button', { name: 'Créer le webhook' }).click();
    await page.getByRole('heading', { name: /^Webhook n° \d+ créé$/ }).waitFor();
    const secret = (await page.locator('#webhook-secret').textContent()).trim();
    assert.match(secret, /^[0-9a-f]{64}$/);
    assert.deepEqual(await audit(page), []);

    // Listed without its secret, then disabled from the page.
    await page.goto(`${base}/admin/webhooks`);
    assert.ok(!(await page.content()).includes(secret), 'le secret n’est plus jamais affiché');
    const id = (await page.locator('section', { hasText: url }).getByRole('heading').textContent()).match(/n° (\d+)/)[1];
    await page.getByRole('button', { name: `Désactiver le webhook n° ${id}` }).click();
    await page.getByText(`Le webhook n° ${id} est désactivé`).waitFor();
    assert.deepEqual(await audit(page), []);
    await context.close();
  });
}
