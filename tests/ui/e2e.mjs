// End-to-end test of the dashboard in a real headless Chromium, driven by playwright-core.
// Run by tests/api/dashboard.rs (`a_browser_exports_watches_verifies_and_cancels`), which
// starts the node, makes the keys, the cluster, two snapshots and a bucket, and passes them
// in the environment:
//
//   SNAPEX_URL, SNAPEX_GROUP, SNAPEX_CLUSTER, SNAPEX_SNAPSHOT_A, SNAPEX_SNAPSHOT_B,
//   SNAPEX_BUCKET, SNAPEX_OPERATOR (public:private, Project Backup Manager),
//   SNAPEX_READ_ONLY (public:private, Project Read Only), SNAPEX_SHOTS (a directory for the
//   screenshots), SNAPEX_PLAYWRIGHT (the node_modules directory holding playwright-core),
//   SNAPEX_CHROMIUM (the browser, default /usr/bin/chromium).
//
// It prints one line per step and exits non-zero on the first failed expectation. The node
// runs with one replica-set slot, so the second export waits `Queued` behind the first.
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`missing ${name}`);
  return v;
};
const require = createRequire(path.join(env('SNAPEX_PLAYWRIGHT'), 'noop.js'));
const { chromium } = require('playwright-core');

const url = env('SNAPEX_URL');
const group = env('SNAPEX_GROUP');
const cluster = env('SNAPEX_CLUSTER');
const snapshotA = env('SNAPEX_SNAPSHOT_A');
const snapshotB = env('SNAPEX_SNAPSHOT_B');
const bucket = env('SNAPEX_BUCKET');
const [opPublic, opPrivate] = env('SNAPEX_OPERATOR').split(':');
const [roPublic, roPrivate] = env('SNAPEX_READ_ONLY').split(':');
const shots = env('SNAPEX_SHOTS');
const STEP_TIMEOUT = 120_000;

function step(text) {
  console.log(`step: ${text}`);
}
function expect(cond, text) {
  if (!cond) throw new Error(`expectation failed: ${text}`);
}
async function shot(page, name) {
  await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
}

async function signIn(context, pub, priv) {
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT);
  await page.goto(`${url}/ui/`);
  expect(page.url().includes('/ui/login'), `a page without a session goes to the login (${page.url()})`);
  await page.fill('input[name=public_key]', pub);
  await page.fill('input[name=private_key]', priv);
  await Promise.all([page.waitForURL(`${url}/ui/`), page.click('#sign-in')]);
  const cookies = await context.cookies(`${url}/ui/`);
  const session = cookies.find((c) => c.name === 'snapex_session');
  expect(session && session.httpOnly && session.sameSite === 'Strict', `session cookie is HttpOnly and SameSite=Strict: ${JSON.stringify(session)}`);
  return page;
}

