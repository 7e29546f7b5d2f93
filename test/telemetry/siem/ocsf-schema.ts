/**
 * What OCSF 1.6.0 requires of the classes Gatehouse emits, written down from
 * the schema's own files (ocsf/ocsf-schema at tag 1.6.0: events/base_event.json,
 * events/<category>/<class>.json, objects/*.json, profiles/*.json), and a
 * checker that says what an event lacks. Kept by hand on purpose: the test
 * must fail when the mapping drifts from the schema, not follow it.
 */

/** base_event.json: `requirement: required`. */
export const BASE_REQUIRED = ['activity_id', 'category_uid', 'class_uid', 'metadata', 'severity_id', 'time', 'type_uid'] as const;

export interface ClassSpec {
  uid: number;
  category: number;
  /** Required attributes the class (or its category file) adds to the base. */
  required: string[];
  /** activity_id values the class defines (0 Unknown and 99 Other come from the base). */
  activities: number[];
  /** Every attribute the class has (base, category, class and the profiles the base includes). */
  attributes: string[];
}

const BASE_ATTRS = [
  'activity_id', 'activity_name', 'category_name', 'category_uid', 'class_name', 'class_uid', 'count', 'duration', 'end_time', 'enrichments', 'message',
  'metadata', 'observables', 'raw_data', 'raw_data_hash', 'raw_data_size', 'severity', 'severity_id', 'start_time', 'status', 'status_code', 'status_detail',
  'status_id', 'time', 'timezone_offset', 'type_name', 'type_uid', 'unmapped',
];
/** profiles/security_control.json */
export const SECURITY_CONTROL_ATTRS = [
  'action', 'action_id', 'attacks', 'authorizations', 'confidence', 'confidence_id', 'confidence_score', 'disposition', 'disposition_id', 'firewall_rule',
  'is_alert', 'malware', 'malware_scan_info', 'policy', 'risk_details', 'risk_level', 'risk_level_id', 'risk_score',
];
/** profiles/host.json */
export const HOST_ATTRS = ['actor', 'device'];

export const CLASSES: Record<string, ClassSpec> = {
  // events/application/api_activity.json (extends application → base_event)
  api_activity: {
    uid: 6003,
    category: 6,
    required: ['actor', 'api', 'src_endpoint'],
    activities: [1, 2, 3, 4],
    attributes: [...BASE_ATTRS, ...SECURITY_CONTROL_ATTRS, ...HOST_ATTRS, 'actor', 'api', 'dst_endpoint', 'http_request', 'http_response', 'resources', 'src_endpoint', 'trace'],
  },
  // events/application/application_lifecycle.json
  application_lifecycle: {
    uid: 6002,
    category: 6,
    required: ['app'],
    activities: [1, 2, 3, 4, 5, 6, 7, 8],
    attributes: [...BASE_ATTRS, ...SECURITY_CONTROL_ATTRS, ...HOST_ATTRS, 'app'],
  },
  // events/network/network_activity.json (extends network)
  network_activity: {
    uid: 4001,
    category: 4,
    required: [],
    activities: [1, 2, 3, 4, 5, 6, 7],
    attributes: [
      ...BASE_ATTRS, ...SECURITY_CONTROL_ATTRS, ...HOST_ATTRS,
      'app_name', 'connection_info', 'dst_endpoint', 'ja4_fingerprint_list', 'proxy', 'src_endpoint', 'tls', 'traffic', 'is_src_dst_assignment_known', 'url',
    ],
  },
  // events/iam/authentication.json (extends iam)
  authentication: {
    uid: 3002,
    category: 3,
    required: ['user'],
    activities: [1, 2, 3, 4, 5, 6, 7],
    attributes: [
      ...BASE_ATTRS, ...SECURITY_CONTROL_ATTRS, ...HOST_ATTRS,
      'actor', 'http_request', 'http_response', 'src_endpoint',
      'account_switch_type', 'account_switch_type_id', 'auth_factors', 'auth_protocol', 'auth_protocol_id', 'authentication_token', 'certificate', 'dst_endpoint',
      'is_cleartext', 'is_mfa', 'is_new_logon', 'is_remote', 'logon_process', 'logon_type', 'logon_type_id', 'service', 'session', 'status_detail', 'user',
    ],
  },
  // events/findings/detection_finding.json (extends finding)
  detection_finding: {
    uid: 2004,
    category: 2,
    required: ['finding_info'],
    activities: [1, 2, 3],
    attributes: [
      ...BASE_ATTRS, ...SECURITY_CONTROL_ATTRS, ...HOST_ATTRS,
      'comment', 'confidence', 'confidence_id', 'confidence_score', 'device', 'finding_info', 'vendor_attributes',
      'anomaly_analyses', 'evidences', 'impact', 'impact_id', 'impact_score', 'is_alert', 'malware', 'malware_scan_info', 'remediation', 'resources',
      'risk_details', 'risk_level', 'risk_level_id', 'risk_score', 'vulnerabilities',
    ],
  },
};

/** Objects' required attributes (`requirement: required`) and `constraints.at_least_one`, objects/*.json. */
const OBJECT_REQUIRED: Record<string, string[]> = {
  metadata: ['product', 'version'],
  api: ['operation'],
  request: ['uid'],
  finding_info: ['uid'],
  network_connection_info: ['direction_id'],
};
const AT_LEAST_ONE: Record<string, string[]> = {
  actor: ['process', 'user', 'invoked_by', 'session', 'app_name', 'app_uid'],
  user: ['account', 'name', 'uid'],
  network_endpoint: ['ip', 'uid', 'name', 'hostname', 'svc_name', 'instance_uid', 'interface_uid', 'interface_name', 'domain'],
  policy: ['name', 'type', 'uid'],
  /** _entity: product, service, resource_details, … */
  entity: ['name', 'uid'],
  url: ['url_string', 'path'],
  evidences: ['actor', 'api', 'connection_info', 'data', 'database', 'databucket', 'device', 'dst_endpoint', 'email', 'file', 'process', 'query', 'resources', 'src_endpoint', 'url', 'user', 'job', 'script'],
};

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);
const present = (o: Obj, k: string) => o[k] !== undefined && o[k] !== null && o[k] !== '';

