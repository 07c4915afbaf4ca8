//! Serializing an event to JSON allocates nothing: the CLI writes every
//! record into one reused buffer, so a heap allocation here would be paid
//! once per event.
//!
//! Events cannot be built outside the crate (their types are
//! `#[non_exhaustive]`), so this is a unit test, counting with the unit
//! tests' allocator (`alloc_count`).
use crate::Record;
use crate::alloc_count::allocations;
use crate::event::tests::{container_open_event, golden_records, open_event};

/// Allocations of the second serialization of `record` into a buffer that
/// the first one sized, as the CLI's `Outputs::write` does.
fn serialization_allocations(record: &Record) -> u64 {
    let mut json = Vec::new();
    serde_json::to_writer(&mut json, record).unwrap();
    json.clear();
    let start = allocations();
    serde_json::to_writer(&mut json, record).unwrap();
    allocations() - start
}

#[test]
fn open_event_serializes_without_allocating() {
    let counts = [
        ("open event", open_event()),
        ("open event in a container", container_open_event()),
    ]
    .map(|(what, event)| {
        let n = serialization_allocations(&Record::Event(Box::new(event)));
        println!("{what}: {n} allocations per serialization");
        (what, n)
    });
    assert_eq!(counts.map(|(_, n)| n), [0, 0], "{counts:?}");
}

#[test]
fn no_record_allocates_when_serialized() {
    for (record, json) in golden_records() {
        assert_eq!(serialization_allocations(&record), 0, "{json}");
    }
}
