/**
 * Loads Kubernetes objects exactly as `kubectl get
 * nodes,daemonsets,deployments,controllerrevisions,replicasets -A -o yaml`
 * prints them: a `kind: List` (or `NodeList`, …) with `items`, multi-document
 * YAML, or a single object. Kinds nodewarden does not simulate are skipped.
 * A malformed file is rejected whole, with every problem and where it is.
 */
import { readFile } from 'node:fs/promises';
import { PoisonInputError, errorMessage, type ErrorCode, type InputProblem } from '../../core/errors.js';
import { CLUSTER_DUMP_MAX_BYTES, parseYamlDocuments } from '../../core/yaml.js';
import { isRecord, type KubeObject } from '../kube/wire.js';

export const SIMULATED_KINDS = ['Node', 'DaemonSet', 'Deployment', 'ControllerRevision', 'ReplicaSet'] as const;

function checkObject(o: Record<string, unknown>, path: string, problems: InputProblem[]): KubeObject | undefined {
  const kind = o.kind;
  if (typeof kind !== 'string') {
    problems.push({ path: `${path}/kind`, message: 'missing kind' });
    return undefined;
  }
  if (!(SIMULATED_KINDS as readonly string[]).includes(kind)) return undefined;
  const meta = o.metadata;
  if (!isRecord(meta) || typeof meta.name !== 'string' || meta.name === '') {
    problems.push({ path: `${path}/metadata/name`, message: `${kind} without metadata.name` });
    return undefined;
  }
  if (kind !== 'Node' && meta.namespace !== undefined && typeof meta.namespace !== 'string') {
    problems.push({ path: `${path}/metadata/namespace`, message: 'namespace must be a string' });
  }
  if (kind === 'ControllerRevision' && !Number.isInteger(o.revision)) {
    problems.push({ path: `${path}/revision`, message: 'ControllerRevision.revision must be an integer' });
  }
  if (kind === 'Node' && o.spec !== undefined && !isRecord(o.spec)) {
    problems.push({ path: `${path}/spec`, message: 'Node.spec must be a map' });
  }
  return o;
}

function collect(doc: unknown, path: string, out: KubeObject[], problems: InputProblem[]): void {
  if (doc === null || doc === undefined) return; // empty document (e.g. a trailing ---)
  if (!isRecord(doc)) {
    problems.push({ path: path || '/', message: 'expected a Kubernetes object or a List' });
    return;
  }
  const kind = doc.kind;
  if (typeof kind === 'string' && kind.endsWith('List') && 'items' in doc) {
    if (!Array.isArray(doc.items)) {
      problems.push({ path: `${path}/items`, message: 'items must be a list' });
      return;
    }
    // API-style lists (NodeList) omit kind on items; kubectl's List keeps it.
    const itemKind = kind === 'List' ? undefined : kind.slice(0, -'List'.length);
    doc.items.forEach((item, i) => {
      if (isRecord(item) && item.kind === undefined && itemKind !== undefined) item.kind = itemKind;
      collect(item, `${path}/items/${i}`, out, problems);
    });
    return;
  }
  const o = checkObject(doc, path, problems);
  if (o) out.push(o);
}

/**
 * Parses the text of a kubectl dump; `source` names it in errors. The one
 * parser of a dump: the simulated cluster and the rule tests' stand-in
 * (rules/replay/standin.ts) both read through it; `code` is the error code a
 * bad dump is reported under (a config file by default, a request input for
 * the rule tests).
 */
export function parseClusterYaml(text: string, source?: string, code: ErrorCode = 'CONFIG_INVALID'): KubeObject[] {
  const problems: InputProblem[] = [];
  const out: KubeObject[] = [];
  const docs = parseYamlDocuments(text, problems, { maxBytes: CLUSTER_DUMP_MAX_BYTES, maxAliasCount: 1000 });
  docs.forEach((js, i) => collect(js, docs.length > 1 ? `/${i}` : '', out, problems));
  if (problems.length > 0) throw new PoisonInputError(code, source, problems);
  return out;
}

export async function loadClusterFile(path: string): Promise<KubeObject[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new PoisonInputError('CONFIG_INVALID', path, [{ path: '/', message: `cannot read: ${errorMessage(err)}` }], err);
  }
  return parseClusterYaml(text, path);
}
