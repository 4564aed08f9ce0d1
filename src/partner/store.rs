//! The mock partner's in-memory store: staff, lead sources, prospects and members, seeded from a
//! sandbox and resettable.

use super::sandbox::Sandbox;
use crate::model::{same_ignoring_case, Field, LeadSource, Record, RecordKind, Staff};
use indexmap::IndexMap;
use std::collections::HashMap;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Everything the partner holds.
#[derive(Debug, Clone)]
pub struct StoreData {
    /// Staff, in list order.
    pub staff: Vec<Staff>,
    /// Lead sources, in list order.
    pub sources: Vec<LeadSource>,
    /// Prospects by the partner's id, in the order first saved; owner and source hold
    /// partner ids.
    pub prospects: Records,
    /// Members by the partner's id, in the order first saved.
    pub members: Records,
    /// Prospects' and members' external ids → the partner's id, kept in step by
    /// [`StoreData::put`].
    external_ids: ExternalIds,
    next_id: u64,
    numeric: NumericIds,
}

/// Which kinds of record the partner numbers with plain integers (a profile typing their id
/// as an integer or number), rather than with lettered ids like `P-000042`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NumericIds {
    /// Staff.
    pub staff: bool,
    /// Lead sources.
    pub sources: bool,
    /// Prospects.
    pub prospects: bool,
    /// Members.
    pub members: bool,
}

impl NumericIds {
    fn of(&self, kind: RecordKind) -> bool {
        match kind {
            RecordKind::Staff => self.staff,
            RecordKind::Source => self.sources,
            RecordKind::Prospect => self.prospects,
            RecordKind::Member => self.members,
        }
    }
}

/// The first number given to a seeded staff member or source whose id is not a number, for a
/// partner with numeric ids (records the store saves are numbered from 1).
const FIRST_SEED_NUMBER: u64 = 9_001;

impl Default for StoreData {
    fn default() -> Self {
        StoreData {
            staff: Vec::new(),
            sources: Vec::new(),
            prospects: Records::new(Some(id_prefix(RecordKind::Prospect))),
            members: Records::new(Some(id_prefix(RecordKind::Member))),
            external_ids: ExternalIds::default(),
            next_id: 0,
            numeric: NumericIds::default(),
        }
    }
}

/// The letters before the number in the ids the store hands out for `kind`.
fn id_prefix(kind: RecordKind) -> &'static str {
    match kind {
        RecordKind::Staff => "S",
        RecordKind::Source => "LS",
        RecordKind::Prospect => "P",
        RecordKind::Member => "M",
    }
}

/// Slots in one block of [`Records`].
const BLOCK: usize = 4096;

/// The records of one kind by the partner's id, in the order saved first. Records under ids
/// this store handed out (`P-000042`) sit in the slot of the id's number, in blocks that are
/// never moved or copied: a save under load touches only its own slot, with no hash table or
/// growing array to rebuild. Records under any other id are kept by id beside them.
#[derive(Debug, Clone)]
pub struct Records {
    /// The letters of the ids handed out; none for a partner whose ids are numbers.
    prefix: Option<&'static str>,
    blocks: Vec<Box<[Option<StoredRecord>]>>,
    others: IndexMap<String, StoredRecord>,
    len: usize,
}

impl Records {
    fn new(prefix: Option<&'static str>) -> Self {
        Records {
            prefix,
            blocks: Vec::new(),
            others: IndexMap::new(),
            len: 0,
        }
    }

    /// The number of an id in this store's form (`P-` then at least six digits, no more
    /// leading zeros than that takes).
    fn number_of(&self, id: &str) -> Option<usize> {
        let Some(prefix) = self.prefix else {
            // Plain numbers, as a numeric id is written: no sign, no leading zero.
            let canonical = !id.is_empty()
                && id.bytes().all(|byte| byte.is_ascii_digit())
                && (id == "0" || !id.starts_with('0'));
            return canonical.then(|| id.parse().ok()).flatten();
        };
        let digits = id.strip_prefix(prefix)?.strip_prefix('-')?;
        let canonical = digits.len() >= 6
            && digits.bytes().all(|byte| byte.is_ascii_digit())
            && (digits.len() == 6 || !digits.starts_with('0'));
        canonical.then(|| digits.parse().ok()).flatten()
    }

