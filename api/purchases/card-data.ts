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

const CANDIDATE = /\d(?:[ -]?\d){12,18}/g;

/** True when a string holds 13 to 19 digits (spaces or dashes allowed) that pass Luhn. */
function holdsCardNumber(text: string): boolean {
  for (const match of text.matchAll(CANDIDATE)) {
    const digits = match[0].replace(/[ -]/g, '');
    for (let len = 19; len >= 13; len--) {
      for (let start = 0; start + len <= digits.length; start++) {
        if (passesLuhn(digits.slice(start, start + len))) return true;
      }
    }
  }
  return false;
}

/** Walks any JSON value, keys included, looking for a raw card number. */
export function containsCardNumber(value: unknown): boolean {
  if (typeof value === 'string') return holdsCardNumber(value);
  if (typeof value === 'number') return holdsCardNumber(value.toFixed(0));
  if (Array.isArray(value)) return value.some(containsCardNumber);
  if (value && typeof value === 'object') {
    return Object.entries(value).some(([k, v]) => holdsCardNumber(k) || containsCardNumber(v));
  }
  return false;
}
