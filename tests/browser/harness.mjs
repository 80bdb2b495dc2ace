// Starts `guichet serve --demo` on a free port with a fresh SQLite database, and drives Debian's
// Chromium through playwright-core. Shared by the browser tests.
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { before, after } from 'node:test';
import { chromium } from 'playwright-core';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const PASSWORD = 'demonstration-itn7';
export const ACCOUNTS = [
  { email: 'admin@demo.guichet.test', role: 'Administrateur national' },
  { email: 'coordination.idf@demo.guichet.test', role: 'Coordinateur régional' },
  { email: 'instruction.95@demo.guichet.test', role: 'Instructeur' },
  { email: 'instruction.78@demo.guichet.test', role: 'Instructeur' },
  { email: 'instruction.dinum@demo.guichet.test', role: 'Instructeur' },
  { email: 'expert.95@demo.guichet.test', role: 'Expert' },
  { email: 'comite.95@demo.guichet.test', role: 'Membre de comité' },
  { email: 'mairie.cergy@demo.guichet.test', role: 'Demandeur (agent de collectivité)' },
  { email: 'mairie.versailles@demo.guichet.test', role: 'Demandeur (agent de collectivité)' },
];

function freePort() {
  return new Promise((ok, ko) => {
    const s = createServer();
    s.once('error', ko);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

export async function startGuichet(extraEnv = {}) {
  const bin = process.env.GUICHET_BIN || join(root, 'target/debug/guichet');
  const port = await freePort();
  const data = mkdtempSync(join(tmpdir(), 'guichet-navigateur-'));
  const child = spawn(bin, ['serve', '--demo'], {
    cwd: root,
    env: {
      ...process.env,
      GUICHET_BIND: `127.0.0.1:${port}`,
      GUICHET_DATA_DIR: data,
      DATABASE_URL: `sqlite://${data}/guichet.sqlite`,
      GUICHET_NPM_DIR: join(root, 'node_modules'),
      GUICHET_LOG: 'warn',
      ...extraEnv,
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`guichet s'est arrêté (code ${child.exitCode})`);
    try {
      const r = await fetch(`${base}/readyz`);
      if (r.ok) {
        // The demo data is loaded before the server listens.
        break;
      }
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGTERM');
      throw new Error('guichet ne répond pas sur /readyz après 120 s');
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    base,
    stop: () =>
      new Promise((ok) => {
        child.once('exit', ok);
        child.kill('SIGTERM');
      }),
  };
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/// Logs in through the login form, as a person would.
export async function login(page, base, email) {
  await page.goto(`${base}/connexion`);
  await page.getByLabel('Adresse électronique').fill(email);
  await page.locator('#mot-de-passe-saisie').fill(PASSWORD);
  await page.getByRole('button', { name: 'Se connecter' }).click();
  await page.waitForURL(`${base}/espace`);
}

export const axeSource = join(root, 'node_modules/axe-core/axe.min.js');

/// Registers before/after hooks that start one Guichet and one browser for the test file, and
/// returns an object whose `server` and `browser` are set once they are up. `extraEnv` may be a
/// function, called when the server starts (for settings known only then, such as a port).
export function useGuichet(extraEnv = {}) {
  const env = { server: undefined, browser: undefined };
  before(async () => {
    env.server = await startGuichet(typeof extraEnv === 'function' ? await extraEnv() : extraEnv);
    env.browser = await launchBrowser();
  });
  after(async () => {
    await env.browser?.close();
    await env.server?.stop();
  });
  return env;
}
