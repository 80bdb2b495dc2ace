// API tokens seen by the administrator: created from /admin/jetons (shown once, no serious or
// critical axe violation at 1280 and 390 px), usable at once against the API, revoked from the
// page and refused from then on.
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

async function services(base, secret) {
  return fetch(`${base}/api/v1/services`, { headers: { Authorization: `Bearer ${secret}` } });
}

for (const width of [1280, 390]) {
  test(`un administrateur crée puis révoque un jeton d’API (${width} px)`, async () => {
    const context = await env.browser.newContext({ bypassCSP: true, viewport: { width, height: 900 } });
    const page = await context.newPage();
    const base = env.server.base;
    await login(page, base, 'admin@demo.guichet.test');
    await page.goto(`${base}/admin/jetons`);
    await page.getByRole('heading', { level: 1, name: 'Jetons d’API' }).waitFor();
    assert.deepEqual(await audit(page), []);

    // Without a service: a French message beside the form, nothing created.
    // The browser's own check (required) would stop the form first; bypass it as a script would.
    await page.evaluate(() => document.querySelector('#jeton-service').removeAttribute('required'));
    await page.getByRole('button', { name: 'Créer le jeton' }).click();
    await page.getByRole('alert').waitFor();
    assert.match(await page.getByRole('alert').textContent(), /choisissez le service du jeton/);

    await page.getByLabel('Service').selectOption('pref-95');
    await page.getByLabel('Lecture', { exact: true }).check();
    await page.getByLabel(/^Libellé/).fill(`tableau de bord ${width}`);
    await page.getByRole('button', { name: 'Créer le jeton' }).click();
    await page.getByRole('heading', { name: /^Jeton n° \d+ créé$/ }).waitFor();
    const secret = (await page.locator('#jeton-secret').textContent()).trim();
    assert.match(secret, /^guichet_/);
    assert.deepEqual(await audit(page), []);
    assert.equal((await services(base, secret)).status, 200);

    // Listed without its secret, then revoked from the page.
    await page.goto(`${base}/admin/jetons`);
    assert.ok(!(await page.content()).includes(secret), 'le secret n’est plus jamais affiché');
    const row = page.getByRole('row', { name: new RegExp(`tableau de bord ${width}`) });
    await row.getByRole('button', { name: /^Révoquer le jeton n° \d+$/ }).click();
    await page.getByText(/est révoqué : il est refusé dès maintenant/).waitFor();
    assert.equal((await services(base, secret)).status, 401);
    assert.deepEqual(await audit(page), []);
    await context.close();
  });
}