    fn slot(&self, number: usize) -> Option<&Option<StoredRecord>> {
        self.blocks.get(number / BLOCK)?.get(number % BLOCK)
    }

    /// The record under `id`, if held.
    pub fn get(&self, id: &str) -> Option<&StoredRecord> {
        let in_slot = self
            .number_of(id)
            .and_then(|number| self.slot(number)?.as_ref());
        in_slot.or_else(|| self.others.get(id))
    }

    /// Whether a record is held under `id`.
    pub fn contains_key(&self, id: &str) -> bool {
        self.get(id).is_some()
    }

    /// Stores `record` under `id`, giving back the one it replaces. `most_handed_out` is the
    /// highest number the store has handed out: only those numbers take a slot.
    fn insert(
        &mut self,
        id: &str,
        record: StoredRecord,
        most_handed_out: u64,
    ) -> Option<StoredRecord> {
        let number = self
            .number_of(id)
            .filter(|number| *number as u64 <= most_handed_out && !self.others.contains_key(id));
        let old = match number {
            Some(number) => {
                while self.blocks.len() <= number / BLOCK {
                    self.blocks.push((0..BLOCK).map(|_| None).collect());
                }
                self.blocks[number / BLOCK][number % BLOCK].replace(record)
            }
            None => self.others.insert(id.to_owned(), record),
        };
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    /// How many records are held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The records with the id each is held under: slots in number order, then the others in
    /// the order saved first.
    pub fn iter(&self) -> impl Iterator<Item = (std::borrow::Cow<'_, str>, &StoredRecord)> {
        let in_slots = self
            .blocks
            .iter()
            .enumerate()
            .flat_map(move |(block, slots)| {
                slots.iter().enumerate().filter_map(move |(offset, slot)| {
                    let record = slot.as_ref()?;
                    let id = format_id(self.prefix, (block * BLOCK + offset) as u64);
                    Some((std::borrow::Cow::Owned(id), record))
                })
            });
        let others = self
            .others
            .iter()
            .map(|(id, record)| (std::borrow::Cow::Borrowed(id.as_str()), record));
        in_slots.chain(others)
    }

    /// Visits the records from `from` on, in the order of [`Records::iter`], until `visit`
    /// declines one: gives back that one's position, or `None` once past the last record.
    fn walk<'a>(
        &'a self,
        from: Position,
        mut visit: impl FnMut(&'a StoredRecord) -> bool,
    ) -> Option<Position> {
        let (first_slot, first_other) = match from.0 {
            At::Start | At::Index(_) => (Some(0), 0),
            At::Slot(number) => (Some(number), 0),
            At::Other(index) => (None, index),
        };
        if let Some(first_slot) = first_slot {
            for (block, slots) in self.blocks.iter().enumerate().skip(first_slot / BLOCK) {
                let start = (block * BLOCK).max(first_slot) - block * BLOCK;
                for (offset, slot) in slots.iter().enumerate().skip(start) {
                    if let Some(record) = slot {
                        if !visit(record) {
                            return Some(Position(At::Slot(block * BLOCK + offset)));
                        }
                    }
                }
            }
        }
        for (index, record) in self.others.values().enumerate().skip(first_other) {
            if !visit(record) {
                return Some(Position(At::Other(index)));
            }
        }
        None
    }

    /// Where a walk goes on after the record under `id`; `None` when no record of this store
    /// could be under it.
    fn position_after(&self, id: &str) -> Option<Position> {
        if let Some(index) = self.others.get_index_of(id) {
            return Some(Position(At::Other(index + 1)));
        }
        let number = self.number_of(id)?;
        Some(Position(At::Slot(number.saturating_add(1))))
    }

    /// The records, in the order of [`Records::iter`].
    pub fn values(&self) -> impl Iterator<Item = &StoredRecord> {
        let in_slots = self.blocks.iter().flat_map(|slots| slots.iter().flatten());
        in_slots.chain(self.others.values())
    }
}

/// `{prefix}-{number}` with at least six digits, as `format!("{prefix}-{number:06}")` writes it
/// without the formatting machinery (one per save).
fn format_id(prefix: Option<&str>, number: u64) -> String {
    let mut buffer = itoa::Buffer::new();
    let digits = buffer.format(number);
    let Some(prefix) = prefix else {
        return digits.to_owned();
    };
    let zeros = 6usize.saturating_sub(digits.len());
    let mut id = String::with_capacity(prefix.len() + 1 + zeros + digits.len());
    id.push_str(prefix);
    id.push('-');
    id.extend(std::iter::repeat_n('0', zeros));
    id.push_str(digits);
    id
}

/// A saved prospect or member, packed: its values in one string, and each field with where its
/// value ends. Two allocations and about a quarter of a `Record`'s memory: under load the store
/// grows by tens of thousands of records a second, and fresh memory is most of what a save
/// costs beyond the request itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord(Packing);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Packing {
    Packed {
        text: Box<str>,
        ends: Box<[(Field, u32)]>,
    },
    /// A record of more than 4 GiB of text (a partner allowed bodies that large) kept whole.
    Whole(Box<Record>),
}

