/**
 * mlp-kernel's JupyterLab extension: two plugins.
 *
 * - `mlp-kernel:plugin` (every user): status bar item and GPU panel for the active GPU (auto) notebook, fed
 *   by the kernel's `mlp_kernel.status` comm, and notifications for events a user must not miss. A notebook
 *   is a GPU (auto) notebook when its kernelspec's kernel.json uses our provisioner (the kernelspecs API
 *   carries that metadata), so every such kernelspec (`GPU (demo)`, ...) is recognised with no setting.
 * - `mlp-kernel:admin`: the admin page (command palette and launcher), backed by the server extension's
 *   REST API; the server decides who may save.
 */

import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette, MainAreaWidget, Notification } from '@jupyterlab/apputils';
import { IEditorServices } from '@jupyterlab/codeeditor';
import { ILauncher } from '@jupyterlab/launcher';
import { INotebookTracker, NotebookActions } from '@jupyterlab/notebook';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IStatusBar } from '@jupyterlab/statusbar';

import { AdminWidget } from './admin';
import { BRIEF_NOTIFICATION_MS, eventNotification, gpuKernelSpecNames } from './format';
import { GpuPanel } from './panel';
import { PrestartTrigger } from './prestart';
import { StatusConnection } from './statuscomm';
import { GpuStatusItem } from './statusbar';
import { replaceReleasedWidgets } from './widgets';

const PLUGIN_ID = 'mlp-kernel:plugin';

namespace CommandIDs {
  export const openPanel = 'mlp-kernel:open-gpu-panel';
  export const openAdmin = 'mlp-kernel:open-admin';
}

const statusPlugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'GPU (auto) status bar item, GPU panel and notifications.',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [IStatusBar, ISettingRegistry, ILayoutRestorer],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    statusBar: IStatusBar | null,
    settingRegistry: ISettingRegistry | null,
    restorer: ILayoutRestorer | null
  ) => {
    const connection = new StatusConnection({ kernelSpecNames: ['gpu-auto'], probeAllKernels: false });
    // The names from the settings (kept for kernelspecs provisioned elsewhere) plus every kernelspec whose
    // kernel.json names our provisioner.
    let configured: { kernelSpecNames: string[]; probeAllKernels: boolean } = {
      kernelSpecNames: ['gpu-auto'],
      probeAllKernels: false
    };
    const kernelspecs = app.serviceManager.kernelspecs;
    const applyOptions = (): void => {
      const found = gpuKernelSpecNames(kernelspecs.specs);
      connection.setOptions({
        kernelSpecNames: [...new Set([...configured.kernelSpecNames, ...found])],
        probeAllKernels: configured.probeAllKernels
      });
    };
    kernelspecs.specsChanged.connect(applyOptions);
    void kernelspecs.ready.then(applyOptions);
    const panel = new GpuPanel(connection);

    const follow = (): void => connection.setSession(tracker.currentWidget?.sessionContext ?? null);
    tracker.currentChanged.connect(follow);
    follow();

    app.commands.addCommand(CommandIDs.openPanel, {
      label: 'Show GPU (auto) status',
      execute: () => {
        if (!panel.isAttached) {
          app.shell.add(panel, 'right', { rank: 900 });
        }
        app.shell.activateById(panel.id);
      }
    });
    if (restorer) {
      restorer.add(panel, 'mlp-kernel-gpu-panel');
    }

    // Widgets of a released GPU kernel are gone: say so in their cells, once (widgets.ts).
    let lastState = '';
    connection.changed.connect(() => {
      const state = connection.status?.state ?? '';
      if (state === 'released' && lastState && lastState !== 'released') {
        const model = tracker.currentWidget?.model;
        if (model) {
          replaceReleasedWidgets(model.cells as any);
        }
      }
      lastState = state;
    });

    // Pre-start on activity (prestart.ts): the user typing into a cell of a released notebook, or running a
    // markdown cell, asks the gateway once to start the GPU kernel before the code cell that follows; typing
    // code into a notebook that never had a GPU kernel asks for its first one (`cell: 'code'`).
    const prestart = new PrestartTrigger(cell => connection.send({ action: 'prestart', cell }));
    connection.changed.connect(() => prestart.onStatus(connection.isGpuKernel ? connection.status : null));
    const onSource = (
      cell: { cell_type?: string; getSource?: () => string },
      change: { sourceChange?: unknown }
    ): void => {
      if (change.sourceChange) {
        // the text changed (outputs and metadata are no activity of the user's); the shared model says its
        // type at the time of the edit (a cell changed to code is a code cell from then on) and its text
        const code = cell.cell_type === 'code';
        prestart.onActivity(code ? 'code' : 'markdown', code ? (cell.getSource?.() ?? '') : '');
      }
    };
    let watched: { changed: { disconnect: (f: typeof onSource) => void } } | null = null;
    tracker.activeCellChanged.connect(() => {
      const shared = tracker.activeCell?.model.sharedModel ?? null;
      watched?.changed.disconnect(onSource);
      shared?.changed.connect(onSource);
      watched = shared;
    });
    NotebookActions.executionScheduled.connect((_, { notebook, cell }) => {
      if (notebook === tracker.currentWidget?.content && cell.model.type !== 'code') {
        prestart.onActivity('run'); // a code cell starts the kernel itself
      }
    });

    // One notification per kernel, updated in place, so they never pile up over the panel's buttons.
    const notifications = new Map<string, string>();
    connection.event.connect((_, event) => {
      const n = eventNotification(event, connection.status);
      if (!n) {
        return;
      }
      const key = connection.status?.kernel_id ?? 'kernel';
      const autoClose = n.sticky ? (false as const) : n.brief ? BRIEF_NOTIFICATION_MS : 8000;
      const type = n.level === 'error' ? 'error' : n.level;
      const id = notifications.get(key);
      if (id && Notification.manager.has(id)) {
        Notification.update({ id, message: n.text, type, autoClose });
      } else {
        notifications.set(key, Notification.emit(n.text, type, { autoClose }));
      }
    });

    if (statusBar) {
      const item = new GpuStatusItem(connection, () => void app.commands.execute(CommandIDs.openPanel));
      statusBar.registerStatusItem('mlp-kernel:status', {
        item,
        align: 'left',
        rank: 5,
        isActive: () => item.isActiveItem,
        activeStateChanged: item.activeStateChanged
      });
    }

    if (settingRegistry) {
      settingRegistry
        .load(PLUGIN_ID)
        .then(settings => {
          const apply = (): void => {
            configured = {
              kernelSpecNames: settings.get('kernelSpecNames').composite as string[],
              probeAllKernels: settings.get('probeAllKernels').composite as boolean
            };
            applyOptions();
          };
          settings.changed.connect(apply);
          apply();
        })
        .catch(reason => console.warn('mlp-kernel: cannot load settings', reason));
    }
  }
};

const adminPlugin: JupyterFrontEndPlugin<void> = {
  id: 'mlp-kernel:admin',
  description: 'Admin page for the GPU (auto) kernelspec templates, placement policy and fleet.',
  autoStart: true,
  optional: [ICommandPalette, ILauncher, IEditorServices],
  activate: (
    app: JupyterFrontEnd,
    palette: ICommandPalette | null,
    launcher: ILauncher | null,
    editorServices: IEditorServices | null
  ) => {
    let widget: MainAreaWidget<AdminWidget> | null = null;
    app.commands.addCommand(CommandIDs.openAdmin, {
      label: 'GPU (auto) admin',
      caption: 'Edit the GPU (auto) pod template, kernel defaults and placement policy; view the fleet',
      execute: () => {
        if (!widget || widget.isDisposed) {
          widget = new MainAreaWidget({ content: new AdminWidget('', editorServices) });
          widget.id = 'mlp-kernel-admin-page';
          widget.title.label = 'GPU (auto) admin';
          widget.title.closable = true;
        }
        if (!widget.isAttached) {
          app.shell.add(widget, 'main');
        }
        app.shell.activateById(widget.id);
      }
    });
    palette?.addItem({ command: CommandIDs.openAdmin, category: 'GPU (auto)' });
    launcher?.add({ command: CommandIDs.openAdmin, category: 'Other', rank: 50 });
  }
};

export default [statusPlugin, adminPlugin];
