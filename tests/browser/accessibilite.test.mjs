// axe-core finds no serious or critical violation on the public and personal pages.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { useGuichet, login, axeSource } from './harness.mjs';

const axe = readFileSync(axeSource, 'utf8');
const env = useGuichet();

async function audit(page) {
  // axe is injected as an inline script, which the site's CSP rightly forbids: the audit
  // context bypasses CSP for axe only.
  await page.addScriptTag({ content: axe });
  const result = await page.evaluate(async () => window.axe.run(document, { resultTypes: ['violations'] }));
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}) : ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

const publicPages = ['/', '/connexion', '/mot-de-passe/oublie', '/collectivites?q=cergy', '/collectivites/commune/95127', '/collectivites/epci/249500109', '/accessibilite', '/nulle-part'];

for (const path of publicPages) {
  test(`axe : ${path}`, async () => {
    const context = await env.browser.newContext({ bypassCSP: true });
    const page = await context.newPage();
    await page.goto(`${env.server.base}${path}`);
    assert.deepEqual(await audit(page), []);
    await context.close();
  });
}

for (const email of ['mairie.cergy@demo.guichet.test', 'instruction.95@demo.guichet.test', 'coordination.idf@demo.guichet.test', 'admin@demo.guichet.test']) {
  test(`axe : Mon espace de ${email}`, async () => {
    const context = await env.browser.newContext({ bypassCSP: true });
    const page = await context.newPage();
    await login(page, env.server.base, email);
    assert.deepEqual(await audit(page), []);
    // The first link of the space (a service or a collectivité) too.
    const link = page.locator('main a[href^="/espace/"]').first();
    if ((await link.count()) > 0) {
      await link.click();
      await page.waitForLoadState();
      assert.deepEqual(await audit(page), [], `page ${page.url()}`);
    }
    await context.close();
  });
}
