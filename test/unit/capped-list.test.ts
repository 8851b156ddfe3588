// Unit tests of the capped name lists results carry (export's skipped and modes_cleared).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CAPPED_LIST_MAX, CappedList } from "../../src/util/capped-list.js";

describe("CappedList", () => {
  it("keeps the first names and counts the rest, across a hop", () => {
    const agent = new CappedList();
    for (let i = 0; i < CAPPED_LIST_MAX + 5; i++) agent.add(`f${i}`);
    assert.equal(agent.kept().length, CAPPED_LIST_MAX);
    assert.equal(agent.overflow(), 5);
    const host = new CappedList();
    host.add("link (points outside)");
    host.addAll(agent.kept(), agent.overflow());
    const list = host.list();
    assert.equal(list.length, CAPPED_LIST_MAX + 1);
    assert.equal(list[0], "link (points outside)");
    assert.equal(list.at(-1), "…and 6 more");
  });

  it("has no count line when nothing overflowed", () => {
    const list = new CappedList();
    list.add("a");
    assert.deepEqual(list.list(), ["a"]);
  });
});
