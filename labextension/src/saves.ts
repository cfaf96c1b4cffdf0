/**
 * How the admin page words a save, from what the server says saves are (`/me`'s `saves`): files written on
 * the server, commits on a Git branch, or branches sent for review. Pure functions, so jest checks them
 * without JupyterLab; the server decides everything (the note it requires, where the commit goes).
 */

export interface ISaves {
  git: boolean;
  review: boolean;
  branch: string;
  remote: string;
  problem: string;
}

export interface ISaveAnswer {
  sha256: string;
  version: { version: string };
  message?: string;
  git?: { commit: string; branch: string; review: boolean; path: string };
}

/** Where a file was read in Git mode (`GET .../files/{file}`'s `git`). */
export interface IGitRevision {
  commit: string;
  branch: string;
  path: string;
  /** The commit the kernels use (the checkout's HEAD), or '' when a GitOps sync deploys it. */
  deployed: string;
}

/** The line under the editor in Git mode: the branch's revision of the file, and which one is deployed. */
export function revisionLine(git: IGitRevision): string {
  const at = `${git.path} on ${git.branch} at ${git.commit.slice(0, 12)}`;
  if (!git.deployed) {
    return `${at}; deployed when the GitOps sync (e.g. Argo CD) applies ${git.branch}.`;
  }
  return git.deployed === git.commit
    ? `${at}, deployed: new kernels use it (the kernelspec is this checkout).`
    : `${at}; deployed: ${git.deployed.slice(0, 12)} (the checkout has not caught up with ${git.branch}).`;
}

/** The confirm button's label. */
export function saveLabel(saves: ISaves | undefined): string {
  if (!saves?.git) {
    return 'Save';
  }
  return saves.review ? 'Send for review' : `Commit to ${saves.branch}`;
}

/** The note field's placeholder: required with Git (it is the commit message), optional otherwise. */
export function notePlaceholder(saves: ISaves | undefined): string {
  return saves?.git
    ? 'What did you change and why? (required: the commit message)'
    : 'Why? (optional: kept in the audit log)';
}

/** Why the page will not send the save yet ('' when it may), so the admin is not sent a 400 to read. */
export function noteProblem(saves: ISaves | undefined, note: string): string {
  return saves?.git && !note.trim() ? 'Write a note first: it becomes the commit message.' : '';
}

/** True when the file on the branch is now the edited text; a save sent for review changes nothing yet. */
export function savedNow(answer: ISaveAnswer): boolean {
  return !answer.git?.review;
}

/** The line shown after a save or rollback. */
export function saveNotice(file: string, answer: ISaveAnswer, rollback: string | null): string {
  if (answer.git?.review) {
    return `${file}: sent for review as ${answer.git.branch}. It is deployed once merged.`;
  }
  if (answer.message) {
    return `${file}: ${answer.message}`;
  }
  return rollback
    ? `Rolled back ${file} to version ${rollback} (recorded as version ${answer.version.version}).`
    : `Saved ${file} (version ${answer.version.version}).`;
}