// A fresh profile (--user-data-dir), which playwright passes itself for a persistent context.
const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'snapex-chromium-'));
const operator = await chromium.launchPersistentContext(userDataDir, {
  executablePath: process.env.SNAPEX_CHROMIUM || '/usr/bin/chromium',
  headless: true,
  viewport: { width: 1280, height: 900 },
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--disable-quic',
  ],
});
try {
  // ---------------------------------------------------------------------------------------
  step('the operator signs in');
  const page = await signIn(operator, opPublic, opPrivate);
  await shot(page, 'projects');
  page.on('dialog', (d) => d.accept());

  step('starts an export of snapshot A from the snapshots page');
  await page.goto(`${url}/ui/groups/${group}/snapshots`);
  const rowA = page.locator(`tr[data-snapshot-id="${snapshotA}"]`);
  await rowA.locator('summary[data-action=export]').click();
  await rowA.locator('select[name=bucket]').selectOption(bucket);
  await rowA.locator('input[name=key]').first().fill('team');
  await rowA.locator('input[name=value]').first().fill('data');
  await shot(page, 'snapshots');
  await Promise.all([page.waitForURL(/\/jobs\/[0-9a-f]{24}$/), rowA.locator('button[data-action=start-export]').click()]);
  const jobA = page.url().split('/').pop();
  step(`export job A is ${jobA}`);
  // Marks this document: if the page reloaded, the mark would be gone.
  await page.evaluate(() => { window.__snapexMark = 'loaded once'; });
  const seen = new Set();
  const record = async () => {
    const s = await page.locator('#job-state').getAttribute('data-state');
    const p = await page.locator('[data-progress]').first().textContent();
    seen.add(`${s} ${p.trim()}`);
    return s;
  };
  await record();

  // ---------------------------------------------------------------------------------------
  step('starts a second export (snapshot B) in another tab: it waits Queued behind A');
  const second = await operator.newPage();
  second.setDefaultTimeout(STEP_TIMEOUT);
  second.on('dialog', (d) => d.accept());
  await second.goto(`${url}/ui/groups/${group}/snapshots`);
  const rowB = second.locator(`tr[data-snapshot-id="${snapshotB}"]`);
  await rowB.locator('summary[data-action=export]').click();
  await rowB.locator('select[name=bucket]').selectOption(bucket);
  await Promise.all([second.waitForURL(/\/jobs\/[0-9a-f]{24}$/), rowB.locator('button[data-action=start-export]').click()]);
  const jobB = second.url().split('/').pop();
  const stateB = await second.locator('#job-state').getAttribute('data-state');
  step(`export job B is ${jobB}, ${stateB}`);
  if (stateB === 'Queued') {
    await second.locator('[data-queue-position]').waitFor();
  }
  await shot(second, 'job-queued');

  step('the jobs page lists both, live, with the slots in use');
  await second.goto(`${url}/ui/groups/${group}/jobs`);
  await second.locator(`tr[data-job-id="${jobA}"]`).waitFor();
  await second.locator(`tr[data-job-id="${jobB}"]`).waitFor();
  const slots = await second.locator('p.slots').getAttribute('data-limit');
  expect(slots === '1', `the slot limit is shown (${slots})`);
  await shot(second, 'jobs');

  step('cancels B from its page and sees Cancelled');
  await second.goto(`${url}/ui/groups/${group}/clusters/${cluster}/jobs/${jobB}`);
  await Promise.all([second.waitForURL(`**/jobs/${jobB}`), second.locator('button[data-action=cancel]').click()]);
  await second.locator('#job-state[data-state=Cancelled]').waitFor();
  await shot(second, 'job-cancelled');

  // ---------------------------------------------------------------------------------------
  step('watches A progress to Successful without a reload');
  const deadline = Date.now() + STEP_TIMEOUT;
  let state = await record();
  while (state !== 'Successful') {
    expect(state !== 'Failed' && state !== 'Cancelled', `job A ended ${state}`);
    expect(Date.now() < deadline, 'job A did not finish in time');
    await page.waitForTimeout(100);
    state = await record();
  }
  const mark = await page.evaluate(() => window.__snapexMark);
  const updates = Number(await page.locator('#job').getAttribute('data-updates'));
  step(`seen without reload: ${[...seen].join(' | ')} (${updates} live updates)`);
  expect(mark === 'loaded once', 'the job page did not reload');
  expect(updates >= 1 && seen.size >= 2, 'the job page was updated live');
  await page.locator('section.files [data-files]').waitFor();

  step('presses Verify and sees it pass');
  await page.locator('button[data-action=verify]').click();
  await page.locator('#verify[data-verify=passed]').waitFor();
  await shot(page, 'job');

  step('the buckets and nodes pages show');
  await page.goto(`${url}/ui/groups/${group}/buckets`);
  await page.locator(`[data-bucket-id="${bucket}"]`).waitFor();
  await page.locator('button[data-action=check]').click();
  await page.locator('[data-check=passed]').waitFor();
  await shot(page, 'buckets');
  await page.goto(`${url}/ui/groups/${group}/nodes`);
  await page.locator('table.nodes tr[data-node]').first().waitFor();
  await shot(page, 'nodes');

  step('signs out: the session no longer opens a page');
  await page.locator('form.logout button').click();
  await page.waitForURL('**/ui/login');
  await page.goto(`${url}/ui/groups/${group}/jobs`);
  expect(page.url().includes('/ui/login'), 'after sign-out a page goes to the login');
  await shot(page, 'login');

  // ---------------------------------------------------------------------------------------
  step('a Project Read Only key sees no action');
  const ro = await signIn(operator, roPublic, roPrivate);
  await ro.setViewportSize({ width: 390, height: 844 });
  for (const tab of ['snapshots', 'buckets']) {
    await ro.goto(`${url}/ui/groups/${group}/${tab}`);
    const actions = await ro.locator('[data-action]').count();
    expect(actions === 0, `no action on ${tab} for Project Read Only (${actions})`);
  }
  await shot(ro, 'snapshots-read-only-phone');
  const jobs = await ro.goto(`${url}/ui/groups/${group}/jobs`);
  expect(jobs.status() === 403, `the jobs page needs Project Backup Manager (${jobs.status()})`);

  step('a forged POST is refused: without the CSRF token, and with it for the role');
  await ro.goto(`${url}/ui/groups/${group}/snapshots`);
  const csrf = await ro.locator('form.logout input[name=csrf]').getAttribute('value');
  const forged = await ro.evaluate(async ({ group, cluster, snapshotA, bucket, csrf }) => {
    const post = async (body) => (await fetch(`/ui/groups/${group}/clusters/${cluster}/snapshots/${snapshotA}/export`, {
      method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body, redirect: 'manual',
    })).status;
    return {
      noToken: await post(`bucket=${bucket}`),
      wrongToken: await post(`bucket=${bucket}&csrf=forged`),
      withToken: await post(`bucket=${bucket}&csrf=${encodeURIComponent(csrf)}`),
    };
  }, { group, cluster, snapshotA, bucket, csrf });
  step(`forged POST answers: ${JSON.stringify(forged)}`);
  expect(forged.noToken === 403 && forged.wrongToken === 403, 'a POST without the session token gets 403');
  expect(forged.withToken === 403, 'a POST of a role that may not export gets 403');

  console.log(JSON.stringify({ result: 'passed', jobA, jobB, seen: [...seen] }));
} finally {
  await operator.close();
  fs.rmSync(userDataDir, { recursive: true, force: true });
}
