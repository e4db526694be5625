import { StartWindow } from './start-window';

const options = { min: 2, max: 20, targetMs: 1000, forgetMs: 60_000 };
const ids = (n: number, from = 0) => Array.from({ length: n }, (_, i) => `pur_${from + i}`);

function fill(window: StartWindow, at: number, from = 0): string[] {
  const started = ids(window.room(), from);
  for (const id of started) window.started(id, at);
  return started;
}

test('when nothing has been admitted yet, then the window lets out four times its floor', () => {
  const window = new StartWindow(options);

  expect(window.room()).toBe(8);
  fill(window, 0);
  expect(window.room()).toBe(0);
});

test('when the workers admit within the target, then the window grows by what they admitted', () => {
  const window = new StartWindow(options);
  const first = fill(window, 0);

  window.observe(first, 200);

  expect(window.limit()).toBe(16);
  expect(window.room()).toBe(16);
});

test('when starts wait longer than the target, then the window halves, once per target interval, down to its floor', () => {
  const window = new StartWindow(options);
  fill(window, 0);

  window.observe([], 1500);
  expect(window.limit()).toBe(4);
  window.observe([], 1600);
  expect(window.limit()).toBe(4);
  window.observe([], 2600);
  expect(window.limit()).toBe(2);
  window.observe([], 9000);
  expect(window.limit()).toBe(2);
  expect(window.room()).toBe(0);
});

test('when the window is at its ceiling, then admissions do not grow it further', () => {
  const window = new StartWindow(options);
  let at = 0;
  for (let round = 0; round < 5; round++) {
    const started = fill(window, at, round * 100);
    at += 100;
    window.observe(started, at);
  }

  expect(window.limit()).toBe(20);
});

test('when a start is never admitted, then it is forgotten after forgetMs and frees its place', () => {
  const window = new StartWindow(options);
  fill(window, 0);
  window.observe([], 1500);
  expect(window.room()).toBe(0);

  window.observe([], 61_000);

  expect(window.waiting()).toEqual([]);
  expect(window.room()).toBe(window.limit());
});
