// The job queue seen by the administrator: a reset link the relay refuses for good is a dead
// job on /admin/travaux (no serious or critical axe violation), retried from the page once the
// relay accepts it again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { useGuichet, login, axeSource } from './harness.mjs';

const axe = readFileSync(axeSource, 'utf8');

/// A minimal SMTP relay on 127.0.0.1: refuses every recipient (550) until `accept` is set.
const relay = { accept: false, received: [], port: 0, server: undefined };

function startRelay() {
  return new Promise((ok) => {
    relay.server = createServer((socket) => {
      let data = false;
      let buffer = '';
      let message = '';
      socket.write('220 relais.test ESMTP\r\n');
      socket.on('data', (chunk) => {
        buffer += chunk.toString('utf8');
        let end;
        while ((end = buffer.indexOf('\r\n')) >= 0) {
          const line = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          if (data) {
            if (line === '.') {
              data = false;
              relay.received.push(message);
              message = '';
              socket.write('250 OK\r\n');
            } else {
              message += `${line}\n`;
            }
            continue;
          }
          const verb = line.slice(0, 4).toUpperCase();
          if (verb === 'EHLO') socket.write('250-relais.test\r\n250 8BITMIME\r\n');
          else if (verb === 'RCPT') socket.write(relay.accept ? '250 OK\r\n' : '550 5.1.1 destinataire refuse\r\n');
          else if (verb === 'DATA') {
            data = true;
            socket.write('354 suite\r\n');
          } else if (verb === 'QUIT') {
            socket.end('221 au revoir\r\n');
          } else socket.write('250 OK\r\n');
        }
      });
      socket.on('error', () => {});
    });
    relay.server.listen(0, '127.0.0.1', () => {
      relay.port = relay.server.address().port;
      ok();
    });
  });
}

const env = useGuichet(async () => {
  await startRelay();
  return { GUICHET_SMTP_HOST: '127.0.0.1', GUICHET_SMTP_PORT: String(relay.port), GUICHET_SMTP_TLS: 'none' };
});

async function audit(page) {
  await page.addScriptTag({ content: axe });
  const result = await page.evaluate(async () => window.axe.run(document, { resultTypes: ['violations'] }));
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}) : ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

test('un courriel refusé par le relais se relance depuis la page des travaux', async (t) => {
  t.after(() => relay.server?.close());
  const context = await env.browser.newContext({ bypassCSP: true });
  const page = await context.newPage();
  const base = env.server.base;

  // A visitor asks for a reset link; the relay refuses the recipient for good.
  await page.goto(`${base}/mot-de-passe/oublie`);
  await page.getByLabel('Adresse électronique de votre compte').fill('mairie.cergy@demo.guichet.test');
  await page.getByRole('button', { name: 'Recevoir un lien de réinitialisation' }).click();
  await page.getByText('Demande enregistrée').waitFor();

  // The administrator finds it dead, with the relay's answer.
  await login(page, base, 'admin@demo.guichet.test');
  await page.getByRole('link', { name: 'Travaux' }).first().click();
  const deadline = Date.now() + 20_000;
  while ((await page.getByRole('table').count()) === 0) {
    assert.ok(Date.now() < deadline, 'aucun travail en échec définitif après 20 s');
    await page.waitForTimeout(250);
    await page.reload();
  }
  const table = page.getByRole('table');
  await table.getByText('Courriel : lien de réinitialisation du mot de passe').waitFor();
  assert.match(await table.textContent(), /refus définitif du serveur SMTP/);
  assert.deepEqual(await audit(page), []);

  // The relay is fixed; the administrator retries the job from the page.
  relay.accept = true;
  await page.getByRole('button', { name: /^Relancer le travail n° \d+$/ }).click();
  await page.getByText(/est remis dans la file/).waitFor();
  const sent = Date.now() + 20_000;
  while (relay.received.length === 0) {
    assert.ok(Date.now() < sent, 'le courriel relancé n’est pas parti');
    await page.waitForTimeout(100);
  }
  assert.match(relay.received[0], /mot-de-passe\/definir\?jeton=/);
  await page.goto(`${base}/admin/travaux`);
  await page.getByText('Aucun travail en échec définitif.').waitFor();
  assert.deepEqual(await audit(page), []);
  await context.close();
});
