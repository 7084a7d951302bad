//! L1: the consumer's pure core (client side): fetch positions and poll order ([`positions`]), the group
//! member's side of the classic protocol ([`member`]), the consumer protocol's subscription and assignment
//! bytes ([`protocol`]) and the [`Consumer`] that composes them with auto-commit. No IO, no clock, no global
//! RNG: `now_ms` comes in, effects go out as data ([`Effect`]), as in `producer::sender`.

pub mod config;
pub mod kafka_consumer;
pub mod member;
pub mod positions;
pub mod protocol;

#[cfg(test)]
mod tests;

pub use config::{AutoOffsetReset, ConsumerConfig};
pub use kafka_consumer::{Consumer, ConsumerError, Effect};
pub use member::{MemberState, RebalanceEvent};
pub use positions::{
    ConsumerRecord, FetchPosition, FetchResult, Positions, Truncation, CONSUMER_DETECTED_TRUNCATION_MARK,
};
pub use protocol::{decode_assignment, decode_subscription, encode_assignment, encode_subscription};
