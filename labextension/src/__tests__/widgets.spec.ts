import { WIDGET_GONE, WIDGET_MIME, releasedWidgetOutput, replaceReleasedWidgets } from '../widgets';

const widget = {
  output_type: 'display_data',
  data: { [WIDGET_MIME]: { model_id: 'abc', version_major: 2 }, 'text/plain': 'IntSlider(value=3)' },
  metadata: {}
};
const text = { output_type: 'stream', name: 'stdout', text: '42\n' };

function outputs(list: any[]) {
  return {
    get length() {
      return list.length;
    },
    get: (i: number) => ({ toJSON: () => list[i] }),
    set: (i: number, o: any) => {
      list[i] = o;
    },
    list
  };
}

describe('widgets across a release', () => {
  it('replaces a widget output by one line that says to re-run the cell', () => {
    expect(releasedWidgetOutput(widget)).toEqual({
      output_type: 'display_data',
      data: { 'text/plain': WIDGET_GONE },
      metadata: {}
    });
    expect(releasedWidgetOutput(text)).toBeNull();
  });

  it('replaces only widget outputs, in every cell, once', () => {
    const a = outputs([text, widget]);
    const b = outputs([widget]);
    expect(replaceReleasedWidgets([{ outputs: a }, {}, { outputs: b }])).toBe(2);
    expect(a.list[0]).toBe(text);
    expect(a.list[1].data['text/plain']).toBe(WIDGET_GONE);
    // a second release finds nothing left to replace
    expect(replaceReleasedWidgets([{ outputs: a }, { outputs: b }])).toBe(0);
  });
});
