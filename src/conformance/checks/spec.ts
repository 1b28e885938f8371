// Pages of the FHIRcast 3.0.0 specification the checks cite (https://fhircast.hl7.org/STU3/<page>.html).
import type { SpecRef } from "../types.ts";

export const SPEC_BASE = "https://fhircast.hl7.org/STU3/";

export const TRANSPORT: SpecRef = { section: "2", page: "2_Specification" };
export const SCOPES: SpecRef = { section: "2.2", page: "2-2-FhircastScopes" };
export const EVENTS: SpecRef = { section: "2.3", page: "2-3-Events" };
export const SUBSCRIBING: SpecRef = { section: "2.4", page: "2-4-Subscribing" };
export const RECEIVE: SpecRef = { section: "2.5", page: "2-5-ReceiveEventNotification" };
export const SEND: SpecRef = { section: "2.6", page: "2-6-SendEventNotification" };
export const CONFORMANCE: SpecRef = { section: "2.7", page: "2-7-Conformance" };
export const GET_CONTEXT: SpecRef = { section: "2.9", page: "2-9-GetCurrentContext" };
export const CONTENT: SpecRef = { section: "2.10", page: "2-10-ContentSharing" };
export const SYNCERROR: SpecRef = { section: "3.2.1", page: "3-2-1-SyncError" };
export const MULTITAB: SpecRef = { section: "4.2.2", page: "4-2-2-multitab-considerations" };
export const SECURITY: SpecRef = { section: "4.3", page: "4-3-security-considerations" };
