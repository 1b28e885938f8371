// Every check of the kit, grouped by section in report order.
import type { Check } from "../types.ts";
import { contentChecks } from "./content.ts";
import { currentContextChecks } from "./current-context.ts";
import { discoveryChecks } from "./discovery.ts";
import { leaseChecks } from "./lease.ts";
import { multitabChecks } from "./multitab.ts";
import { notificationChecks } from "./notification.ts";
import { publishChecks } from "./publish.ts";
import { replayChecks } from "./replay.ts";
import { securityChecks } from "./security.ts";
import { subscribingChecks } from "./subscribing.ts";
import { syncErrorChecks } from "./syncerror.ts";
import { unsubscribeChecks } from "./unsubscribe.ts";

export const ALL_CHECKS: readonly Check[] = [
  ...discoveryChecks,
  ...subscribingChecks,
  ...replayChecks,
  ...unsubscribeChecks,
  ...leaseChecks,
  ...publishChecks,
  ...notificationChecks,
  ...currentContextChecks,
  ...multitabChecks,
  ...contentChecks,
  ...syncErrorChecks,
  ...securityChecks,
];
