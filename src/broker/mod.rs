//! L2: the broker: composes the cores for one broker.
