//! EventBridge events that act without a person: a CloudWatch alarm that starts a plan,
//! a DRS replication stall that pages on-call staff, a DRS launch result that wakes a
//! waiting wave. Reading them (every problem names its field), deciding what to do,
//! and what to tell people. No AWS calls here: the trigger function does those.
//!
//! Only trusted events act: those of the stack's own account and Region (`read`), and
//! alarm tags only for plans that opt in to them (`route`); stalls in `stall`.

mod alarm;
mod events;
mod read;
mod route;
mod stall;

pub use alarm::*;
pub use events::*;
pub use read::{EventError, StackOrigin, read_event};
pub use route::{AlarmRoute, AlarmRouting, IgnoredTag, RouteError, StoredPlan, route_alarm};
pub use stall::{
    OnCallMessage, PlanMembership, RetryOutcome, StallFacts, memberships, replication_message,
    rpo_status,
};

#[cfg(test)]
pub(crate) mod tests;
