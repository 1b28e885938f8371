// The largest current context the settings allow is still readable (issue 20, finding 1): this project
// runs with MAX_CONTENT_BYTES_PER_ANCHOR and MAX_CONTENT_BYTES_PER_TOPIC at 11 MiB, so that with
// MAX_BODY_BYTES (1 MiB) they reach the 12 MiB guard in src/config.ts. Content holding a character
// beyond Latin-1 crosses RPC as UTF-16, twice its size: GET, the inspector and the replay still answer.
import { describe, expect, it } from "vitest";
import {
  contentUpdate, currentContext, expectOutcome, hubFetch, mintToken, observation, putEntry, reportOpen, subscriber, topicSql,
  uniqueTopic,
} from "../../helpers/hub";

const PER_ANCHOR = 11 * 1024 * 1024;

const version = async (topic: string) =>
  (await topicSql<{ version_id: string }>(topic, `SELECT version_id FROM contexts WHERE anchor = 'DiagnosticReport/r1'`))[0]!.version_id;

describe("content up to MAX_CONTENT_BYTES_PER_ANCHOR (11 MiB here), in UTF-16", () => {
  it("fills the anchor until 413; GET, the inspector and the replay answer 200 with everything accepted", async () => {
    const topic = uniqueTopic("utf16");
    // Publishes from several clients: the project's rate limiter allows 5 per minute per client.
    const tokens = await Promise.all(Array.from({ length: 4 }, (_, i) => mintToken({ client_id: `utf16-${i}-${crypto.randomUUID()}` })));
    let n = 0;
    const post = (body: unknown) =>
      hubFetch("/api/hub", { method: "POST", headers: { "Content-Type": "application/json", Authorization: `Bearer ${tokens[Math.floor(n++ / 5)]}` }, body: JSON.stringify(body) });
    expect((await post(reportOpen(topic))).status).toBe(202);
    let accepted = 0;
    let refused: Response | undefined;
    while (!refused) {
      const big = observation(`o${accepted}`, "p1", { note: [{ text: `€${"x".repeat(1_000_000)}` }] });
      const res = await post(contentUpdate(topic, "DiagnosticReport/r1", await version(topic), [putEntry(big)]));
      if (res.status === 202) accepted++;
      else refused = res;
    }
    await expectOutcome(refused, 413, "MAX_CONTENT_BYTES_PER_ANCHOR", String(PER_ANCHOR));
    expect(accepted).toBe(11);
    const context = await currentContext(topic);
    const content = (context.context as { key: string; resource?: { entry: unknown[] } }[]).find((e) => e.key === "content")!;
    expect(content.resource!.entry).toHaveLength(accepted);
    const inspector = await mintToken({ scope: "fhircast/*.read fhircast-hub/inspect", client_id: "inspector" });
    expect((await hubFetch(`/api/inspect/${topic}`, { headers: { Authorization: `Bearer ${inspector}` } })).status).toBe(200);
    const { client } = await subscriber(topic, "DiagnosticReport-open", {}, 1);
    client.close();
  }, 60_000);
});