function object(problems: string[], where: string, v: unknown, required: string[] = [], atLeastOne: string[] = []): void {
  if (!isObj(v)) return void problems.push(`${where}: not an object`);
  for (const k of required) if (!present(v, k)) problems.push(`${where}.${k}: required`);
  if (atLeastOne.length > 0 && !atLeastOne.some((k) => present(v, k))) problems.push(`${where}: needs one of ${atLeastOne.join(', ')}`);
}

/** What `e` lacks against OCSF 1.6.0 for `cls` (empty: valid). */
export function ocsfProblems(e: Obj, cls: string): string[] {
  const spec = CLASSES[cls];
  if (spec === undefined) return [`unknown class ${cls}`];
  const p: string[] = [];
  for (const k of [...BASE_REQUIRED, ...spec.required]) if (!present(e, k)) p.push(`${k}: required`);
  for (const k of Object.keys(e)) if (!spec.attributes.includes(k)) p.push(`${k}: not an attribute of class ${spec.uid}`);
  if (e.class_uid !== spec.uid) p.push(`class_uid ${String(e.class_uid)} != ${spec.uid}`);
  if (e.category_uid !== spec.category) p.push(`category_uid ${String(e.category_uid)} != ${spec.category}`);
  const activity = e.activity_id as number;
  if (![0, 99, ...spec.activities].includes(activity)) p.push(`activity_id ${activity} not defined by class ${spec.uid}`);
  if (e.type_uid !== spec.uid * 100 + activity) p.push(`type_uid ${String(e.type_uid)} != class_uid * 100 + activity_id`);
  if (!Number.isInteger(e.time)) p.push('time: not epoch milliseconds');
  if (![0, 1, 2, 3, 4, 5, 6, 99].includes(e.severity_id as number)) p.push(`severity_id ${String(e.severity_id)} undefined`);
  object(p, 'metadata', e.metadata, OBJECT_REQUIRED.metadata);
  if (isObj(e.metadata)) object(p, 'metadata.product', e.metadata.product, [], AT_LEAST_ONE.entity);
  const profiles = isObj(e.metadata) && Array.isArray(e.metadata.profiles) ? (e.metadata.profiles as string[]) : [];
  // A profile's attributes count only when the event says it applies the profile (metadata.profiles).
  const ownSecurity = cls === 'detection_finding' ? ['is_alert', 'confidence', 'confidence_id', 'confidence_score', 'malware', 'malware_scan_info', 'risk_details', 'risk_level', 'risk_level_id', 'risk_score'] : [];
  const ownActor = cls === 'api_activity' || cls === 'authentication';
  for (const k of Object.keys(e)) {
    if (SECURITY_CONTROL_ATTRS.includes(k) && !ownSecurity.includes(k) && !profiles.includes('security_control')) p.push(`${k}: security_control attribute without metadata.profiles "security_control"`);
    if (HOST_ATTRS.includes(k) && !(k === 'actor' && ownActor) && !profiles.includes('host')) p.push(`${k}: host-profile attribute without metadata.profiles "host"`);
  }
  if (e.actor !== undefined) {
    object(p, 'actor', e.actor, [], AT_LEAST_ONE.actor);
    if (isObj(e.actor) && e.actor.user !== undefined) object(p, 'actor.user', e.actor.user, [], AT_LEAST_ONE.user);
  }
  if (e.user !== undefined) object(p, 'user', e.user, [], AT_LEAST_ONE.user);
  for (const k of ['src_endpoint', 'dst_endpoint']) if (e[k] !== undefined) object(p, k, e[k], [], AT_LEAST_ONE.network_endpoint);
  if (e.api !== undefined) {
    object(p, 'api', e.api, OBJECT_REQUIRED.api);
    const api = e.api as Obj;
    if (api.request !== undefined) object(p, 'api.request', api.request, OBJECT_REQUIRED.request);
    if (api.service !== undefined) object(p, 'api.service', api.service, [], AT_LEAST_ONE.entity);
  }
  if (e.policy !== undefined) object(p, 'policy', e.policy, [], AT_LEAST_ONE.policy);
  if (e.finding_info !== undefined) object(p, 'finding_info', e.finding_info, OBJECT_REQUIRED.finding_info);
  if (e.connection_info !== undefined) object(p, 'connection_info', e.connection_info, OBJECT_REQUIRED.network_connection_info);
  if (e.url !== undefined) object(p, 'url', e.url, [], AT_LEAST_ONE.url);
  if (e.app !== undefined) object(p, 'app', e.app, [], AT_LEAST_ONE.entity);
  if (e.service !== undefined) object(p, 'service', e.service, [], AT_LEAST_ONE.entity);
  for (const [k, list] of [['resources', AT_LEAST_ONE.entity], ['evidences', AT_LEAST_ONE.evidences]] as const) {
    if (e[k] === undefined) continue;
    if (!Array.isArray(e[k]) || (e[k] as unknown[]).length === 0) p.push(`${k}: not a non-empty array`);
    else (e[k] as unknown[]).forEach((x, i) => object(p, `${k}[${i}]`, x, [], list));
  }
  return p;
}
