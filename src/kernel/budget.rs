//! The request budget of one Kernel API key: how fast requests may go out, who goes first, and
//! how many executions may be open at once.
//!
//! The rate is a strict spacing (a GCRA with a burst of one): a permit is granted at least
//! `1 s / rate` after the previous one, measured from when that permit was actually granted.
//! Kernel measures arrivals, not our grants, so the spacing carries a small margin
//! ([`SAFETY_MARGIN`]) that absorbs the jitter between granting a permit and the request
//! reaching Kernel; no one-second window then holds more than `rate` requests.
//!
//! Waiting polls are served before waiting submits: finishing an execution frees a slot, so
//! starting new ones must never starve it. A 429 pauses every waiter for the time Kernel asked
//! for; the first 429 of an episode logs a warning and the episode ends with the next accepted
//! request.
//!
//! The rate is kept with tokio's clock, so paused-time tests drive it exactly.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// The share added to the spacing between permits (2 %: 5 requests/s become one every 204 ms).
pub const SAFETY_MARGIN: f64 = 0.02;

/// Who is asking for a permit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// A poll: served first.
    Poll,
    /// A submit: served when no poll is waiting.
    Submit,
}

/// The shared budget of one API key: request rate, poll priority, 429 pauses and open
/// execution slots. Shared by every clone of a [`crate::kernel::KernelClient`].
#[derive(Debug)]
pub struct Budget {
    spacing: Duration,
    state: Mutex<RateState>,
    changed: Notify,
    slots: NonZeroU32,
    open: AtomicU32,
    rate_limited: AtomicBool,
}

#[derive(Debug)]
struct RateState {
    /// The earliest instant the next permit may be granted.
    next_free: Instant,
    /// No permit before this instant (set by a 429).
    paused_until: Instant,
    /// Polls waiting for a permit; submits yield to them.
    polls_waiting: u32,
}

impl Budget {
    /// A budget of `requests_per_second` (strict, no burst) and `slots` open executions.
    #[must_use]
    pub fn new(requests_per_second: NonZeroU32, slots: NonZeroU32) -> Self {
        let base = Duration::from_secs(1) / requests_per_second.get();
        let spacing = base + base.mul_f64(SAFETY_MARGIN);
        let now = Instant::now();
        Self {
            spacing,
            state: Mutex::new(RateState {
                next_free: now,
                paused_until: now,
                polls_waiting: 0,
            }),
            changed: Notify::new(),
            slots,
            open: AtomicU32::new(0),
            rate_limited: AtomicBool::new(false),
        }
    }

    /// The time between two permits.
    #[must_use]
    pub fn spacing(&self) -> Duration {
        self.spacing
    }

