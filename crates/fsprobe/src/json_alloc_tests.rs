//! Serializing an event to JSON allocates nothing, through serde_json or
//! through `Record::write_json` (which the CLI uses): the CLI writes every
//! record into one reused buffer, so a heap allocation here would be paid
//! once per event.
//!
//! Events cannot be built outside the crate (their types are
//! `#[non_exhaustive]`), so this is a unit test, counting with the unit
//! tests' allocator (`alloc_count`).
use crate::Record;
use crate::alloc_count::allocations;
use crate::event::tests::{container_open_event, golden_records, open_event};

/// A way to append a record's JSON to a buffer.
type Writer = fn(&Record, &mut Vec<u8>);

fn serde_json_writer(record: &Record, out: &mut Vec<u8>) {
    serde_json::to_writer(out, record).unwrap();
}

const WRITERS: [(&str, Writer); 2] = [
    ("serde_json", serde_json_writer),
    ("write_json", Record::write_json),
];

/// Allocations of the second serialization of `record` by `write` into a
/// buffer that the first one sized, as the CLI's `Outputs::write` does.
fn serialization_allocations(record: &Record, write: Writer) -> u64 {
    let mut json = Vec::new();
    write(record, &mut json);
    json.clear();
    let start = allocations();
    write(record, &mut json);
    allocations() - start
}

#[test]
fn open_event_serializes_without_allocating() {
    for (writer, write) in WRITERS {
        let counts = [
            ("open event", open_event()),
            ("open event in a container", container_open_event()),
        ]
        .map(|(what, event)| {
            let n = serialization_allocations(&Record::Event(Box::new(event)), write);
            println!("{writer}, {what}: {n} allocations per serialization");
            (what, n)
        });
        assert_eq!(counts.map(|(_, n)| n), [0, 0], "{writer}: {counts:?}");
    }
}

#[test]
fn no_record_allocates_when_serialized() {
    for (writer, write) in WRITERS {
        for (record, json) in golden_records() {
            assert_eq!(
                serialization_allocations(&record, write),
                0,
                "{writer}: {json}"
            );
        }
    }
}