impl StoredRecord {
    /// `record`, packed.
    pub fn pack(record: &Record) -> StoredRecord {
        Self::pack_within(record, u32::MAX as usize)
    }

    /// `record`, packed if its text is at most `most` bytes (which fit the u32 ends).
    fn pack_within(record: &Record, most: usize) -> StoredRecord {
        let length: usize = record.values().map(String::len).sum();
        if length > most.min(u32::MAX as usize) {
            return StoredRecord(Packing::Whole(Box::new(record.clone())));
        }
        let mut text = String::with_capacity(length);
        let ends = record
            .iter()
            .map(|(field, value)| {
                text.push_str(value);
                // Within u32: the whole text is.
                (*field, text.len() as u32)
            })
            .collect();
        StoredRecord(Packing::Packed {
            text: text.into_boxed_str(),
            ends,
        })
    }

    /// The fields and their values, in field order.
    pub fn fields(&self) -> impl Iterator<Item = (Field, &str)> {
        let (packed, whole) = match &self.0 {
            Packing::Packed { text, ends } => {
                let starts = std::iter::once(0).chain(ends.iter().map(|(_, end)| *end as usize));
                let fields = ends
                    .iter()
                    .zip(starts)
                    .map(|((field, end), start)| (*field, &text[start..*end as usize]));
                (Some(fields), None)
            }
            Packing::Whole(record) => (
                None,
                Some(record.iter().map(|(field, value)| (*field, value.as_str()))),
            ),
        };
        packed
            .into_iter()
            .flatten()
            .chain(whole.into_iter().flatten())
    }

    /// The value of `field`, if held.
    pub fn get(&self, field: Field) -> Option<&str> {
        self.fields()
            .find(|(held, _)| *held == field)
            .map(|(_, value)| value)
    }

    /// The record again.
    pub fn unpack(&self) -> Record {
        self.fields()
            .map(|(field, value)| (field, value.to_owned()))
            .collect()
    }
}

/// External id → the partner's id, one index per written kind (looked up without a copy of
/// the id).
#[derive(Debug, Clone, Default)]
struct ExternalIds {
    prospects: HashMap<String, String>,
    members: HashMap<String, String>,
}

impl ExternalIds {
    fn of(&self, kind: RecordKind) -> Option<&HashMap<String, String>> {
        match kind {
            RecordKind::Prospect => Some(&self.prospects),
            RecordKind::Member => Some(&self.members),
            RecordKind::Staff | RecordKind::Source => None,
        }
    }
}

/// The store, shared by the server's handlers.
#[derive(Debug)]
pub struct Store {
    seed: Sandbox,
    numeric: NumericIds,
    data: RwLock<StoreData>,
    /// Bumped on every write access, so cached pages know when they are stale.
    generation: std::sync::atomic::AtomicU64,
}

