// End to end in a real browser (Debian's headless Chromium driven by playwright-core): the inspector
// and sandbox page (/inspector/, docs/inspector.md) against the real local server. Opens a topic with
// one click (a token from the development issuer), opens one from a shared link, connects sandbox
// apps, publishes from templates, sees events arrive in the apps and in the inspector's stream, has
// one app refuse (409) and two not answer and sees the hub's SyncErrors and their ended rows, watches
// the page while the hub is down and back, and on a hub without the development issuer sees a missing
// token refused. Saves screenshots at laptop size under test/e2e/artifacts/ (gitignored).
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { type Browser, chromium, type Locator, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { http, HubServer, removeDir, ROOT, tempStateDir, uniqueTopic, type WorkerdServer } from "../helpers/server";
import { startWorkerdHub } from "../helpers/node/workerd-hub.ts";

// Callbacks given to page.evaluate/waitForFunction run in the browser; the e2e tsconfig has Node
// types only, so the few DOM globals they use are declared here (module scope, untyped).
declare const document: any;
declare const window: any;
declare function getComputedStyle(element: unknown): { outlineStyle: string };

/** The dev server's settings: a short acknowledgement timeout, so an app that does not answer is seen timing out quickly. */
const VARS = { ACK_TIMEOUT_SECONDS: "2" };

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const ARTIFACTS = join(ROOT, "test", "e2e", "artifacts");
/** Every browser wait has this timeout (the machines are slow; nothing here should take 5 s). */
const WAIT_MS = 20_000;
/**
 * The page fills most of what a test reads asynchronously (a `toggle` listener, a table refreshed
 * after a socket message), so a read right after an action can see the state before it. Assertions
 * on such state poll until they hold: `await expect.poll(() => locator.textContent(), POLL).toBe(…)`.
 */
const POLL = { timeout: WAIT_MS, interval: 50 } as const;

/** The settings of a hub without the development issuer (AUTH_MODE=smart; its JWKS is never fetched here). */
const SMART_VARS = { ...VARS, AUTH_MODE: "smart", SMART_JWKS_URL: "http://127.0.0.1:9/jwks.json", SMART_ISSUER: "https://issuer.invalid", SMART_AUDIENCE: "fhircast-hub" };

let dir: string;
let server: HubServer | WorkerdServer | undefined;
/**
 * Started beside the first server (one start less in sequence); the last test switches to it. On
 * plain workerd (test/helpers/node/workerd-hub.ts), which serves the page through the Worker as the
 * self-hosted hub does: what it shows is the hub's refusal, not where the page came from.
 */
let smartDir: string;
let smart: Promise<WorkerdServer> | undefined;
let browser: Browser | undefined;
let page: Page | undefined;
/** The client package's bundle, as built for the tarball; the page must load exactly this. */
let packageBundle = "";
const consoleErrors: string[] = [];

beforeAll(async () => {
  // The page's sandbox apps run the client package's bundle (src/packages/build.mjs, the same bytes
  // the @fhircast-edge/client tarball carries): build it as `npm start` does. The build replaces the
  // served copy only if it differs: rewriting it unchanged would make every wrangler dev of the e2e
  // files running beside this one reload (and drop its sockets).
  const bundleDir = await tempStateDir("fhircast-client-build");
  try {
    const built = spawnSync(process.execPath, [join(ROOT, "src/packages/build.mjs"), "client", "--public", "--out", bundleDir], { cwd: ROOT, encoding: "utf8", timeout: 60_000 });
    if (built.status !== 0) throw new Error(`building the client bundle failed: ${built.stderr || built.stdout || built.error?.message}`);
    packageBundle = await readFile(join(bundleDir, "client", "fhircast-client.js"), "utf8");
  } finally {
    await removeDir(bundleDir);
  }
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)`);
  [dir, smartDir] = await Promise.all([tempStateDir("fhircast-inspector"), tempStateDir("fhircast-inspector-smart")]);
  smart = startWorkerdHub({ persistTo: smartDir, vars: SMART_VARS });
  smart.catch(() => undefined); // awaited by the test that uses it
  server = await HubServer.start({ persistTo: dir, vars: VARS });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    timeout: 30_000,
  });
  page = await browser.newPage({ viewport: { width: 1366, height: 768 } });
  page.setDefaultTimeout(WAIT_MS);
  page.setDefaultNavigationTimeout(WAIT_MS);
  page.on("console", (m) => {
    if (m.type() === "error") consoleErrors.push(m.text());
  });
  page.on("pageerror", (e) => consoleErrors.push(e.message));
  page.on("response", (r) => {
    if (r.status() >= 400) consoleErrors.push(`${r.status()} ${r.request().method()} ${r.url()}`);
  });
}, 120_000);

afterAll(async () => {
  await page?.close().catch(() => undefined);
  await browser?.close().catch(() => undefined);
  await Promise.all([server?.stop(), smart?.then((s) => s.stop(), () => undefined)]);
  if (dir) await removeDir(dir);
  if (smartDir) await removeDir(smartDir);
}, 60_000);

/** The sandbox app card named `name`. */
const app = (p: Page, name: string): Locator => p.locator(`article.app[data-name="${name}"]`);

async function connectApp(p: Page, name: string): Promise<void> {
  await p.getByLabel("App name (subscriber.name)").fill(name);
  await p.getByRole("button", { name: "Connect app" }).click();
  await app(p, name).locator(".app-state", { hasText: "connected" }).waitFor();
  await expect(app(p, name).getAttribute("data-state")).resolves.toBe("ok");
}

/** Chooses an event in the publish form, waits for its template, publishes, returns the hub's answer line. */
async function publishFromTemplate(p: Page, event: string): Promise<{ answer: string; body: any }> {
  const before = await p.locator("#pub-body").inputValue();
  await p.getByLabel("Event", { exact: true }).selectOption(event);
  // The template is rebuilt from a fresh snapshot; wait until it names the event (and changed).
  await p.waitForFunction(
    ([ev, prev]) => {
      const v = (document.querySelector("#pub-body") as any).value;
      return v !== prev && v.includes(`"hub.event": "${ev}"`);
    },
    [event, before] as const,
    { timeout: WAIT_MS },
  );
  const body = JSON.parse(await p.locator("#pub-body").inputValue());
  await p.locator("#pub-result").evaluate((e) => (e.textContent = ""));
  await p.getByRole("button", { name: "Publish", exact: true }).click();
  await p.locator("#pub-result .answer").waitFor();
  return { answer: (await p.locator("#pub-result .answer").textContent()) ?? "", body };
}

describe("the inspector and sandbox page in headless Chromium", () => {
  it("is served by the Worker's assets while the hub's own paths still reach the Worker", async () => {
    const o = server!.origin;
    const html = await http(`${o}/inspector/`);
    expect(html.status).toBe(200);
    expect(html.headers.get("content-type")).toContain("text/html");
    expect(await html.text()).toContain("FHIRcast Hub inspector");
    const bare = await http(`${o}/inspector`, { redirect: "manual" });
    expect([301, 307, 308]).toContain(bare.status);
    expect(bare.headers.get("location")).toMatch(/\/inspector\/$/);
    const client = await http(`${o}/fhircast-client.js`);
    expect(client.status).toBe(200);
    expect(client.headers.get("content-type")).toMatch(/javascript/);
    // The page's client is the client package's bundle, byte for byte (test/e2e/packages.e2e.test.ts).
    expect(await client.text()).toBe(packageBundle);
    expect((await http(`${o}/health`)).status).toBe(200);
    const root = await http(`${o}/`);
    expect(await root.json()).toMatchObject({ name: "FHIRcast Hub" });
    expect((await http(`${o}/.well-known/fhircast-configuration`)).status).toBe(200);
    expect((await http(`${o}/api/inspect/some-topic`)).status).toBe(401);
    expect((await http(`${o}/no/such/file`)).status).toBe(404);
  });

  it("inspects a topic, runs two sandbox apps, publishes from templates and shows a refusal's SyncError", async () => {
    const p = page!;
    const topic = uniqueTopic("inspector-ui");
    const started = Date.now();
    await p.goto(`${server!.origin}/inspector/`);
    await p.locator("body[data-ready=true]").waitFor();
    // The first step is said on the page: Open topic (it gets a development token by itself).
    await expect.poll(() => p.locator("#access-status").textContent(), POLL).toContain("press Open topic");

    // Every control has a label (name) a screen reader can read.
    const unlabeled = await p.evaluate(() =>
      [...document.querySelectorAll("input, select, textarea, button")]
        .filter((e) => !(e as any).closest("template"))
        .filter((e) => {
          const el = e as any;
          if (el.type === "hidden") return false;
          const name = el.labels?.length ? el.labels[0]!.textContent : el.getAttribute("aria-label") ?? el.textContent;
          return !name || !name.trim();
        })
        .map((e) => e.outerHTML.slice(0, 80)),
    );
    expect(unlabeled).toEqual([]);

    // The Scopes field shows all of its default value, fhircast-hub/inspect included (not cut off).
    await expect.poll(() => p.getByLabel("Scopes").inputValue(), POLL).toContain("fhircast-hub/inspect");
    const scopes = await p.getByLabel("Scopes").evaluate((e: any) => ({ scroll: e.scrollWidth, client: e.clientWidth }));
    expect(scopes.scroll).toBeLessThanOrEqual(scopes.client);

    // The first click: Open topic, with no token, gets one from the development issuer (default
    // scopes include fhircast-hub/inspect) and opens the topic.
    await p.getByLabel("Topic (hub.topic)").fill(topic);
    await p.getByRole("button", { name: "Open topic" }).click();
    await p.locator("#live-state", { hasText: /^live$/ }).waitFor();
    await expect.poll(() => p.locator("#access-status").textContent(), POLL).toContain(`Inspecting ${topic}`);
    await expect.poll(() => p.locator("#token").inputValue(), POLL).toMatch(/^ey/);

    // A token the hub does not accept is refused, and the page says why and what to do next.
    await p.locator("#token").fill("not-a-token");
    await p.getByRole("button", { name: "Open topic" }).click();
    await p.locator("#access-status", { hasText: "Refused: the token is missing, invalid or expired" }).waitFor();
    await expect.poll(() => p.locator("#access-status").textContent(), POLL).toContain("Get token");
    await expect.poll(() => p.locator("#live-state").textContent(), POLL).toBe("not connected");
    expect(consoleErrors.splice(0).every((e) => /401/.test(e))).toBe(true); // that refusal, logged by the browser

    // A shared link (?topic=) opens its topic by itself: no click.
    await p.goto(`${server!.origin}/inspector/?topic=${encodeURIComponent(topic)}`);
    await p.locator("body[data-ready=true]").waitFor();
    await expect.poll(() => p.getByLabel("Topic (hub.topic)").inputValue(), POLL).toBe(topic);
    await p.locator("#live-state", { hasText: /^live$/ }).waitFor();
    await expect.poll(() => p.locator("#access-status").textContent(), POLL).toContain(`Inspecting ${topic}`);
    await expect.poll(() => p.locator("#token").inputValue(), POLL).toMatch(/^ey/);
    await p.locator("#subscribers tbody", { hasText: "No subscriptions" }).waitFor();

    // Two sandbox apps, with the default (STU3) events, SyncError included.
    await connectApp(p, "Viewer");
    await connectApp(p, "Reporter");
    const rows = p.locator("#subscribers tbody tr");
    await p.waitForFunction(() => document.querySelectorAll("#subscribers tbody tr[data-sub]").length === 2, undefined, { timeout: WAIT_MS });
    // The table refreshes on every subscription change; the connects may land after the subscribes.
    await p.waitForFunction(
      () => [...document.querySelectorAll("#subscribers tbody tr[data-sub]")].every((r) => r.querySelectorAll("td")[1]?.textContent === "connected"),
      undefined,
      { timeout: WAIT_MS },
    );
    // The app card's lease counts down, as the table's does.
    const lease = app(p, "Viewer").locator(".app-lease");
    await expect.poll(() => lease.textContent(), POLL).toMatch(/^Lease left \d+ min \d\d s\.$/);
    const leaseBefore = await lease.textContent();
    await expect.poll(() => lease.textContent(), POLL).not.toBe(leaseBefore);
    for (const name of ["Viewer", "Reporter"]) {
      const row = rows.filter({ has: p.locator("th", { hasText: name }) });
      await expect.poll(() => row.locator("td").nth(0).textContent(), POLL).toContain("Patient-open");
      await expect.poll(() => row.locator("td").nth(0).textContent(), POLL).toContain("SyncError");
      await expect.poll(() => row.locator("td").nth(1).textContent(), POLL).toBe("connected");
      await expect.poll(() => row.locator("td").nth(2).textContent(), POLL).toMatch(/\d+ (h|min)/);
      await expect.poll(() => row.locator("td").nth(4).textContent(), POLL).toBe("none");
    }

    // Patient-open from the template: 202, delivered to both apps (and acknowledged), and in the stream.
    const first = await publishFromTemplate(p, "Patient-open");
    expect(first.answer).toMatch(/^Hub answered 202/);
    const patientId = first.body.event.context[0].resource.id as string;
    for (const name of ["Viewer", "Reporter"]) {
      await app(p, name).locator(`li.frame[data-direction=in][data-event="Patient-open"]`).first().waitFor();
      await app(p, name).locator("li.frame[data-direction=out]", { hasText: "ack 200" }).first().waitFor();
    }
    await p.locator(`#stream li[data-event="Patient-open"]`, { hasText: `Patient/${patientId}` }).waitFor();
    await p.locator("#contexts li.ctx.current", { hasText: `Patient/${patientId}` }).waitFor();
    // Times say what they are: the stream's when the hub accepted the event, the open context's the
    // opening event's own timestamp, with its date.
    const accepted = p.locator(`#stream li[data-event="Patient-open"] time`).first();
    await expect.poll(() => accepted.textContent(), POLL).toMatch(/^accepted \d\d:\d\d:\d\d\.\d{3}$/);
    const openedLine = p.locator("#contexts li.ctx.current .opened");
    await expect.poll(() => openedLine.textContent(), POLL).toMatch(/^opened by Patient-open, event timestamp \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$/);
    await expect.poll(() => openedLine.locator("time").getAttribute("datetime"), POLL).toBe(first.body.timestamp);

    // The event's JSON on demand.
    const item = p.locator(`#stream li[data-event="Patient-open"]`).first();
    await item.locator("summary").click();
    // The JSON is written by the page's `toggle` listener, which fires after the click returns.
    await expect.poll(() => item.locator("pre.json").textContent(), POLL).toContain(first.body.id);

    // Reporter refuses from now on: the next Patient-open gets 409 from it, and the hub's SyncError
    // reaches Viewer (a SyncError subscriber), the inspector's stream and the subscribers table.
    await app(p, "Reporter").getByLabel("Answer events with").selectOption("409");
    const second = await publishFromTemplate(p, "Patient-open");
    expect(second.answer).toMatch(/^Hub answered 202/);
    await app(p, "Reporter").locator("li.frame[data-direction=out]", { hasText: "ack 409" }).first().waitFor();
    await p.locator(`#stream li[data-event="SyncError"]`).first().waitFor();
    await app(p, "Viewer").locator(`li.frame[data-direction=in][data-event="SyncError"]`).first().waitFor();
    const syncItem = p.locator(`#stream li[data-event="SyncError"]`).first();
    await syncItem.locator("summary").click();
    await syncItem.locator("pre.json", { hasText: second.body.id }).waitFor();
    await expect.poll(() => syncItem.locator("pre.json").textContent(), POLL).toContain("Reporter");
    const reporter = rows.filter({ has: p.locator("th", { hasText: "Reporter" }) });
    await reporter.locator("td.syncerror-cell", { hasText: "refused" }).waitFor();
    const viewer = rows.filter({ has: p.locator("th", { hasText: "Viewer" }) });
    await expect.poll(() => viewer.locator("td.syncerror-cell").textContent(), POLL).toBe("none");

    // The stream is newest first.
    const seqs = await p.locator("#stream li").evaluateAll((lis) => lis.map((li) => Number((li as any).dataset.seq)));
    expect(seqs).toEqual([...seqs].sort((a, b) => b - a));
    expect(seqs.length).toBeGreaterThanOrEqual(3);

    // Content sharing from templates: DiagnosticReport-open, then an update carrying its current versionId.
    await app(p, "Reporter").getByLabel("Answer events with").selectOption("200");
    const opened = await publishFromTemplate(p, "DiagnosticReport-open");
    expect(opened.answer).toMatch(/^Hub answered 202/);
    const reportId = opened.body.event.context[0].resource.id as string;
    await p.locator("#contexts li.ctx.current", { hasText: `DiagnosticReport/${reportId}` }).waitFor();
    const version = (await p.locator("#contexts li.ctx.current .version").textContent())!.replace("versionId ", "");
    const update = await publishFromTemplate(p, "DiagnosticReport-update");
    expect(update.body.event["context.versionId"]).toBe(version);
    expect(update.answer).toMatch(/^Hub answered 202/);
    await p.locator("#contexts li.ctx.current .version", { hasNotText: version }).waitFor();
    await p.locator("#contexts li.ctx", { hasText: `Patient/${second.body.event.context[0].resource.id}` }).waitFor();

    // Every catalog event has a template the page can build.
    const names = await p.locator("#pub-event option").evaluateAll((os) => os.map((o) => (o as any).value));
    expect(names).toEqual(expect.arrayContaining(["Patient-open", "Patient-close", "DiagnosticReport-update", "DiagnosticReport-select", "SyncError", "UserLogout", "Home-open"]));

    // ... and each template passes the hub's own validation (the client's checkEvent), with no open
    // context and with this topic's open contexts. Run in the page, on the page's own modules.
    const invalid = await p.evaluate(`(async () => {
      const lib = await import("/fhircast-client.js");
      const { template } = await import("/inspector/templates.js");
      const topic = ${JSON.stringify(topic)};
      const token = document.querySelector("#token").value;
      const res = await fetch("/api/inspect/" + encodeURIComponent(topic), { headers: { Authorization: "Bearer " + token } });
      const view = await res.json();
      const catalog = new lib.EventCatalog();
      const bad = [];
      for (const v of [null, view]) for (const e of catalog.events) {
        try { lib.checkEvent(template(lib, catalog, topic, e.name, v), catalog); }
        catch (err) { bad.push(e.name + ": " + err.message); }
      }
      return { bad, checked: catalog.events.length };
    })()`);
    expect(invalid).toMatchObject({ bad: [] });
    expect((invalid as { checked: number }).checked).toBe(names.length);

    // Keyboard: the focus ring is visible on a button reached with Tab.
    await p.getByRole("button", { name: "Refresh" }).focus();
    await p.keyboard.press("Tab");
    const outline = await p.evaluate(() => getComputedStyle(document.activeElement!).outlineStyle);
    expect(outline).not.toBe("none");

    // A third app, Dictation, for Patient-close only and set to give no answer at all.
    await p.locator(".events-chooser > summary").click();
    await p.getByRole("button", { name: "None", exact: true }).click();
    await p.getByLabel("Patient-close", { exact: true }).check();
    await p.locator(".events-chooser > summary").click();
    await p.locator("#app-answer").selectOption("none");
    await connectApp(p, "Dictation");
    await expect.poll(() => p.locator("#app-status").textContent(), POLL).toBe("Dictation is connected.");
    await expect.poll(() => p.locator("#apps-count").textContent(), POLL).toBe("(3; scroll the cards for more)");

    // Scroll the stream to the top, then a laptop-size screenshot to look at.
    await p.evaluate(() => window.scrollTo(0, 0));
    // With three apps connected the Publish box is still in view at 1366×768 ...
    for (const sel of ["#publish-title", "#pub-send"]) {
      const box = (await p.locator(sel).boundingBox())!;
      expect(box.y + box.height, sel).toBeLessThanOrEqual(768);
    }
    // ... and the Open-contexts box shows every context whole (three here), none cut mid-row.
    const ctxBox = await p.locator("#contexts").evaluate((ol: any) => {
      const bottom = ol.getBoundingClientRect().bottom;
      return { n: ol.children.length, cut: [...ol.children].filter((li: any) => li.getBoundingClientRect().bottom > bottom + 0.5).length, scrolls: ol.scrollHeight > ol.clientHeight + 1 };
    });
    expect(ctxBox).toEqual({ n: 3, cut: 0, scrolls: false });
    await mkdir(ARTIFACTS, { recursive: true });
    await p.screenshot({ path: join(ARTIFACTS, "inspector-1366x768.png"), timeout: WAIT_MS });
    await p.screenshot({ path: join(ARTIFACTS, "inspector-full.png"), fullPage: true, timeout: WAIT_MS });

    // Apps that do not answer at all (Viewer from now on, Dictation from the start): their
    // acknowledgements are not sent, the hub times them out (ACK_TIMEOUT_SECONDS=2), raises a
    // SyncError about each and ends their subscriptions (a denial on their sockets).
    await app(p, "Viewer").getByLabel("Answer events with").selectOption("none");
    const close = await publishFromTemplate(p, "Patient-close");
    expect(close.answer).toMatch(/^Hub answered 202/);
    for (const name of ["Viewer", "Dictation"]) {
      const held = app(p, name).locator("li.frame[data-direction=held]").first();
      await held.waitFor();
      await expect.poll(() => held.textContent(), POLL).toContain("no acknowledgement sent");
      expect(await held.textContent()).not.toMatch(/\back\b|200/);
      await p.locator(`#stream li[data-event="SyncError"]`, { hasText: `${name} did not acknowledge` }).waitFor();
      await app(p, name).locator(".app-state", { hasText: "denied" }).waitFor();
      await app(p, name).getByRole("button", { name: "Remove" }).waitFor();
    }
    await app(p, "Reporter").locator(`li.frame[data-direction=in][data-event="SyncError"]`).first().waitFor();
    // The status line no longer says the last app connected is connected.
    await expect.poll(() => p.locator("#app-status").textContent(), POLL).toMatch(/^(Viewer|Dictation): denied/);
    await p.waitForFunction(() => document.querySelectorAll("#subscribers tbody tr[data-sub]:not([data-ended])").length === 1, undefined, { timeout: WAIT_MS });
    // The denied apps keep their rows, marked ended, with the timeout under Last SyncError.
    for (const name of ["Viewer", "Dictation"]) {
      const ended = p.locator("#subscribers tbody tr[data-ended]", { has: p.locator("th", { hasText: name }) });
      await expect.poll(() => ended.locator("td").nth(1).textContent(), POLL).toMatch(/^ended by the hub after a SyncError/);
      await expect.poll(() => ended.locator("td.syncerror-cell").textContent(), POLL).toMatch(/^did not acknowledge the event within 2 s \(Patient-close\) at \d\d:/);
    }
    await p.evaluate(() => window.scrollTo(0, 0));
    await p.screenshot({ path: join(ARTIFACTS, "inspector-after-timeout.png"), timeout: WAIT_MS });

    // Disconnect unsubscribes and closes normally: no SyncError, no active subscriber left, and
    // Reporter's row stays, ended, with the refusal it had.
    const syncErrors = await p.locator(`#stream li[data-event="SyncError"]`).count();
    await app(p, "Reporter").getByRole("button", { name: "Disconnect" }).click();
    await app(p, "Reporter").locator(".app-state", { hasText: "closed (1000" }).waitFor();
    await expect.poll(() => p.locator("#subs-count").textContent(), POLL).toBe("(0 active, 3 ended)");
    const reporterEnded = p.locator("#subscribers tbody tr[data-ended]", { has: p.locator("th", { hasText: "Reporter" }) });
    await expect.poll(() => reporterEnded.locator("td").nth(1).textContent(), POLL).toMatch(/^ended: unsubscribed/);
    await expect.poll(() => reporterEnded.locator("td.syncerror-cell").textContent(), POLL).toMatch(/^refused at/);
    expect(await p.locator(`#stream li[data-event="SyncError"]`).count()).toBe(syncErrors);

    console.log(`inspector flow took ${Date.now() - started} ms`);
    expect(consoleErrors).toEqual([]);
  });

  // Last: it stops and restarts the server.
  it("says when the hub is down, recovers without noise, and on a hub without the development issuer explains a missing token", async () => {
    const p = page!;
    consoleErrors.splice(0);
    const topic = uniqueTopic("inspector-down");
    await p.goto(`${server!.origin}/inspector/?topic=${encodeURIComponent(topic)}`);
    await p.locator("#live-state", { hasText: /^live$/ }).waitFor();
    await connectApp(p, "Survivor");
    const active = p.locator("#subscribers tbody tr[data-sub]:not([data-ended])", { has: p.locator("th", { hasText: "Survivor" }) });
    await expect.poll(() => active.locator("td").nth(1).textContent(), POLL).toBe("connected");

    // The hub goes down: the page says so, and the table stops saying "connected".
    const port = server!.port;
    await server!.stop();
    server = undefined;
    await p.locator("#hub-down", { hasText: "The hub is not answering" }).waitFor();
    await expect.poll(() => active.locator("td").nth(1).textContent(), POLL).toBe("unknown: hub not answering");
    await expect.poll(() => p.locator("#live-state").textContent(), POLL).toMatch(/^disconnected/);
    await app(p, "Survivor").locator(".app-state", { hasText: "re-subscribing" }).waitFor();
    // Attempts fail while it is down: one note, updated, not a raw "Failed to fetch" per attempt.
    const retry = app(p, "Survivor").locator("li.frame.note[data-retry]");
    await retry.filter({ hasText: /attempt [2-9]/ }).waitFor();
    await expect.poll(() => retry.textContent(), POLL).toContain("the hub is not answering");
    await p.evaluate(() => window.scrollTo(0, 0));
    await p.screenshot({ path: join(ARTIFACTS, "inspector-hub-down.png"), timeout: WAIT_MS });

    server = await HubServer.start({ persistTo: dir, port, vars: VARS });
    await p.locator("#live-state", { hasText: /^live$/ }).waitFor();
    await expect.poll(() => p.locator("#hub-down").isHidden(), POLL).toBe(true);
    await app(p, "Survivor").locator(".app-state", { hasText: /^connected$/ }).waitFor();
    await expect.poll(() => retry.textContent(), POLL).toMatch(/^note ?re-subscribed after \d+ attempts?, \d+ s without the hub$/);
    const notes = await app(p, "Survivor").locator("li.frame.note").allTextContents();
    expect(notes.filter((n) => /fetch/i.test(n))).toEqual([]);
    expect(notes.filter((n) => /re-subscrib/.test(n))).toHaveLength(1);
    await p.waitForFunction(
      () => [...document.querySelectorAll("#subscribers tbody tr[data-sub]:not([data-ended])")].some(
        (r) => r.querySelector("th")?.textContent === "Survivor" && r.querySelectorAll("td")[1]?.textContent === "connected",
      ),
      undefined,
      { timeout: WAIT_MS },
    );
    await p.evaluate(() => window.scrollTo(0, 0));
    await p.screenshot({ path: join(ARTIFACTS, "inspector-after-restart.png"), timeout: WAIT_MS });

    // A hub without the development issuer (SMART_VARS, started in beforeAll): a shared link opens
    // without a token, the hub refuses it, and the page says what to paste.
    await server.stop();
    server = await smart!;
    smart = undefined;
    await p.goto(`${server.origin}/inspector/?topic=${encodeURIComponent(topic)}`);
    const status = p.locator("#access-status");
    await status.filter({ hasText: "Refused: the token is missing, invalid or expired (missing bearer token" }).waitFor();
    await expect.poll(() => status.textContent(), POLL).toContain("development issuer is off");
    await expect.poll(() => status.textContent(), POLL).toContain("fhircast-hub/inspect");
    await expect.poll(() => p.locator("#live-state").textContent(), POLL).toBe("not connected");
    await expect.poll(() => p.locator("#token").inputValue(), POLL).toBe("");
    await p.screenshot({ path: join(ARTIFACTS, "inspector-missing-token.png"), timeout: WAIT_MS });
  }, 180_000);
});