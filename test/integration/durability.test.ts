// State and durability (issue 2): the topic object keeps subscriptions, open contexts and the current
// anchor in SQLite and its WebSockets use the hibernation API, so everything survives eviction;
// topics with no subscribers and no activity for TOPIC_IDLE_SECONDS are deleted by the alarm.
import { evictDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import {
  asDistributedOpen, connect, currentContext, expectText, patientClose, fireDeadlines, hubFetch, patientOpen, publish, reportOpen, subscribe, subscribeForm,
  subscriber, topicSql, topicStub, unsubscribe, uniqueTopic,
} from "../helpers/hub";

const EMPTY = { "context.type": "", context: [] };

describe("eviction (hibernation): state and sockets survive", () => {
  it("after eviction the current context is unchanged and the hibernated WebSocket still receives the next published event", async () => {
    const topic = uniqueTopic("dur");
    const { client } = await subscriber(topic, "Patient-open,DiagnosticReport-open");
    const p1 = patientOpen(topic, "p1");
    expect((await publish(p1)).status).toBe(202);
    await client.frame(1);
    const before = await currentContext(topic);
    expect(before["context.type"]).toBe("Patient");

    await evictDurableObject(topicStub(topic));
    expect(await currentContext(topic)).toStrictEqual(before);

    await evictDurableObject(topicStub(topic));
    const r1 = reportOpen(topic, "r1", "p1");
    expect((await publish(r1)).status).toBe(202);
    expect(await client.frame(2)).toEqual(asDistributedOpen(r1));
    expect(client.closed).toBeUndefined();
    client.close();
  });

  it("after eviction a connected subscription still has its events (filtering) and can be unsubscribed: denial then close 1000", async () => {
    const topic = uniqueTopic("dur");
    const { endpoint, client } = await subscriber(topic, "Patient-open");
    await evictDurableObject(topicStub(topic));
    expect((await publish(patientClose(topic, "p0"))).status).toBe(202); // not subscribed: not delivered
    const p = patientOpen(topic, "p2");
    expect((await publish(p)).status).toBe(202);
    expect((await client.frame(1)).id).toBe(p.id);
    await client.quiet(2);

    await evictDurableObject(topicStub(topic));
    const res = await unsubscribe(topic, endpoint);
    expect(res.status).toBe(202);
    expect(await client.frame(2)).toEqual({ "hub.mode": "denied", "hub.topic": topic, "hub.events": "Patient-open", "hub.reason": expect.any(String) });
    expect((await client.waitClose()).code).toBe(1000);
  });

  it("after eviction a re-subscribe reaches the hibernated socket (new confirmation) and changes its events", async () => {
    const topic = uniqueTopic("dur");
    const { endpoint, client } = await subscriber(topic, "Patient-open");
    await evictDurableObject(topicStub(topic));
    const res = await hubFetch("/api/hub", subscribeForm(topic, "DiagnosticReport-open", { "hub.channel.endpoint": endpoint }));
    expect(res.status).toBe(202);
    expect(await client.frame(1)).toEqual({ "hub.mode": "subscribe", "hub.topic": topic, "hub.events": "DiagnosticReport-open", "hub.lease_seconds": 3600 });
    await evictDurableObject(topicStub(topic));
    expect((await publish(patientOpen(topic))).status).toBe(202);
    const r = reportOpen(topic);
    expect((await publish(r)).status).toBe(202);
    expect((await client.frame(2)).id).toBe(r.id);
    await client.quiet(3);
    client.close();
  });

  it("a subscription made before eviction can be connected after it, and gets the replay of context opened before eviction", async () => {
    const topic = uniqueTopic("dur");
    const p1 = patientOpen(topic, "p1");
    const watcher = await subscriber(topic, "Patient-open");
    expect((await publish(p1)).status).toBe(202);
    const live = await watcher.client.frame(1);
    const endpoint = await subscribe(topic, "Patient-open");
    await evictDurableObject(topicStub(topic));
    const client = await connect(endpoint);
    expect(await client.frame(0)).toEqual({ "hub.mode": "subscribe", "hub.topic": topic, "hub.events": "Patient-open", "hub.lease_seconds": 3600 });
    expect(await client.frame(1)).toEqual(live);
    client.close();
    watcher.client.close();
  });

  it("the lease deadline survives eviction: the alarm still expires a 1-second lease with denial and close", async () => {
    const topic = uniqueTopic("dur");
    const { client } = await subscriber(topic, "Patient-open", { "hub.lease_seconds": "1" });
    await evictDurableObject(topicStub(topic));
    expect(await client.frame(1, 8000)).toMatchObject({ "hub.mode": "denied", "hub.reason": expect.stringMatching(/expire/i) });
    expect((await client.waitClose(5000)).code).toBe(1000);
  });
});

describe("restart (sockets lost, state kept)", () => {
  it("when the object goes away with its sockets closed, the state survives, the dead subscription is gone, and a new subscription gets the replay", async () => {
    const topic = uniqueTopic("dur");
    const { endpoint, client } = await subscriber(topic, "Patient-open");
    const p1 = patientOpen(topic, "p1");
    expect((await publish(p1)).status).toBe(202);
    const live = await client.frame(1);
    const before = await currentContext(topic);
    await evictDurableObject(topicStub(topic), { webSockets: "close" });
    await client.waitClose();
    expect(await currentContext(topic)).toStrictEqual(before);
    // The subscription whose socket died is over: its endpoint is unknown now.
    await expectText(await unsubscribe(topic, endpoint), 404);
    const again = await subscriber(topic, "Patient-open", {}, 1);
    expect(await again.client.frame(1)).toEqual(live);
    again.client.close();
  });
});

describe("storage", () => {
  it("reading the current context of an unknown topic creates no storage for it", async () => {
    const topic = uniqueTopic("dur");
    expect(await currentContext(topic)).toStrictEqual(EMPTY);
    expect(await topicSql(topic, `SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'meta'`)).toEqual([]);
  });

  it("the first write creates the schema at its latest version (versioned migrations in the meta table)", async () => {
    const topic = uniqueTopic("dur");
    expect((await publish(patientOpen(topic))).status).toBe(202);
    const rows = await topicSql<{ value: string }>(topic, `SELECT value FROM meta WHERE key = 'schema_version'`);
    expect(rows).toHaveLength(1);
    expect(Number(rows[0]!.value)).toBeGreaterThanOrEqual(1);
    expect((await topicSql<{ value: string }>(topic, `SELECT value FROM meta WHERE key = 'topic'`))[0]?.value).toBe(topic);
  });
});

describe("schema upgrades", () => {
  it("an object created by schema version 1 is upgraded on wake: the event log keeps its rows and seqs and goes on from them", async () => {
    const topic = uniqueTopic("upgrade");
    expect((await publish(patientOpen(topic, "p1"))).status).toBe(202);
    expect((await publish(patientOpen(topic, "p2"))).status).toBe(202);
    // Put the storage back into the shape version 1 gave it.
    for (const statement of [
      `CREATE TABLE events_old AS SELECT * FROM events`,
      `DROP TABLE events`,
      `CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, name TEXT NOT NULL, accepted_at INTEGER NOT NULL, body TEXT NOT NULL)`,
      `CREATE INDEX events_id ON events (id)`,
      `INSERT INTO events SELECT * FROM events_old`,
      `DROP TABLE events_old`,
      `CREATE INDEX deadlines_due ON deadlines (due)`,
      `UPDATE meta SET value = '1' WHERE key = 'schema_version'`,
    ]) await topicSql(topic, statement);
    const before = await topicSql<{ seq: number; id: string; body: string }>(topic, `SELECT seq, id, body FROM events ORDER BY seq`);
    expect(before.map((r) => r.seq)).toEqual([1, 2]);

    await evictDurableObject(topicStub(topic));
    expect((await currentContext(topic))["context.type"]).toBe("Patient");
    expect((await topicSql<{ value: string }>(topic, `SELECT value FROM meta WHERE key = 'schema_version'`))[0]?.value).toBe("2");
    const events = (await topicSql<{ sql: string }>(topic, `SELECT sql FROM sqlite_master WHERE name = 'events'`))[0]!.sql;
    expect(events).not.toContain("AUTOINCREMENT");
    expect(await topicSql(topic, `SELECT name FROM sqlite_master WHERE name IN ('events_id', 'deadlines_due', 'events_v2')`)).toEqual([]);
    expect(await topicSql(topic, `SELECT seq, id, body FROM events ORDER BY seq`)).toEqual(before);
    const p3 = patientOpen(topic, "p3");
    expect((await publish(p3)).status).toBe(202);
    expect(await topicSql(topic, `SELECT seq FROM events WHERE id = ?`, p3.id)).toEqual([{ seq: 3 }]);
  });
});

describe("idle topics are deleted (TOPIC_IDLE_SECONDS)", () => {
  /** Pretends the topic has been quiet for longer than the idle time. */
  async function makeQuiet(topic: string) {
    await topicSql(topic, `UPDATE meta SET value = '0' WHERE key = 'last_activity'`);
    await topicSql(topic, `UPDATE events SET accepted_at = 0`);
  }

  it("a topic with no subscribers and no activity for the idle time is deleted by the alarm; it starts afresh afterwards", async () => {
    const topic = uniqueTopic("idle");
    expect((await publish(patientOpen(topic, "p1"))).status).toBe(202);
    expect((await currentContext(topic))["context.type"]).toBe("Patient");
    await makeQuiet(topic);
    expect(await fireDeadlines(topic, "idle")).toBe(true);
    expect(await currentContext(topic)).toStrictEqual(EMPTY);
    const tables = await topicSql<{ name: string }>(topic, `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_cf%' ESCAPE '\\' AND name NOT LIKE 'sqlite%'`);
    expect(tables).toEqual([]);
    // The topic can be used again.
    const { client } = await subscriber(topic, "Patient-open");
    const p2 = patientOpen(topic, "p2");
    expect((await publish(p2)).status).toBe(202);
    expect((await client.frame(1)).id).toBe(p2.id);
    expect((await currentContext(topic))["context.type"]).toBe("Patient");
    client.close();
  });

  it("a topic with a connected subscriber is not deleted when its idle deadline passes", async () => {
    const topic = uniqueTopic("idle");
    const { client } = await subscriber(topic, "Patient-open");
    expect((await publish(patientOpen(topic, "p1"))).status).toBe(202);
    await client.frame(1);
    await makeQuiet(topic);
    expect(await fireDeadlines(topic, "idle")).toBe(true);
    expect((await currentContext(topic))["context.type"]).toBe("Patient");
    const p2 = patientOpen(topic, "p2");
    expect((await publish(p2)).status).toBe(202);
    expect((await client.frame(2)).id).toBe(p2.id);
    client.close();
  });

  it("a topic with recent activity is not deleted when an idle deadline fires early", async () => {
    const topic = uniqueTopic("idle");
    expect((await publish(patientOpen(topic, "p1"))).status).toBe(202);
    expect(await fireDeadlines(topic, "idle")).toBe(true);
    expect((await currentContext(topic))["context.type"]).toBe("Patient");
  });
});