impl StoreData {
    fn from_seed(seed: &Sandbox, numeric: NumericIds) -> Self {
        let mut data = StoreData {
            staff: seed.staff.clone(),
            sources: seed.sources.clone(),
            numeric,
            ..StoreData::default()
        };
        let numbered = |id: &str| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit());
        // Seeded ids that are not numbers get numbers of their own, in list order, past any
        // number the seed already uses.
        if numeric.staff {
            let mut next = FIRST_SEED_NUMBER;
            for staff in &mut data.staff {
                if !numbered(&staff.id) {
                    while seed.staff.iter().any(|s| s.id == next.to_string()) {
                        next += 1;
                    }
                    staff.id = next.to_string();
                    next += 1;
                }
            }
        }
        if numeric.sources {
            let mut next = FIRST_SEED_NUMBER;
            for source in &mut data.sources {
                if !numbered(&source.id) {
                    while seed.sources.iter().any(|s| s.id == next.to_string()) {
                        next += 1;
                    }
                    source.id = next.to_string();
                    next += 1;
                }
            }
        }
        if numeric.prospects {
            data.prospects = Records::new(None);
        }
        if numeric.members {
            data.members = Records::new(None);
        }
        data
    }

    /// A fresh id for a new record of `kind`; a source's is one no held source has (a sandbox
    /// may spell its own source ids as the counter does: `LS-000001`).
    pub fn next_id(&mut self, kind: RecordKind) -> String {
        loop {
            self.next_id += 1;
            // Numbered sources follow the seeded ones, so the two never meet.
            let id = if kind == RecordKind::Source && self.numeric.sources {
                format_id(None, self.next_id + 2 * FIRST_SEED_NUMBER)
            } else {
                let prefix = (!self.numeric.of(kind)).then(|| id_prefix(kind));
                format_id(prefix, self.next_id)
            };
            if kind != RecordKind::Source || self.sources.iter().all(|held| held.id != id) {
                return id;
            }
        }
    }

    /// The records of a written kind.
    pub fn records(&self, kind: RecordKind) -> Option<&Records> {
        match kind {
            RecordKind::Prospect => Some(&self.prospects),
            RecordKind::Member => Some(&self.members),
            RecordKind::Staff | RecordKind::Source => None,
        }
    }

    /// Stores a prospect or member under its id (in the record), replacing what was there and
    /// keeping the external-id index in step.
    pub fn put(&mut self, kind: RecordKind, record: Record) {
        let Some(id) = record.get(&Field::Id) else {
            return;
        };
        let (records, external_ids) = match kind {
            RecordKind::Prospect => (&mut self.prospects, &mut self.external_ids.prospects),
            RecordKind::Member => (&mut self.members, &mut self.external_ids.members),
            RecordKind::Staff | RecordKind::Source => return,
        };
        let old = records.insert(id, StoredRecord::pack(&record), self.next_id);
        let new_external = record.get(&Field::ExternalId).map(String::as_str);
        let old_external = old.as_ref().and_then(|r| r.get(Field::ExternalId));
        if old_external != new_external {
            if let Some(old) = old_external {
                if external_ids.get(old) == Some(id) {
                    external_ids.remove(old);
                }
            }
            if let Some(external) = new_external {
                external_ids
                    .entry(external.to_owned())
                    .or_insert_with(|| id.clone());
            }
        }
    }

    /// The partner's id of the record of `kind` with this external id, if one is held.
    pub fn id_by_external(&self, kind: RecordKind, external: &str) -> Option<String> {
        self.external_ids.of(kind)?.get(external).cloned()
    }

    /// The staff member whose email matches, ignoring case.
    pub fn staff_by_email(&self, email: &str) -> Option<&Staff> {
        self.staff.iter().find(|staff| {
            staff
                .email
                .as_deref()
                .is_some_and(|known| same_ignoring_case(known, email))
        })
    }

    /// The lead source whose name matches, ignoring case (Unicode case folding).
    pub fn source_by_name(&self, name: &str) -> Option<&LeadSource> {
        self.sources
            .iter()
            .find(|source| same_ignoring_case(&source.name, name))
    }

    /// Checks the store's invariants; returns what is broken.
    pub fn invariant_violations(&self) -> Vec<String> {
        let mut broken = Vec::new();
        for (index, source) in self.sources.iter().enumerate() {
            if self.sources[..index].iter().any(|s| s.id == source.id) {
                broken.push(format!("source id {} twice", source.id));
            }
        }
        for (id, record) in self.prospects.iter() {
            if record.get(Field::Id) != Some(&*id) {
                broken.push(format!("prospect {id} is stored under another id"));
            }
            if let Some(owner) = record.get(Field::Owner) {
                if !self.staff.iter().any(|s| s.id == owner) {
                    broken.push(format!("prospect {id} has unknown owner {owner}"));
                }
            }
            if let Some(source) = record.get(Field::Source) {
                if !self.sources.iter().any(|s| s.id == source) {
                    broken.push(format!("prospect {id} has unknown source {source}"));
                }
            }
        }
        for (id, record) in self.members.iter() {
            if record.get(Field::Id) != Some(&*id) {
                broken.push(format!("member {id} is stored under another id"));
            }
        }
        broken
    }

    /// Writes the records of `section` from `from` on, at most `limit`, as canonical JSON
    /// objects, each after a comma unless it is the section's `first`.
    pub fn write_section(
        &self,
        section: Section,
        from: Position,
        limit: usize,
        out: &mut Vec<u8>,
        first: &mut bool,
    ) -> Written {
        fn write(object: &dyn erased::Object, out: &mut Vec<u8>, first: &mut bool) {
            if !std::mem::take(first) {
                out.push(b',');
            }
            object.write(out);
        }
        let mut written = 0;
        let last_id;
        let next = match section {
            Section::Staff | Section::Sources => {
                let start = match from.0 {
                    At::Index(index) => index,
                    _ => 0,
                };
                let len = match section {
                    Section::Staff => self.staff.len(),
                    _ => self.sources.len(),
                };
                let end = len.min(start.saturating_add(limit));
                for index in start..end {
                    match section {
                        Section::Staff => write(&&self.staff[index], out, first),
                        _ => write(&&self.sources[index], out, first),
                    }
                }
                written = end.saturating_sub(start);
                last_id = (end > start).then(|| match section {
                    Section::Staff => self.staff[end - 1].id.clone(),
                    _ => self.sources[end - 1].id.clone(),
                });
                (end < len).then_some(Position(At::Index(end)))
            }
            Section::Prospects | Section::Members => {
                let records = match section {
                    Section::Prospects => &self.prospects,
                    _ => &self.members,
                };
                let mut last = None;
                let next = records.walk(from, |record| {
                    if written == limit {
                        return false;
                    }
                    write(&record, out, first);
                    written += 1;
                    last = Some(record);
                    true
                });
                last_id = last.and_then(|record| record.get(Field::Id).map(str::to_owned));
                next
            }
        };
        Written {
            count: written,
            next,
            last_id,
        }
    }

    /// Where the records of `section` go on after the one with `id`; `None` when no record of
    /// this store could have that id.
    pub fn position_after(&self, section: Section, id: &str) -> Option<Position> {
        match section {
            Section::Staff => self.staff.iter().position(|staff| staff.id == id),
            Section::Sources => self.sources.iter().position(|source| source.id == id),
            Section::Prospects => return self.prospects.position_after(id),
            Section::Members => return self.members.position_after(id),
        }
        .map(|index| Position(At::Index(index + 1)))
    }
}

