/** Luhn check over a string of digits. */
export function passesLuhn(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

// A card number as people write it: one run of 13-19 digits, or groups of 4 (4-4-4-x) or
// 4-6-4/5 joined by spaces or dashes. Not part of a longer word, so ids such as UUIDs,
// whose hex groups may happen to be all digits, are not mistaken for cards.
const CANDIDATES = [
  /(?<![0-9A-Za-z])\d{13,19}(?![0-9A-Za-z])/g,
  /(?<![0-9A-Za-z-])\d{4}(?:[ -]\d{4}){2}[ -]\d{1,7}(?![0-9A-Za-z-])/g,
  /(?<![0-9A-Za-z-])\d{4}[ -]\d{6}[ -]\d{4,5}(?![0-9A-Za-z-])/g,
];

/** True when a string holds a card-shaped number of 13 to 19 digits that passes Luhn. */
function holdsCardNumber(text: string): boolean {
  return CANDIDATES.some((pattern) =>
    [...text.matchAll(pattern)].some((m) => {
      const digits = m[0].replace(/[ -]/g, '');
      return digits.length >= 13 && digits.length <= 19 && passesLuhn(digits);
    }),
  );
}

/**
 * Walks any JSON value, keys included, looking for a raw card number. An explicit stack
 * instead of recursion, so no nesting can overflow the call stack.
 */
export function containsCardNumber(value: unknown): boolean {
  const pending: unknown[] = [value];
  while (pending.length > 0) {
    const next = pending.pop();
    if (typeof next === 'string') {
      if (holdsCardNumber(next)) return true;
    } else if (typeof next === 'number') {
      if (holdsCardNumber(next.toFixed(0))) return true;
    } else if (Array.isArray(next)) {
      // A loop, not push(...next): spreading a huge array overflows the stack as well.
      for (const item of next) pending.push(item);
    } else if (next && typeof next === 'object') {
      for (const [k, v] of Object.entries(next)) {
        if (holdsCardNumber(k)) return true;
        pending.push(v);
      }
    }
  }
  return false;
}
