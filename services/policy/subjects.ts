// Two tokens whose subjects differ only in case or Unicode form are one
// person: separation of duties compares subjects in this form.
export function normalizeSubject(subject: string): string {
  return subject.normalize('NFKC').toLowerCase();
}

export function sameSubject(a: string, b: string): boolean {
  return normalizeSubject(a) === normalizeSubject(b);
}
