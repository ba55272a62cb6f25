//! The server's own registry of its long-lived tasks (accept loops, connections, debug
//! captures, the main task) and what each is doing right now: what /debug/pprof/goroutine
//! shows, and the count beside it on the index.
//!
//! Why not tokio's task dump (`Handle::dump`, which this endpoint used before): it parks every
//! worker at a barrier and traces each task by polling it. In tokio 1.54.1 the barrier leaks
//! an arrival when its 250 ms `wait_timeout` expires (tokio PR #8370 and issue #7478, open),
//! and from then on a worker waits in `Barrier::wait` for good: seen here under two concurrent
//! goroutine scrapes plus load, every connection that worker held hung. The current-thread
//! dump panics when a traced task wakes another (tokio #8391). A continuous profiler calls this
//! endpoint every 10 to 15 s. Reading this registry never waits for a worker: it takes one
//! short lock and loads a few atomics, so no mix or rate of scrapes can stall the runtime.
//! What it gives up: the stacks are the states the server itself names (a connection idle,
//! reading a head, handling a request, writing to a client that does not read), not the
//! frames of each suspended future.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// What a registered task can say about itself: its current state, as a short phrase.
pub trait Activity: Send + Sync {
    /// The innermost frame of the task's stack (its state, e.g. "idle, awaiting a request"),
    /// and an optional middle frame (e.g. the protocol of a connection).
    fn now(&self) -> (Option<&'static str>, &'static str);
}

/// A state that never changes while the task is registered.
impl Activity for &'static str {
    fn now(&self) -> (Option<&'static str>, &'static str) {
        (None, self)
    }
}

struct Entry {
    id: u64,
    /// The task's function, the root frame of its stack.
    kind: &'static str,
    since: Instant,
    activity: Arc<dyn Activity>,
}

struct Table {
    slots: Vec<Option<Entry>>,
    free: Vec<usize>,
    next_id: u64,
    live: usize,
}

static TABLE: Mutex<Table> = Mutex::new(Table {
    slots: Vec::new(),
    free: Vec::new(),
    next_id: 1,
    live: 0,
});

fn table() -> MutexGuard<'static, Table> {
    // A panic elsewhere while holding the lock leaves the table consistent (every change is
    // one push or one take), so a poisoned lock is still usable.
    TABLE.lock().unwrap_or_else(|e| e.into_inner())
}

/// A task's place in the registry, removed when this is dropped (the task ended).
pub struct Registered {
    slot: usize,
}

/// Registers the calling task as `kind` (its function's path) doing `activity`.
pub fn register(kind: &'static str, activity: Arc<dyn Activity>) -> Registered {
    let mut t = table();
    let id = t.next_id;
    t.next_id += 1;
    t.live += 1;
    let entry = Some(Entry {
        id,
        kind,
        since: Instant::now(),
        activity,
    });
    let slot = match t.free.pop() {
        Some(i) => {
            t.slots[i] = entry;
            i
        }
        None => {
            t.slots.push(entry);
            t.slots.len() - 1
        }
    };
    Registered { slot }
}

/// Registers a task whose state is fixed.
pub fn register_fixed(kind: &'static str, state: &'static str) -> Registered {
    register(kind, Arc::new(state))
}

impl Drop for Registered {
    fn drop(&mut self) {
        let mut t = table();
        if t.slots[self.slot].take().is_some() {
            t.live -= 1;
            t.free.push(self.slot);
        }
    }
}

/// One task as read at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    pub id: u64,
    /// Innermost first: the state, then (if any) a middle frame, then the task's function.
    pub stack: Vec<&'static str>,
    pub age: Duration,
}

/// Every registered task, in the order they registered.
pub fn snapshot() -> Vec<Task> {
    let now = Instant::now();
    // Copy out under the lock, ask each task for its state after: an Activity may take time.
    let entries: Vec<(u64, &'static str, Instant, Arc<dyn Activity>)> = table()
        .slots
        .iter()
        .flatten()
        .map(|e| (e.id, e.kind, e.since, e.activity.clone()))
        .collect();
    let mut tasks: Vec<Task> = entries
        .into_iter()
        .map(|(id, kind, since, activity)| {
            let (middle, state) = activity.now();
            Task {
                id,
                stack: [Some(state), middle, Some(kind)]
                    .into_iter()
                    .flatten()
                    .collect(),
                age: now.saturating_duration_since(since),
            }
        })
        .collect();
    tasks.sort_by_key(|t| t.id);
    tasks
}

/// How many tasks are registered now.
pub fn count() -> usize {
    table().live
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_appear_while_registered_and_slots_are_reused() {
        let before = count();
        let a = register_fixed("test::a", "waiting");
        let b = register_fixed("test::b", "running");
        assert_eq!(count(), before + 2);
        let mine: Vec<Task> = snapshot()
            .into_iter()
            .filter(|t| t.stack.last().is_some_and(|k| k.starts_with("test::")))
            .collect();
        assert!(mine.iter().any(|t| t.stack == ["waiting", "test::a"]));
        assert!(mine.iter().any(|t| t.stack == ["running", "test::b"]));
        drop(a);
        let slots = table().slots.len();
        let c = register_fixed("test::c", "again");
        assert_eq!(table().slots.len(), slots, "the freed slot is reused");
        drop((b, c));
        assert_eq!(count(), before);
    }
}