/// What [`StoreData::write_section`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// How many records.
    pub count: usize,
    /// Where the next unwritten record is; `None` once past the section's last.
    pub next: Option<Position>,
    /// The id of the last record written.
    pub last_id: Option<String>,
}

/// The parts of the store, in the order the admin dump lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// Staff.
    Staff,
    /// Lead sources.
    Sources,
    /// Prospects.
    Prospects,
    /// Members.
    Members,
}

impl Section {
    /// Every section, in dump order.
    pub const ALL: [Section; 4] = [
        Section::Staff,
        Section::Sources,
        Section::Prospects,
        Section::Members,
    ];

    /// Its key in the dump.
    pub fn key(self) -> &'static str {
        match self {
            Section::Staff => "staff",
            Section::Sources => "sources",
            Section::Prospects => "prospects",
            Section::Members => "members",
        }
    }

    /// The section of this key.
    pub fn from_key(key: &str) -> Option<Section> {
        Section::ALL
            .into_iter()
            .find(|section| section.key() == key)
    }
}

/// Where a walk through one section of the store goes on: an index into staff or sources, a
/// slot or a place among the records kept beside the slots. Positions stay valid while records
/// are saved (saves never move a record), so a walk in steps sees each record held
/// throughout exactly once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position(At);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum At {
    #[default]
    Start,
    Index(usize),
    Slot(usize),
    Other(usize),
}

