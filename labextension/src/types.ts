/**
 * The `mlp_kernel.status` comm protocol (docs/status-comm.md), as TypeScript types.
 * GENERATED from mlp_kernel/protocol.py by `python -m mlp_kernel.protocol --write`: do not edit.
 * The gateway kernel is the only writer; the extension only reads snapshots and sends actions.
 */

export const COMM_TARGET = 'mlp_kernel.status';
export const PROTOCOL_VERSION = 1;

/** Where a GPU (auto) kernel is in its life (``state`` of a snapshot). */
export type KernelState = 'cpu_only' | 'placing' | 'queued' | 'starting' | 'running' | 'releasing' | 'released' | 'error';

/** Things a user must not miss (``kind`` of an event); the extension shows them as notifications. */
export type EventKind = 'started' | 'burst' | 'released' | 'preempted' | 'evicted' | 'error' | 'prestarted' | 'prestart_dropped';

/** Why a remote kernel went away without being asked to (``ExitInfo.reason`` of the backends). */
export type ExitReason = 'exited' | 'killed' | 'oomkilled' | 'preempted' | 'evicted' | 'node-lost' | 'deleted' | 'released';

/** Why the GPU was given back (``last_release.reason``); a kernel that ended unasked gives its ``ExitReason`` instead. */
export type ReleaseReason = 'idle' | 'user' | 'move' | 'unused';

/** Start-up phases (``phase`` of a snapshot while placing, queued or starting). */
export type Phase = 'placing' | 'queued' | 'admitted' | 'scheduled' | 'pulling' | 'starting' | 'connected';

/** How the GPU kernel sees the notebook's files (``files.mode`` of a snapshot). */
export type FilesMode = 'volume' | 'local' | 'synced' | 'none';

/** What the user did that a ``prestart`` action reports (``cell`` of the action): only typing code may pre-start a notebook's first GPU kernel (``release.prestart.first``); writing text never does. */
export type PrestartCell = 'code' | 'markdown' | 'run';

export interface IQueueInfo {
  local_queue?: string | null;
  position?: number | null;
  eta_s?: number | null;
  reason?: string | null;
}

export interface IRuleResult {
  rule: string;
  inputs: Record<string, unknown>;
  result: string;
  detail: string;
}

/** ``placement.types.Decision.to_json()``: where placement put the kernel and every rule's result. */
export interface IDecision {
  action: 'run' | 'queue' | 'burst' | 'reject';
  member: string | null;
  flavor: string | null;
  local_queue: string | null;
  namespace: string | null;
  gpu_model: string | null;
  gpu_count: number;
  public: boolean;
  expected_wait_s: number | null;
  price_per_hour: number;
  summary: string;
  explanation: IRuleResult[];
  refused_for: ('budget' | 'data_class')[];
}

/** What the panel offers: the policy's GPU models and tiers, whether burst is possible, the size cap. */
export interface IChoices {
  gpu_models?: string[];
  tiers?: string[];
  burst_allowed?: boolean;
  max_gpus?: number;
  member_labels?: Record<string, string>;
}

export interface ILastRelease {
  reason?: ReleaseReason | ExitReason;
  at?: string;
  idle_s?: number | null;
  message?: string;
}

export interface ILeftOut {
  path: string;
  reason: string;
}

/** What the running (or last) GPU kernel sees of the notebook's files, and where it runs. */
export interface IFilesInfo {
  mode: FilesMode;
  message: string;
  working_dir?: string | null;
  workspace_claim?: string | null;
  workspace_path?: string | null;
  read_only?: boolean;
  packages_claim?: string | null;
  packages_path?: string | null;
  files_taken?: number;
  bytes_taken?: number;
  left_out?: ILeftOut[];
  left_out_count?: number;
}

/** One public GPU budget that applies to this notebook this month (``placement.budget.Limit``). */
export interface IBudgetLine {
  scope: 'team' | 'user';
  who: string;
  spent_usd: number;
  limit_usd: number | null;
  soft_usd: number | null;
  over_soft: boolean;
  over_hard: boolean;
  line: string;
}

/** Pre-start on activity (``release.prestart``, docs/design.md): whether the extension may ask for one now, and what the last one did. */
export interface IPrestartInfo {
  ready: boolean;
  first: boolean;
  second: boolean;
  holding: boolean;
  hold_s: number;
  message: string;
}

/** The snapshot: ``data`` of every gateway -> client ``comm_msg`` of type status, and the status file. */
export interface IStatus {
  type: 'status';
  version: number;
  state: KernelState;
  kernel_id?: string;
  user?: string;
  phase?: Phase | null;
  message?: string;
  member?: string | null;
  flavor?: string | null;
  gpu_model?: string | null;
  gpu_count?: number;
  public?: boolean;
  since?: string | null;
  queue?: IQueueInfo | null;
  price_per_hour?: number;
  cost_so_far?: number;
  idle_timeout_s?: number;
  idle_limit_s?: number | null;
  idle_rule?: string;
  idle_deadline?: string | null;
  busy?: boolean;
  last_release?: ILastRelease | null;
  decision?: IDecision | null;
  request?: Record<string, unknown> | null;
  choices?: IChoices;
  gpu_seconds_busy?: number;
  files?: IFilesInfo | null;
  budget?: IBudgetLine[];
  prestart?: IPrestartInfo | null;
}

export interface IStatusEvent {
  type: 'event';
  kind: EventKind;
  message: string;
  at?: string;
}

/** The answer to an invalid action (a ``request`` whose options do not parse). */
export interface IStatusError {
  type: 'error';
  message: string;
}

export type StatusMessage =
  | IStatus
  | IStatusEvent
  | IStatusError;

export type StatusAction =
  | { action: 'refresh' }
  | { action: 'release' }
  | { action: 'request'; options: string }
  | { action: 'prestart'; cell?: PrestartCell };
