/**
 * Widgets across a release. A widget's output in a cell is only a reference to a model that lives in the
 * kernel; once the GPU kernel is released the model is gone, and after a page reload JupyterLab shows
 * "Error displaying widget: model not found". So when the GPU is released, each widget output of the notebook
 * is replaced, once, by a line that says what happened and what to do; the line is saved with the notebook.
 */

export const WIDGET_MIME = 'application/vnd.jupyter.widget-view+json';

export const WIDGET_GONE =
  '[GPU (auto)] This widget belonged to a GPU kernel that has been released: re-run the cell to see it again.';

/** A cell output as nbformat has it (only what is read here). */
export interface IOutputJSON {
  output_type: string;
  data?: Record<string, unknown>;
  [key: string]: unknown;
}

/** The output to put in place of `output`, or null to keep it (not a widget). */
export function releasedWidgetOutput(output: IOutputJSON): IOutputJSON | null {
  if (!output.data || !(WIDGET_MIME in output.data)) {
    return null;
  }
  return { output_type: 'display_data', data: { 'text/plain': WIDGET_GONE }, metadata: {} };
}

/** The parts of JupyterLab's notebook model this uses (kept structural: no dependency on the output area). */
export interface IOutputsLike {
  readonly length: number;
  get(index: number): { toJSON(): unknown };
  set(index: number, output: any): void;
}

/** Replaces the widget outputs of every cell; returns how many were replaced. */
export function replaceReleasedWidgets(cells: Iterable<{ outputs?: IOutputsLike }>): number {
  let replaced = 0;
  for (const cell of cells) {
    const outputs = cell.outputs;
    if (!outputs) {
      continue;
    }
    for (let i = 0; i < outputs.length; i++) {
      const next = releasedWidgetOutput(outputs.get(i).toJSON() as IOutputJSON);
      if (next) {
        outputs.set(i, next);
        replaced++;
      }
    }
  }
  return replaced;
}