/// One record of any section written as a canonical JSON object.
mod erased {
    use super::{LeadSource, Staff, StoredRecord};
    use serde_json::json;

    pub(super) trait Object {
        fn write(&self, out: &mut Vec<u8>);
    }

    fn write_json(value: &impl serde::Serialize, out: &mut Vec<u8>) {
        // Writing strings into a Vec cannot fail.
        let _ = serde_json::to_writer(out, value);
    }

    impl Object for &Staff {
        fn write(&self, out: &mut Vec<u8>) {
            let staff = json!({
                "id": self.id, "email": self.email, "first-name": self.first_name,
                "last-name": self.last_name,
            });
            write_json(&staff, out);
        }
    }

    impl Object for &LeadSource {
        fn write(&self, out: &mut Vec<u8>) {
            write_json(&json!({"id": self.id, "name": self.name}), out);
        }
    }

    impl Object for &StoredRecord {
        fn write(&self, out: &mut Vec<u8>) {
            // Keys in name order, as a JSON object of canonical fields has always listed them.
            let fields: std::collections::BTreeMap<&str, &str> = self
                .fields()
                .map(|(field, value)| (field.key(), value))
                .collect();
            write_json(&fields, out);
        }
    }
}

/// The most records one chunk of the streamed dump holds: the store's lock is held for one
/// chunk at a time.
pub const DUMP_CHUNK: usize = 1_000;

/// The whole store as one JSON object (`{"staff": [...], "sources": [...], "prospects": [...],
/// "members": [...]}`), written a chunk at a time. Not a snapshot: records saved while it is
/// written may or may not appear, and every record held throughout appears once.
#[derive(Debug, Default)]
pub struct DumpChunks {
    /// The index in [`Section::ALL`] of the section being written.
    section: usize,
    /// Where that section goes on; `None` before it is opened.
    at: Option<Position>,
    first: bool,
    finished: bool,
}

impl DumpChunks {
    /// The next chunk (at most [`DUMP_CHUNK`] records), written under one read lock of
    /// `store`; `None` once everything is written.
    pub fn next_chunk(&mut self, store: &Store) -> Option<Vec<u8>> {
        if self.finished {
            return None;
        }
        let data = store.read();
        let mut out = Vec::with_capacity(64 * 1024);
        let mut budget = DUMP_CHUNK;
        while budget > 0 {
            let Some(section) = Section::ALL.get(self.section) else {
                out.push(b'}');
                self.finished = true;
                break;
            };
            let from = match self.at {
                Some(at) => at,
                None => {
                    out.extend_from_slice(if self.section == 0 { b"{" } else { b"," });
                    out.extend_from_slice(format!("\"{}\":[", section.key()).as_bytes());
                    self.first = true;
                    Position::default()
                }
            };
            let written = data.write_section(*section, from, budget, &mut out, &mut self.first);
            budget -= written.count;
            self.at = written.next;
            if written.next.is_none() {
                out.push(b']');
                self.section += 1;
            }
        }
        Some(out)
    }
}

impl Store {
    /// A store holding `seed`.
    pub fn new(seed: Sandbox) -> Self {
        Store::numbered(seed, NumericIds::default())
    }

    /// A store holding `seed`, numbering the kinds `numeric` names with plain integers.
    pub fn numbered(seed: Sandbox, numeric: NumericIds) -> Self {
        let data = RwLock::new(StoreData::from_seed(&seed, numeric));
        Store {
            seed,
            numeric,
            data,
            generation: Default::default(),
        }
    }

