//! When an open execution is polled next: a pure function of its age, the polls so far and the
//! last status seen.
//!
//! The first look comes soon (fast data points arrive in minutes), later ones grow by a factor
//! toward a cap (slow data points take hours), each with jitter so that executions started
//! together do not poll together. Past the give-up age the item is parked as timed out; the
//! last poll is placed exactly at that age so no execution is abandoned without a final look.

use std::time::Duration;

use super::answer::PollStatus;

/// The shape of the poll schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct CadenceSettings {
    /// The wait before the first poll.
    pub first: Duration,
    /// The growth of the wait after each poll (values below 1 count as 1).
    pub factor: f64,
    /// The longest wait between two polls.
    pub max_interval: Duration,
    /// The share by which a wait may be shortened or lengthened, in [0, 1].
    pub jitter: f64,
    /// The age after which the execution is given up.
    pub give_up_after: Duration,
}

impl Default for CadenceSettings {
    fn default() -> Self {
        Self {
            first: Duration::from_secs(30),
            factor: 2.0,
            max_interval: Duration::from_secs(10 * 60),
            jitter: 0.2,
            give_up_after: Duration::from_secs(24 * 60 * 60),
        }
    }
}

/// What to do with an open execution after a poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollDecision {
    /// Poll again after this wait.
    After(Duration),
    /// The execution is too old: park the item as timed out.
    GiveUp,
}

/// The next poll of an execution of `age` that has been polled `polls` times, the last of
/// which answered `last`; `jitter_sample` is a uniform sample in [0, 1).
///
/// `FastSuccess` skips one growth step: the fast fields are in and the rest takes longer.
/// The function is meant for open executions; a terminal `last` is treated like `Processing`.
/// Settings out of range are clamped (factor below 1 as 1, jitter into [0, 1]); nothing panics.
#[must_use]
pub fn next_poll(
    age: Duration,
    polls: u32,
    last: PollStatus,
    settings: &CadenceSettings,
    jitter_sample: f64,
) -> PollDecision {
    if age >= settings.give_up_after {
        return PollDecision::GiveUp;
    }

    // The step in the geometric schedule.
    let steps = match last {
        PollStatus::FastSuccess => polls.saturating_add(1),
        PollStatus::Processing | PollStatus::Complete | PollStatus::Failed => polls,
    };
    let factor = if settings.factor.is_finite() {
        settings.factor.max(1.0)
    } else {
        1.0
    };
    let cap = settings.max_interval.as_secs_f64();
    let exponent = i32::try_from(steps).unwrap_or(i32::MAX);
    let base = (settings.first.as_secs_f64() * factor.powi(exponent)).min(cap);

    // Jitter around the base, never beyond the cap.
    let jitter = if settings.jitter.is_finite() {
        settings.jitter.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let sample = if jitter_sample.is_finite() {
        jitter_sample.clamp(0.0, 1.0)
    } else {
        0.5
    };
    let secs = (base * (1.0 - jitter + 2.0 * jitter * sample)).min(cap);
    let wait = Duration::try_from_secs_f64(secs).unwrap_or(settings.max_interval);

    // The last look lands on the give-up age.
    let left = settings.give_up_after - age;
    PollDecision::After(wait.min(left))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn no_jitter() -> CadenceSettings {
        CadenceSettings {
            jitter: 0.0,
            ..CadenceSettings::default()
        }
    }

    #[test]
    fn grows_from_first_look_to_cap() {
        let s = no_jitter();
        let table = [
            (0, PollStatus::Processing, 30),
            (1, PollStatus::Processing, 60),
            (2, PollStatus::Processing, 120),
            (3, PollStatus::Processing, 240),
            (4, PollStatus::Processing, 480),
            (5, PollStatus::Processing, 600),
            (40, PollStatus::Processing, 600),
            (u32::MAX, PollStatus::Processing, 600),
            (1, PollStatus::FastSuccess, 120),
        ];
        for (polls, last, want) in table {
            assert_eq!(
                next_poll(secs(100), polls, last, &s, 0.3),
                PollDecision::After(secs(want)),
                "polls {polls} last {last:?}"
            );
        }
    }

    #[test]
    fn jitter_spreads_within_its_share_and_under_the_cap() {
        let s = CadenceSettings::default();
        let low = next_poll(secs(0), 1, PollStatus::Processing, &s, 0.0);
        let high = next_poll(secs(0), 1, PollStatus::Processing, &s, 0.999_999);
        assert_eq!(low, PollDecision::After(secs(48)));
        let PollDecision::After(high) = high else {
            panic!("young execution given up")
        };
        assert!(high > secs(71) && high < secs(72), "{high:?}");

        let capped = next_poll(secs(0), 30, PollStatus::Processing, &s, 0.999);
        assert_eq!(capped, PollDecision::After(secs(600)));
    }

    #[test]
    fn gives_up_at_the_age_limit_after_a_last_look_there() {
        let s = no_jitter();
        let day = secs(24 * 60 * 60);
        assert_eq!(
            next_poll(day - secs(100), 20, PollStatus::Processing, &s, 0.5),
            PollDecision::After(secs(100))
        );
        assert_eq!(
            next_poll(day, 20, PollStatus::Processing, &s, 0.5),
            PollDecision::GiveUp
        );
        assert_eq!(
            next_poll(day * 2, 0, PollStatus::FastSuccess, &s, 0.5),
            PollDecision::GiveUp
        );
    }

    #[test]
    fn odd_settings_do_not_panic() {
        let s = CadenceSettings {
            first: secs(10),
            factor: f64::NAN,
            max_interval: secs(60),
            jitter: 7.0,
            give_up_after: secs(3600),
        };
        for sample in [f64::NAN, -1.0, 0.0, 0.5, 2.0, f64::INFINITY] {
            let PollDecision::After(wait) =
                next_poll(secs(5), 3, PollStatus::Processing, &s, sample)
            else {
                panic!("young execution given up");
            };
            assert!(wait <= secs(60), "{wait:?}");
        }
        let shrinking = CadenceSettings {
            factor: 0.1,
            jitter: 0.0,
            ..s
        };
        assert_eq!(
            next_poll(secs(5), 3, PollStatus::Processing, &shrinking, 0.5),
            PollDecision::After(secs(10))
        );
    }
}