    /// Waits for one request permit. Cancel-safe: a dropped wait takes nothing.
    pub async fn acquire(&self, priority: Priority) {
        let _waiting = WaitingPoll::register(self, priority);

        loop {
            // Register for wake-ups before looking, so a change between the look and the
            // wait is not missed.
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();

            let wake_at = match self.try_grant(priority) {
                Ok(()) => {
                    // Others re-read the new spacing (and a submit may now go).
                    self.changed.notify_waiters();
                    return;
                }
                Err(wake_at) => wake_at,
            };
            match wake_at {
                Some(at) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => {}
                        () = &mut notified => {}
                    }
                }
                None => notified.await,
            }
        }
    }

    /// Grants a permit now, or says until when to wait (`None`: until a poll goes first).
    fn try_grant(&self, priority: Priority) -> Result<(), Option<Instant>> {
        let mut state = self.lock();
        let now = Instant::now();
        let ready_at = state.next_free.max(state.paused_until);

        if now < ready_at {
            return Err(Some(ready_at));
        }
        if priority == Priority::Submit && state.polls_waiting > 0 {
            return Err(None);
        }
        state.next_free = now + self.spacing;
        Ok(())
    }

    /// Pauses every permit for `wait` after a 429. Returns whether this 429 opened a new
    /// episode (and logged it).
    pub fn pause_for(&self, wait: Duration, endpoint: &'static str) -> bool {
        {
            let mut state = self.lock();
            let until = Instant::now() + wait;
            state.paused_until = state.paused_until.max(until);
        }
        self.changed.notify_waiters();

        let first = !self.rate_limited.swap(true, Ordering::AcqRel);
        if first {
            tracing::warn!(
                endpoint,
                wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                "kernel is rate limiting this api key; slowing down"
            );
        }
        first
    }

    /// Ends a 429 episode: called when Kernel accepted a request again.
    pub fn note_accepted(&self) {
        if self.rate_limited.swap(false, Ordering::AcqRel) {
            tracing::info!("kernel accepts requests again after rate limiting");
        }
    }

    /// Whether a 429 episode is under way.
    #[must_use]
    pub fn is_rate_limited(&self) -> bool {
        self.rate_limited.load(Ordering::Acquire)
    }

    /// Takes an open-execution slot before a submit; `false` when all are taken.
    pub fn try_take_slot(&self) -> bool {
        let cap = self.slots.get();
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < cap).then_some(open + 1)
            })
            .is_ok()
    }

    /// Frees a slot: the execution ended (complete, failed, given up) or its submit failed for
    /// good. A release without a matching take is ignored rather than wrapping around.
    pub fn release_slot(&self) {
        let _ = self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                Some(open.saturating_sub(1))
            });
    }

    /// Counts executions left open by a previous process; they hold slots like new ones, and
    /// may exceed the cap (no submit goes out until enough of them end).
    pub fn adopt_open(&self, n: u32) {
        let _ = self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                Some(open.saturating_add(n))
            });
    }

    /// Executions currently holding a slot.
    #[must_use]
    pub fn open(&self) -> u32 {
        self.open.load(Ordering::Acquire)
    }

    /// The slot cap.
    #[must_use]
    pub fn slots(&self) -> u32 {
        self.slots.get()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RateState> {
        // The state is a few plain numbers, consistent after every statement: a panic in
        // another holder cannot leave it half-written, so a poisoned lock is still usable.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Counts a waiting poll for as long as its `acquire` runs, granted or cancelled.
struct WaitingPoll<'a> {
    budget: Option<&'a Budget>,
}

impl<'a> WaitingPoll<'a> {
    fn register(budget: &'a Budget, priority: Priority) -> Self {
        if priority != Priority::Poll {
            return Self { budget: None };
        }
        budget.lock().polls_waiting += 1;
        Self {
            budget: Some(budget),
        }
    }
}

impl Drop for WaitingPoll<'_> {
    fn drop(&mut self) {
        let Some(budget) = self.budget else {
            return;
        };
        {
            let mut state = budget.lock();
            state.polls_waiting = state.polls_waiting.saturating_sub(1);
        }
        // Submits that yielded to this poll look again.
        budget.changed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn nz(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).expect("test constants are non-zero")
    }

    /// The largest number of instants in any half-open window of `window`.
    fn max_in_window(times: &[Instant], window: Duration) -> usize {
        let mut best = 0;
        for (i, start) in times.iter().enumerate() {
            let n = times[i..]
                .iter()
                .take_while(|t| **t < *start + window)
                .count();
            best = best.max(n);
        }
        best
    }

    #[tokio::test(start_paused = true)]
    async fn never_more_than_the_rate_in_any_second() {
        let budget = Arc::new(Budget::new(nz(5), nz(200)));
        let mut tasks = Vec::new();
        for i in 0..40 {
            let budget = Arc::clone(&budget);
            let priority = if i % 3 == 0 {
                Priority::Poll
            } else {
                Priority::Submit
            };
            tasks.push(tokio::spawn(async move {
                budget.acquire(priority).await;
                Instant::now()
            }));
        }
        let mut times = Vec::new();
        for task in tasks {
            times.push(task.await.unwrap());
        }
        times.sort();

        assert_eq!(max_in_window(&times, Duration::from_secs(1)), 5);
        let span = *times.last().unwrap() - times[0];
        assert_eq!(span, budget.spacing() * 39);
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_polls_go_before_waiting_submits() {
        let budget = Arc::new(Budget::new(nz(5), nz(200)));
        budget.acquire(Priority::Submit).await;

        // Submits queue first, then polls arrive: the polls still go first.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut tasks = Vec::new();
        for (i, priority) in [
            Priority::Submit,
            Priority::Submit,
            Priority::Poll,
            Priority::Poll,
        ]
        .into_iter()
        .enumerate()
        {
            let budget = Arc::clone(&budget);
            let tx = tx.clone();
            tasks.push(tokio::spawn(async move {
                budget.acquire(priority).await;
                tx.send((i, priority)).unwrap();
            }));
            tokio::task::yield_now().await;
        }
        for task in tasks {
            task.await.unwrap();
        }
        drop(tx);
        let mut order = Vec::new();
        while let Some((_, priority)) = rx.recv().await {
            order.push(priority);
        }
        assert_eq!(
            order,
            [
                Priority::Poll,
                Priority::Poll,
                Priority::Submit,
                Priority::Submit
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_pauses_everyone_and_logs_once_per_episode() {
        let budget = Budget::new(nz(5), nz(200));
        let start = Instant::now();

        assert!(budget.pause_for(Duration::from_secs(3), "POST enrichment"));
        assert!(!budget.pause_for(Duration::from_secs(1), "GET enrichment"));
        assert!(budget.is_rate_limited());

        budget.acquire(Priority::Poll).await;
        assert_eq!(Instant::now() - start, Duration::from_secs(3));

        budget.note_accepted();
        assert!(!budget.is_rate_limited());
        assert!(budget.pause_for(Duration::from_secs(1), "GET enrichment"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_poll_does_not_block_submits() {
        let budget = Arc::new(Budget::new(nz(5), nz(200)));
        budget.acquire(Priority::Submit).await;

        let waiting = {
            let budget = Arc::clone(&budget);
            tokio::spawn(async move { budget.acquire(Priority::Poll).await })
        };
        tokio::task::yield_now().await;
        waiting.abort();
        let _ = waiting.await;

        let start = Instant::now();
        budget.acquire(Priority::Submit).await;
        assert_eq!(Instant::now() - start, budget.spacing());
    }

    #[test]
    fn slots() {
        let budget = Budget::new(nz(5), nz(2));
        assert!(budget.try_take_slot());
        assert!(budget.try_take_slot());
        assert!(!budget.try_take_slot());
        assert_eq!(budget.open(), 2);

        budget.release_slot();
        assert_eq!(budget.open(), 1);
        budget.adopt_open(3);
        assert_eq!(budget.open(), 4);
        assert!(!budget.try_take_slot());

        for _ in 0..10 {
            budget.release_slot();
        }
        assert_eq!(budget.open(), 0);
        assert!(budget.try_take_slot());
    }
}