    /// Shared access.
    pub fn read(&self) -> RwLockReadGuard<'_, StoreData> {
        // A panic while holding the lock cannot leave half-written data: every change is
        // computed first and applied in one step, so a poisoned lock is still consistent.
        self.data
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Changes with every write access: equal generations mean equal data.
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Exclusive access.
    pub fn write(&self) -> RwLockWriteGuard<'_, StoreData> {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        self.data
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Back to the seed.
    pub fn reset(&self) {
        *self.write() = StoreData::from_seed(&self.seed, self.numeric);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn prospect(id: &str, external: Option<&str>) -> Record {
        let mut record = Record::from([(Field::Id, id.to_owned())]);
        if let Some(external) = external {
            record.insert(Field::ExternalId, external.to_owned());
        }
        record
    }

    #[test]
    fn a_packed_record_gives_back_every_field_and_value() {
        let record = Record::from([
            (Field::Id, "P-000001".to_owned()),
            (Field::FirstName, "Zoë".to_owned()),
            (Field::LastName, String::new()),
            (Field::Email, "zoe@example.org".to_owned()),
        ]);
        // Packed, and kept whole (as a record of more text than the ends can count).
        for stored in [
            StoredRecord::pack(&record),
            StoredRecord::pack_within(&record, 3),
        ] {
            assert_eq!(stored.unpack(), record);
            for (field, value) in &record {
                assert_eq!(stored.get(*field), Some(value.as_str()));
            }
            assert_eq!(stored.get(Field::Owner), None);
        }
        assert!(matches!(
            StoredRecord::pack_within(&record, 3).0,
            Packing::Whole(_)
        ));
        assert!(matches!(
            StoredRecord::pack(&record).0,
            Packing::Packed { .. }
        ));
        assert_eq!(StoredRecord::pack(&Record::new()).unpack(), Record::new());
    }

    #[test]
    fn the_external_id_index_follows_saves_and_changes() {
        let mut data = StoreData::default();
        let found =
            |data: &StoreData, external| data.id_by_external(RecordKind::Prospect, external);
        data.put(RecordKind::Prospect, prospect("P-1", Some("E-1")));
        assert_eq!(found(&data, "E-1").as_deref(), Some("P-1"));
        // The record's external id changes: the old one no longer leads to it.
        data.put(RecordKind::Prospect, prospect("P-1", Some("E-2")));
        assert_eq!(found(&data, "E-1"), None);
        assert_eq!(found(&data, "E-2").as_deref(), Some("P-1"));
        // A second record with the same external id: the first keeps it.
        data.put(RecordKind::Prospect, prospect("P-2", Some("E-2")));
        assert_eq!(found(&data, "E-2").as_deref(), Some("P-1"));
        // The first loses its external id: the index lets it go, not the second's claim.
        data.put(RecordKind::Prospect, prospect("P-1", None));
        assert_eq!(found(&data, "E-2"), None);
        assert_eq!(data.prospects.len(), 2);
        assert_eq!(data.id_by_external(RecordKind::Member, "E-2"), None);
    }

    #[test]
    fn a_new_source_never_gets_the_id_of_a_held_one() {
        let mut data = StoreData::from_seed(&Sandbox::synthetic(0, 3), NumericIds::default());
        let held: Vec<String> = data.sources.iter().map(|s| s.id.clone()).collect();
        assert!(held.contains(&"LS-000001".to_owned()), "{held:?}");
        let created = data.next_id(RecordKind::Source);
        assert!(
            !held.contains(&created),
            "{created} is already held: {held:?}"
        );
    }

    #[test]
    fn ids_handed_out_take_their_slot_and_any_other_id_is_kept_beside() {
        let mut data = StoreData::default();
        let handed_out: Vec<String> = (0..3).map(|_| data.next_id(RecordKind::Prospect)).collect();
        assert_eq!(handed_out[2], "P-000003");
        assert_eq!(format_id(Some("LS"), 0), "LS-000000");
        assert_eq!(format_id(Some("P"), 1_234_567), "P-1234567");
        // Beyond the counter, another prefix, other zero padding, no number: kept by id.
        let others = [
            "P-000009",
            "M-000001",
            "P-0000001",
            "P-1",
            "P-00000a",
            "lead-7",
        ];
        for id in handed_out.iter().rev().map(String::as_str).chain(others) {
            data.put(RecordKind::Prospect, prospect(id, None));
        }
        assert_eq!(data.prospects.len(), 3 + others.len());
        assert!(data.prospects.blocks.len() == 1 && data.prospects.others.len() == others.len());
        for id in handed_out.iter().map(String::as_str).chain(others) {
            let held = data.prospects.get(id).and_then(|r| r.get(Field::Id));
            assert_eq!(held, Some(id));
        }
        assert!(!data.prospects.contains_key("P-000004") && !data.prospects.contains_key("P-4"));
        // Number order for the handed-out ids, then the others as first saved.
        let listed: Vec<String> = data
            .prospects
            .iter()
            .map(|(id, _)| id.into_owned())
            .collect();
        let expected: Vec<&str> = handed_out
            .iter()
            .map(String::as_str)
            .chain(others)
            .collect();
        assert_eq!(listed, expected);
        assert!(data.invariant_violations().is_empty());
        // Once the counter passes an id kept beside, that id stays where it is.
        while data.next_id(RecordKind::Prospect) != "P-000009" {}
        data.put(RecordKind::Prospect, prospect("P-000009", Some("E-9")));
        assert_eq!(data.prospects.len(), 3 + others.len());
        assert_eq!(
            data.prospects
                .get("P-000009")
                .and_then(|r| r.get(Field::ExternalId)),
            Some("E-9")
        );
        // A slot replaced keeps the count.
        data.put(RecordKind::Prospect, prospect("P-000002", Some("E-2")));
        assert_eq!(data.prospects.len(), 3 + others.len());
        assert_eq!(data.prospects.values().count(), data.prospects.len());
    }

    #[test]
    fn pages_and_chunks_list_every_record_once_across_blocks_and_the_others() {
        let mut data = StoreData::default();
        for _ in 0..BLOCK + 500 {
            let id = data.next_id(RecordKind::Prospect);
            data.put(RecordKind::Prospect, prospect(&id, None));
        }
        for id in ["lead-z", "lead-a", "P-0000001"] {
            data.put(RecordKind::Prospect, prospect(id, None));
        }
        let expected: Vec<String> = data
            .prospects
            .iter()
            .map(|(id, _)| id.into_owned())
            .collect();
        // Page by page, each going on after the last id of the one before.
        let mut listed = Vec::new();
        let mut from = Position::default();
        loop {
            let mut out = b"[".to_vec();
            let written = data.write_section(Section::Prospects, from, 333, &mut out, &mut true);
            out.push(b']');
            let page: Vec<Value> = serde_json::from_slice(&out).unwrap();
            assert_eq!(page.len(), written.count);
            listed.extend(page.iter().map(|r| r["id"].as_str().unwrap().to_owned()));
            if written.next.is_none() {
                break;
            }
            let last = written.last_id.unwrap();
            from = data.position_after(Section::Prospects, &last).unwrap();
        }
        let first_difference = listed.iter().zip(&expected).position(|(a, b)| a != b);
        assert!(
            listed == expected,
            "{} listed of {}; first difference at {first_difference:?}",
            listed.len(),
            expected.len()
        );
        // The whole dump, chunk by chunk, is one JSON document holding the same.
        let store = Store::new(Sandbox::default_seed());
        *store.write() = data;
        let mut chunks = DumpChunks::default();
        let mut whole = Vec::new();
        let mut count = 0;
        while let Some(chunk) = chunks.next_chunk(&store) {
            whole.extend(chunk);
            count += 1;
        }
        assert!(count > 4, "{count} chunks");
        let dump: Value = serde_json::from_slice(&whole).unwrap();
        let ids: Vec<&str> = dump["prospects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect();
        assert!(
            ids == expected,
            "{} dumped of {}",
            ids.len(),
            expected.len()
        );
        assert_eq!(dump["members"], serde_json::json!([]));
    }
}
