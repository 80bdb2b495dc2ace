// The public side as a town-hall secretary walks it: from the home page to a measure page, then
// to the simulator; the measure pages and the footer pages audited with axe-core at desktop
// and phone widths.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { useGuichet, axeSource } from './harness.mjs';

const axe = readFileSync(axeSource, 'utf8');
const env = useGuichet();
const WIDTHS = [1280, 390];

async function audit(page) {
  // axe is injected as an inline script, which the site's CSP rightly forbids: the audit
  // context bypasses CSP for axe only.
  await page.addScriptTag({ content: axe });
  const result = await page.evaluate(async () => window.axe.run(document, { resultTypes: ['violations'] }));
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}) : ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

for (const width of WIDTHS) {
  test(`à ${width} px : de l’accueil à la page d’une mesure, puis au simulateur`, async () => {
    const context = await env.browser.newContext({ bypassCSP: true, viewport: { width, height: 900 } });
    const page = await context.newPage();
    await page.goto(`${env.server.base}/`);
    assert.deepEqual(await audit(page), [], 'accueil');
    // The card of the measure leads to its page.
    await page.getByRole('link', { name: 'Relation à l’usager' }).click();
    await page.waitForURL(/\/mesures\/axe3\.v1\.relation-usager$/);
    await page.getByRole('heading', { level: 1, name: 'Relation à l’usager' }).waitFor();
    assert.deepEqual(await audit(page), [], 'page de la mesure');
    // No technical identifier in what the visitor reads.
    const text = await page.locator('main').innerText();
    assert.doesNotMatch(text, /axe3\.v1|\[00\d\]/);
    // Filing starts from here, with this measure chosen.
    const depot = page.getByRole('link', { name: 'Déposer un dossier' });
    assert.equal(await depot.getAttribute('href'), '/espace/dossiers/nouveau?mesure=axe3.v1.relation-usager');
    assert.match(text, /Devis \(obligatoire\)/);
    // The territory chosen without JavaScript: Île-de-France's terms.
    await page.locator('select#territoire').selectOption({ label: 'Île-de-France' });
    await page.getByRole('button', { name: 'Afficher' }).click();
    await page.waitForURL(/territoire=11/);
    await page.getByRole('heading', { level: 3, name: 'Île-de-France' }).waitFor();
    assert.match(await page.locator('.fr-callout').innerText(), /80\s%/);
    assert.deepEqual(await audit(page), [], 'page de la mesure, Île-de-France');
    // On to the simulator.
    await page.getByRole('link', { name: 'Simuler' }).click();
    await page.waitForURL(/\/simulateur$/);
    await page.getByRole('heading', { level: 1 }).waitFor();
    assert.deepEqual(await audit(page), [], 'simulateur');
    await context.close();
  });

  test(`à ${width} px : d’une collectivité à ses mesures, puis à sa simulation`, async () => {
    const context = await env.browser.newContext({ bypassCSP: true, viewport: { width, height: 900 } });
    const page = await context.newPage();
    await page.goto(`${env.server.base}/collectivites/commune/95127`);
    await page.getByRole('link', { name: 'Les mesures pour Cergy' }).click();
    await page.waitForURL(/\/mesures\?collectivite=commune%3A95127$/);
    assert.deepEqual(await audit(page), [], 'liste des mesures pour Cergy');
    await page.getByRole('link', { name: 'Formation des agents au numérique' }).click();
    await page.getByText('Règles appliquées à Cergy : Île-de-France.').waitFor();
    await page.getByRole('link', { name: 'Simuler une aide pour Cergy' }).click();
    await page.getByRole('heading', { level: 2, name: 'Résultats pour Cergy' }).waitFor();
    await context.close();
  });

  for (const path of ['/mesures', '/mesures/axe2.demat', '/mesures/axe3.v1.dematads?territoire=93', '/mesures/nulle-part', '/mentions-legales', '/donnees-personnelles', '/gestion-des-cookies', '/plan-du-site', '/accessibilite']) {
    test(`axe à ${width} px : ${path}`, async () => {
      const context = await env.browser.newContext({ bypassCSP: true, viewport: { width, height: 900 } });
      const page = await context.newPage();
      await page.goto(`${env.server.base}${path}`);
      assert.deepEqual(await audit(page), []);
      await context.close();
    });
  }
}
