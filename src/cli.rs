//! L6: the command line.
