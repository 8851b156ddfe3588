// Owns the lists of names a result carries about what it left out or changed: the first 100
// names, then how many more, so that a tree of a million special files cannot grow a reply.

export const CAPPED_LIST_MAX = 100;

export class CappedList {
  private readonly items: string[] = [];
  private more = 0;

  add(item: string): void {
    if (this.items.length < CAPPED_LIST_MAX) this.items.push(item);
    else this.more++;
  }

  /** Names another list kept, and how many it did not (as they crossed the channel). */
  addAll(items: readonly string[], more = 0): void {
    for (const item of items) this.add(item);
    this.more += more;
  }

  /** The names kept, without the count. */
  kept(): string[] {
    return [...this.items];
  }

  /** How many names were not kept. */
  overflow(): number {
    return this.more;
  }

  /** For a result: the names, then `…and N more` when some were not kept. */
  list(): string[] {
    return this.more > 0 ? [...this.items, `…and ${this.more} more`] : [...this.items];
  }
}
