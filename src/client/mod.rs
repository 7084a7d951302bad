//! L3: the client: connections to brokers, metadata, and the async facades over the producer and consumer
//! cores.

pub mod connection;
pub mod error;
pub mod shape;

pub use connection::{Connection, ConnectionConfig, CLIENT_API_VERSIONS};
pub use error::{ClientError, KafkaErrorCode};
