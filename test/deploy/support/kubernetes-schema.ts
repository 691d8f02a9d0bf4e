/**
 * Checks manifests against the Kubernetes API schemas, two ways:
 * - kubernetes-models (4.x, which still ships CommonJS) validates each object with the JSON schema
 *   generated from the Kubernetes OpenAPI document: types, required fields, formats, enums.
 * - Those schemas accept unknown fields, as the API server's non-strict decoding does, so a typo
 *   such as `readOnlyRootFileSystem` would pass while meaning nothing. The package's TypeScript
 *   types are exact, so every object is also type-checked as an object literal against its
 *   interface: TypeScript's excess-property check then rejects any field Kubernetes does not
 *   define, at any depth (like `kubectl --validate=strict` or kubeconform -strict).
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import ts from 'typescript';
import type { KubeObject, ManifestDocument } from './manifests';
import { REPO_ROOT } from './manifests';

const requireFromHere = createRequire(__filename);

interface ModelClass {
  new (data: unknown): { validate(): void };
}

/** "apps/v1" + "Deployment" -> "kubernetes-models/apps/v1/Deployment"; core "v1" has no group. */
export function modelModulePath(object: Pick<KubeObject, 'apiVersion' | 'kind'>): string {
  return `kubernetes-models/${object.apiVersion}/${object.kind}`;
}

/** Schema validation; returns the problems (empty when valid). */
export function schemaProblems(object: KubeObject): string[] {
  let Model: ModelClass;
  try {
    const exported = requireFromHere(modelModulePath(object)) as Record<string, unknown>;
    Model = exported[object.kind] as ModelClass;
  } catch {
    return [`no Kubernetes schema for ${object.apiVersion} ${object.kind}`];
  }
  try {
    new Model(object).validate();
    return [];
  } catch (error) {
    return [(error as Error).message];
  }
}

/**
 * Type-checks every document against its kubernetes-models interface in one TypeScript program.
 * Returns one message per failing document ("<source>: <TypeScript's complaint>").
 */
export function strictFieldProblems(documents: readonly ManifestDocument[]): string[] {
  const fileName = join(REPO_ROOT, '__deploy_manifests_strict_check__.ts');
  const declarations: string[] = [];
  const startLineOf: number[] = [];
  let lineCount = 0;
  documents.forEach((document, index) => {
    const { object } = document;
    const declaration = `export const manifest${index}: import(${JSON.stringify(modelModulePath(object))}).I${object.kind} = ${JSON.stringify(object, null, 1)};`;
    startLineOf.push(lineCount);
    lineCount += declaration.split('\n').length;
    declarations.push(declaration);
  });
  const source = declarations.join('\n');
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.Node16,
    moduleResolution: ts.ModuleResolutionKind.Node16,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const readFromDisk = host.getSourceFile.bind(host);
  host.getSourceFile = (name, languageVersion, ...rest) =>
    name === fileName
      ? ts.createSourceFile(name, source, languageVersion)
      : readFromDisk(name, languageVersion, ...rest);
  const existsOnDisk = host.fileExists.bind(host);
  host.fileExists = (name) => name === fileName || existsOnDisk(name);
  const program = ts.createProgram([fileName], options, host);
  const sourceFile = program.getSourceFile(fileName)!;
  const problems: string[] = [];
  for (const diagnostic of ts.getPreEmitDiagnostics(program, sourceFile)) {
    const line = diagnostic.start === undefined ? 0 : sourceFile.getLineAndCharacterOfPosition(diagnostic.start).line;
    const documentIndex = startLineOf.filter((start) => start <= line).length - 1;
    const where = documents[documentIndex]?.source ?? '?';
    problems.push(`${where}: ${ts.flattenDiagnosticMessageText(diagnostic.messageText, ' ')}`);
  }
  return problems;
}
