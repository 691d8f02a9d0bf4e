/**
 * Rendering a kustomization the way `kubectl apply -k` will: with kubectl's built-in kustomize,
 * offline (no cluster is contacted). Where kubectl is missing the render tests are skipped and
 * say so; every file a kustomization lists is still validated on its own.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { K8S_ROOT, parseYamlStream, type ManifestDocument } from './manifests';
import { toolAvailable } from '../../support/external-tools';

export const kubectlAvailable: boolean = toolAvailable('kubectl', 'k8s-manifests: rendering the kustomizations');

/** `kubectl kustomize k8s/<folder>`, parsed. Throws with kustomize's own message on failure. */
export function renderKustomization(folderUnderK8s: string): ManifestDocument[] {
  const output = execFileSync('kubectl', ['kustomize', join(K8S_ROOT, folderUnderK8s)], {
    encoding: 'utf8',
    timeout: 60_000,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return parseYamlStream(output, `kustomize(${folderUnderK8s})`);
}
