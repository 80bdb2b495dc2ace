// The instruction queue: axe-core finds no serious or critical violation, and its tabs and
// filters are links and a GET form (a view is a URL).
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

for (const email of ['instruction.95@demo.guichet.test', 'admin@demo.guichet.test']) {
  test(`axe : la file d’instruction de ${email}`, async () => {
    const context = await env.browser.newContext({ bypassCSP: true });
    const page = await context.newPage();
    await login(page, env.server.base, email);
    await page.click('nav a[href="/instruction"]');
    await page.waitForLoadState();
    assert.equal(new URL(page.url()).pathname, '/instruction');
    assert.deepEqual(await audit(page), []);
    // A filter is a GET form: the view lands in the URL.
    await page.selectOption('#filtre-etat', 'depose');
    await page.click('form[action="/instruction"] button[type="submit"]');
    await page.waitForLoadState();
    assert.match(page.url(), /etat=depose/);
    await page.click('a.fr-tabs__tab:has-text("Tous")');
    await page.waitForLoadState();
    assert.match(page.url(), /onglet=tous/);
    assert.equal(await page.locator('a.fr-tabs__tab[aria-current="page"]').count(), 1);
    assert.deepEqual(await audit(page), []);
    await context.close();
  });
}
