/**
 * Reading the deployment files as data: every YAML document under k8s/, the kustomizations that
 * tie them together, and lookups by kind and name. Pure reads of the real files in the repository.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseAllDocuments } from 'yaml';

export const REPO_ROOT = join(__dirname, '..', '..', '..');
export const K8S_ROOT = join(REPO_ROOT, 'k8s');

export type KubeObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
};

export interface ManifestDocument {
  /** Repository-relative path and the document's index inside the file. */
  readonly source: string;
  readonly object: KubeObject;
}

const KUSTOMIZE_KINDS = new Set(['Kustomization', 'Component']);

export function isKustomization(object: KubeObject): boolean {
  return KUSTOMIZE_KINDS.has(object.kind);
}

/** Every .yaml file below a folder, sorted, so failures name files in a stable order. */
export function yamlFilesUnder(folder: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(folder).sort()) {
    const path = join(folder, entry);
    if (statSync(path).isDirectory()) found.push(...yamlFilesUnder(path));
    else if (/\.ya?ml$/.test(entry)) found.push(path);
  }
  return found;
}

/** Parses every document of a YAML stream; a syntax error or an empty document is a failure. */
export function parseYamlStream(text: string, source: string): ManifestDocument[] {
  return parseAllDocuments(text).map((document, index) => {
    if (document.errors.length > 0) throw new Error(`${source}#${index}: ${document.errors[0]?.message}`);
    const object = document.toJS() as KubeObject | null;
    if (object === null || typeof object !== 'object') throw new Error(`${source}#${index}: empty document`);
    return { source: `${source}#${index}`, object };
  });
}

export function loadManifestFile(path: string): ManifestDocument[] {
  return parseYamlStream(readFileSync(path, 'utf8'), relative(REPO_ROOT, path));
}

export function loadAllManifests(): ManifestDocument[] {
  return yamlFilesUnder(K8S_ROOT).flatMap(loadManifestFile);
}

export function findObject(documents: readonly ManifestDocument[], kind: string, name: string): KubeObject {
  const matches = documents.filter(
    (document) => document.object.kind === kind && document.object.metadata?.name === name,
  );
  if (matches.length !== 1) throw new Error(`expected one ${kind}/${name}, found ${matches.length}`);
  return matches[0]!.object;
}

/** Reads a path like "spec.template.spec" from an object; undefined if any step is missing. */
export function at<T = unknown>(object: unknown, path: string): T {
  let current: unknown = object;
  for (const step of path.split('.')) {
    if (current === null || typeof current !== 'object') return undefined as T;
    current = (current as Record<string, unknown>)[step];
  }
  return current as T;
}
